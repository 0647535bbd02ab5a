#!/usr/bin/env python3
"""A small Google Cloud Storage JSON API server for crestic's tests (loopback).

Written from Google's published JSON API documentation (storage/v1), for the
calls a backup client makes; data lives in memory.

  bucket:   GET /storage/v1/b/B (404 when missing), POST /storage/v1/b?project=P
            {"name", "location"} (409 when it exists)
  upload:   POST /upload/storage/v1/b/B/o?uploadType=multipart (multipart/related:
            JSON metadata with "name" and optional base64 "md5Hash", then the
            media; a wrong MD5 is 400), uploadType=media&name=N, and
            uploadType=resumable (answer: Location with upload_id; then PUT
            chunks with "Content-Range: bytes A-B/TOTAL|*", 308 + "Range:
            bytes=0-N" until complete, "bytes */TOTAL" asks for the status;
            chunks other than the last must be multiples of 256 KiB)
  objects:  GET /storage/v1/b/B/o/NAME (metadata; alt=media: the data, also
            /download/storage/v1/... and GET /B/NAME), Range: bytes=A-B, A-, -N
            (206 + Content-Range, 416 past the end), DELETE (204, 404 when absent),
            GET /storage/v1/b/B/o?prefix=&delimiter=&maxResults=&pageToken= (paged)
  auth:     every API call needs "Authorization: Bearer T" (else 401 JSON error);
            T is one of --token, or one issued by POST /token
  /token:   the service-account flow (RFC 7523): grant_type=urn:ietf:params:oauth:
            grant-type:jwt-bearer&assertion=JWT.  Checked: alg RS256, signature with
            the account's public key (--account EMAIL=PUBLIC.pem), iss is a known
            account, aud ends in /token, iat not in the future nor older than 5
            min, exp after now, exp - iat <= 1 h, a devstorage or cloud-platform
            scope.  Answer {"access_token", "expires_in", "token_type": "Bearer"}.

Options: --port (0: any free port; the port is printed on stdout's first line),
--token-lifetime S (issued tokens expire after S seconds; default 3600),
--announced-lifetime S (the expires_in told to clients, to make them meet an
expired token),
--fail-every N (every Nth upload request answers 503; for a resumable chunk,
the first half of it, rounded down to 256 KiB, is kept first, so the client
must ask where to resume), --lose-session-at N (the Nth resumable chunk finds
its session gone: 404, the client must start over), --log FILE (one line per request).
Fault and token lines ("fault 503 ...", "token issued ...") go to stderr.
"""
import argparse
import base64
import hashlib
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GRANULE = 256 * 1024
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE_PREFIXES = ("https://www.googleapis.com/auth/devstorage.", "https://www.googleapis.com/auth/cloud-platform")


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.buckets = {}      # name -> {"meta": dict, "objects": {name: obj}}
        self.sessions = {}     # upload_id -> session dict
        self.tokens = {t: None for t in args.token}  # token -> expiry (None: static)
        self.accounts = {}     # client_email -> public key
        self.token_lifetime = min(args.token_lifetime, 3600)
        self.announced_lifetime = args.announced_lifetime or self.token_lifetime
        self.fail_every = args.fail_every
        self.upload_count = 0
        self.lose_session_at = args.lose_session_at
        self.chunk_count = 0
        self.generation = int(time.time() * 1e6)
        self.log = open(args.log, "a", buffering=1) if args.log else None
        for spec in args.account:
            email, _, path = spec.partition("=")
            self.accounts[email] = load_public_key(path)

    def next_generation(self):
        self.generation += 1
        return self.generation

    def upload_fault(self):
        """True when this upload request is the Nth and must fail."""
        with self.lock:
            self.upload_count += 1
            return self.fail_every > 0 and self.upload_count % self.fail_every == 0


def load_public_key(path):
    from cryptography.hazmat.primitives import serialization
    with open(path, "rb") as f:
        data = f.read()
    try:
        return serialization.load_pem_public_key(data)
    except ValueError:  # a private key file: take its public half
        return serialization.load_pem_private_key(data, password=None).public_key()


