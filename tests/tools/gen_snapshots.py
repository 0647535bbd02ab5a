#!/usr/bin/env python3
"""Make a repository with many snapshots for the forget tests.

usage: gen_snapshots.py REPO [--count N] [--seed N] [--restic PATH]

REPO must not exist.  The password is taken from $RESTIC_PASSWORD.

restic creates the repository and backs up one tiny directory (so every
snapshot points at a real tree and `restic check` stays happy); then its
snapshot is deleted and N snapshot files are written directly, encrypted
with the master key (`restic cat masterkey`), instead of running `restic
backup --time` N times (each run would cost a key derivation).  The key
file is replaced by one with cheap scrypt parameters for the same reason.

The snapshots are deterministic for a seed and meant to be awkward for a
retention policy:
  * times over several years, clustered around year ends (ISO weeks 52/53/1)
    and around midnight, in many zone offsets (-12:00 .. +14:00, +05:30,
    Z), with and without nanoseconds;
  * ties: runs of snapshots with exactly the same time (more than 12 in one
    group, so insertion sort and the merge steps of a sort are both
    exercised), the same instant written in different offsets, and the same
    wall clock in different offsets;
  * a group whose --keep-within cut-off depends on Go's local-zone rules
    (host delta, run under TZ=Europe/Berlin);
  * a few snapshots in the future (--keep-within measures from the newest
    snapshot that is not in the future);
  * three hosts, path lists in unsorted order, tag lists in unsorted order,
    untagged snapshots.
"""

import base64
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

HOSTS = ["alpha", "beta", "gamma"]
PATH_SETS = [["/data"], ["/home/user", "/etc"], ["/srv", "/data"]]
TAG_SETS = [[], [], ["daily"], ["weekly", "keep"], ["keep"], ["b", "a"], ["daily", "monthly"]]
# offsets in minutes east of UTC
OFFSETS = [0, 0, 60, 120, -300, -240, 330, 840, -720, 345, -570]


def run(restic, repo, *args, capture=False):
    cmd = [restic, "-r", repo, "--no-cache", "-q"] + list(args)
    if capture:
        return subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return None


def seal(master, plaintext):
    """restic's container: IV || AES-256-CTR(plaintext) || Poly1305-AES MAC."""
    enc = base64.b64decode(master["encrypt"])
    mac_k = base64.b64decode(master["mac"]["k"])
    mac_r = base64.b64decode(master["mac"]["r"])
    iv = os.urandom(16)
    ct = Cipher(algorithms.AES(enc), modes.CTR(iv)).encryptor().update(plaintext)
    s = Cipher(algorithms.AES(mac_k), modes.ECB()).encryptor().update(iv)
    tag = Poly1305.generate_tag(mac_r + s, ct)  # r is clamped inside Poly1305
    return iv + ct + tag


def go_time(instant, offset_min, nsec):
    """Go's RFC3339Nano of the instant in a fixed offset."""
    tz = timezone(timedelta(minutes=offset_min))
    wall = instant.astimezone(tz)
    s = wall.strftime("%Y-%m-%dT%H:%M:%S")
    if nsec:
        s += ("." + "%09d" % nsec).rstrip("0")
    if offset_min == 0:
        return s + "Z"
    sign = "+" if offset_min > 0 else "-"
    m = abs(offset_min)
    return s + "%s%02d:%02d" % (sign, m // 60, m % 60)


def cheap_key(master, password):
    """A key file for the same master key with scrypt N=128, r=1, p=1 (the
    parameters of restic's own test repositories), so that each of the many
    test runs opens the repository in no time."""
    salt = os.urandom(64)
    n, r, p = 128, 1, 1
    user = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=64)
    user_key = {"encrypt": base64.b64encode(user[:32]).decode(),
                "mac": {"k": base64.b64encode(user[32:48]).decode(), "r": base64.b64encode(user[48:]).decode()}}
    plain = json.dumps({"mac": master["mac"], "encrypt": master["encrypt"]}, separators=(",", ":")).encode()
    key = {"created": "2024-01-01T00:00:00Z", "username": "tester", "hostname": "setup", "kdf": "scrypt",
           "N": n, "r": r, "p": p, "salt": base64.b64encode(salt).decode(),
           "data": base64.b64encode(seal(user_key, plain)).decode()}
    return json.dumps(key, separators=(",", ":")).encode()


def snapshot_json(t, tree, paths, host, tags):
    sn = {"time": t, "tree": tree, "paths": paths, "hostname": host, "username": "tester", "uid": 1000,
          "gid": 1000}
    if tags:
        sn["tags"] = tags
    return json.dumps(sn, separators=(",", ":")).encode()


