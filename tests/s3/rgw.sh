#!/usr/bin/env bash
# rgw.sh - throwaway single-node Ceph cluster (1 mon, 1 memstore OSD, radosgw)
# serving S3 on 127.0.0.1 for the S3 tests and benches, living entirely inside
# one directory. Quiet unless something fails (RGW_VERBOSE=1 shows progress).
#
# Usage:
#   rgw.sh start DIR          bootstrap + start everything, wait until S3 answers,
#                             print shell `export KEY=VALUE` lines on stdout
#   rgw.sh stop DIR           stop every daemon this script started in DIR and
#                             wait until they are gone (DIR itself is kept)
#   rgw.sh stop-gateway DIR   stop only radosgw (mon + osd keep running)
#   rgw.sh start-gateway DIR  start radosgw again on the same port and keys,
#                             wait for S3, print the export lines again
#   rgw.sh env DIR            print the export lines again (no side effects)
#   rgw.sh status DIR         show which of the daemons are alive
#
# Typical use:
#   d=$(mktemp -d); eval "$(rgw.sh start "$d")"; ...; rgw.sh stop "$d"; rm -rf "$d"
#
# Printed variables: RGW_ENDPOINT (http://127.0.0.1:PORT), RGW_PORT,
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION and AWS_REGION
#   (us-east-1), RGW_PIDS ("mon osd rgw" pids), RGW_DIR, RGW_CEPH_CONF, and
#   AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE (/dev/null) plus
#   AWS_EC2_METADATA_DISABLED=true so that no ~/.aws file or metadata
#   service changes what an AWS SDK does in the tests.
#
# Environment knobs (all optional):
#   RGW_START_TIMEOUT   seconds to wait for S3 to answer (default 90)
#   RGW_MEMSTORE_BYTES  size of the in-memory OSD (default 1 GiB; data lives in RAM)
#   RGW_STOP_SIGNAL     signal stop-gateway sends radosgw (default TERM, which
#                       takes ~0.5 s; KILL simulates a crash). `stop` always
#                       kills radosgw outright: the cluster is thrown away.
#   RGW_VERBOSE=1       progress messages on stderr
#
# Layout of DIR (everything the cluster touches is here):
#   ceph.conf state env user.json  keys/  data/<daemon>/  log/ (rgw.sh.log has
#   this script's messages)  run/ (admin sockets)  pids/  crash/
#
# Only Debian packages are needed:
#   apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common
# No ceph-mgr is run; the cluster works for I/O without it (see HEALTH notes
# at the end of write_conf). Works as root, without a terminal.

set -euo pipefail

PY=/usr/bin/python3          # Debian's python3 (pulled in by ceph-common)
RGW_NAME=client.rgw.gw       # cephx / config name of the gateway
MON_ID=a
OSD_ID=0                     # `ceph osd create` on a fresh cluster returns 0
S3_USER=tester

# Progress goes to DIR/log/rgw.sh.log (once DIR exists), and to stderr only
# with RGW_VERBOSE=1; errors always go to stderr.
log() {
    [ -n "${D:-}" ] && [ -d "$D/log" ] && printf '%s %s\n' "$(date +%T.%N)" "$*" >>"$D/log/rgw.sh.log"
    [ -n "${RGW_VERBOSE:-}" ] && printf 'rgw.sh: %s\n' "$*" >&2
    return 0
}
die() { log "error: $*"; printf 'rgw.sh: error: %s\n' "$*" >&2; exit 1; }

# Every program start/start-gateway needs; checked before anything is created.
NEEDED_BINS="ceph ceph-mon ceph-osd radosgw radosgw-admin rados monmaptool ceph-authtool uuidgen"
require_bins() {
    local b missing=""
    for b in $NEEDED_BINS; do command -v "$b" >/dev/null 2>&1 || missing="$missing $b"; done
    [ -x "$PY" ] || missing="$missing $PY"
    [ -z "$missing" ] || die "missing programs:$missing (apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common)"
}

# ---------------------------------------------------------------- helpers --

# Absolute, symlink-free path of DIR (created by `start` if needed).
resolve_dir() {
    [ -n "${1:-}" ] || die "missing DIR argument"
    [ "$2" = start ] && mkdir -p -- "$1"
    [ -d "$1" ] || die "no such directory: $1"
    (cd -- "$1" && pwd -P)
}

