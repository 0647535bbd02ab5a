#!/usr/bin/env python3
"""Write small restic repositories with hostile or damaged content, for the
restore end-to-end tests (tests/e2e/test_restore_hostile.sh).

Written from the format specification (shared/spec/restic-format.md): a
repository of format version 1 (nothing compressed), one key file with
cheap scrypt parameters, packs, one index file and snapshots.  Trees are
written as raw JSON so that names, types and members can be anything a
malicious writer would put there.

Needs python3-cryptography (AES-CTR/ECB, Poly1305); scrypt comes from
hashlib.

usage: craft_repo.py OUTDIR SCENARIO [OUTSIDE_DIR]
       craft_repo.py --list
Password of every repository: "hostile".  The scenarios are described in
SCENARIOS below; OUTSIDE_DIR is where hostile symlinks point (default
/tmp/crestic-outside).
"""
import base64
import hashlib
import json
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

PASSWORD = b"hostile"
POLYNOMIAL = "3da3358b4dc173"  # irreducible (the chunker test polynomial)
TIME = "2024-01-02T03:04:05Z"


def sha256(b):
    return hashlib.sha256(b).digest()


class Key:
    def __init__(self, enc, mac_k, mac_r):
        self.enc, self.mac_k, self.mac_r = enc, mac_k, mac_r

    @staticmethod
    def random():
        return Key(os.urandom(32), os.urandom(16), os.urandom(16))

    def _tag(self, iv, ct):
        ecb = Cipher(algorithms.AES(self.mac_k), modes.ECB()).encryptor()
        s = ecb.update(iv) + ecb.finalize()
        return Poly1305.generate_tag(self.mac_r + s, ct)

    def seal(self, plain):
        """IV || AES-256-CTR(plain) || Poly1305-AES tag over the ciphertext."""
        iv = os.urandom(16)
        ctr = Cipher(algorithms.AES(self.enc), modes.CTR(iv)).encryptor()
        ct = ctr.update(plain) + ctr.finalize()
        return iv + ct + self._tag(iv, ct)


def b64(b):
    return base64.b64encode(b).decode()


