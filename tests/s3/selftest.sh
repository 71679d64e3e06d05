#!/usr/bin/env bash
# selftest.sh - end-to-end check of the S3 test kit (rgw.sh, s3util.py,
# fault_proxy.py, lib_s3.sh) against a real gateway; also pins down the RGW
# behaviours our S3 client relies on. Last line: "N passed, M failed".
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
# shellcheck source=lib_s3.sh
. "$HERE/lib_s3.sh"

# Everything this run creates (clusters, proxies' files, test dirs) lives
# under SELF, so every process it starts has SELF in its command line.
SELF=$(mktemp -d /tmp/s3self.XXXXXX)
export S3_DIR=$SELF
unset RGW_DIR RGW_ENDPOINT
passed=0
failed=0
KIT_PROCS='^(radosgw|ceph-mon|ceph-osd)$'
before_pids=$( (pgrep -x radosgw; pgrep -x ceph-mon; pgrep -x ceph-osd; pgrep -f fault_proxy.py) | sort)

# A boto3 prelude for the python checks: client(endpoint, attempts), check(),
# error_of(), and, when a proxy runs, rules() and logged().
read -r -d '' PRELUDE <<'PY'
import hashlib, http.client, os, signal, socket, sys, time
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

def client(endpoint=None, attempts=1, timeout=10):
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint or os.environ["RGW_ENDPOINT"], region_name="us-east-1",
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                      retries={"mode": "standard", "total_max_attempts": attempts},
                      connect_timeout=timeout, read_timeout=timeout))

def check(cond, what):
    if not cond:
        print("    check failed: %s" % what, file=sys.stderr)
        sys.exit(1)

def error_of(fn, *a, **kw):
    """(HTTP status, S3 code) of the ClientError fn raises, or the type
    name of another exception, or None if it succeeded."""
    try:
        r = fn(*a, **kw)
        if isinstance(r, dict) and "Body" in r:
            r["Body"].read()
    except ClientError as e:
        return (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"].get("Code"))
    except Exception as e:
        return type(e).__name__
    return None

PROXY = os.environ.get("PROXY_ENDPOINT")

def rules(*lines):
    with open(os.environ["PROXY_CONTROL"] + ".new", "w") as f:
        f.write("".join(l + "\n" for l in lines))
    os.replace(os.environ["PROXY_CONTROL"] + ".new", os.environ["PROXY_CONTROL"])
    os.kill(int(os.environ["PROXY_PID"]), signal.SIGHUP)
    time.sleep(0.05)

def logged():
    with open(os.environ["PROXY_LOG"]) as f:
        return f.read().splitlines()

def new_log():
    """Log lines written after this call: call the result."""
    n = len(logged())
    return lambda: logged()[n:]
PY

pycheck() { "$PY" -c "$PRELUDE"$'\n'"$(cat)" "$@"; }

# run NAME: runs test_NAME in a subshell with its own $T (like lib.sh's run_tests).
# SELFTEST_TIMES=1 adds each test's seconds.
run() {
  local t0=$SECONDS ok=ok
  if ( T=$(mktemp -d "$SELF/t.XXXXXX"); trap _cleanup EXIT; "test_$1" ); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); ok=FAIL
  fi
  printf '%-4s %s%s\n' "$ok" "$1" "${SELFTEST_TIMES:+ ($((SECONDS - t0)) s)}"
}

# ------------------------------------------------------------------ rgw.sh --