# Print a free TCP port on 127.0.0.1 in 20000..32767 (below Linux's default
# ephemeral range so outgoing connections do not grab it meanwhile). A port
# counts as free if we can bind it right now; ports given as arguments are
# excluded.
pick_port() {
    local try port
    for _ in $(seq 1 100); do
        port=$(( 20000 + RANDOM % 12768 ))
        case " $* " in *" $port "*) continue ;; esac
        if "$PY" - "$port" <<'EOF' 2>/dev/null; then
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.close()
EOF
            echo "$port"; return 0
        fi
    done
    die "could not find a free port"
}

# is_ours NAME: true if DIR/pids/NAME.pid names a live (non-zombie) process
# whose command line mentions our ceph.conf - protects against pid reuse.
is_ours() {
    local f="$D/pids/$1.pid" pid state
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    [ -r "/proc/$pid/cmdline" ] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [ "$state" != Z ] || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$CONF"
}

pid_of() { cat "$D/pids/$1.pid" 2>/dev/null || true; }

# spawn NAME CMD...: run CMD in the background (daemons are started with -f so
# they do not fork away), stdin from /dev/null and stdout/stderr into
# DIR/log/NAME.out so that `$(rgw.sh start ...)` is not held open by them.
spawn() {
    local name=$1; shift
    "$@" </dev/null >>"$D/log/$name.out" 2>&1 &
    echo $! >"$D/pids/$name.pid"
}

# stop_daemons SIG NAME...: send SIG to each of our NAMEs at once, then wait
# until all of them are dead; SIGKILL after 10 s (a radosgw with ops blocked on
# a full OSD ignores TERM), give up after 20 s. Never touches a process we did
# not start (see is_ours). A daemon counts as dead once it is a zombie.
stop_daemons() {
    local sig=$1 name pid i left="" names=""; shift
    for name in "$@"; do
        if is_ours "$name"; then
            pid=$(pid_of "$name")
            log "stopping $name (pid $pid, SIG$sig)"
            kill -s "$sig" "$pid" 2>/dev/null || true
            names="$names $name"
            STOPPED_PIDS="${STOPPED_PIDS:-} $pid"
        else
            rm -f "$D/pids/$name.pid"
        fi
    done
    for i in $(seq 1 400); do
        left=""
        for name in $names; do is_ours "$name" && left="$left $name"; done
        [ -z "$left" ] && break
        if [ "$i" = 200 ]; then
            for name in $left; do
                log "$name still alive after 10 s, SIGKILL"
                kill -s KILL "$(pid_of "$name")" 2>/dev/null || true
            done
        fi
        sleep 0.05
    done
    [ -z "$left" ] || die "did not exit:$left"
    for name in $names; do rm -f "$D/pids/$name.pid"; done
}

# The daemons were re-parented to init when `start` exited, and init reaps
# orphans with a delay (~1-2 s here). Wait (bounded, 10 s) until the zombies
# of everything stop_daemons stopped are gone, so `pgrep` is clean afterwards.
wait_reaped() {
    local i pid left
    for i in $(seq 1 100); do
        left=""
        for pid in ${STOPPED_PIDS:-}; do [ -e "/proc/$pid" ] && left="$left $pid"; done
        [ -z "$left" ] && return 0
        sleep 0.1
    done
    log "warning: not yet reaped by init:$left (already exited)"
}

