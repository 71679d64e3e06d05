#!/usr/bin/python3
"""fault_proxy.py - HTTP/1.1 reverse proxy between our S3 client and the test
gateway (tests/s3/rgw.sh) that injects faults on demand: delays, S3 error
replies, connection resets, truncated and corrupted bodies.

Usage:
  fault_proxy.py --target http://127.0.0.1:PORT --control FILE --log FILE
                 [--port 0] [--parent PID]

Listens on 127.0.0.1:--port (0 = any free port), prints "PORT=<n>" on stdout
once listening, then serves until SIGTERM/SIGINT. Every request is forwarded
as received (method, path?query, headers in order including Host, body), so
SigV4 signatures still verify; each client connection gets its own keep-alive
connection to the target. Bodies are streamed in 1 MiB chunks both ways.

Control file, re-read before every request (missing or empty = pass through).
One rule per line, "#" lines and blank lines ignored:
  MODE [ARG] [count=K] [match=REGEX]
The first rule that matches and is still active applies. match= takes the rest
of the line and is searched (re.search) in "METHOD /path?query". count=K
applies the rule to the next K matching requests only; the count is kept per
rule line text (identical lines share it) and forgotten when the line leaves
the file; SIGHUP forgets all counts (re-arms every rule).
Modes:
  pass               forward unchanged
  delay MS           sleep MS milliseconds, then forward
  status CODE[:S3CODE]  reply CODE with an S3 XML error body without contacting
                     the target (S3CODE defaults from CODE: 503 SlowDown,
                     500 InternalError, 404 NoSuchKey, 403 AccessDenied, ...)
  reset              read the request head, then close the client connection
                     with SO_LINGER 0 (RST), no response; the target never
                     sees the request
  reset after        forward, wait for the target's response head, then RST
                     (the request took effect but the reply is lost)
  truncate N         forward; send the response head unchanged (original
                     Content-Length) but only N body bytes, then close
  corrupt            forward; flip one byte (XOR 0xff) in the middle of the body
Log file: one line per request, "METHOD /path?query STATUS MODE", written when
the request is over (also when the client went away mid-body). STATUS is "-"
when no response was sent (reset); MODE is "upstream-error" when the target
could not be reached (the client then gets 502 BadGateway) or failed in the
middle of a body (the client gets a short body and EOF). Rules the proxy
cannot parse are logged as "BADRULE 'LINE': REASON" (and said on stderr).
--parent PID: exit when process PID (the shell that started us) dies.
"""
import argparse
import ctypes
import http.client
import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus

CHUNK = 1 << 20
IDLE_TIMEOUT = 600          # seconds a client or target connection may idle
MAX_LINE = 65536
MAX_HEADERS = 200
S3_CODES = {400: "BadRequest", 403: "AccessDenied", 404: "NoSuchKey",
            405: "MethodNotAllowed", 409: "OperationAborted",
            412: "PreconditionFailed", 416: "InvalidRange", 429: "SlowDown",
            500: "InternalError", 501: "NotImplemented", 502: "BadGateway",
            503: "SlowDown", 504: "GatewayTimeout"}
MODES_WITH_INT = {"delay", "truncate"}


class BadRequest(Exception):
    pass


class Rule:
    def __init__(self, text):
        self.text = text
        self.regex = None
        self.count = None
        m = re.search(r"(^|\s)match=", text)
        head = text
        if m:
            head = text[:m.start()]
            self.regex = re.compile(text[m.end():])
        words = head.split()
        if not words:
            raise ValueError("no mode")
        rest = []
        for w in words[1:]:
            if w.startswith("count="):
                self.count = int(w[6:])
                if self.count < 0:
                    raise ValueError("negative count")
            else:
                rest.append(w)
        self.mode = words[0]
        self.arg = None
        self.s3code = None
        if self.mode in MODES_WITH_INT:
            if len(rest) != 1:
                raise ValueError("%s needs one number" % self.mode)
            self.arg = int(rest[0])
            if self.arg < 0:
                raise ValueError("negative argument")
        elif self.mode == "status":
            if len(rest) != 1:
                raise ValueError("status needs CODE[:S3CODE]")
            code, _, s3code = rest[0].partition(":")
            self.arg = int(code)
            if not 200 <= self.arg <= 599:
                raise ValueError("status code out of range")
            self.s3code = s3code or S3_CODES.get(self.arg, "InjectedFault")
        elif self.mode == "reset":
            if rest not in ([], ["after"]):
                raise ValueError("reset takes no argument but 'after'")
            self.arg = rest[0] if rest else None
        elif self.mode in ("pass", "corrupt"):
            if rest:
                raise ValueError("%s takes no argument" % self.mode)
        else:
            raise ValueError("unknown mode %r" % self.mode)


