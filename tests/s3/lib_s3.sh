# lib_s3.sh - helpers for shell test suites that need S3: one throwaway Ceph
# RADOS Gateway per suite (rgw.sh), fault-injecting proxies (fault_proxy.py)
# and the boto3 CLI (s3util.py). Source it after tests/lib.sh.
#
#   s3_start                 start a gateway (once: a no-op while one of this
#                            suite runs) in a fresh directory under
#                            ${S3_DIR:-$(mktemp -d)}; exports RGW_ENDPOINT,
#                            AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#                            AWS_DEFAULT_REGION, AWS_REGION, RGW_PIDS, RGW_DIR,
#                            RGW_PORT, ... (see rgw.sh) and S3_BASE. Chains
#                            `s3_stop` onto the EXIT trap of the calling shell
#                            (the trap already there still runs, after it).
#                            Returns 1 with the logs on stderr if it fails.
#                            (A `trap ... EXIT` set after s3_start replaces
#                            the chain: call s3_stop from it then.)
#   s3_stop                  kill every proxy of the suite, stop the cluster,
#                            remove its directory (S3_KEEP=1 keeps it)
#   s3_gateway_stop [SIG]    stop only radosgw (SIGTERM, or SIG, e.g. KILL)
#   s3_gateway_start         start it again on the same port and keys
#   proxy_start CONTROL [LOG]  start fault_proxy.py in front of the gateway
#                            (PROXY_TARGET overrides the target), wait for its
#                            port; sets and exports PROXY_PID, PROXY_ENDPOINT
#                            (http://127.0.0.1:PORT), PROXY_CONTROL, PROXY_LOG
#                            (default CONTROL.log). The proxy is killed when
#                            the shell that started it exits (EXIT trap,
#                            lib.sh's _pids, and its own parent-death signal),
#                            at the latest by s3_stop.
#   proxy_set [RULE...]      replace the rules of the last proxy started (one
#                            argument per line, none = pass everything) and
#                            re-arm their count=K (SIGHUP)
#   proxy_stop [PID]         stop a proxy (default PROXY_PID)
#   s3_py ARGS...            run s3util.py (see s3util.py --help)

S3_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
S3_RGW=$S3_HERE/rgw.sh
S3_UTIL=$S3_HERE/s3util.py
S3_PROXY=$S3_HERE/fault_proxy.py
_S3_PY=/usr/bin/python3          # Debian's python3 with python3-boto3
_s3_proxies=()                   # "SHELLPID:PROXYPID" of proxies started here

s3_py() { "$_S3_PY" "$S3_UTIL" "$@"; }

# _s3_chain_exit CMD: run CMD first on exit of the current shell, then
# whatever EXIT trap it already had. In a subshell that has not set a trap
# yet, bash's `trap -p` shows the parent's traps (which will not run here);
# calling `trap` once for an unused signal makes it show this shell's own.
_s3_chain_exit() {
  local cmd=$1 cur prev=""
  trap - SIGRTMAX
  cur=$(trap -p EXIT)
  [[ $cur == *"$cmd"* ]] && return 0
  if [[ -n $cur ]]; then
    cur=${cur#"trap -- "}
    cur=${cur%" EXIT"}
    eval "prev=$cur"
  fi
  # shellcheck disable=SC2064
  trap -- "$cmd${prev:+; $prev}" EXIT
  return 0
}

# _s3_at_exit PID: the EXIT hook; does nothing unless this shell is PID.
_s3_at_exit() {
  [[ $BASHPID == "$1" ]] || return 0
  local e
  for e in "${_s3_proxies[@]+"${_s3_proxies[@]}"}"; do
    [[ ${e%%:*} == "$1" ]] && _s3_kill_proxy "${e#*:}"
  done
  [[ ${_S3_OWNER:-} == "$1" ]] && s3_stop
  return 0
}

# _s3_kill_proxy PID: TERM (KILL after 5 s) a fault_proxy.py of ours, wait
# until it is gone (reaped by us if it is our child, else by init).
_s3_kill_proxy() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  if [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true) == Z ]]; then
    wait "$pid" 2>/dev/null || true  # exited already (ours to reap if our child)
    return 0
  fi
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "fault_proxy.py" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true) == [ZX]* || ! -e /proc/$pid ]] && break
    [[ $i == 50 ]] && { kill -KILL "$pid" 2>/dev/null || true; }
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
  for i in $(seq 50); do [[ -e /proc/$pid ]] || break; sleep 0.1; done
  return 0
}