# Tail of every log, for diagnosing a failed start.
dump_logs() {
    local f
    for f in "$D"/log/*; do
        [ -f "$f" ] || continue
        printf '\n===== %s (last 25 lines) =====\n' "$f" >&2
        tail -n 25 "$f" >&2
    done
}

# Wait until radosgw answers HTTP on $RGW_PORT (anonymous GET / returns 200
# with an empty ListAllMyBucketsResult), or the deadline passes, or the
# radosgw process dies. Returns 0 / 1 (timeout) / 2 (died).
wait_s3() {
    "$PY" - "$RGW_PORT" "$(pid_of radosgw)" "${RGW_START_TIMEOUT:-90}" <<'EOF'
import os, sys, time, urllib.request, urllib.error
port, pid, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
url = "http://127.0.0.1:%d/" % port
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200 and b"ListAllMyBucketsResult" in r.read():
                sys.exit(0)
    except urllib.error.HTTPError:
        pass            # answered, but not with 200 yet
    except OSError:
        pass            # not listening yet
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                sys.exit(2)
    except OSError:
        sys.exit(2)
    time.sleep(0.2)
sys.exit(1)
EOF
}

# Run the ceph CLI against our cluster only (explicit conf, bounded time).
cephcli() { timeout 60 ceph -c "$CONF" --connect-timeout 30 "$@"; }

# Print the KEY=VALUE lines a test harness sources.
print_env() {
    local pids="" n
    for n in ceph-mon ceph-osd radosgw; do
        is_ours "$n" && pids="$pids${pids:+ }$(pid_of "$n")"
    done
    local vars=( \
        RGW_ENDPOINT "http://127.0.0.1:$RGW_PORT" \
        RGW_PORT "$RGW_PORT" \
        AWS_ACCESS_KEY_ID "$ACCESS_KEY" \
        AWS_SECRET_ACCESS_KEY "$SECRET_KEY" \
        AWS_DEFAULT_REGION us-east-1 \
        AWS_REGION us-east-1 \
        AWS_CONFIG_FILE /dev/null \
        AWS_SHARED_CREDENTIALS_FILE /dev/null \
        AWS_EC2_METADATA_DISABLED true \
        RGW_PIDS "$pids" \
        RGW_DIR "$D" \
        RGW_CEPH_CONF "$CONF" )
    for ((n = 0; n < ${#vars[@]}; n += 2)); do
        # single-quoted for the shell that evals this
        printf "export %s='%s'\n" "${vars[n]}" "${vars[n+1]//\'/\'\\\'\'}"
    done
}

# Persisted settings of an existing DIR (written by `start`).
load_state() {
    [ -f "$D/state" ] || die "$D was not set up by rgw.sh start"
    # shellcheck disable=SC1091
    . "$D/state"
}

# Random alphanumeric string of length $1 (uppercase + digits if $2 = upper).
rand_str() {
    "$PY" - "$1" "${2:-}" <<'EOF'
import secrets, string, sys
chars = string.ascii_uppercase + string.digits
if sys.argv[2] != "upper":
    chars += string.ascii_lowercase
print("".join(secrets.choice(chars) for _ in range(int(sys.argv[1]))))
EOF
}

# -------------------------------------------------------------- bootstrap --

write_conf() {
    # Note: "$name" below is a ceph metavariable (expanded by ceph per daemon),
    # hence the escaped dollar signs.
    cat >"$CONF" <<EOF
# Generated by rgw.sh - single-node throwaway cluster, loopback only.
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
# msgr2 only, IPv4 only: one mon port, nothing bound outside 127.0.0.1.
ms bind msgr1 = false
ms bind msgr2 = true
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
# Keep every file the daemons and CLI tools write inside DIR.
run dir = $D/run
crash dir = $D/crash
log file = $D/log/\$name.log
log to stderr = false
mon cluster log file = $D/log/cluster.log
# One OSD: size-1 pools, replicas chosen across OSDs (not hosts), small PG counts.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false

[mon]
mon data = $D/data/\$name
admin socket = $D/run/\$name.asok
# Commit map changes after 50 ms instead of 1 s: every pool creation is an
# osdmap change, so this cuts ~12 s off the bootstrap.
paxos propose interval = 0.05
# Do not shut the mon down just because the host disk is fairly full.
mon data avail crit = 1
mon data avail warn = 2

[osd]
osd data = $D/data/\$name
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
keyring = $D/keys/\$name.keyring
admin socket = $D/run/\$name.asok
public addr = 127.0.0.1
cluster addr = 127.0.0.1

[client.admin]
keyring = $D/keys/client.admin.keyring

[$RGW_NAME]
keyring = $D/keys/$RGW_NAME.keyring
admin socket = $D/run/\$name.asok
rgw data = $D/data/\$name
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw thread pool size = 64
# Reclaim space of deleted/overwritten multipart tails after 60 s, not 2 h
# (memstore keeps everything in RAM).
rgw gc obj min wait = 60
rgw gc processor period = 60
# No lifecycle threads: they sleep in 5 s steps and make a TERMed radosgw
# take ~4 s to exit (no test uses bucket lifecycle rules).
rgw enable lc threads = false
EOF
    # HEALTH notes: without ceph-mgr the cluster is HEALTH_OK for the first
    # 2 minutes, then HEALTH_WARN "MGR_DOWN: no active mgr" (mon_mgr_mkfs_grace).
    # `ceph -s` / `ceph df` show 0 pools / 0 B because PG and usage stats flow
    # through the mgr; I/O, pool creation and OSD full detection work without it.
    # Memstore: the OSD keeps all data in RAM (RSS grows ~2x the bytes stored).
    # memstore_device_bytes is only what statfs reports: fullness is noticed a
    # few seconds late (it overshot 256 MiB by 2x in a burst), and then writes
    # BLOCK (client read timeouts), they do not fail. Size tests well below it.
}

# Keys: one keyring per entity under DIR/keys, all imported into the mon's
# initial keyring so the auth database exists from the first mon start.
make_keys() {
    local k="$D/keys"
    ceph-authtool --create-keyring "$k/mon.keyring" --gen-key -n mon. \
        --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$k/client.admin.keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool --create-keyring "$k/osd.$OSD_ID.keyring" --gen-key -n "osd.$OSD_ID" \
        --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
    # radosgw: mon rw (it may create pools / read maps), osd rwx (object
    # classes for bucket index), mgr rw (service map; harmless without mgr).
    ceph-authtool --create-keyring "$k/$RGW_NAME.keyring" --gen-key -n "$RGW_NAME" \
        --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
    local e
    for e in client.admin "osd.$OSD_ID" "$RGW_NAME"; do
        ceph-authtool "$k/mon.keyring" --import-keyring "$k/$e.keyring" >/dev/null
    done
    chmod 600 "$k"/*.keyring
}

# Pools radosgw uses for its default zone. Creating them here (tiny PG counts,
# application tag set) means the first CreateBucket/PutObject does not wait
# for pool creation and PG peering.
RGW_POOLS=".rgw.root default.rgw.control default.rgw.meta default.rgw.log
default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec"

create_pools() {
    local p out
    out=$(for p in $RGW_POOLS; do
              echo "osd pool create $p 8 8"
              echo "osd pool application enable $p rgw"
          done | cephcli 2>&1) || die "pool creation failed: $out"
    if grep -q '^Error' <<<"$out"; then die "pool creation failed: $out"; fi
}

start_gateway_process() {
    spawn radosgw radosgw -f -c "$CONF" -n "$RGW_NAME"
}

# radosgw keeps RADOS watches on default.rgw.control/notify.0..7 for its
# metadata cache. A gateway that died without shutting down (SIGKILL, crash)
# leaves them behind for osd_client_watch_timeout (30 s), and until they expire
# every metadata change (CreateBucket, DeleteBucket, ...) of the next gateway
# stalls 10-20 s waiting for the dead watcher to ack its cache notify. Called
# only while no radosgw of ours runs, so every watcher found is stale:
# blocklisting its address makes the OSD drop the watches at once.
evict_stale_watchers() {
    local i addrs addr
    addrs=$(for i in 0 1 2 3 4 5 6 7; do
                timeout 20 rados -c "$CONF" -p default.rgw.control \
                    listwatchers "notify.$i" 2>/dev/null || true
            done | sed -n 's/^watcher=\([^ ]*\) .*/\1/p' | sort -u)
    for addr in $addrs; do
        log "blocklisting stale watcher $addr of a dead gateway"
        cephcli osd blocklist add "$addr" 600 >/dev/null 2>&1 || true
    done
}