class Rules:
    """The control file, re-read per request, plus the per-line counts."""

    def __init__(self, path, log):
        self.path = path
        self.log = log
        self.lock = threading.Lock()
        self.used = {}           # rule line text -> times applied
        self.cache = (None, [])  # (file content, parsed rules)

    def reset_counts(self):
        with self.lock:
            self.used.clear()

    def _parse(self, content):
        if content == self.cache[0]:
            return self.cache[1]
        rules = []
        for line in content.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                rules.append(Rule(line))
            except (ValueError, re.error) as e:
                self.log.write("BADRULE %r: %s" % (line, e))
                print("fault_proxy: ignoring bad rule %r: %s" % (line, e),
                      file=sys.stderr, flush=True)
        self.cache = (content, rules)
        return rules

    def pick(self, reqline):
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                content = f.read()
        except FileNotFoundError:
            content = ""
        with self.lock:
            rules = self._parse(content)
            texts = {r.text for r in rules}
            for t in list(self.used):
                if t not in texts:
                    del self.used[t]
            for r in rules:
                if r.regex is not None and not r.regex.search(reqline):
                    continue
                n = self.used.get(r.text, 0)
                if r.count is not None and n >= r.count:
                    continue
                self.used[r.text] = n + 1
                return r
        return None


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1, encoding="utf-8", errors="replace")
        self.lock = threading.Lock()

    def write(self, line):
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()