test_missing_binaries() {
  mkdir -p "$T/bin"
  ln -s /usr/bin/* "$T/bin/" && rm "$T/bin/ceph-mon" "$T/bin/radosgw" || fail "cannot make $T/bin"
  local out rc=0
  out=$(PATH=$T/bin "$S3_RGW" start "$T/c" 2>&1) || rc=$?
  [[ $rc != 0 ]] || fail "start succeeded without ceph-mon and radosgw"
  [[ $out == "rgw.sh: error: missing programs: ceph-mon radosgw ("*")" && $out != *$'\n'* ]] || fail "unclear message: $out"
  [[ ! -e $T/c ]] || fail "start created $T/c"
  ! pgrep -f "$T/c" >/dev/null || fail "a process of $T/c runs"
}

test_failed_start_cleans_up() {
  local out rc=0
  out=$(RGW_START_TIMEOUT=0 "$S3_RGW" start "$T/c" 2>&1) || rc=$?
  [[ $rc != 0 ]] || fail "start succeeded with a 0 s timeout"
  grep -q 'rgw.sh: error: radosgw did not answer within 0 s' <<<"$out" || fail "unclear message: $(head -3 <<<"$out")"
  [[ -z $(ls "$T/c/pids") ]] || fail "pid files left: $(ls "$T/c/pids")"
  for _ in $(seq 30); do pgrep -f "$T/c/" >/dev/null || break; sleep 0.1; done
  ! pgrep -af "$T/c/" >&2 || fail "daemons of the failed start still run"
}

test_env_lines() {
  local out
  out=$("$S3_RGW" env "$RGW_DIR") || fail "rgw.sh env failed"
  for v in RGW_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION AWS_REGION RGW_PIDS RGW_DIR; do
    grep -q "^export $v='" <<<"$out" || fail "no export line for $v"
  done
  [[ $RGW_ENDPOINT == http://127.0.0.1:* && $AWS_REGION == us-east-1 ]] || fail "bad env: $RGW_ENDPOINT $AWS_REGION"
  local p
  for p in $RGW_PIDS; do
    [[ $(cat "/proc/$p/comm") =~ $KIT_PROCS ]] || fail "RGW_PIDS has $p ($(cat "/proc/$p/comm"))"
  done
  [[ $(wc -w <<<"$RGW_PIDS") == 3 ]] || fail "RGW_PIDS=$RGW_PIDS"
  "$S3_RGW" status "$RGW_DIR" | grep -q '^radosgw running' || fail "status"
  # every socket of the daemons is on the loopback
  ! ss -Htanp 2>/dev/null | grep -E "pid=(${RGW_PIDS// /|})," | awk '{print $4, $5}' |
    grep -vE '^127\.0\.0\.1:[0-9]+ (127\.0\.0\.1:[0-9]+|0\.0\.0\.0:\*|\*:\*)$' || fail "a daemon socket is not on 127.0.0.1"
}

# --------------------------------------------------------------- s3util.py --

test_buckets() {
  s3_py mb tb-one || fail "mb"
  s3_py mb tb-one || fail "mb of an existing bucket"
  [[ -z $(s3_py ls s3://tb-one/) ]] || fail "new bucket not empty"
  echo x | s3_py put-bytes s3://tb-one/k || fail "put-bytes"
  s3_py rb tb-one || fail "rb of a bucket with an object"
  local err rc=0
  err=$(s3_py ls s3://tb-one/ 2>&1 >/dev/null) || rc=$?
  [[ $rc == 1 && $err == *"NoSuchBucket"* && $err != *$'\n'* ]] || fail "ls of a removed bucket: rc=$rc '$err'"
}

test_upload_dir() {
  local d=$T/blob f
  mkdir -p "$d/sub"
  echo '{"dtype":"float32"}' >"$d/.conf"
  echo '{"len":3,"bds":[]}' >"$d/.stat"
  for f in a b c; do head -c $((RANDOM * 7 + 1)) /dev/urandom >"$d/$f"; done
  head -c $((12 << 20)) /dev/urandom >"$d/big"       # multipart (threshold 8 MiB)
  : >"$d/empty"
  ln -s a "$d/link"
  mkfifo "$d/fifo"
  echo inner >"$d/sub/inner"
  s3_py mb tb-up || fail "mb"
  s3_py upload "$d" s3://tb-up/blob --threads 4 || fail "upload"
  s3_py ls s3://tb-up/ >"$T/ls" || fail "ls"
  [[ $(awk '{print $1}' "$T/ls" | tr '\n' ' ') == "blob/.conf blob/.stat blob/a blob/b blob/big blob/c blob/empty blob/link " ]] ||
    fail "keys: $(awk '{print $1}' "$T/ls" | tr '\n' ' ')"
  local key size etag
  while read -r key size etag; do
    f=$d/${key#blob/}
    [[ $size == "$(stat -Lc %s "$f")" ]] || fail "$key: size $size"
    if [[ $key == blob/big ]]; then
      [[ $etag =~ ^[0-9a-f]{32}-2$ ]] || fail "multipart ETag of $key: $etag"
    else
      [[ $etag == "$(md5sum <"$f" | cut -d' ' -f1)" ]] || fail "ETag of $key: $etag"
    fi
  done <"$T/ls"
  local out
  out=$(s3_py download-all s3://tb-up/blob "$T/out" --threads 4) || fail "download-all"
  [[ $out =~ ^bytes=([0-9]+)\ seconds=[0-9.]+\ objects=8$ ]] || fail "download-all said: $out"
  [[ ${BASH_REMATCH[1]} == "$(awk '{s += $2} END {print s}' "$T/ls")" ]] || fail "bytes= $out"
  for f in .conf .stat a b c big empty link; do cmp -s "$d/$f" "$T/out/$f" || fail "$f differs after download-all"; done
  [[ ! -e $T/out/sub && ! -e $T/out/fifo ]] || fail "download-all made sub or fifo"
  s3_py upload --recursive "$d" s3://tb-up/r/ || fail "upload --recursive"
  s3_py ls s3://tb-up/r/sub/ | grep -q '^r/sub/inner 6 ' || fail "recursive upload missed sub/inner"
  out=$(s3_py download-all s3://tb-up/ "$T/out2" --discard --threads 2) || fail "download-all --discard"
  [[ $out == *" objects=17" && ! -e $T/out2 ]] || fail "download-all --discard: $out"
  s3_py rb tb-up || fail "rb"
}

test_single_objects() {
  s3_py mb tb-one2 || fail "mb"
  head -c 100000 /dev/urandom >"$T/f"
  s3_py upload-file "$T/f" s3://tb-one2/dir/f || fail "upload-file"
  s3_py download s3://tb-one2/dir/f "$T/g" || fail "download"
  cmp -s "$T/f" "$T/g" || fail "download differs"
  printf 'hello\0world' | s3_py put-bytes s3://tb-one2/h || fail "put-bytes"
  [[ $(s3_py download s3://tb-one2/h - | od -An -c | tr -s ' ') == " h e l l o \0 w o r l d" ]] || fail "download -"
  s3_py rm s3://tb-one2/h || fail "rm"
  local err rc=0
  err=$(s3_py download s3://tb-one2/h "$T/h" 2>&1) || rc=$?
  [[ $rc == 1 && $err == "s3util: download s3://tb-one2/h: GetObject: HTTP 404 NoSuchKey" && ! -e $T/h && ! -e $T/h.part ]] ||
    fail "download of a removed key: rc=$rc '$err'"
  rc=0; err=$(s3_py ls tb-one2 2>&1) || rc=$?
  [[ $rc == 1 && $err == "s3util: not an s3:// URL: 'tb-one2'" ]] || fail "bad URL: rc=$rc '$err'"
  rc=0; err=$(s3_py frobnicate 2>&1) || rc=$?
  [[ $rc == 1 && $err == "s3util: usage: "* && $err != *$'\n'* ]] || fail "bad command: rc=$rc '$err'"
  rc=0; err=$(RGW_ENDPOINT=http://127.0.0.1:9 s3_py --retries 1 ls s3://tb-one2/ 2>&1) || rc=$?
  [[ $rc == 1 && $err == *"EndpointConnectionError"* && $err != *$'\n'* ]] || fail "no server: rc=$rc '$err'"
  s3_py rb tb-one2 || fail "rb"
}

test_upload_tensors() {
  "$PY" -c 'import numpy as np, sys; np.save(sys.argv[1], np.arange(5 * 3 * 4, dtype="<f4").reshape(5, 3, 4))' "$T/x.npy"
  s3_py mb tb-tens || fail "mb"
  s3_py upload-tensors "$T/x.npy" s3://tb-tens/t --threads 3 || fail "upload-tensors"
  [[ $(s3_py ls s3://tb-tens/ | awk '{print $1, $2}' | tr '\n' ' ') == "t/000000.bin 48 t/000001.bin 48 t/000002.bin 48 t/000003.bin 48 t/000004.bin 48 " ]] ||
    fail "keys: $(s3_py ls s3://tb-tens/)"
  s3_py download s3://tb-tens/t/000003.bin "$T/3.bin" || fail "download"
  "$PY" -c 'import numpy as np, sys; a = np.load(sys.argv[1]); sys.exit(open(sys.argv[2], "rb").read() != a[3].tobytes())' \
    "$T/x.npy" "$T/3.bin" || fail "tensor 3 differs"
  s3_py rb tb-tens || fail "rb"
}

# ---------------------------------------------------------- fault_proxy.py --

test_proxy_pass_keepalive() {
  proxy_start "$T/ctl" || fail "proxy_start"
  [[ $PROXY_ENDPOINT =~ ^http://127\.0\.0\.1:[0-9]+$ && -n $PROXY_PID ]] || fail "PROXY_ENDPOINT=$PROXY_ENDPOINT"
  pycheck <<'PY'
s3 = client(PROXY)
s3.create_bucket(Bucket="tb-pass")
blob = os.urandom(3 << 20)
s3.put_object(Bucket="tb-pass", Key="k?x=1&y", Body=blob)      # SigV4 through the proxy
check(s3.get_object(Bucket="tb-pass", Key="k?x=1&y")["Body"].read() == blob, "GET through the proxy")
check(s3.get_object(Bucket="tb-pass", Key="k?x=1&y", Range="bytes=5-9")["Body"].read() == blob[5:10], "ranged GET")
check(s3.head_object(Bucket="tb-pass", Key="k?x=1&y")["ContentLength"] == len(blob), "HEAD")
check(error_of(s3.get_object, Bucket="tb-pass", Key="nope") == (404, "NoSuchKey"), "404 passed through")
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="tb-pass")["Contents"]]   # chunked response
check(keys == ["k?x=1&y"], "list (chunked response) %r" % keys)
# keep-alive: two requests, one connection; HTTP/1.0 client gets its answer too
port = int(PROXY.rsplit(":", 1)[1])
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("GET", "/"); r = c.getresponse(); r.read(); s1 = c.sock
c.request("GET", "/"); r2 = c.getresponse(); r2.read()
check(r.status == 200 and r2.status == 200 and c.sock is s1, "keep-alive")
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET / HTTP/1.0\r\n\r\n"); data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
check(data.startswith(b"HTTP/1.1 200") and b"ListAllMyBucketsResult" in data, "HTTP/1.0 client")
for k in [o["Key"] for o in s3.list_objects_v2(Bucket="tb-pass")["Contents"]]:
    s3.delete_object(Bucket="tb-pass", Key=k)
s3.delete_bucket(Bucket="tb-pass")
log = logged()
check("PUT /tb-pass/k%3Fx%3D1%26y 200 pass" in log and "GET / 200 pass" in log, "log: %r" % log[:4])
check(all(len(l.split()) == 4 for l in log), "4 fields per log line")
PY
}

test_proxy_delay() {
  proxy_start "$T/ctl" || fail "proxy_start"
  pycheck <<'PY'
s3 = client(PROXY)
s3.create_bucket(Bucket="tb-delay")
s3.put_object(Bucket="tb-delay", Key="k", Body=b"v")
s3.get_object(Bucket="tb-delay", Key="k")["Body"].read()    # warm connection
rules("delay 800 count=1 match=^GET /tb-delay/k$")
t = time.monotonic(); s3.head_object(Bucket="tb-delay", Key="k"); t_head = time.monotonic() - t
t = time.monotonic(); s3.get_object(Bucket="tb-delay", Key="k")["Body"].read(); t1 = time.monotonic() - t
t = time.monotonic(); s3.get_object(Bucket="tb-delay", Key="k")["Body"].read(); t2 = time.monotonic() - t
check(t_head < 0.5 and t1 >= 0.8 and t2 < 0.5, "delays %.2f %.2f %.2f" % (t_head, t1, t2))
s3.delete_object(Bucket="tb-delay", Key="k"); s3.delete_bucket(Bucket="tb-delay")
check([l for l in logged() if l.endswith(" delay")] == ["GET /tb-delay/k 200 delay"], "log")
PY
}

test_proxy_status() {
  proxy_start "$T/ctl" || fail "proxy_start"
  pycheck <<'PY'
s3, s3r = client(PROXY), client(PROXY, attempts=3)
s3.create_bucket(Bucket="tb-status")
s3.put_object(Bucket="tb-status", Key="k", Body=b"v")
rules("status 503 count=1")
check(error_of(s3.get_object, Bucket="tb-status", Key="k") == (503, "SlowDown"), "503 SlowDown")
check(error_of(s3.get_object, Bucket="tb-status", Key="k") is None, "count=1 used up")
rules("status 500 count=2")
since = new_log()
check(error_of(s3r.get_object, Bucket="tb-status", Key="k") is None, "boto3 retried twice")
check(since() == ["GET /tb-status/k 500 status"] * 2 + ["GET /tb-status/k 200 pass"], "log %r" % since())
rules("status 404:NoSuchBucket match=^HEAD ", "status 412 match=^GET /tb-status/k$")
check(error_of(s3.head_object, Bucket="tb-status", Key="k") == (404, "404"), "HEAD 404")
check(error_of(s3.get_object, Bucket="tb-status", Key="k") == (412, "PreconditionFailed"), "GET 412")
check(error_of(s3.list_objects_v2, Bucket="tb-status") is None, "rule without match")
# a PUT refused before its body (Expect: 100-continue), then the same
# connection pool goes on working
rules("status 503 count=1 match=^PUT")
check(error_of(s3.put_object, Bucket="tb-status", Key="big", Body=os.urandom(2 << 20)) == (503, "SlowDown"), "PUT 503")
check(error_of(s3.put_object, Bucket="tb-status", Key="big", Body=b"x" * 1000) is None, "PUT after 503")
# a body is drained when no 100-continue was asked: keep-alive survives
port = int(PROXY.rsplit(":", 1)[1])
c = http.client.HTTPConnection("127.0.0.1", port)
rules("status 500 count=1")
c.request("PUT", "/tb-status/raw", body=b"z" * 100000); r = c.getresponse(); body = r.read()
check(r.status == 500 and b"<Code>InternalError</Code>" in body and b"<Resource>/tb-status/raw</Resource>" in body, "raw 500 %r" % body)
c.request("GET", "/"); r = c.getresponse(); r.read()
check(r.status == 200, "keep-alive after a drained body")
rules()
for k in ("k", "big"):
    s3.delete_object(Bucket="tb-status", Key=k)
s3.delete_bucket(Bucket="tb-status")
PY
}

test_proxy_reset() {
  proxy_start "$T/ctl" || fail "proxy_start"
  pycheck <<'PY'
s3 = client(PROXY)
s3.create_bucket(Bucket="tb-reset")
rules("reset count=2 match=^GET")
check(error_of(s3.list_objects_v2, Bucket="tb-reset") in ("ConnectionClosedError", "EndpointConnectionError"), "boto3 sees a closed connection")
s = socket.create_connection(("127.0.0.1", int(PROXY.rsplit(":", 1)[1])))
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    got = s.recv(100); err = None
except ConnectionResetError as e:
    got, err = None, e
check(err is not None, "raw socket: RST expected, got %r" % got)
check(error_of(s3.list_objects_v2, Bucket="tb-reset") is None, "count=2 used up")
# reset after: the PUT takes effect, its answer is lost
rules("reset after count=1 match=^PUT /tb-reset/k")
check(error_of(s3.put_object, Bucket="tb-reset", Key="k", Body=b"v") is not None, "PUT answer lost")
check(s3.get_object(Bucket="tb-reset", Key="k")["Body"].read() == b"v", "PUT took effect")
check([l for l in logged() if l.endswith(" reset")] == ["GET /tb-reset?list-type=2&encoding-type=url - reset", "GET / - reset", "PUT /tb-reset/k - reset"], "log %r" % logged())
s3.delete_object(Bucket="tb-reset", Key="k"); s3.delete_bucket(Bucket="tb-reset")
PY
}

test_proxy_truncate_corrupt() {
  proxy_start "$T/ctl" || fail "proxy_start"
  pycheck <<'PY'
from botocore.exceptions import IncompleteReadError
s3 = client(PROXY)
s3.create_bucket(Bucket="tb-trunc")
blob = os.urandom((3 << 20) + 5)
s3.put_object(Bucket="tb-trunc", Key="k", Body=blob)
rules("truncate 1000 count=1 match=^GET /tb-trunc/k")
r = s3.get_object(Bucket="tb-trunc", Key="k")
check(r["ContentLength"] == len(blob), "truncated response keeps Content-Length")
got, err = 0, None
try:
    while True:                     # read in pieces: botocore checks the length at EOF
        b = r["Body"].read(1 << 20)
        if not b:
            break
        got += len(b)
except IncompleteReadError as e:
    err = e
check(err is not None and err.kwargs["actual_bytes"] == 1000 and got == 1000, "IncompleteReadError after 1000 bytes (%r)" % err)
rules("truncate 1000 count=1 match=^GET /tb-trunc/k")
# read() in one go: urllib3 sees the short body first -> ResponseStreamingError
check(error_of(s3.get_object, Bucket="tb-trunc", Key="k") in ("ResponseStreamingError", "IncompleteReadError"), "read() of a truncated body")
check(s3.get_object(Bucket="tb-trunc", Key="k")["Body"].read() == blob, "next GET whole")
rules("truncate 0 count=1")
check(error_of(s3.get_object, Bucket="tb-trunc", Key="k") in ("ResponseStreamingError", "IncompleteReadError"), "truncate 0")
rules("corrupt count=1 match=^GET")
got = s3.get_object(Bucket="tb-trunc", Key="k")["Body"].read()
diff = [i for i in range(len(blob)) if got[i] != blob[i]] if len(got) == len(blob) else None
check(diff == [len(blob) // 2] and got[len(blob) // 2] == blob[len(blob) // 2] ^ 0xFF, "one byte flipped in the middle: %r" % diff)
check(s3.get_object(Bucket="tb-trunc", Key="k")["Body"].read() == blob, "count=1 used up")
rules("corrupt count=1")          # a chunked body (ListObjectsV2) gets its byte flipped too
port = int(PROXY.rsplit(":", 1)[1])
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("GET", "/"); r = c.getresponse(); body = r.read()
c.request("GET", "/"); r2 = c.getresponse(); body2 = r2.read()
check(r.getheader("Transfer-Encoding") == "chunked" and len(body) == len(body2) and
      sum(a != b for a, b in zip(body, body2)) == 1, "chunked body corrupted once: %r %r" % (body, body2))
check(logged()[-2:] == ["GET / 200 corrupt", "GET / 200 pass"], "log %r" % logged()[-2:])
s3.delete_object(Bucket="tb-trunc", Key="k"); s3.delete_bucket(Bucket="tb-trunc")
PY
}

test_proxy_rules() {
  proxy_start "$T/ctl" || fail "proxy_start"
  pycheck <<'PY'
s3 = client(PROXY)
s3.create_bucket(Bucket="tb-rules")
s3.put_object(Bucket="tb-rules", Key="a", Body=b"1")
# first matching active rule wins; count=K per line; match= takes the rest
rules("# a comment", "", "pass match=^GET /tb-rules/a$", "status 500 count=1 match=GET /tb-rules/",
      "status 503 match=^(PUT|DELETE) ")
check(error_of(s3.get_object, Bucket="tb-rules", Key="a") is None, "pass rule first")
check(error_of(s3.get_object, Bucket="tb-rules", Key="b") == (500, "InternalError"), "second rule")
check(error_of(s3.get_object, Bucket="tb-rules", Key="b") == (404, "NoSuchKey"), "second rule used up")
check(error_of(s3.put_object, Bucket="tb-rules", Key="c", Body=b"") == (503, "SlowDown"), "regex with a group and a space")
# the same text, re-read: still used up; SIGHUP (rules()) re-arms it
with open(os.environ["PROXY_CONTROL"], "w") as f:
    f.write("status 500 count=1 match=GET /tb-rules/\n")
check(error_of(s3.get_object, Bucket="tb-rules", Key="b") == (404, "NoSuchKey"), "still used up")
rules("status 500 count=1 match=GET /tb-rules/")
check(error_of(s3.get_object, Bucket="tb-rules", Key="b") == (500, "InternalError"), "re-armed by SIGHUP")
# a line that left the file and comes back starts afresh
with open(os.environ["PROXY_CONTROL"], "w") as f:
    f.write("")
s3.head_bucket(Bucket="tb-rules")
with open(os.environ["PROXY_CONTROL"], "w") as f:
    f.write("status 500 count=1 match=GET /tb-rules/\n")
check(error_of(s3.get_object, Bucket="tb-rules", Key="b") == (500, "InternalError"), "re-armed by leaving the file")
# a missing control file passes everything; bad lines are ignored (and said so)
os.unlink(os.environ["PROXY_CONTROL"])
check(error_of(s3.get_object, Bucket="tb-rules", Key="a") is None, "no control file")
with open(os.environ["PROXY_CONTROL"], "w") as f:
    f.write("explode 3\ndelay\nstatus 999\nstatus 503 count=1 match=^GET /tb-rules/a\n")
check(error_of(s3.get_object, Bucket="tb-rules", Key="a") == (503, "SlowDown"), "good rule after bad ones")
check(sum(l.startswith("BADRULE") for l in logged()) == 3, "bad rules logged")
rules()
s3.delete_object(Bucket="tb-rules", Key="a"); s3.delete_bucket(Bucket="tb-rules")
PY
}

test_proxy_large_concurrent() {
  proxy_start "$T/ctl" || fail "proxy_start"
  head -c $((100 << 20)) /dev/urandom >"$T/big"
  s3_py mb tb-large || fail "mb"
  # one 100 MiB PUT and GET through the proxy, then 32 objects fetched 8 at a time
  s3_py --endpoint "$PROXY_ENDPOINT" upload-file "$T/big" s3://tb-large/big --multipart-threshold 1G || fail "100 MiB PUT via proxy"
  s3_py --endpoint "$PROXY_ENDPOINT" download s3://tb-large/big "$T/big2" || fail "100 MiB GET via proxy"
  cmp -s "$T/big" "$T/big2" || fail "100 MiB object differs"
  rm -f "$T/big2"
  # a client that hangs up in the middle of a body still gets its log line
  pycheck <<'PY' || fail "client gone mid-body"
from urllib.parse import urlsplit
u = urlsplit(client(PROXY).generate_presigned_url("get_object", Params={"Bucket": "tb-large", "Key": "big"}))
s = socket.create_connection(("127.0.0.1", u.port))
s.sendall(("GET %s?%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (u.path, u.query, u.netloc)).encode())
got = 0
while got < (1 << 20):
    got += len(s.recv(65536))
s.close()
for _ in range(100):
    if "GET /tb-large/big?" in "".join(logged()).replace(" 200 pass", "|"):
        break
    time.sleep(0.05)
check(any(l.startswith("GET /tb-large/big?") and l.endswith(" 200 pass") for l in logged()), "log: %r" % logged()[-3:])
PY
  local hwm
  hwm=$(awk '/^VmHWM/{print $2}' "/proc/$PROXY_PID/status")
  [[ $hwm -lt 49152 ]] || fail "proxy peak RSS $hwm KiB after 100 MiB bodies"
  mkdir "$T/many"
  for i in $(seq -w 1 32); do head -c $((RANDOM * 16)) /dev/urandom >"$T/many/o$i"; done
  s3_py upload "$T/many" s3://tb-large/many --threads 8 || fail "upload"
  local out
  out=$(s3_py --endpoint "$PROXY_ENDPOINT" download-all s3://tb-large/many "$T/m2" --threads 8) || fail "download-all via proxy"
  [[ $out == "bytes=$(cat "$T"/many/* | wc -c) "*" objects=32" ]] || fail "download-all: $out"
  diff -r "$T/many" "$T/m2" >/dev/null || fail "objects differ"
  [[ $(grep -c '^GET /tb-large/many/o[0-9]* 200 pass$' "$PROXY_LOG") == 32 ]] || fail "log has not 32 GETs"
  s3_py rb tb-large || fail "rb"
}

test_gateway_restart() {
  proxy_start "$T/ctl" || fail "proxy_start"
  s3_py mb tb-restart && echo kept | s3_py put-bytes s3://tb-restart/k || fail "put"
  s3_py --endpoint "$PROXY_ENDPOINT" ls s3://tb-restart/ >/dev/null || fail "ls via proxy"   # idle upstream connection
  local old_pids=$RGW_PIDS sig err rc
  for sig in TERM KILL; do
    s3_gateway_stop "$sig" || fail "s3_gateway_stop $sig"
    rc=0; err=$(s3_py --retries 1 --timeout 3 ls s3://tb-restart/ 2>&1) || rc=$?
    [[ $rc == 1 && $err == *EndpointConnectionError* ]] || fail "gateway still answers after SIG$sig: $err"
    rc=0; err=$(s3_py --endpoint "$PROXY_ENDPOINT" --retries 1 ls s3://tb-restart/ 2>&1) || rc=$?
    [[ $rc == 1 && $err == *"HTTP 502 BadGateway"* ]] || fail "proxy without gateway: $err"
    s3_gateway_start || fail "s3_gateway_start after SIG$sig"
    [[ $(s3_py download s3://tb-restart/k -) == kept ]] || fail "object lost after SIG$sig"
    [[ $(s3_py --endpoint "$PROXY_ENDPOINT" download s3://tb-restart/k -) == kept ]] || fail "proxy after restart"
    local t0=$SECONDS
    s3_py mb tb-restart2 && s3_py rb tb-restart2 || fail "metadata ops after SIG$sig"
    [[ $((SECONDS - t0)) -lt 5 ]] || fail "bucket create+delete took $((SECONDS - t0)) s after SIG$sig"
  done
  [[ $RGW_PIDS != "$old_pids" && $(wc -w <<<"$RGW_PIDS") == 3 ]] || fail "RGW_PIDS not updated: $RGW_PIDS"
  grep -q '^GET /tb-restart?list-type=2&prefix=&encoding-type=url 502 upstream-error$' "$PROXY_LOG" || fail "502 not logged"
  # a client keeps its connection to the proxy across a gateway restart
  pycheck "$S3_RGW" "$RGW_DIR" <<'PY' || fail "persistent client across a restart"
import subprocess
s3 = client(PROXY)
check(s3.get_object(Bucket="tb-restart", Key="k")["Body"].read() == b"kept\n", "GET via proxy")
for cmd in ("stop-gateway", "start-gateway"):
    subprocess.run([sys.argv[1], cmd, sys.argv[2]], check=True, stdout=subprocess.DEVNULL)
check(s3.get_object(Bucket="tb-restart", Key="k")["Body"].read() == b"kept\n", "same client after the restart")
# the gateway dies in the middle of a body: the client gets a short body
blob = os.urandom(64 << 20)
s3.put_object(Bucket="tb-restart", Key="big", Body=blob)
body = s3.get_object(Bucket="tb-restart", Key="big")["Body"]
got = body.read(4 << 20)
subprocess.run([sys.argv[1], "stop-gateway", sys.argv[2]], check=True, stdout=subprocess.DEVNULL,
               env=dict(os.environ, RGW_STOP_SIGNAL="KILL"))
try:
    while True:
        b = body.read(1 << 20)
        if not b:
            break
        got += b
except Exception as e:
    pass
check(len(got) < len(blob) and got == blob[:len(got)], "short body, a prefix (%d of %d)" % (len(got), len(blob)))
subprocess.run([sys.argv[1], "start-gateway", sys.argv[2]], check=True, stdout=subprocess.DEVNULL)
check(logged()[-1] == "GET /tb-restart/big 200 upstream-error", "log %r" % logged()[-1:])
s3.delete_object(Bucket="tb-restart", Key="big")
PY
  s3_py rb tb-restart || fail "rb"
}

# ------------------------------------------------- gateway behaviour probes --

# What RGW (Ceph 16.2 pacific) does where S3 servers differ; our client is
# written against these answers.
test_rgw_behaviour() {
  pycheck <<'PY'
import concurrent.futures
from botocore.handlers import set_list_objects_encoding_type_url
s3 = client()
B = "tb-behave"
s3.create_bucket(Bucket=B)
blob = os.urandom(3 << 20)
et = s3.put_object(Bucket=B, Key="o", Body=blob)["ETag"]
check(et == '"%s"' % hashlib.md5(blob).hexdigest(), "single PUT ETag is the quoted MD5")
def get(**kw):
    try:
        r = s3.get_object(Bucket=B, Key=kw.pop("Key", "o"), **kw)
        return r["ResponseMetadata"]["HTTPStatusCode"], r.get("ContentRange"), r["Body"].read()
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"].get("Code"), None
# ranged GET + If-Match
check(get(Range="bytes=10-19", IfMatch=et) == (206, "bytes 10-19/%d" % len(blob), blob[10:20]), "ranged GET, If-Match equal -> 206")
check(get(Range="bytes=10-19", IfMatch=et.strip('"'))[0] == 206, "If-Match without quotes also matches")
check(get(Range="bytes=10-19", IfMatch='"0123"')[:2] == (412, "PreconditionFailed"), "If-Match other -> 412")
check(get(Range="bytes=10-19", IfMatch="*")[:2] == (412, "PreconditionFailed"), "If-Match * -> 412 (!)")
# If-None-Match
check(get(IfNoneMatch=et)[:2] == (304, "304"), "If-None-Match equal -> 304")
check(get(IfNoneMatch=et, Range="bytes=0-9")[:2] == (304, "304"), "If-None-Match equal + Range -> 304")
check(get(IfNoneMatch='"0123"', Range="bytes=0-9")[0] == 206, "If-None-Match other -> 206")
check(error_of(s3.head_object, Bucket=B, Key="o", IfMatch='"0123"') == (412, "412"), "HEAD If-Match other -> 412, no body")
# ranges
n = len(blob)
check(get(Range="bytes=%d-%d" % (n - 5, n + 5))[:2] == (206, "bytes %d-%d/%d" % (n - 5, n - 1, n)), "range past the end is clamped")
check(get(Range="bytes=%d-" % n)[:2] == (416, "InvalidRange"), "range from the end -> 416")
check(get(Range="bytes=abc")[:2] == (416, "InvalidRange"), "bad range syntax -> 416 (AWS ignores it)")
check(get(Range="bytes=0-1,5-6")[:2] == (206, "bytes 0-1/%d" % n), "multi-range: first range only")
s3.put_object(Bucket=B, Key="empty", Body=b"")
check(get(Key="empty", Range="bytes=0-")[:2] == (416, "InvalidRange"), "any range of an empty object -> 416")
check(get(Key="empty")[0] == 200, "empty object without range -> 200")
# multipart: ETag md5-of-part-md5s-N, but CompleteMultipartUpload's <ETag> is empty
parts = [os.urandom(5 << 20), os.urandom(1 << 20)]
u = s3.create_multipart_upload(Bucket=B, Key="mp")["UploadId"]
pe = [s3.upload_part(Bucket=B, Key="mp", UploadId=u, PartNumber=i + 1, Body=p)["ETag"] for i, p in enumerate(parts)]
r = s3.complete_multipart_upload(Bucket=B, Key="mp", UploadId=u, MultipartUpload={
    "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(pe)]})
want = '"%s-2"' % hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
check(r.get("ETag", "") == "", "CompleteMultipartUpload <ETag> is empty (RGW 16.2)")
h = s3.head_object(Bucket=B, Key="mp")
check(h["ETag"] == want and h["ContentLength"] == sum(map(len, parts)), "multipart ETag %s (want %s)" % (h["ETag"], want))
check(get(Key="mp", Range="bytes=5242870-5242889", IfMatch=want)[2] == b"".join(parts)[5242870:5242890], "ranged If-Match on multipart ETag")
u = s3.create_multipart_upload(Bucket=B, Key="small")["UploadId"]
pe = [s3.upload_part(Bucket=B, Key="small", UploadId=u, PartNumber=i, Body=b"x" * 100)["ETag"] for i in (1, 2)]
check(error_of(s3.complete_multipart_upload, Bucket=B, Key="small", UploadId=u, MultipartUpload={
    "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(pe)]}) == (400, "EntityTooSmall"), "parts < 5 MiB -> EntityTooSmall")
s3.abort_multipart_upload(Bucket=B, Key="small", UploadId=u)
# listing: 1000 keys per page at most, whatever MaxKeys asks; delimiter works
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    list(ex.map(lambda i: s3.put_object(Bucket=B, Key="many/%05d" % i, Body=b"x"), range(1003)))
for kw in ({}, {"MaxKeys": 5000}):
    r = s3.list_objects_v2(Bucket=B, Prefix="many/", **kw)
    check(r["KeyCount"] == 1000 and r["IsTruncated"] and r["MaxKeys"] == 1000, "page of 1000 (%r)" % kw)
r2 = s3.list_objects_v2(Bucket=B, Prefix="many/", ContinuationToken=r["NextContinuationToken"])
check([o["Key"] for o in r2["Contents"]] == ["many/%05d" % i for i in range(1000, 1003)] and not r2["IsTruncated"], "second page")
r = s3.list_objects_v2(Bucket=B, Delimiter="/")
check([p["Prefix"] for p in r["CommonPrefixes"]] == ["many/"] and [o["Key"] for o in r["Contents"]] == ["empty", "mp", "o"], "delimiter /")
r = s3.list_objects_v2(Bucket=B, Delimiter="/", MaxKeys=2)
check(r["KeyCount"] == 2 and r["IsTruncated"] and len(r["CommonPrefixes"]) == 1, "MaxKeys counts prefixes too")
r = s3.list_objects_v2(Bucket=B, Prefix="many/0000", StartAfter="many/00007")
check([o["Key"] for o in r["Contents"]] == ["many/00008", "many/00009"], "StartAfter")
# raw listing XML: chunked, ETags as &quot;...&quot;, keys raw UTF-8 unless encoding-type=url
raw = {}
def keep(http_response, model, **kw):
    raw[model.name] = (http_response.headers, http_response.content)
s3.meta.events.register("after-call.s3", keep)
s3.put_object(Bucket=B, Key="sp ace/a+b%c\u00e9", Body=b"1")
s3.list_objects_v2(Bucket=B, Prefix="sp ace/")            # boto3 asks encoding-type=url
hdr, xml = raw["ListObjectsV2"]
check(hdr.get("Transfer-Encoding") == "chunked", "ListObjectsV2 is sent chunked")
check(b"<Key>sp%20ace%2Fa%2Bb%25c%C3%A9</Key>" in xml and b"<EncodingType>url</EncodingType>" in xml and b"&quot;" in xml,
      "encoding-type=url: %r" % xml[-400:])
s3.meta.events.unregister("before-parameter-build.s3.ListObjectsV2", set_list_objects_encoding_type_url)
s3.list_objects_v2(Bucket=B, Prefix="sp ace/")
check("<Key>sp ace/a+b%c\u00e9</Key>".encode() in raw["ListObjectsV2"][1], "no encoding-type: raw UTF-8 keys")
keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=B) for o in p.get("Contents", [])]
for i in range(0, len(keys), 1000):
    s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
s3.delete_bucket(Bucket=B)
PY
}

# ------------------------------------------------------------- lib_s3.sh ----

# s3_start in a shell that already has an EXIT trap: the trap still runs, and
# a failing script (set -e) leaves no daemon, proxy or directory behind.
test_lib_exit_chain() {
  local rc=0
  env -u RGW_DIR -u RGW_ENDPOINT S3_DIR="$T/s3" bash -c '
    set -e
    . "$1/../lib.sh"; . "$1/lib_s3.sh"
    trap "echo old-trap >>\"$2/marker\"" EXIT
    s3_start
    proxy_start "$2/ctl"
    echo "$RGW_PIDS $PROXY_PID" >"$2/pids"
    echo "$RGW_DIR" >"$2/dir"
    s3_py mb tb-chain
    false
    echo not reached' _ "$HERE" "$T" >"$T/out" 2>&1 || rc=$?
  [[ $rc == 1 ]] || fail "script exit status $rc: $(cat "$T/out")"
  [[ $(cat "$T/marker" 2>/dev/null) == old-trap ]] || fail "the earlier EXIT trap did not run"
  [[ -s $T/pids ]] || fail "no pids: $(cat "$T/out")"
  local p
  for p in $(cat "$T/pids"); do [[ ! -e /proc/$p ]] || fail "pid $p ($(cat /proc/$p/comm)) left"; done
  [[ -z $(ls -A "$T/s3") ]] || fail "left in S3_DIR: $(ls -A "$T/s3")"
  [[ ! -s $T/out ]] || fail "not quiet: $(cat "$T/out")"
}

# A proxy dies with the shell that started it, even a SIGKILLed one, and a
# proxy started inside a test's subshell is killed when that subshell ends.
test_lib_proxy_lifetime() {
  bash -c '. "$1/../lib.sh"; . "$1/lib_s3.sh"; proxy_start "$2/ctl1" && echo $PROXY_PID >"$2/p1"; exec sleep 60' _ "$HERE" "$T" &
  local sh=$! i p1 p2
  for i in $(seq 50); do [[ -s $T/p1 ]] && break; sleep 0.1; done
  p1=$(cat "$T/p1") && [[ -n $p1 ]] || fail "no proxy"
  kill -KILL "$sh"; wait "$sh" 2>/dev/null
  for i in $(seq 50); do [[ -e /proc/$p1 ]] || break; sleep 0.1; done
  [[ ! -e /proc/$p1 ]] || fail "proxy $p1 outlived its SIGKILLed shell"
  local d=$T
  ( T=""; trap _cleanup EXIT; proxy_start "$d/ctl2" && echo "$PROXY_PID" >"$d/p2" ) || fail "subshell"
  p2=$(cat "$T/p2") && [[ -n $p2 ]] || fail "no proxy 2"
  [[ ! -e /proc/$p2 ]] || fail "proxy $p2 outlived its subshell"
}

# ------------------------------------------------------------------- main --

t_start=$(date +%s.%N)
if s3_start; then
  passed=$((passed + 1)); echo "ok   s3_start"
else
  failed=$((failed + 1)); echo "FAIL s3_start"
  echo "$passed passed, $failed failed"; exit 1
fi
S3_START_SECONDS=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
run_dir=$RGW_DIR
gw_pids=$RGW_PIDS

for t in missing_binaries failed_start_cleans_up env_lines buckets upload_dir single_objects \
         upload_tensors proxy_pass_keepalive proxy_delay proxy_status proxy_reset \
         proxy_truncate_corrupt proxy_rules proxy_large_concurrent gateway_restart \
         rgw_behaviour lib_exit_chain lib_proxy_lifetime; do
  [[ -z ${TESTS_MATCH:-} || $t == *$TESTS_MATCH* ]] && run "$t"
done

# Stop, then nothing of ours may be left: no daemon or proxy with SELF in its
# command line (every process this run starts has one), none of the first
# gateway's pids. Kit processes that appeared meanwhile without SELF belong to
# someone else (another cluster on this machine): only mentioned.
t_stop=$(date +%s.%N)
s3_stop
left=$(pgrep -af -- "$SELF")
new=$(comm -13 <(echo "$before_pids") <( (pgrep -x radosgw; pgrep -x ceph-mon; pgrep -x ceph-osd; pgrep -f fault_proxy.py) | sort))
if [[ -z $left && ! -e $run_dir ]] && ! ps -o pid= -p "${gw_pids// /,}" >/dev/null; then
  passed=$((passed + 1)); echo "ok   s3_stop_leaves_nothing"
else
  failed=$((failed + 1)); echo "FAIL s3_stop_leaves_nothing"
  echo "    left: $left" >&2
fi
[[ -z $new ]] || echo "note: kit processes not started by this run appeared: $(ps -o pid=,args= -p "$(echo $new | tr ' ' ,)" | tr '\n' ';')" >&2
echo "gateway start ${S3_START_SECONDS} s, stop $(awk -v a="$t_stop" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
rm -rf "$SELF"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