# On a failed start: show logs, stop what we started, leave DIR for post-mortem.
start_failed() {
    local rc=$?
    trap - EXIT
    if [ "$rc" != 0 ]; then
        log "start failed (rc=$rc); log tails follow, stopping daemons"
        dump_logs
        stop_daemons KILL radosgw ceph-osd ceph-mon || true
        wait_reaped
    fi
    exit "$rc"
}

cmd_start() {
    [ -z "$(ls -A "$D")" ] || die "$D is not empty (one cluster per fresh directory)"
    local t0=$SECONDS
    mkdir -p "$D"/{keys,data,log,run,pids,crash}
    trap start_failed EXIT

    CONF="$D/ceph.conf"
    FSID=$(uuidgen)
    MON_PORT=$(pick_port)
    RGW_PORT=$(pick_port "$MON_PORT")
    MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-1073741824}
    ACCESS_KEY=$(rand_str 20 upper)
    SECRET_KEY=$(rand_str 40)
    # Unix sockets are limited to 107 bytes; a deep DIR breaks admin sockets.
    if [ $(( ${#D} + 25 )) -gt 107 ]; then
        log "warning: DIR path is long; admin sockets may fail to bind"
    fi
    cat >"$D/state" <<EOF
CONF='$CONF'
MON_PORT=$MON_PORT
RGW_PORT=$RGW_PORT
ACCESS_KEY=$ACCESS_KEY
SECRET_KEY=$SECRET_KEY
EOF
    write_conf
    make_keys

    # Monitor: monmap with a single mon bound to 127.0.0.1:MON_PORT.
    monmaptool --create --fsid "$FSID" --addv "$MON_ID" "[v2:127.0.0.1:$MON_PORT]" \
        "$D/monmap" >/dev/null
    ceph-mon -c "$CONF" --mkfs -i "$MON_ID" --monmap "$D/monmap" \
        --keyring "$D/keys/mon.keyring" >>"$D/log/mkfs.out" 2>&1
    spawn ceph-mon ceph-mon -f -c "$CONF" -i "$MON_ID"
    log "mon started on 127.0.0.1:$MON_PORT"

    # OSD: register id + uuid with the mon, format the memstore, start it.
    # It adds itself to the CRUSH map and is marked "in" when it boots.
    local osd_uuid id
    osd_uuid=$(uuidgen)
    id=$(cephcli osd create "$osd_uuid")
    [ "$id" = "$OSD_ID" ] || die "ceph osd create returned '$id', expected $OSD_ID"
    mkdir -p "$D/data/osd.$OSD_ID"     # memstore's mkfs does not create it
    ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$osd_uuid" \
        >>"$D/log/mkfs.out" 2>&1
    spawn ceph-osd ceph-osd -f -c "$CONF" -i "$OSD_ID"

    create_pools
    log "osd started, rgw pools created after $((SECONDS - t0)) s"

    # S3 user with our own keys (blocks until the OSD serves the pools).
    timeout 60 radosgw-admin -c "$CONF" user create --uid="$S3_USER" \
        --display-name="rgw.sh test user" --access-key="$ACCESS_KEY" \
        --secret-key="$SECRET_KEY" >"$D/user.json" 2>>"$D/log/radosgw-admin.out" \
        || die "radosgw-admin user create failed"
    log "user created after $((SECONDS - t0)) s"

    start_gateway_process
    local rc=0
    wait_s3 || rc=$?
    case $rc in
        0) ;;
        1) die "radosgw did not answer within ${RGW_START_TIMEOUT:-90} s" ;;
        *) die "radosgw exited during startup" ;;
    esac
    log "S3 answering on 127.0.0.1:$RGW_PORT after $((SECONDS - t0)) s"
    trap - EXIT
    print_env | tee "$D/env"
}

