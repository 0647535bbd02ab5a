#!/usr/bin/env python3
"""A loopback HTTPS CONNECT proxy that plays a cloud provider's hosts (tests only).

    connectproxy.py --target PORT --cert CERT.pem --key KEY.pem --hosts SUFFIX[,SUFFIX...]

For clients that cannot be given an endpoint (restic 0.14's B2 library talks
only to https://api.backblazeb2.com): run them with HTTPS_PROXY pointing
here and --cacert CERT.pem.  A "CONNECT host:443" whose host ends in one of
the suffixes (e.g. ".backblazeb2.com") is answered 200, the TLS inside it is
terminated with CERT (whose SANs must name those hosts) and the plain HTTP
is relayed to 127.0.0.1:TARGET.  Any other host is refused with 403 and
logged: nothing is ever resolved or connected outside loopback.

Prints "PORT <n>" on stdout once listening (port 0: a free one); logs one
"CONNECT host ok|refused" line per tunnel on stderr.  Standard library only.
"""
import argparse
import socket
import ssl
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def read_head(conn):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk or len(head) > 65536:
            return None
        head += chunk
    return head.split(b"\r\n\r\n", 1)[0].decode("latin-1")


def handle(conn, args, ctx):
    try:
        head = read_head(conn)
        if head is None:
            return
        parts = head.split("\r\n", 1)[0].split()
        host = parts[1].rsplit(":", 1)[0].lower() if len(parts) == 3 and parts[0] == "CONNECT" else ""
        if not host or not any(host.endswith(s) or host == s.lstrip(".") for s in args.hosts):
            sys.stderr.write("CONNECT %s refused\n" % (host or head.split("\r\n", 1)[0]))
            sys.stderr.flush()
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        sys.stderr.write("CONNECT %s ok\n" % host)
        sys.stderr.flush()
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        tls = ctx.wrap_socket(conn, server_side=True)
        upstream = socket.create_connection(("127.0.0.1", args.target))
        t = threading.Thread(target=pump, args=(upstream, tls), daemon=True)
        t.start()
        pump(tls, upstream)
        t.join()
    except (OSError, ssl.SSLError) as e:
        sys.stderr.write("tunnel error: %s\n" % e)
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--hosts", required=True, help="comma-separated host suffixes, e.g. .backblazeb2.com")
    args = ap.parse_args()
    args.hosts = [h.strip().lower() for h in args.hosts.split(",") if h.strip()]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)
    print("PORT %d" % srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, args, ctx), daemon=True).start()


if __name__ == "__main__":
    main()
