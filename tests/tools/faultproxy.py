#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 reverse proxy for the backend tests (loopback only).

    faultproxy.py --listen PORT --target PORT [--every N] [--kinds K,K...]

Forwards every request to 127.0.0.1:TARGET unchanged (Authorization included)
and passes the answer back, except that every Nth request (default 4) gets a
fault instead, cycling through these kinds:

    500       answer "500 Internal Server Error" without forwarding
    503       answer "503 Service Unavailable" without forwarding
    drop      close the connection without any answer
    truncate  GET only: forward, then send the headers and half of the body
              and close (a dropped transfer); other methods get "drop"
    stall     (only when chosen with --kinds) read the request and never
              answer: the client's stall timeout must abort and retry

With --rest-v1 the proxy also plays an old REST server: list answers in the
v2 format ([{"name","size"}], Content-Type application/vnd.x.restic.rest.v2)
are rewritten to v1 (["name",...], Content-Type application/json), so a
client must fall back to HEAD for the sizes.  --every 0 injects no faults.

Faults are injected before the request reaches the server (except truncate,
which only reads), so a retried save never meets its own earlier copy.  Each
fault is logged as one "fault KIND METHOD PATH" line on stderr.  Standard
library only.
"""
import argparse
import http.client
import http.server
import json
import sys
import threading
import time

KINDS = ("500", "503", "drop", "truncate")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


class State:
    def __init__(self, target, every, kinds):
        self.target = target
        self.kinds = kinds
        self.every = every
        self.count = 0
        self.faults = 0
        self.lock = threading.Lock()

    def next_fault(self):
        """The fault kind for this request, or None to forward it."""
        with self.lock:
            self.count += 1
            if self.every <= 0 or self.count % self.every:
                return None
            kind = self.kinds[self.faults % len(self.kinds)]
            self.faults += 1
            return kind


V2 = "application/vnd.x.restic.rest.v2"


def as_rest_v1(headers, data):
    """A v2 list answer rewritten as v1; anything else unchanged."""
    if not any(k.lower() == "content-type" and v.startswith(V2) for k, v in headers):
        return headers, data
    names = [e["name"] for e in json.loads(data)]
    headers = [(k, "application/json" if k.lower() == "content-type" else v) for k, v in headers]
    return headers, json.dumps(names).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall each
    state = None  # set in main
    rest_v1 = False

    def log_message(self, fmt, *args):  # quiet: only faults are logged
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _forward(self, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.state.target, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn.request(self.command, self.path, body=body if body or self.command in ("POST", "PUT") else None,
                     headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp, data

    def _answer(self, status, reason, headers, data, send_body=True, cut=None):
        self.send_response(status, reason)
        for k, v in headers:
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        length = len(data)
        if self.command == "HEAD":
            length = int(dict((k.lower(), v) for k, v in headers).get("content-length", 0))
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if send_body and self.command != "HEAD":
            self.wfile.write(data if cut is None else data[:cut])

    def _fault(self, kind):
        sys.stderr.write("fault %s %s %s\n" % (kind, self.command, self.path))
        sys.stderr.flush()
        self.close_connection = True
        if kind in ("500", "503"):
            msg = b"injected fault\n"
            reason = "Internal Server Error" if kind == "500" else "Service Unavailable"
            self._answer(int(kind), reason, [("Content-Type", "text/plain")], msg)
        if kind == "stall":
            time.sleep(3600)
        # "drop": nothing is sent; the connection closes after this handler

    def _handle(self):
        body = self._body()
        kind = self.state.next_fault()
        if kind == "truncate" and self.command != "GET":
            kind = "drop"
        if kind and kind != "truncate":
            return self._fault(kind)
        try:
            resp, data = self._forward(body)
        except OSError as e:
            self.close_connection = True
            return self._answer(502, "Bad Gateway", [("Content-Type", "text/plain")], str(e).encode())
        if kind == "truncate" and len(data) >= 2:
            sys.stderr.write("fault truncate %s %s\n" % (self.command, self.path))
            sys.stderr.flush()
            self.close_connection = True
            return self._answer(resp.status, resp.reason, resp.getheaders(), data, cut=len(data) // 2)
        headers = resp.getheaders()
        if self.rest_v1:
            headers, data = as_rest_v1(headers, data)
        self._answer(resp.status, resp.reason, headers, data)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--rest-v1", action="store_true")
    a = ap.parse_args()
    Handler.rest_v1 = a.rest_v1
    Handler.state = State(a.target, a.every, a.kinds.split(","))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.listen), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