# The cluster is thrown away (memstore), so nothing is gained by a graceful
# shutdown: all three daemons get SIGKILL at once.
cmd_stop() {
    stop_daemons KILL radosgw ceph-osd ceph-mon
    wait_reaped
}

# The stopped radosgw may stay a zombie for ~2 s until init reaps it; it holds
# no port or file by then, so we do not wait for that here.
cmd_stop_gateway() { stop_daemons "${RGW_STOP_SIGNAL:-TERM}" radosgw; }

cmd_start_gateway() {
    is_ours ceph-mon && is_ours ceph-osd || die "mon/osd not running in $D"
    is_ours radosgw && die "radosgw already running (pid $(pid_of radosgw))"
    evict_stale_watchers
    start_gateway_process
    local rc=0
    wait_s3 || rc=$?
    if [ "$rc" != 0 ]; then
        log "radosgw failed to come back (rc=$rc)"
        tail -n 25 "$D/log/$RGW_NAME.log" "$D/log/radosgw.out" >&2 || true
        stop_daemons KILL radosgw
        exit 1
    fi
    print_env | tee "$D/env"
}

cmd_status() {
    local n
    for n in ceph-mon ceph-osd radosgw; do
        if is_ours "$n"; then echo "$n running pid $(pid_of "$n")"; else echo "$n stopped"; fi
    done
}

# ------------------------------------------------------------------- main --

[ $# -eq 2 ] || { sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
case $1 in
    start|start-gateway) require_bins ;;
    stop|stop-gateway|env|status) ;;
    *) die "unknown command '$1' (start, stop, stop-gateway, start-gateway, env, status)" ;;
esac
D=$(resolve_dir "$2" "$1")
CONF="$D/ceph.conf"
case $1 in
    start)         cmd_start ;;
    stop)          load_state; cmd_stop ;;
    stop-gateway)  load_state; cmd_stop_gateway ;;
    start-gateway) load_state; cmd_start_gateway ;;
    env)           load_state; print_env ;;
    status)        load_state; cmd_status ;;
    *)             die "unknown command '$1'" ;;
esac