class Upstream:
    """One keep-alive connection to the target, reopened when it went stale."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.conn = None

    def get(self):
        """(connection, reused): reused if it has served a request before."""
        c = self.conn
        if c is not None and c.sock is not None:
            # Readable while idle means the target closed it (or sent junk).
            r, _, _ = select.select([c.sock], [], [], 0)
            if r:
                c.close()
            else:
                return c, True
        if c is None:
            c = self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=IDLE_TIMEOUT)
        return c, False

    def drop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v.strip()
    return None


def read_request(rfile):
    """(method, target, version, headers) or None at a clean EOF."""
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if not line:
            return None
        if line not in (b"\r\n", b"\n"):
            break
    if len(line) > MAX_LINE:
        raise BadRequest("request line too long")
    parts = line.decode("latin-1").rstrip("\r\n").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest("bad request line %r" % line[:100])
    headers = []
    while True:
        h = rfile.readline(MAX_LINE + 1)
        if not h:
            raise BadRequest("EOF in headers")
        if len(h) > MAX_LINE or len(headers) > MAX_HEADERS:
            raise BadRequest("headers too large")
        if h in (b"\r\n", b"\n"):
            break
        k, sep, v = h.decode("latin-1").rstrip("\r\n").partition(":")
        if not sep or not k or k != k.strip():
            raise BadRequest("bad header line %r" % h[:100])
        headers.append((k, v.strip()))
    return parts[0], parts[1], parts[2], headers


def body_kind(headers):
    """('chunked', None) or ('length', N) for a request body."""
    te = header(headers, "transfer-encoding")
    if te and "chunked" in te.lower():
        return "chunked", None
    cl = header(headers, "content-length")
    if cl is None:
        return "length", 0
    try:
        n = int(cl)
    except ValueError:
        raise BadRequest("bad Content-Length %r" % cl)
    if n < 0:
        raise BadRequest("negative Content-Length")
    return "length", n


def copy_body(rfile, kind, n, out):
    """Stream a request body from the client to out(bytes) (framing kept)."""
    if kind == "length":
        while n > 0:
            data = rfile.read(min(n, CHUNK))
            if not data:
                raise ConnectionError("client closed during request body")
            n -= len(data)
            out(data)
        return
    while True:                             # chunked: copy the framing as is
        line = rfile.readline(MAX_LINE + 1)
        if not line.endswith(b"\n"):
            raise ConnectionError("client closed during chunked body")
        out(line)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunk size line")
        if size == 0:
            while True:                     # trailers up to the blank line
                t = rfile.readline(MAX_LINE + 1)
                if not t.endswith(b"\n"):
                    raise ConnectionError("client closed in trailers")
                out(t)
                if t in (b"\r\n", b"\n"):
                    return
        left = size + 2                     # data + CRLF
        while left > 0:
            data = rfile.read(min(left, CHUNK))
            if not data:
                raise ConnectionError("client closed during chunk")
            left -= len(data)
            out(data)


def reset_socket(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def error_reply(status, s3code, target, head_only, close, message="injected by fault_proxy"):
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    rid = "fault-proxy-%x" % int(time.monotonic() * 1e6)
    if status in (204, 304) or status < 200:
        body = b""
    else:
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
                '<Message>%s</Message><Resource>%s</Resource>'
                '<RequestId>%s</RequestId></Error>\n'
                % (s3code, message, target.split("?")[0].replace("&", "&amp;").replace("<", "&lt;"),
                   rid)).encode()
    head = ["HTTP/1.1 %d %s" % (status, reason),
            "Content-Type: application/xml",
            "Content-Length: %d" % len(body),
            "x-amz-request-id: %s" % rid,
            "Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())]
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


class Handler:
    def __init__(self, sock, rules, log, target):
        self.sock = sock
        self.rules = rules
        self.log = log
        self.up = Upstream(*target)
        self.rfile = sock.makefile("rb", buffering=1 << 16)

    def run(self):
        self.sock.settimeout(IDLE_TIMEOUT)
        reset = False
        try:
            while True:
                req = read_request(self.rfile)
                if req is None:
                    break
                keep = self.serve(*req)
                if keep == "reset":
                    reset = True
                    break
                if not keep:
                    break
        except BadRequest as e:
            try:
                self.sock.sendall(error_reply(400, "BadRequest", "/", False, True))
            except OSError:
                pass
            print("fault_proxy: bad request: %s" % e, file=sys.stderr, flush=True)
        except (OSError, http.client.HTTPException):
            pass                            # client or target went away
        finally:
            self.up.drop()
            try:
                self.rfile.close()
            except OSError:
                pass
            if reset:
                reset_socket(self.sock)
            else:
                try:
                    self.sock.close()
                except OSError:
                    pass

    def serve(self, method, target, version, headers):
        """Handle one request; True to keep the connection, False to close
        it, "reset" to reset it."""
        reqline = "%s %s" % (method, target)
        rule = self.rules.pick(reqline)
        mode = rule.mode if rule else "pass"
        conn_hdr = (header(headers, "connection") or "").lower()
        client_close = "close" in conn_hdr or (version == "HTTP/1.0" and "keep-alive" not in conn_hdr)
        expect100 = (header(headers, "expect") or "").lower() == "100-continue"
        kind, n = body_kind(headers)
        has_body = kind == "chunked" or n > 0
        head_only = method == "HEAD"

        if mode == "reset" and rule.arg is None:
            self.log.write("%s - reset" % reqline)
            return "reset"

        if mode == "status":
            # With Expect: 100-continue the client has not sent the body; reply
            # at once and close (as a server refusing the body would). Else
            # drain the body so that the connection stays usable.
            close = client_close or (has_body and expect100)
            if has_body and not expect100:
                copy_body(self.rfile, kind, n, lambda b: None)
            self.sock.sendall(error_reply(rule.arg, rule.s3code, target, head_only, close))
            self.log.write("%s %d status" % (reqline, rule.arg))
            return not close

        if mode == "delay":
            time.sleep(rule.arg / 1000.0)

        # Forward the request head exactly as received. A keep-alive
        # connection the target closed meanwhile is replaced once (for a
        # request with a body only before the body was sent).
        sent100 = False
        for attempt in (0, 1):
            conn, reused = self.up.get()
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                conn.endheaders()
            except OSError as e:
                self.up.drop()
                if reused and not attempt:
                    continue
                return self.upstream_failed(reqline, e, has_body, kind, n, expect100 and not sent100, head_only)
            if expect100 and not sent100:
                self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                sent100 = True
            send_failed = None
            if has_body:
                def out(b, conn=conn):
                    nonlocal send_failed
                    if send_failed is None:
                        try:
                            conn.sock.sendall(b)
                        except OSError as e:     # target replied early and closed?
                            send_failed = e
                copy_body(self.rfile, kind, n, out)
            try:
                resp = conn.getresponse()
                break
            except (OSError, http.client.HTTPException) as e:
                self.up.drop()
                if reused and not attempt and not has_body:
                    continue
                return self.upstream_failed(reqline, send_failed or e, False, kind, 0, False, head_only)

        if mode == "reset":                 # reset after: effect, no reply
            self.up.drop()
            self.log.write("%s - reset" % reqline)
            return "reset"

        # Response head unchanged; body re-framed only if the target chunked it.
        status = resp.status
        rheaders = resp.msg.items()
        chunked = resp.chunked
        length = resp.length                # None if chunked or close-delimited
        head = ["HTTP/1.1 %d %s" % (status, resp.reason)]
        head += ["%s: %s" % (k, v) for k, v in rheaders]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))

        limit = rule.arg if mode == "truncate" else None
        flip_at = None                      # body offset of the byte to flip
        if mode == "corrupt":
            flip_at = length // 2 if length is not None else -1   # -1: mid first piece
        sent = received = 0
        while True:
            try:
                data = resp.read(CHUNK)
                # http.client's read(n) returns b"" at a premature EOF
                if not data and length is not None and received < length:
                    raise http.client.IncompleteRead(b"", length - received)
            except (OSError, http.client.HTTPException):
                # Target failed mid-body: the client gets a short body and EOF.
                self.up.drop()
                self.log.write("%s %d upstream-error" % (reqline, status))
                return False
            if not data:
                break
            received += len(data)
            if flip_at is not None:
                i = len(data) // 2 if flip_at == -1 else flip_at - sent
                if 0 <= i < len(data):
                    data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
                    flip_at = None
            cut = limit is not None and sent + len(data) >= limit
            if cut:
                data = data[:limit - sent]
            if data:
                try:
                    if chunked:
                        self.sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
                    else:
                        self.sock.sendall(data)
                except OSError:             # the client went away mid-body
                    self.log.write("%s %d %s" % (reqline, status, mode))
                    raise
                sent += len(data)
            if cut:
                break
        self.log.write("%s %d %s" % (reqline, status, mode))
        if mode == "truncate":              # close right after the N bytes
            self.up.drop()
            return False
        resp.close()
        if chunked:
            self.sock.sendall(b"0\r\n\r\n")
        if resp.will_close:
            self.up.drop()
        close_delimited = (not chunked and length is None and not head_only
                           and status >= 200 and status not in (204, 304))
        return not (client_close or close_delimited)

    def upstream_failed(self, reqline, err, has_body, kind, n, expect100, head_only):
        """The target is unreachable: 502 with an S3 error body."""
        print("fault_proxy: target error for %s: %s" % (reqline, err), file=sys.stderr, flush=True)
        close = has_body and expect100
        if has_body and not expect100:
            copy_body(self.rfile, kind, n, lambda b: None)
        self.sock.sendall(error_reply(502, "BadGateway", reqline.split(" ", 1)[1], head_only, close,
                                      "fault_proxy cannot reach the target"))
        self.log.write("%s 502 upstream-error" % reqline)
        return not close


def main():
    ap = argparse.ArgumentParser(description="fault-injecting HTTP/1.1 reverse proxy")
    ap.add_argument("--target", required=True, help="http://HOST:PORT of the gateway")
    ap.add_argument("--control", required=True, help="rules file, re-read per request")
    ap.add_argument("--log", required=True, help="request log file (appended)")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any)")
    ap.add_argument("--parent", type=int, default=0, help="exit when this pid dies")
    args = ap.parse_args()

    u = urllib.parse.urlsplit(args.target)
    if u.scheme != "http" or not u.hostname:
        ap.error("--target must be http://HOST:PORT")
    target = (u.hostname, u.port or 80)

    if args.parent:
        # Linux: SIGTERM when the parent dies; then check it did not already.
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != args.parent:
            print("fault_proxy: parent %d is gone" % args.parent, file=sys.stderr)
            sys.exit(1)

    log = Log(args.log)
    rules = Rules(args.control, log)

    def stop(signum, frame):
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, lambda s, f: rules.reset_counts())

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(128)
    print("PORT=%d" % lsock.getsockname()[1], flush=True)

    while True:
        try:
            sock, _ = lsock.accept()
        except OSError:
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        h = Handler(sock, rules, log, target)
        threading.Thread(target=h.run, daemon=True).start()


if __name__ == "__main__":
    main()