class Gen:
    def __init__(self, seed):
        self.rnd = random.Random(seed)
        self.out = []  # (time string, host, paths, tags)

    def add(self, instant, offset, nsec=0, host=None, paths=None, tags=None):
        r = self.rnd
        self.out.append((go_time(instant, offset, nsec),
                         host if host is not None else r.choice(HOSTS),
                         paths if paths is not None else r.choice(PATH_SETS),
                         tags if tags is not None else r.choice(TAG_SETS)))

    def random_instant(self, start_year, end_year):
        a = datetime(start_year, 1, 1, tzinfo=timezone.utc).timestamp()
        b = datetime(end_year, 1, 1, tzinfo=timezone.utc).timestamp()
        return datetime.fromtimestamp(int(self.rnd.uniform(a, b)), timezone.utc)

    def spread(self, n):
        """Anywhere over several years, any offset."""
        r = self.rnd
        for _ in range(n):
            nsec = r.choice([0, 0, r.randrange(1, 10**9)])
            self.add(self.random_instant(2019, 2025), r.choice(OFFSETS), nsec)

    def year_ends(self, n):
        """Near midnight around New Year, where wall clocks in different
        offsets fall into different days, ISO weeks and years."""
        r = self.rnd
        for _ in range(n):
            year = r.randrange(2019, 2025)
            base = datetime(year, 12, 27, tzinfo=timezone.utc) + timedelta(days=r.randrange(0, 10))
            t = base + timedelta(hours=r.choice([-3, -1, 0, 1, 2, 23]), minutes=r.randrange(60))
            self.add(t, r.choice(OFFSETS))

    def ties(self, host, paths, tags, instant, offset, n):
        """n snapshots of one group with exactly the same time."""
        for _ in range(n):
            self.add(instant, offset, 0, host, paths, tags)

    def dense_group(self):
        """One big group (alpha, /data): hourly and daily runs, many ties, the
        same instant in different offsets; more than 12 snapshots per tie."""
        r = self.rnd
        host, paths = "alpha", ["/data"]
        start = datetime(2024, 2, 26, 22, 0, tzinfo=timezone.utc)
        for i in range(40):
            t = start + timedelta(minutes=37 * i)
            self.add(t, r.choice([0, 60, -300]), 0, host, paths, r.choice(TAG_SETS))
        # 14 identical times: more than insertion sort handles in one go
        self.ties(host, paths, [], datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc), 60, 14)
        # 25 identical times with varied tags
        t = datetime(2024, 3, 2, 23, 30, tzinfo=timezone.utc)
        for _ in range(25):
            self.add(t, 0, 0, host, paths, r.choice(TAG_SETS))
        # same instant, different offsets: ties for sorting, different buckets
        t = datetime(2024, 3, 3, 23, 30, tzinfo=timezone.utc)
        for off in [0, 60, -300, 330, 840, -720, 0, 60]:
            self.add(t, off, 0, host, paths, [])
        # same wall clock in different offsets: different instants
        for off in [0, 60, 120, -60]:
            self.add(datetime(2024, 3, 4, 10, 0, tzinfo=timezone(timedelta(minutes=off))), off, 0, host, paths, [])

    def dst_group(self):
        """Host delta: the newest snapshot's offset is Europe/Berlin's summer
        offset, so under TZ=Europe/Berlin Go reads it in the local zone and
        --keep-within 1m lands on the winter offset (one hour later than
        fixed-offset arithmetic); the others sit inside that hour."""
        host, paths = "delta", ["/dst"]
        self.add(datetime(2024, 3, 31, 22, 30, tzinfo=timezone.utc), 120, 0, host, paths, [])
        for minute, off in [(15, 60), (45, 60), (40, 0), (15, 120), (50, -300)]:
            self.add(datetime(2024, 2, 29, 23, minute, tzinfo=timezone.utc), off, 0, host, paths, [])
        self.add(datetime(2024, 2, 29, 22, 29, tzinfo=timezone.utc), 60, 0, host, paths, [])

    def future(self):
        self.add(datetime(2031, 5, 5, 5, 5, tzinfo=timezone.utc), 0, 0, "alpha", ["/data"], [])
        self.add(datetime(2030, 1, 1, tzinfo=timezone.utc), 120, 0, "beta", ["/srv", "/data"], ["keep"])


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    repo = args[0]
    count, seed, restic = 200, 1, "restic"
    i = 1
    while i < len(args):
        if args[i] == "--count":
            count = int(args[i + 1])
        elif args[i] == "--seed":
            seed = int(args[i + 1])
        elif args[i] == "--restic":
            restic = args[i + 1]
        else:
            sys.exit("unknown option " + args[i])
        i += 2
    if "RESTIC_PASSWORD" not in os.environ:
        sys.exit("RESTIC_PASSWORD must be set")

    run(restic, repo, "init")
    with tempfile.TemporaryDirectory() as src:
        with open(os.path.join(src, "file"), "w") as f:
            f.write("forget test\n")
        run(restic, repo, "backup", "--host", "setup", src)
    master = json.loads(run(restic, repo, "cat", "masterkey", capture=True))
    key_dir = os.path.join(repo, "keys")
    (slow,) = os.listdir(key_dir)
    key = cheap_key(master, os.environ["RESTIC_PASSWORD"])
    with open(os.path.join(key_dir, hashlib.sha256(key).hexdigest()), "wb") as f:
        f.write(key)
    os.unlink(os.path.join(key_dir, slow))
    sn_dir = os.path.join(repo, "snapshots")
    (only,) = os.listdir(sn_dir)
    tree = json.loads(run(restic, repo, "cat", "snapshot", only, capture=True))["tree"]
    os.unlink(os.path.join(sn_dir, only))

    g = Gen(seed)
    g.dense_group()
    g.future()
    g.dst_group()
    g.ties("beta", ["/srv", "/data"], ["b", "a"], datetime(2022, 1, 2, 23, 59, 59, tzinfo=timezone.utc), -300, 13)
    g.year_ends(max(0, (count - len(g.out)) // 3))
    g.spread(max(0, count - len(g.out)))
    g.rnd.shuffle(g.out)  # so that files are not created in time order
    for t, host, paths, tags in g.out:
        blob = seal(master, snapshot_json(t, tree, paths, host, tags))
        name = hashlib.sha256(blob).hexdigest()
        with open(os.path.join(sn_dir, name), "wb") as f:
            f.write(blob)
    print(len(g.out))


if __name__ == "__main__":
    main()