def b64url_decode(s):
    if any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in s):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def rfc3339(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def b64md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


class ApiError(Exception):
    def __init__(self, code, message, reason="invalid", headers=None):
        super().__init__(message)
        self.code, self.message, self.reason, self.headers = code, message, reason, headers or {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "crestic-gcsserver/1"
    state = None  # set in main

    def log_message(self, fmt, *args):
        pass

    # ---- plumbing ------------------------------------------------------------
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, code, body=b"", ctype="application/json; charset=UTF-8", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, indent=1).encode()
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body or code not in (204, 304):
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        st = self.state
        if st.log:
            st.log.write("%s %s %d\n" % (self.command, re.sub(r"[?&]upload_id=[^&]*", "", self.path), code))

    def send_error_json(self, e):
        body = {"error": {"code": e.code, "message": e.message,
                          "errors": [{"message": e.message, "domain": "global", "reason": e.reason}]}}
        self.send(e.code, body, headers=e.headers)

    def dispatch(self):
        body = self.read_body()
        try:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            self.route(url.path, query, body)
        except ApiError as e:
            self.send_error_json(e)
        except (ValueError, KeyError, UnicodeDecodeError) as e:
            self.send_error_json(ApiError(400, "bad request: %s" % e))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = dispatch

    # ---- routing -------------------------------------------------------------
    def route(self, path, query, body):
        raw = path.split("/")
        if path == "/token" and self.command == "POST":
            return self.token(body)
        if self.command == "PUT" and path.startswith("/upload/storage/v1/b/") and "upload_id" in query:
            return self.resumable_put(query["upload_id"], body)  # the session URI is the credential
        self.authorize()
        if raw[1:4] == ["storage", "v1", "b"]:
            if len(raw) == 4 and self.command == "POST":
                return self.bucket_insert(query, body)
            bucket = urllib.parse.unquote(raw[4]) if len(raw) > 4 else ""
            if len(raw) == 5 and self.command == "GET":
                return self.send(200, self.bucket(bucket)["meta"])
            if len(raw) == 6 and raw[5] == "o" and self.command == "GET":
                return self.list(bucket, query)
            if len(raw) == 7 and raw[5] == "o":
                name = urllib.parse.unquote(raw[6])
                if self.command == "GET":
                    return self.download(bucket, name) if query.get("alt") == "media" else self.metadata(bucket, name)
                if self.command == "DELETE":
                    return self.delete(bucket, name)
        if raw[1:5] == ["upload", "storage", "v1", "b"] and len(raw) == 7 and raw[6] == "o" and self.command == "POST":
            return self.upload(urllib.parse.unquote(raw[5]), query, body)
        if raw[1:5] == ["download", "storage", "v1", "b"] and len(raw) == 8 and raw[6] == "o" and self.command == "GET":
            return self.download(urllib.parse.unquote(raw[5]), urllib.parse.unquote(raw[7]))
        if len(raw) >= 3 and raw[1] not in ("storage", "upload", "download") and self.command == "GET":
            return self.download(urllib.parse.unquote(raw[1]), urllib.parse.unquote("/".join(raw[2:])))
        raise ApiError(404, "Not Found", "notFound")

    def authorize(self):
        auth = self.headers.get("Authorization", "")
        st = self.state
        if auth.startswith("Bearer "):
            tok = auth[7:].strip()
            with st.lock:
                if tok in st.tokens:
                    exp = st.tokens[tok]
                    if exp is None or time.time() < exp:
                        return
        raise ApiError(401, "Invalid Credentials", "authError", {"WWW-Authenticate": 'Bearer realm="gcsserver"'})

    # ---- token endpoint ------------------------------------------------------
    def token(self, body):
        form = dict(urllib.parse.parse_qsl(body.decode("ascii", "replace"), keep_blank_values=True))
        try:
            if form.get("grant_type") != JWT_BEARER:
                raise PermissionError("unsupported_grant_type", "grant_type must be %s" % JWT_BEARER)
            email = self.check_jwt(form.get("assertion", ""))
        except PermissionError as e:
            code, desc = e.args
            sys.stderr.write("token refused: %s: %s\n" % (code, desc))
            return self.send(400, {"error": code, "error_description": desc})
        tok = "ya29.test-" + secrets.token_urlsafe(24)
        st = self.state
        with st.lock:
            st.tokens[tok] = time.time() + st.token_lifetime
        sys.stderr.write("token issued to %s for %d s\n" % (email, st.token_lifetime))
        self.send(200, {"access_token": tok, "expires_in": st.announced_lifetime, "token_type": "Bearer"})

    def check_jwt(self, assertion):
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        parts = assertion.split(".")
        if len(parts) != 3:
            raise PermissionError("invalid_grant", "assertion is not a JWS compact serialisation")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except ValueError:
            raise PermissionError("invalid_grant", "assertion is not base64url JSON")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise PermissionError("invalid_grant", "header and claims must be JSON objects")
        if header.get("alg") != "RS256":
            raise PermissionError("invalid_grant", "alg must be RS256")
        if header.get("typ", "JWT") != "JWT":
            raise PermissionError("invalid_grant", "typ must be JWT")
        key = self.state.accounts.get(claims.get("iss"))
        if key is None:
            raise PermissionError("invalid_grant", "unknown issuer (client_email)")
        try:
            key.verify(sig, (parts[0] + "." + parts[1]).encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise PermissionError("invalid_grant", "Invalid JWT Signature.")
        aud = claims.get("aud")
        if not isinstance(aud, str) or not aud.endswith("/token"):
            raise PermissionError("invalid_grant", "aud must be the token endpoint")
        iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
        if not isinstance(iat, int) or not isinstance(exp, int) or isinstance(iat, bool) or isinstance(exp, bool):
            raise PermissionError("invalid_grant", "iat and exp must be integers")
        if iat > now + 60 or iat < now - 300 or exp <= now or exp - iat > 3600 or exp <= iat:
            raise PermissionError("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) "
                                                   "and in a reasonable timeframe")
        scope = claims.get("scope")
        if not isinstance(scope, str) or not any(s.startswith(SCOPE_PREFIXES) for s in scope.split()):
            raise PermissionError("invalid_scope", "a storage scope is required")
        return claims["iss"]

    # ---- buckets -------------------------------------------------------------
    def bucket(self, name):
        b = self.state.buckets.get(name)
        if b is None:
            raise ApiError(404, "The specified bucket does not exist.", "notFound")
        return b

    def bucket_insert(self, query, body):
        if not query.get("project"):
            raise ApiError(400, "Required parameter: project", "required")
        meta = json.loads(body or b"{}")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not (3 <= len(name) <= 63) or \
                any(c not in "abcdefghijklmnopqrstuvwxyz0123456789-_." for c in name):
            raise ApiError(400, "Invalid bucket name", "invalid")
        st = self.state
        with st.lock:
            if name in st.buckets:
                raise ApiError(409, "Your previous request to create the named bucket succeeded and you already own it.",
                               "conflict")
            now = rfc3339(time.time())
            st.buckets[name] = {"objects": {}, "meta": {
                "kind": "storage#bucket", "id": name, "name": name, "projectNumber": "1",
                "location": str(meta.get("location") or "US").upper(), "storageClass": "STANDARD",
                "timeCreated": now, "updated": now, "metageneration": "1", "etag": "CAE="}}
            out = st.buckets[name]["meta"]
        self.send(200, out)

    # ---- objects -------------------------------------------------------------
    def store(self, bucket, name, data, meta):
        if not name or len(name.encode()) > 1024 or "\n" in name or "\r" in name:
            raise ApiError(400, "Invalid object name", "invalid")
        want = meta.get("md5Hash")
        got = b64md5(data)
        if want is not None and want != got:
            raise ApiError(400, "Provided MD5 hash \"%s\" doesn't match calculated MD5 hash \"%s\"." % (want, got),
                           "invalid")
        st = self.state
        with st.lock:
            b = self.bucket(bucket)
            gen = st.next_generation()
            now = rfc3339(time.time())
            obj = {"kind": "storage#object", "id": "%s/%s/%d" % (bucket, name, gen), "name": name, "bucket": bucket,
                   "generation": str(gen), "metageneration": "1",
                   "contentType": meta.get("contentType") or "application/octet-stream", "storageClass": "STANDARD",
                   "size": str(len(data)), "md5Hash": got, "timeCreated": now, "updated": now,
                   "etag": base64.b64encode(gen.to_bytes(8, "big")).decode()}
            b["objects"][name] = (obj, bytes(data))
        return obj

    def object(self, bucket, name):
        with self.state.lock:
            o = self.bucket(bucket)["objects"].get(name)
        if o is None:
            raise ApiError(404, "No such object: %s/%s" % (bucket, name), "notFound")
        return o

    def metadata(self, bucket, name):
        self.send(200, self.object(bucket, name)[0])

    def delete(self, bucket, name):
        with self.state.lock:
            objs = self.bucket(bucket)["objects"]
            if name not in objs:
                raise ApiError(404, "No such object: %s/%s" % (bucket, name), "notFound")
            del objs[name]
        self.send(204)

    def download(self, bucket, name):
        meta, data = self.object(bucket, name)
        size = len(data)
        rng = self.headers.get("Range")
        hdrs = {"X-Goog-Generation": meta["generation"], "X-Goog-Hash": "md5=" + meta["md5Hash"], "ETag": meta["etag"]}
        if not rng:
            return self.send(200, data, "application/octet-stream", hdrs)
        if not rng.startswith("bytes=") or "," in rng:
            raise ApiError(400, "unsupported Range", "invalid")
        first, _, last = rng[6:].strip().partition("-")
        if first == "":
            n = int(last)
            start, end = max(size - n, 0), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        if start >= size or end < start:
            hdrs["Content-Range"] = "bytes */%d" % size
            raise ApiError(416, "The requested range cannot be satisfied.", "requestedRangeNotSatisfiable", hdrs)
        hdrs["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
        self.send(206, data[start:end + 1], "application/octet-stream", hdrs)

    def list(self, bucket, query):
        prefix = query.get("prefix", "")
        delim = query.get("delimiter", "")
        limit = int(query.get("maxResults") or 1000)
        if limit < 1:
            raise ApiError(400, "Invalid maxResults", "invalid")
        limit = min(limit, 1000)
        after = ""
        if query.get("pageToken"):
            try:
                after = b64url_decode(query["pageToken"]).decode()
            except ValueError:
                raise ApiError(400, "Invalid pageToken", "invalid")
        with self.state.lock:
            names = sorted(n for n in self.bucket(bucket)["objects"] if n.startswith(prefix) and n > after)
            metas = {n: self.state.buckets[bucket]["objects"][n][0] for n in names}
        items, prefixes, last, more = [], [], None, False
        for n in names:
            p = None
            if delim and delim in n[len(prefix):]:
                p = n[:len(prefix) + n[len(prefix):].index(delim) + len(delim)]
                if p in prefixes:
                    last = n
                    continue
            if len(items) + len(prefixes) >= limit:
                more = True
                break
            last = n
            if p is not None:
                prefixes.append(p)
            else:
                items.append(metas[n])
        out = {"kind": "storage#objects"}
        if items:
            out["items"] = items
        if prefixes:
            out["prefixes"] = prefixes
        if more:
            out["nextPageToken"] = base64.urlsafe_b64encode(last.encode()).decode().rstrip("=")
        self.send(200, out)

    # ---- uploads -------------------------------------------------------------
    def upload(self, bucket, query, body):
        kind = query.get("uploadType")
        self.bucket(bucket)
        if kind == "resumable":
            return self.resumable_start(bucket, query, body)
        if self.state.upload_fault():
            sys.stderr.write("fault 503 %s upload\n" % kind)
            raise ApiError(503, "Backend Error (injected)", "backendError")
        if kind == "media":
            if not query.get("name"):
                raise ApiError(400, "Required parameter: name", "required")
            return self.send(200, self.store(bucket, query["name"], body, {}))
        if kind == "multipart":
            meta, data = self.split_multipart(body)
            name = meta.get("name") or query.get("name")
            return self.send(200, self.store(bucket, name, data, meta))
        raise ApiError(400, "Invalid uploadType", "invalid")

    def split_multipart(self, body):
        ctype = self.headers.get("Content-Type", "")
        if not ctype.lower().startswith("multipart/related"):
            raise ApiError(400, "multipart upload needs Content-Type multipart/related", "invalid")
        boundary = None
        for p in ctype.split(";")[1:]:
            k, _, v = p.strip().partition("=")
            if k.lower() == "boundary":
                boundary = v.strip('"')
        if not boundary:
            raise ApiError(400, "no multipart boundary", "invalid")
        delim = b"--" + boundary.encode()
        chunks = body.split(delim)
        # ["" (preamble), part1, part2, "--\r\n"]
        if len(chunks) != 4 or not chunks[3].startswith(b"--"):
            raise ApiError(400, "multipart body must have exactly two parts", "invalid")
        parts = []
        for c in chunks[1:3]:
            if not c.startswith(b"\r\n") or not c.endswith(b"\r\n"):
                raise ApiError(400, "malformed multipart part", "invalid")
            head, sep, content = c[2:-2].partition(b"\r\n\r\n")
            if not sep:
                raise ApiError(400, "malformed multipart part headers", "invalid")
            parts.append((head.decode("latin-1").lower(), content))
        if "application/json" not in parts[0][0]:
            raise ApiError(400, "the first part must be the JSON metadata", "invalid")
        meta = json.loads(parts[0][1])
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be a JSON object", "invalid")
        return meta, parts[1][1]

    def resumable_start(self, bucket, query, body):
        meta = json.loads(body) if body else {}
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be a JSON object", "invalid")
        name = meta.get("name") or query.get("name")
        if not name:
            raise ApiError(400, "Required parameter: name", "required")
        total = self.headers.get("X-Upload-Content-Length")
        sid = secrets.token_urlsafe(18)
        with self.state.lock:
            self.state.sessions[sid] = {"bucket": bucket, "name": name, "meta": meta, "data": bytearray(),
                                        "total": int(total) if total else None, "done": None}
        host = self.headers.get("Host", "127.0.0.1:%d" % self.server.server_port)
        loc = "http://%s/upload/storage/v1/b/%s/o?uploadType=resumable&upload_id=%s" % (
            host, urllib.parse.quote(bucket, safe=""), sid)
        self.send(200, b"", headers={"Location": loc, "X-GUploader-UploadID": sid})

    def resumable_status(self, s):
        if s["done"] is not None:
            return self.send(200, s["done"])
        hdrs = {"Range": "bytes=0-%d" % (len(s["data"]) - 1)} if s["data"] else {}
        self.send(308, b"", "text/plain", hdrs)

    def resumable_put(self, sid, body):
        st = self.state
        with st.lock:
            s = st.sessions.get(sid)
        if s is None:
            raise ApiError(404, "No such upload session", "notFound")
        cr = self.headers.get("Content-Range", "")
        if not cr.startswith("bytes "):
            if not body and s["done"] is not None:
                return self.resumable_status(s)
            raise ApiError(400, "Content-Range required", "invalid")
        span, _, total = cr[6:].partition("/")
        total = None if total == "*" else int(total)
        if total is not None:
            if s["total"] is not None and s["total"] != total:
                raise ApiError(400, "total size changed within the session", "invalid")
            s["total"] = total
        if span == "*":  # status query (or finishing an upload whose bytes are all there)
            if body:
                raise ApiError(400, "a status query has no body", "invalid")
            return self.finish_or_status(s, sid)
        first, _, last = span.partition("-")
        first, last = int(first), int(last)
        if last < first or len(body) != last - first + 1:
            raise ApiError(400, "Content-Range does not match the body length", "invalid")
        if s["done"] is not None:
            return self.send(200, s["done"])
        have = len(s["data"])
        if first > have:
            raise ApiError(400, "chunk starts at %d, but only %d bytes were received" % (first, have), "invalid")
        final = s["total"] is not None and last + 1 == s["total"]
        if not final and (last + 1) % GRANULE:
            raise ApiError(400, "chunks other than the last must be multiples of 256 KiB", "invalid")
        if s["total"] is not None and last >= s["total"]:
            raise ApiError(400, "chunk beyond the total size", "invalid")
        with st.lock:
            st.chunk_count += 1
            lose = st.chunk_count == st.lose_session_at
            if lose:
                st.sessions.pop(sid, None)
        if lose:
            sys.stderr.write("fault session lost at chunk %d-%d\n" % (first, last))
            raise ApiError(404, "No such upload session (injected)", "notFound")
        if st.upload_fault():
            keep = ((last + 1 - first) // 2) // GRANULE * GRANULE
            if first + keep > have:
                s["data"] += body[have - first:keep]
            sys.stderr.write("fault 503 resumable chunk %d-%d (kept %d bytes)\n" % (first, last, len(s["data"])))
            raise ApiError(503, "Backend Error (injected)", "backendError")
        s["data"] += body[have - first:]
        return self.finish_or_status(s, sid)

    def finish_or_status(self, s, sid):
        if s["done"] is None and s["total"] is not None and len(s["data"]) == s["total"]:
            try:
                s["done"] = self.store(s["bucket"], s["name"], bytes(s["data"]), s["meta"])
            except ApiError:
                with self.state.lock:
                    self.state.sessions.pop(sid, None)  # a bad MD5 ends the session
                raise
            s["data"] = bytearray()
        return self.resumable_status(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", action="append", default=[], help="a static bearer token to accept")
    ap.add_argument("--account", action="append", default=[], help="EMAIL=PUBLIC_KEY.pem (a service account)")
    ap.add_argument("--token-lifetime", type=int, default=3600)
    ap.add_argument("--announced-lifetime", type=int, default=0,
                    help="expires_in to announce when it differs from --token-lifetime (a client then meets a 401)")
    ap.add_argument("--fail-every", type=int, default=0)
    ap.add_argument("--lose-session-at", type=int, default=0, help="the Nth resumable chunk finds its session gone (404)")
    ap.add_argument("--log")
    args = ap.parse_args()
    Handler.state = State(args)
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
