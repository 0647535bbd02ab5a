#!/usr/bin/env python3
"""A small Backblaze B2 native-API server for the backend tests (loopback only).

    b2server.py --data DIR [--port 0] [--account ID:KEY] [--app-key ID:KEY[:BUCKET[:nodelete]]]
                [--fail-upload-every N] [--token-lifetime SECONDS]
                [--min-part-size BYTES] [--recommended-part-size BYTES]
                [--public-url URL] [--download-url URL]

Written from Backblaze's published API documentation (versions v2 and v3 of
the calls below; v3 answers b2_authorize_account with the apiInfo.storageApi
structure, v2 with the flat one).  Standard library only.  The first line on
stdout is "PORT <n>" (the port it listens on; --port 0 picks a free one).

Calls: b2_authorize_account (GET, Basic auth with a key ID and key: the
account's master key, where the account ID also works as key ID, or an
application key, optionally restricted to one bucket and/or without the
deleteFiles capability), b2_list_buckets,
b2_create_bucket, b2_get_upload_url, b2_upload_file, b2_list_file_names,
b2_list_file_versions, b2_get_file_info, b2_delete_file_version,
b2_hide_file, b2_start_large_file, b2_get_upload_part_url, b2_upload_part,
b2_finish_large_file, b2_cancel_large_file, b2_download_file_by_id and the
download by name GET/HEAD {downloadUrl}/file/{bucket}/{name} with Range.

Checked like the service does: every call needs a valid, unexpired token
(401 bad_auth_token / expired_auth_token / missing_auth_token), the account
ID and bucket restrictions of the key; uploads need Content-Length and a
matching X-Bz-Content-Sha1 (or do_not_verify / hex_digits_at_end), file names
are percent-encoded UTF-8 without control characters (at most 1024 bytes);
an upload URL serves one upload at a time (400 otherwise); large files need
parts of at least the minimum part size (except the last), at least two
parts, and the exact list of part SHA-1s at finish.  Errors are B2 JSON
{"status", "code", "message"}.

Fault injection: --fail-upload-every N answers every Nth upload (b2_upload_file
and b2_upload_part) with 503 service_unavailable and retires that upload URL:
a client must get a new one (a retired URL answers 503 again, and the server
logs "REUSED retired upload url" on stderr).  --token-lifetime S makes
account and upload tokens expire S seconds after they were issued (401
expired_auth_token): a client must authorize again / get a new upload URL.

Data lives under DIR: one .data and one .json file per file version
(DIR/files), bucket records in DIR/buckets.json, unfinished large-file parts
under DIR/parts.  It is read back when the server starts.  Each request is
logged as one line "CALL name status [code]" on stderr (for the tests' counts).
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse

API_VERSIONS = ("v1", "v2", "v3")
MAX_LIST = 10000
DEFAULT_LIST = 100
MAX_PARTS = 10000
MAX_FILE_NAME = 1024
BUCKET_NAME = re.compile(r"^[A-Za-z0-9-]{6,63}$")


class B2Error(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bad(message, code="bad_request"):
    return B2Error(400, code, message)


def now_ms():
    return int(time.time() * 1000)


def new_id(prefix):
    return prefix + secrets.token_hex(12)


class Store:
    """Buckets and file versions; data on disk, an index in memory."""

    def __init__(self, root):
        self.root = root
        self.lock = threading.Lock()
        os.makedirs(os.path.join(root, "files"), exist_ok=True)
        os.makedirs(os.path.join(root, "parts"), exist_ok=True)
        self.buckets = {}  # bucketId -> record
        self.versions = {}  # fileId -> record (action upload/hide/start)
        self.parts = {}  # fileId of an unfinished large file -> {n: (sha1, size)}
        self.load()

    def path(self, *p):
        return os.path.join(self.root, *p)

    def load(self):
        try:
            with open(self.path("buckets.json")) as f:
                for b in json.load(f):
                    self.buckets[b["bucketId"]] = b
        except FileNotFoundError:
            pass
        for n in os.listdir(self.path("files")):
            if n.endswith(".json"):
                with open(self.path("files", n)) as f:
                    rec = json.load(f)
                self.versions[rec["fileId"]] = rec
                if rec["action"] == "start":
                    self.parts[rec["fileId"]] = {}

    def save_buckets(self):
        tmp = self.path("buckets.json.tmp")
        with open(tmp, "w") as f:
            json.dump(list(self.buckets.values()), f)
        os.replace(tmp, self.path("buckets.json"))

    def put_version(self, rec, data=None):
        fid = rec["fileId"]
        if data is not None:
            tmp = self.path("files", fid + ".data.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path("files", fid + ".data"))
        tmp = self.path("files", fid + ".json.tmp")
        with open(tmp, "w") as f:
            json.dump(rec, f)
        os.replace(tmp, self.path("files", fid + ".json"))
        self.versions[fid] = rec

    def drop_version(self, fid):
        self.versions.pop(fid, None)
        for ext in (".json", ".data"):
            try:
                os.unlink(self.path("files", fid + ext))
            except FileNotFoundError:
                pass
        self.drop_parts(fid)

    def drop_parts(self, fid):
        self.parts.pop(fid, None)
        d = self.path("parts", fid)
        if os.path.isdir(d):
            for n in os.listdir(d):
                os.unlink(os.path.join(d, n))
            os.rmdir(d)

    def read_data(self, fid):
        with open(self.path("files", fid + ".data"), "rb") as f:
            return f.read()

    def sorted_versions(self, bucket_id):
        """Versions of a bucket: by name, then newest first (as B2 lists them)."""
        vs = [v for v in self.versions.values() if v["bucketId"] == bucket_id]
        vs.sort(key=lambda v: (v["fileName"].encode(), -v["uploadTimestamp"], v["fileId"]))
        return vs

    def latest(self, bucket_id, name):
        best = None
        for v in self.versions.values():
            if v["bucketId"] == bucket_id and v["fileName"] == name and v["action"] != "start":
                if best is None or v["uploadTimestamp"] > best["uploadTimestamp"]:
                    best = v
        return best


class Server:
    def __init__(self, args):
        self.args = args
        self.store = Store(args.data)
        self.account_id, self.master_key = args.account.split(":", 1)
        # keyId -> (key, bucket name or None, may delete files)
        self.keys = {self.account_id: (self.master_key, None, True)}
        for k in args.app_key or []:
            parts = k.split(":")
            if len(parts) not in (2, 3, 4) or (len(parts) == 4 and parts[3] != "nodelete"):
                sys.exit("--app-key wants ID:KEY[:BUCKET[:nodelete]]")
            bucket = parts[2] if len(parts) >= 3 and parts[2] else None
            self.keys[parts[0]] = (parts[1], bucket, len(parts) < 4)
        self.lock = threading.Lock()
        self.tokens = {}  # account token -> {"expires", "bucket"}
        self.upload_tokens = {}  # upload token -> {"expires", "target", "busy", "retired", "bucket"}
        self.uploads = 0
        self.base_url = None
        self.download_url = None

    def log(self, line):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def expiry(self):
        lt = self.args.token_lifetime
        return time.time() + lt if lt > 0 else float("inf")

    # ---- authorization ---------------------------------------------------

    def authorize(self, header):
        if not header or not header.startswith("Basic "):
            raise B2Error(401, "bad_auth_token", "Basic authorization with an application key ID and key is required")
        try:
            key_id, _, key = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise B2Error(401, "bad_auth_token", "malformed Basic authorization")
        want = self.keys.get(key_id)
        if want is None or not secrets.compare_digest(want[0].encode(), key.encode()):
            raise B2Error(401, "unauthorized", "invalid application key ID or application key")
        token = "4_" + secrets.token_hex(24)
        with self.lock:
            self.tokens[token] = {"expires": self.expiry(), "bucket": want[1], "delete": want[2]}
        return token, want[1], want[2]

    def check_token(self, token):
        if not token:
            raise B2Error(401, "missing_auth_token", "Authorization header is missing")
        with self.lock:
            t = self.tokens.get(token)
        if t is None:
            raise B2Error(401, "bad_auth_token", "Invalid authorization token")
        if time.time() >= t["expires"]:
            raise B2Error(401, "expired_auth_token", "Authorization token has expired")
        return t

    def check_bucket_access(self, tok, bucket):
        if tok["bucket"] is not None and tok["bucket"] != bucket["bucketName"]:
            raise B2Error(401, "unauthorized", "application key is restricted to another bucket")

    def check_account(self, body):
        if body.get("accountId") != self.account_id:
            raise B2Error(401, "unauthorized", "accountId does not match the authorized account")

    def bucket_by_id(self, bucket_id):
        b = self.store.buckets.get(bucket_id) if isinstance(bucket_id, str) else None
        if b is None:
            raise bad("Invalid bucketId: %s" % (bucket_id,), "bad_bucket_id")
        return b

    def bucket_by_name(self, name):
        for b in self.store.buckets.values():
            if b["bucketName"] == name:
                return b
        return None

    # ---- API calls (JSON in, JSON out) ------------------------------------

    def call(self, name, version, tok, body):
        fn = getattr(self, "api_" + name, None)
        if fn is None:
            raise B2Error(404, "not_found", "unknown call %s" % name)
        return fn(version, tok, body)

    def api_b2_list_buckets(self, version, tok, body):
        self.check_account(body)
        bid, bname = body.get("bucketId"), body.get("bucketName")
        if tok["bucket"] is not None and bname != tok["bucket"] and not (
                bid and bid in self.store.buckets and self.store.buckets[bid]["bucketName"] == tok["bucket"]):
            raise B2Error(401, "unauthorized", "a key restricted to a bucket must name it in b2_list_buckets")
        with self.store.lock:
            out = [b for b in self.store.buckets.values()
                   if (bid is None or b["bucketId"] == bid) and (bname is None or b["bucketName"] == bname)]
        types = body.get("bucketTypes")
        if isinstance(types, list) and "all" not in types:
            out = [b for b in out if b["bucketType"] in types]
        return {"buckets": out}

    def api_b2_create_bucket(self, version, tok, body):
        self.check_account(body)
        if tok["bucket"] is not None:
            raise B2Error(401, "unauthorized", "this key cannot create buckets")
        name, btype = body.get("bucketName"), body.get("bucketType")
        if not isinstance(name, str) or not BUCKET_NAME.match(name) or name.lower().startswith("b2-"):
            raise bad("Invalid bucket name: %r" % (name,))
        if btype not in ("allPrivate", "allPublic"):
            raise bad("Invalid bucketType: %r" % (btype,))
        with self.store.lock:
            if self.bucket_by_name(name):
                raise bad("Bucket name is already in use.", "duplicate_bucket_name")
            b = {"accountId": self.account_id, "bucketId": new_id("b"), "bucketName": name,
                 "bucketType": btype, "bucketInfo": body.get("bucketInfo") or {}, "corsRules": [],
                 "lifecycleRules": [], "revision": 1, "options": []}
            self.store.buckets[b["bucketId"]] = b
            self.store.save_buckets()
        return b

    def new_upload_token(self, target, bucket):
        token = "4_up_" + secrets.token_hex(16)
        with self.lock:
            self.upload_tokens[token] = {"expires": self.expiry(), "target": target, "busy": False,
                                         "retired": False, "bucket": bucket}
        return token

    def api_b2_get_upload_url(self, version, tok, body):
        b = self.bucket_by_id(body.get("bucketId"))
        self.check_bucket_access(tok, b)
        token = self.new_upload_token(b["bucketId"], b["bucketId"])
        return {"bucketId": b["bucketId"], "authorizationToken": token,
                "uploadUrl": "%s/b2api/%s/b2_upload_file/%s/%s" % (self.base_url, version, b["bucketId"], token[5:13])}

    def api_b2_get_upload_part_url(self, version, tok, body):
        fid = body.get("fileId")
        with self.store.lock:
            rec = self.store.versions.get(fid) if isinstance(fid, str) else None
            if rec is None or rec["action"] != "start":
                raise bad("No active upload for: %s" % (fid,))
        self.check_bucket_access(tok, self.bucket_by_id(rec["bucketId"]))
        token = self.new_upload_token(fid, rec["bucketId"])
        return {"fileId": fid, "authorizationToken": token,
                "uploadUrl": "%s/b2api/%s/b2_upload_part/%s/%s" % (self.base_url, version, fid, token[5:13])}

    def list_args(self, body):
        b = self.bucket_by_id(body.get("bucketId"))
        count = body.get("maxFileCount", DEFAULT_LIST)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1 or count > MAX_LIST:
            raise bad("maxFileCount out of range: %r" % (count,), "out_of_range")
        prefix = body.get("prefix") or ""
        delim = body.get("delimiter")
        start = body.get("startFileName") or ""
        for v in (prefix, start) + ((delim,) if delim is not None else ()):
            if not isinstance(v, str):
                raise bad("prefix, delimiter and startFileName must be strings")
        return b, count, prefix, delim, start

    def folded(self, name, prefix, delim):
        """With a delimiter, a name below prefix that has it further on lists as its folder."""
        if delim:
            i = name.find(delim, len(prefix))
            if i >= 0:
                return name[:i + len(delim)]
        return None

    def api_b2_list_file_names(self, version, tok, body):
        b, count, prefix, delim, start = self.list_args(body)
        self.check_bucket_access(tok, b)
        files, seen = [], set()
        with self.store.lock:
            for v in self.store.sorted_versions(b["bucketId"]):
                name = v["fileName"]
                if name in seen or v["action"] == "start" or not name.startswith(prefix):
                    continue
                if name.encode() < start.encode():
                    continue
                seen.add(name)  # only the newest version counts; hidden files are left out
                if v["action"] != "upload":
                    continue
                folder = self.folded(name, prefix, delim)
                if folder:
                    if files and files[-1]["fileName"] == folder:
                        continue
                    entry = {"action": "folder", "fileName": folder, "fileId": None, "contentLength": 0,
                             "uploadTimestamp": 0}
                else:
                    entry = v
                if len(files) == count:
                    return {"files": files, "nextFileName": entry["fileName"]}
                files.append(entry)
        return {"files": files, "nextFileName": None}

    def api_b2_list_file_versions(self, version, tok, body):
        b, count, prefix, delim, start = self.list_args(body)
        self.check_bucket_access(tok, b)
        start_id = body.get("startFileId")
        if start_id is not None and not start:
            raise bad("startFileId needs startFileName")
        files = []
        with self.store.lock:
            vs = self.store.sorted_versions(b["bucketId"])
            skipping = start_id is not None
            for v in vs:
                name = v["fileName"]
                if not name.startswith(prefix) or name.encode() < start.encode():
                    continue
                if skipping:
                    if name == start and v["fileId"] != start_id:
                        continue
                    skipping = False
                if len(files) == count:
                    return {"files": files, "nextFileName": name, "nextFileId": v["fileId"]}
                files.append(v)
        return {"files": files, "nextFileName": None, "nextFileId": None}

    def api_b2_get_file_info(self, version, tok, body):
        with self.store.lock:
            rec = self.store.versions.get(body.get("fileId")) if isinstance(body.get("fileId"), str) else None
        if rec is None or rec["action"] == "start":
            raise B2Error(404, "not_found", "file not present: %s" % (body.get("fileId"),))
        self.check_bucket_access(tok, self.bucket_by_id(rec["bucketId"]))
        return rec

    def api_b2_delete_file_version(self, version, tok, body):
        if not tok["delete"]:
            raise B2Error(401, "unauthorized", "the key lacks the deleteFiles capability")
        fid, name = body.get("fileId"), body.get("fileName")
        with self.store.lock:
            rec = self.store.versions.get(fid) if isinstance(fid, str) else None
            if rec is None or rec["fileName"] != name:
                raise bad("File not present: %s %s" % (name, fid), "file_not_present")
            self.check_bucket_access(tok, self.bucket_by_id(rec["bucketId"]))
            self.store.drop_version(fid)
        return {"fileId": fid, "fileName": name}

    def api_b2_hide_file(self, version, tok, body):
        b = self.bucket_by_id(body.get("bucketId"))
        self.check_bucket_access(tok, b)
        name = body.get("fileName")
        with self.store.lock:
            cur = self.store.latest(b["bucketId"], name) if isinstance(name, str) else None
            if cur is None:
                raise B2Error(404, "no_such_file", "File not present: %s" % (name,))
            if cur["action"] == "hide":
                raise bad("File already hidden: %s" % (name,), "already_hidden")
            rec = self.file_record(b, name, "hide", 0, "none", "application/x-bz-hide-marker", {})
            self.store.put_version(rec, b"")
        return rec

    def api_b2_start_large_file(self, version, tok, body):
        b = self.bucket_by_id(body.get("bucketId"))
        self.check_bucket_access(tok, b)
        name = check_file_name(body.get("fileName"))
        ctype = body.get("contentType")
        if not isinstance(ctype, str) or not ctype:
            raise bad("contentType is required")
        info = body.get("fileInfo") or {}
        if not isinstance(info, dict):
            raise bad("fileInfo must be an object")
        rec = self.file_record(b, name, "start", 0, "none", ctype, info)
        with self.store.lock:
            self.store.put_version(rec)
            self.store.parts[rec["fileId"]] = {}
        return rec

    def api_b2_finish_large_file(self, version, tok, body):
        fid, sha1s = body.get("fileId"), body.get("partSha1Array")
        with self.store.lock:
            rec = self.store.versions.get(fid) if isinstance(fid, str) else None
            if rec is None or rec["action"] != "start":
                raise bad("No active upload for: %s" % (fid,))
            self.check_bucket_access(tok, self.bucket_by_id(rec["bucketId"]))
            parts = self.store.parts.get(fid, {})
            if not isinstance(sha1s, list) or len(sha1s) < 2:
                raise bad("large files must have at least 2 parts")
            if sorted(parts) != list(range(1, len(sha1s) + 1)):
                raise bad("Part numbers uploaded (%s) do not match partSha1Array" % sorted(parts))
            for n, s in enumerate(sha1s, 1):
                if parts[n][0] != s:
                    raise bad("Part %d sha1 does not match partSha1Array" % n)
            for n in range(1, len(sha1s)):
                if parts[n][1] < self.args.min_part_size:
                    raise bad("Part number %d is smaller than the minimum part size" % n)
            d = self.store.path("parts", fid)
            data = b"".join(open(os.path.join(d, str(n)), "rb").read() for n in range(1, len(sha1s) + 1))
            rec = dict(rec, action="upload", contentLength=len(data), uploadTimestamp=now_ms())
            self.store.put_version(rec, data)
            self.store.drop_parts(fid)
        return rec

    def api_b2_cancel_large_file(self, version, tok, body):
        fid = body.get("fileId")
        with self.store.lock:
            rec = self.store.versions.get(fid) if isinstance(fid, str) else None
            if rec is None or rec["action"] != "start":
                raise bad("No active upload for: %s" % (fid,))
            self.check_bucket_access(tok, self.bucket_by_id(rec["bucketId"]))
            self.store.drop_version(fid)
        return {"fileId": fid, "accountId": self.account_id, "bucketId": rec["bucketId"], "fileName": rec["fileName"]}

    def file_record(self, bucket, name, action, length, sha1, ctype, info):
        return {"accountId": self.account_id, "action": action, "bucketId": bucket["bucketId"],
                "contentLength": length, "contentSha1": sha1, "contentMd5": None, "contentType": ctype,
                "fileId": new_id("4_z"), "fileInfo": info, "fileName": name, "uploadTimestamp": now_ms()}

    # ---- uploads -----------------------------------------------------------

    def take_upload_token(self, token, target):
        """Mark an upload token busy; errors for unknown, expired, busy or retired ones."""
        if not token:
            raise B2Error(401, "missing_auth_token", "Authorization header is missing")
        with self.lock:
            t = self.upload_tokens.get(token)
            if t is None or t["target"] != target:
                raise B2Error(401, "bad_auth_token", "Invalid upload authorization token")
            if t["retired"]:
                self.log("REUSED retired upload url")
                raise B2Error(503, "service_unavailable", "this upload URL is no longer usable: get a new one")
            if time.time() >= t["expires"]:
                raise B2Error(401, "expired_auth_token", "Upload authorization token has expired")
            if t["busy"]:
                raise bad("An upload URL takes one upload at a time")
            t["busy"] = True
            self.uploads += 1
            inject = self.args.fail_upload_every > 0 and self.uploads % self.args.fail_upload_every == 0
            if inject:
                t["retired"] = True
        return t, inject

    def release_upload_token(self, t):
        with self.lock:
            t["busy"] = False


def check_file_name(name):
    if not isinstance(name, str) or not name:
        raise bad("fileName is required")
    raw = name.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_FILE_NAME:
        raise bad("File names must be at most 1024 bytes")
    if any(c < 32 or c == 127 for c in raw):
        raise bad("File names must not contain control characters")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("File names must be valid UTF-8")
    return name


def decode_header_name(value):
    """X-Bz-File-Name: percent-encoded UTF-8, '+' for a space."""
    if value is None:
        raise bad("X-Bz-File-Name is required")
    try:
        name = urllib.parse.unquote_plus(value, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise bad("X-Bz-File-Name is not percent-encoded UTF-8")
    return check_file_name(name)


def verify_sha1(data, header):
    """The body without a trailing hex SHA-1 (hex_digits_at_end), checked against the header."""
    if header is None:
        raise bad("X-Bz-Content-Sha1 is required")
    if header == "do_not_verify":
        return data, hashlib.sha1(data).hexdigest()
    if header == "hex_digits_at_end":
        if len(data) < 40:
            raise bad("body too short for hex_digits_at_end")
        data, header = data[:-40], data[-40:].decode("ascii", "replace")
    if hashlib.sha1(data).hexdigest() != header.lower():
        raise bad("Sha1 did not match data received")
    return data, header.lower()


RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header, size):
    """(start, end) inclusive, or None for the whole object; B2Error 416 when unsatisfiable."""
    if header is None:
        return None
    m = RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # malformed ranges are ignored, as HTTP allows
    if not m.group(1):
        n = int(m.group(2))
        if n == 0 or size == 0:
            raise B2Error(416, "range_not_satisfiable", "The range is not satisfiable")
        return max(0, size - n), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        raise B2Error(416, "range_not_satisfiable", "The range %s is not satisfiable for %d bytes" % (header, size))
    return start, min(end, size - 1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "b2server/1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, fmt, *args):
        pass

    @property
    def b2(self):
        return self.server.b2

    def send_json(self, status, obj, call="-", code=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=0, no-cache, no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.b2.log("CALL %s %d%s" % (call, status, " " + code if code else ""))

    def send_error_json(self, e, call):
        self.send_json(e.status, {"status": e.status, "code": e.code, "message": e.message}, call, e.code)

    def read_body(self):
        if self.headers.get("Transfer-Encoding"):
            raise B2Error(400, "bad_request", "chunked transfer encoding is not supported: send Content-Length")
        n = self.headers.get("Content-Length")
        if n is None:
            if self.command == "POST":
                raise B2Error(411, "bad_request", "Content-Length is required")
            return b""
        try:
            n = int(n)
        except ValueError:
            raise bad("bad Content-Length")
        if n < 0:
            raise bad("bad Content-Length")
        return self.rfile.read(n)

    def route(self):
        path = urllib.parse.urlsplit(self.path)
        parts = path.path.split("/")
        # /b2api/vN/call[/...]
        if len(parts) >= 4 and parts[1] == "b2api" and parts[2] in API_VERSIONS:
            return "api", parts[2], parts[3], parts[4:], path.query
        if len(parts) >= 4 and parts[1] == "file":
            return "download", None, parts[2], parts[3:], path.query
        return None, None, None, None, None

    def handle_any(self):
        kind, version, call, rest, query = self.route()
        name = call if kind == "api" else "download"
        try:
            if kind == "api" and call in ("b2_upload_file", "b2_upload_part"):
                # the upload URL is taken before the body arrives: one upload at a time
                return self.do_upload(version, rest, part=call == "b2_upload_part")
            body = self.read_body()
            if kind == "api":
                if call == "b2_authorize_account":
                    return self.do_authorize(version)
                if call == "b2_download_file_by_id":
                    return self.do_download_by_id(query)
                tok = self.b2.check_token(self.headers.get("Authorization"))
                args = self.request_args(body, query)
                return self.send_json(200, self.b2.call(call, version, tok, args), name)
            if kind == "download":
                return self.do_download(call, "/".join(rest), query)
            raise B2Error(404, "not_found", "no such call: %s" % self.path.split("?")[0])
        except B2Error as e:
            self.send_error_json(e, name)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    def request_args(self, body, query):
        if self.command == "POST" and body:
            try:
                args = json.loads(body)
            except ValueError:
                raise bad("request body is not JSON")
            if not isinstance(args, dict):
                raise bad("request body must be a JSON object")
            return args
        args = {}
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            args[k] = int(v) if k == "maxFileCount" and v.isdigit() else v
        return args

    def do_authorize(self, version):
        token, bucket_name, may_delete = self.b2.authorize(self.headers.get("Authorization"))
        b = self.b2.bucket_by_name(bucket_name) if bucket_name else None
        base = self.b2.base_url
        caps = ["listBuckets", "listFiles", "readFiles", "writeFiles", "shareFiles"] + (["deleteFiles"] if may_delete else [])
        if bucket_name is None:
            caps += ["listAllBucketNames", "writeBuckets", "readBuckets"]
        common = {"absoluteMinimumPartSize": self.b2.args.min_part_size,
                  "recommendedPartSize": self.b2.args.recommended_part_size,
                  "apiUrl": base, "downloadUrl": self.b2.download_url, "s3ApiUrl": base}
        if version == "v3":
            allowed = {"buckets": [{"id": b["bucketId"], "name": bucket_name}] if bucket_name else None,
                       "capabilities": caps, "namePrefix": None}
            out = {"accountId": self.b2.account_id, "authorizationToken": token,
                   "apiInfo": {"storageApi": dict(common, allowed=allowed, infoType="storageApi")},
                   "applicationKeyExpirationTimestamp": None}
        else:
            allowed = {"bucketId": b["bucketId"] if b else None, "bucketName": bucket_name,
                       "capabilities": caps, "namePrefix": None}
            out = dict(common, accountId=self.b2.account_id, authorizationToken=token, allowed=allowed)
            if version == "v1":
                out["minimumPartSize"] = self.b2.args.recommended_part_size  # v1's name, kept for old clients
        self.send_json(200, out, "b2_authorize_account")

    def do_upload(self, version, rest, part):
        call = "b2_upload_part" if part else "b2_upload_file"
        try:
            if len(rest) != 2:
                raise B2Error(404, "not_found", "bad upload URL")
            target = rest[0]
            t, inject = self.b2.take_upload_token(self.headers.get("Authorization"), target)
        except B2Error:
            self.read_body()  # drained, so the client reads the answer
            raise
        try:
            body = self.read_body()
            if inject:
                self.b2.log("INJECTED 503 on %s" % call)
                raise B2Error(503, "service_unavailable", "injected fault: get a new upload URL")
            data, sha1 = verify_sha1(body, self.headers.get("X-Bz-Content-Sha1"))
            if part:
                out = self.store_part(target, data, sha1)
            else:
                out = self.store_file(t, data, sha1)
        finally:
            self.b2.release_upload_token(t)
        self.send_json(200, out, call)

    def store_file(self, t, data, sha1):
        name = decode_header_name(self.headers.get("X-Bz-File-Name"))
        ctype = self.headers.get("Content-Type") or "b2/x-auto"
        if ctype == "b2/x-auto":
            ctype = "application/octet-stream"
        info = {}
        for k, v in self.headers.items():
            if k.lower().startswith("x-bz-info-"):
                info[k[10:].lower()] = urllib.parse.unquote(v)
        store = self.b2.store
        with store.lock:
            b = self.b2.bucket_by_id(t["target"])
            rec = self.b2.file_record(b, name, "upload", len(data), sha1, ctype, info)
            store.put_version(rec, data)
        return rec

    def store_part(self, fid, data, sha1):
        try:
            n = int(self.headers.get("X-Bz-Part-Number", ""))
        except ValueError:
            raise bad("X-Bz-Part-Number is required")
        if n < 1 or n > MAX_PARTS:
            raise bad("X-Bz-Part-Number must be from 1 to %d" % MAX_PARTS)
        store = self.b2.store
        with store.lock:
            if fid not in store.parts:
                raise bad("No active upload for: %s" % fid)
            d = store.path("parts", fid)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, str(n)), "wb") as f:
                f.write(data)
            store.parts[fid][n] = (sha1, len(data))
        return {"fileId": fid, "partNumber": n, "contentLength": len(data), "contentSha1": sha1,
                "contentMd5": None, "uploadTimestamp": now_ms()}

    def download_token(self, query):
        tok = self.headers.get("Authorization")
        if not tok:
            tok = dict(urllib.parse.parse_qsl(query)).get("Authorization")
        return self.b2.check_token(tok)

    def do_download(self, bucket_enc, name_enc, query):
        tok = self.download_token(query)
        bucket = urllib.parse.unquote(bucket_enc)
        try:
            name = urllib.parse.unquote(name_enc, errors="strict")
        except UnicodeDecodeError:
            raise bad("file name is not percent-encoded UTF-8")
        store = self.b2.store
        with store.lock:
            b = self.b2.bucket_by_name(bucket)
            if b is None:
                raise B2Error(404, "not_found", "Bucket does not exist: %s" % bucket)
            self.b2.check_bucket_access(tok, b)
            rec = store.latest(b["bucketId"], name)
            if rec is None or rec["action"] != "upload":
                raise B2Error(404, "not_found", "File with such name does not exist.")
            data = store.read_data(rec["fileId"])
        self.send_file(rec, data)

    def do_download_by_id(self, query):
        tok = self.download_token(query)
        fid = dict(urllib.parse.parse_qsl(query)).get("fileId")
        store = self.b2.store
        with store.lock:
            rec = store.versions.get(fid)
            if rec is None or rec["action"] != "upload":
                raise B2Error(404, "not_found", "File with such id does not exist.")
            self.b2.check_bucket_access(tok, self.b2.bucket_by_id(rec["bucketId"]))
            data = store.read_data(fid)
        self.send_file(rec, data)

    def send_file(self, rec, data):
        rng = parse_range(self.headers.get("Range"), len(data))
        status, chunk = 200, data
        if rng is not None:
            status, chunk = 206, data[rng[0]:rng[1] + 1]
        self.send_response(status)
        self.send_header("Content-Type", rec["contentType"])
        self.send_header("Content-Length", str(len(chunk)))
        if rng is not None:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (rng[0], rng[1], len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("x-bz-file-name", urllib.parse.quote(rec["fileName"], safe="/"))
        self.send_header("x-bz-file-id", rec["fileId"])
        self.send_header("x-bz-content-sha1", rec["contentSha1"])
        self.send_header("x-bz-upload-timestamp", str(rec["uploadTimestamp"]))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(chunk)
        self.b2.log("CALL download %d" % status)

    do_GET = do_POST = do_HEAD = handle_any


class B2HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="directory for buckets and files")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--account", default="test-account-id:test-master-key",
                    help="ACCOUNT_ID:MASTER_KEY (the account ID is the master key's ID)")
    ap.add_argument("--app-key", action="append",
                    help="KEY_ID:KEY[:BUCKET[:nodelete]] an application key (nodelete: without deleteFiles)")
    ap.add_argument("--fail-upload-every", type=int, default=0, help="every Nth upload answers 503")
    ap.add_argument("--token-lifetime", type=float, default=0, help="tokens expire after this many seconds")
    ap.add_argument("--min-part-size", type=int, default=5000000)
    ap.add_argument("--recommended-part-size", type=int, default=100000000)
    ap.add_argument("--public-url", help="base URL handed out as apiUrl/downloadUrl/upload URLs "
                                         "(e.g. a proxy in front of this server)")
    ap.add_argument("--download-url", help="base URL handed out as downloadUrl (default: as apiUrl)")
    args = ap.parse_args()
    os.makedirs(args.data, exist_ok=True)
    b2 = Server(args)
    httpd = B2HTTPServer(("127.0.0.1", args.port), Handler)
    httpd.b2 = b2
    port = httpd.server_address[1]
    b2.base_url = args.public_url.rstrip("/") if args.public_url else "http://127.0.0.1:%d" % port
    b2.download_url = args.download_url.rstrip("/") if args.download_url else b2.base_url
    print("PORT %d" % port, flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