class Repo:
    """A version 1 repository being written into a directory."""

    def __init__(self, path):
        self.path = path
        self.master = Key.random()
        self.index = []  # [pack id hex, [(blob id hex, type, offset, length)]]
        for d in ["keys", "data", "index", "snapshots", "locks"]:
            os.makedirs(os.path.join(path, d), exist_ok=True)
        self._write_key()
        cfg = json.dumps({"version": 1, "id": os.urandom(32).hex(), "chunker_polynomial": POLYNOMIAL},
                         separators=(",", ":")).encode()
        self._put("config", self.master.seal(cfg))

    def _put(self, rel, data):
        p = os.path.join(self.path, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def _write_key(self):
        salt = os.urandom(64)
        n, r, p = 1024, 8, 1
        km = hashlib.scrypt(PASSWORD, salt=salt, n=n, r=r, p=p, dklen=64, maxmem=64 << 20)
        user = Key(km[:32], km[32:48], km[48:64])
        mk = json.dumps({"mac": {"k": b64(self.master.mac_k), "r": b64(self.master.mac_r)},
                         "encrypt": b64(self.master.enc)}, separators=(",", ":")).encode()
        doc = json.dumps({"created": TIME, "username": "crafter", "hostname": "crafthost", "kdf": "scrypt",
                          "N": n, "r": r, "p": p, "salt": b64(salt), "data": b64(user.seal(mk))},
                         separators=(",", ":")).encode()
        self._put("keys/" + sha256(doc).hex(), doc)

    def _unpacked(self, kind, obj):
        data = self.master.seal(json.dumps(obj, separators=(",", ":")).encode())
        name = sha256(data).hex()
        self._put(kind + "/" + name, data)
        return name

    def pack(self, blobs, mangle=None):
        """blobs: list of (type, plaintext, claimed_id or None, stored_override or None).
        Returns the pack id; the index gets every blob.  mangle(bytes) may
        damage the finished file (after naming it, as a disk would)."""
        body, header, entries = b"", b"", []
        for typ, plain, claimed, stored in blobs:
            bid = claimed or sha256(plain)
            enc = stored if stored is not None else self.master.seal(plain)
            entries.append((bid.hex(), typ, len(body), len(enc)))
            header += bytes([0 if typ == "data" else 1]) + struct.pack("<I", len(enc)) + bid
            body += enc
        eh = self.master.seal(header)
        data = body + eh + struct.pack("<I", len(eh))
        pid = sha256(data).hex()
        self._put("data/%s/%s" % (pid[:2], pid), mangle(data) if mangle else data)
        self.index.append([pid, entries])
        return pid

    def finish_index(self, extra_entries=()):
        packs = [{"id": pid, "blobs": [{"id": i, "type": t, "offset": o, "length": n} for i, t, o, n in ents]}
                 for pid, ents in self.index]
        for pid, ents in extra_entries:
            packs.append({"id": pid, "blobs": [{"id": i, "type": t, "offset": o, "length": n} for i, t, o, n in ents]})
        self._unpacked("index", {"packs": packs})

    def snapshot(self, tree_id, paths=("/crafted",)):
        return self._unpacked("snapshots", {"time": TIME, "tree": tree_id.hex(), "paths": list(paths),
                                            "hostname": "crafthost", "username": "crafter"})


# ---- trees: raw JSON, so anything can be expressed ----

def node(name_json, typ, **kw):
    """name_json: the name as it appears between the JSON quotes (already
    Go-quoted and JSON-escaped by the caller)."""
    m = {"file": 420, "dir": 2147484141, "symlink": 134218239}.get(typ, 420)
    parts = ['"name":"%s"' % name_json, '"type":"%s"' % typ, '"mode":%d' % kw.pop("mode", m),
             '"mtime":"2023-05-06T07:08:09.123456789Z"', '"atime":"2023-05-06T07:08:09.123456789Z"',
             '"ctime":"2023-05-06T07:08:09Z"', '"uid":%d' % os.getuid(), '"gid":%d' % os.getgid()]
    for k in ("inode", "device_id", "size", "links"):
        if k in kw:
            parts.append('"%s":%d' % (k, kw.pop(k)))
    if "linktarget" in kw:
        parts.append('"linktarget":%s' % json.dumps(kw.pop("linktarget")))
    content = kw.pop("content", None)
    parts.append('"content":%s' % ("null" if content is None else json.dumps([c.hex() for c in content])))
    if "subtree" in kw:
        parts.append('"subtree":"%s"' % kw.pop("subtree").hex())
    assert not kw, kw
    return "{" + ",".join(parts) + "}"


def tree_json(nodes):
    return ('{"nodes":[' + ",".join(nodes) + "]}\n").encode()


class Builder:
    """Collects data and tree blobs, then writes them in packs."""

    def __init__(self, repo):
        self.repo = repo
        self.data, self.trees = [], []

    def blob(self, content):
        self.data.append(("data", content, None, None))
        return sha256(content)

    def file(self, name_json, content, **kw):
        ids = [self.blob(content)] if content else []
        return node(name_json, "file", content=ids, size=len(content), **kw)

    def tree(self, nodes):
        t = tree_json(nodes)
        self.trees.append(("tree", t, None, None))
        return sha256(t)

    def raw_tree(self, blob_bytes):
        """A tree blob with arbitrary bytes (garbled JSON)."""
        self.trees.append(("tree", blob_bytes, None, None))
        return sha256(blob_bytes)

    def flush(self):
        if self.data:
            self.repo.pack(self.data)
        if self.trees:
            self.repo.pack(self.trees)
        self.data, self.trees = [], []


GOOD = b"good content\n" * 100


def scenario_names(repo, outside):
    """Names that must never be used: "..", ".", "", "a/b", "x\\0y" (as the
    Go escape \\x00), "../escape", a directory named ".." holding "pwned";
    next to them good files that must be restored."""
    b = Builder(repo)
    pwned = b.tree([b.file("pwned", b"PWNED\n")])
    nodes = [
        b.file("", b"empty name\n"),
        node("..", "dir", subtree=pwned),
        b.file(".", b"dot\n"),
        b.file("../escape", b"escape\n"),
        b.file("a/b", b"slash\n"),
        b.file("good.txt", GOOD),
        b.file("x\\\\x00y", b"nul\n"),
        b.file("zz-last.txt", b"last\n"),
    ]
    sub = b.tree([b.file("inner.txt", b"inner\n"), node("..", "dir", subtree=pwned)])
    nodes.insert(6, node("sub", "dir", subtree=sub))
    root = b.tree(nodes)
    b.flush()
    repo.finish_index()
    repo.snapshot(root)


def scenario_symlinks(repo, outside):
    """A symlink "evil" -> OUTSIDE and a directory "evil" holding "pwned"
    (duplicate names); a symlink "abs" -> OUTSIDE/file next to a file "abs";
    a dangling symlink and a symlink into OUTSIDE that stays a symlink.
    Second snapshot (restored on top of the first): a directory "link-dir"
    and a file "link-file" where the first snapshot left symlinks to OUTSIDE."""
    b = Builder(repo)
    pwned = b.tree([b.file("pwned", b"PWNED\n")])
    root1 = b.tree([
        node("abs", "symlink", linktarget=os.path.join(outside, "file"), links=1),
        b.file("abs", b"PWNED through abs\n"),
        node("dangling", "symlink", linktarget="does/not/exist", links=1),
        node("evil", "symlink", linktarget=outside, links=1),
        node("evil", "dir", subtree=pwned),
        b.file("good.txt", GOOD),
        node("link-dir", "symlink", linktarget=outside, links=1),
        node("link-file", "symlink", linktarget=os.path.join(outside, "victim"), links=1),
    ])
    root2 = b.tree([
        b.file("good.txt", GOOD),
        node("link-dir", "dir", subtree=pwned),
        b.file("link-file", b"PWNED through link-file\n"),
    ])
    b.flush()
    repo.finish_index()
    repo.snapshot(root1, paths=("/first",))
    repo.snapshot(root2, paths=("/second",))


def scenario_damaged(repo, outside):
    """good.bin and corrupt.bin share a pack; corrupt.bin's blob has a
    flipped ciphertext byte (MAC failure).  lying.bin's blob decrypts fine
    but its plaintext does not hash to the ID it is stored under.  copies.bin
    has a broken copy and a good copy in another pack (the index lists both).
    shared-*.bin use one blob twice.  A directory whose tree blob is not
    JSON, one whose tree is missing from the index, and a directory node
    without a subtree."""
    good, corrupt, lying, copies, shared = (os.urandom(5000), os.urandom(7000), os.urandom(3000),
                                            os.urandom(4000), os.urandom(6000))
    m = repo.master
    bad_mac = bytearray(m.seal(corrupt))
    bad_mac[40] ^= 0x55
    claimed_lie = sha256(b"what the ID promises")
    copy_broken = bytearray(m.seal(copies))
    copy_broken[-1] ^= 1
    repo.pack([("data", good, None, None), ("data", corrupt, None, bytes(bad_mac)),
               ("data", lying, claimed_lie, None), ("data", copies, None, bytes(copy_broken)),
               ("data", shared, None, None)])
    repo.pack([("data", copies, None, None)])  # the good copy, in a pack listed later
    b = Builder(repo)
    garbled = b.raw_tree(b'{"nodes":[{"name":"x","type":"file",,,]]}\n')
    missing_tree = sha256(b"a tree nobody stored")
    sub = b.tree([b.file("fine.txt", b"fine\n")])
    root = b.tree([
        node("copies.bin", "file", content=[sha256(copies)], size=len(copies)),
        node("corrupt.bin", "file", content=[sha256(good), sha256(corrupt), sha256(good)], size=2 * len(good) + len(corrupt)),
        node("garbled", "dir", subtree=garbled),
        node("good.bin", "file", content=[sha256(good)], size=len(good)),
        node("lying.bin", "file", content=[claimed_lie], size=len(lying)),
        node("missing-tree", "dir", subtree=missing_tree),
        node("no-subtree", "dir"),
        node("shared-a.bin", "file", content=[sha256(shared), sha256(shared)], size=2 * len(shared)),
        node("shared-b.bin", "file", content=[sha256(shared)], size=len(shared)),
        node("sub", "dir", subtree=sub),
        node("huge-claim.bin", "file", content=[sha256(b"claimed 3.75 GiB")], size=16),
        node("huge-size.bin", "file", content=[], size=1 << 60),
        node("unknown-blob.bin", "file", content=[sha256(b"never stored")], size=12),
        node("weird", "whatever"),
    ])
    b.flush()
    # an index entry claiming a 3.75 GiB blob in a pack that does not exist
    repo.finish_index(extra_entries=[(sha256(b"no such pack").hex(),
                                      [(sha256(b"claimed 3.75 GiB").hex(), "data", 0, 0xF0000000)])])
    repo.snapshot(root)
    expected = {"good.bin": good, "copies.bin": copies, "shared-a.bin": shared + shared, "shared-b.bin": shared,
                "sub/fine.txt": b"fine\n"}
    return expected


def scenario_truncated(repo, outside):
    """One pack with ten blobs (ten files), cut off in the middle: the files
    before the cut restore, the others fail; the header is gone too."""
    blobs = [os.urandom(20000 + i) for i in range(10)]
    cut = {}

    def mangle(data):
        cut["at"] = 20000 * 5 + 32 * 5 + 100  # inside the sixth blob
        return data[:cut["at"]]

    repo.pack([("data", x, None, None) for x in blobs], mangle=mangle)
    b = Builder(repo)
    root = b.tree([node("f%d.bin" % i, "file", content=[sha256(x)], size=len(x)) for i, x in enumerate(blobs)])
    b.flush()
    repo.finish_index()
    repo.snapshot(root)
    return {"f%d.bin" % i: x for i, x in enumerate(blobs[:5])}


def scenario_hardlinks(repo, outside):
    """A hard link group whose members are a file and, in a later
    directory, a file of the same inode; plus a symlink created before a
    hard link of the same name (duplicate) that must not become a way out."""
    b = Builder(repo)
    data = b"linked\n" * 50
    sub = b.tree([b.file("second", data, inode=77, device_id=5, links=2)])
    root = b.tree([
        b.file("first", data, inode=77, device_id=5, links=2),
        node("out", "symlink", linktarget=os.path.join(outside, "hl"), links=1),
        b.file("out", data, inode=77, device_id=5, links=2),
        node("sub", "dir", subtree=sub),
    ])
    b.flush()
    repo.finish_index()
    repo.snapshot(root)


def scenario_deep(repo, outside):
    """Directories nested 2100 deep (deeper than crestic follows), a file at
    the bottom, and a good file at the top."""
    b = Builder(repo)
    t = b.tree([b.file("bottom.txt", b"bottom\n")])
    for _ in range(2100):
        t = b.tree([node("d", "dir", subtree=t)])
    root = b.tree([node("d", "dir", subtree=t), b.file("top.txt", GOOD)])
    b.flush()
    repo.finish_index()
    repo.snapshot(root)
    return {"top.txt": GOOD}


SCENARIOS = {
    "names": scenario_names,
    "symlinks": scenario_symlinks,
    "damaged": scenario_damaged,
    "truncated": scenario_truncated,
    "hardlinks": scenario_hardlinks,
    "deep": scenario_deep,
}


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(SCENARIOS))
        return
    if len(sys.argv) not in (3, 4) or sys.argv[2] not in SCENARIOS:
        sys.exit(__doc__)
    out, name = sys.argv[1], sys.argv[2]
    outside = sys.argv[3] if len(sys.argv) == 4 else "/tmp/crestic-outside"
    repo = Repo(out)
    expected = SCENARIOS[name](repo, outside) or {}
    # expected good files (relative path -> sha256), for the test to check
    with open(os.path.join(out, "expected.txt"), "w") as f:
        for rel, content in sorted(expected.items()):
            f.write("%s %s\n" % (hashlib.sha256(content).hexdigest(), rel))


if __name__ == "__main__":
    main()