s3_start() {
  if [[ -n ${RGW_DIR:-} && -f $RGW_DIR/state ]] && "$S3_RGW" status "$RGW_DIR" 2>/dev/null | grep -q '^ceph-mon running'; then
    return 0
  fi
  local base dir out
  if [[ -n ${S3_DIR:-} ]]; then
    mkdir -p "$S3_DIR" && base=$(mktemp -d "$S3_DIR/s3.XXXXXX") || return 1
    _S3_RMBASE=$base
  else
    base=$(mktemp -d) || return 1
    _S3_RMBASE=$base
  fi
  dir=$base/rgw
  export S3_BASE=$base
  _S3_OWNER=$BASHPID
  _s3_chain_exit "_s3_at_exit $BASHPID || true"
  if ! out=$("$S3_RGW" start "$dir" 2>"$base/rgw-start.err"); then
    cat "$base/rgw-start.err" >&2
    echo "s3_start: rgw.sh start failed (DIR $dir)" >&2
    return 1
  fi
  eval "$out"
  return 0
}

s3_stop() {
  local pid
  if [[ -n ${S3_BASE:-} && -f $S3_BASE/proxy.pids ]]; then
    while read -r pid; do _s3_kill_proxy "$pid"; done <"$S3_BASE/proxy.pids"
  fi
  if [[ -n ${RGW_DIR:-} && -f $RGW_DIR/state ]]; then
    "$S3_RGW" stop "$RGW_DIR" >/dev/null 2>"$S3_BASE/rgw-stop.err" || cat "$S3_BASE/rgw-stop.err" >&2
  fi
  if [[ -z ${S3_KEEP:-} && -n ${_S3_RMBASE:-} ]]; then
    rm -rf "$_S3_RMBASE"
  elif [[ -n ${S3_BASE:-} ]]; then
    echo "s3_stop: kept $S3_BASE" >&2
  fi
  unset RGW_ENDPOINT RGW_PORT RGW_PIDS RGW_DIR RGW_CEPH_CONF S3_BASE _S3_OWNER _S3_RMBASE
  return 0
}

s3_gateway_stop() {
  [[ -n ${RGW_DIR:-} ]] || { echo "s3_gateway_stop: no gateway (s3_start first)" >&2; return 1; }
  RGW_STOP_SIGNAL=${1:-TERM} "$S3_RGW" stop-gateway "$RGW_DIR" >/dev/null 2>"$S3_BASE/rgw-gw.err" ||
    { cat "$S3_BASE/rgw-gw.err" >&2; return 1; }
  return 0
}

s3_gateway_start() {
  [[ -n ${RGW_DIR:-} ]] || { echo "s3_gateway_start: no gateway (s3_start first)" >&2; return 1; }
  local out
  out=$("$S3_RGW" start-gateway "$RGW_DIR" 2>"$S3_BASE/rgw-gw.err") ||
    { cat "$S3_BASE/rgw-gw.err" >&2; return 1; }
  eval "$out"
  return 0
}

proxy_start() {
  local ctl=${1:?proxy_start CONTROLFILE [LOGFILE]} log=${2:-$1.log} port="" i
  local target=${PROXY_TARGET:-${RGW_ENDPOINT:-}} me=$BASHPID  # (expanded after the fork below)
  [[ -n $target ]] || { echo "proxy_start: no RGW_ENDPOINT (s3_start first)" >&2; return 1; }
  "$_S3_PY" "$S3_PROXY" --target "$target" --control "$ctl" --log "$log" \
    --parent "$me" </dev/null >"$ctl.port" 2>>"$log.err" &
  PROXY_PID=$!
  _s3_proxies+=("$BASHPID:$PROXY_PID")
  [[ -n ${S3_BASE:-} && -d $S3_BASE ]] && echo "$PROXY_PID" >>"$S3_BASE/proxy.pids"
  declare -p _pids >/dev/null 2>&1 && _pids+=("$PROXY_PID")
  _s3_chain_exit "_s3_at_exit $BASHPID || true"
  for i in $(seq 100); do
    port=$(sed -n 's/^PORT=\([0-9]*\)$/\1/p' "$ctl.port" 2>/dev/null || true)
    [[ -n $port ]] && break
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $port ]]; then
    cat "$log.err" >&2
    echo "proxy_start: fault_proxy.py did not start" >&2
    return 1
  fi
  export PROXY_PID PROXY_ENDPOINT=http://127.0.0.1:$port PROXY_CONTROL=$ctl PROXY_LOG=$log
  return 0
}

proxy_set() {
  [[ -n ${PROXY_CONTROL:-} && -n ${PROXY_PID:-} ]] || { echo "proxy_set: no proxy (proxy_start first)" >&2; return 1; }
  local r
  for r in "$@"; do printf '%s\n' "$r"; done >"$PROXY_CONTROL.new" && mv -f "$PROXY_CONTROL.new" "$PROXY_CONTROL"
  kill -HUP "$PROXY_PID" 2>/dev/null || true
  return 0
}

proxy_stop() {
  _s3_kill_proxy "${1:-${PROXY_PID:-}}"
  return 0
}
