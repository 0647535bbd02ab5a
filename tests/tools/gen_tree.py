#!/usr/bin/env python3
"""Generate a source tree with every node type restic records and awkward
names, for the backup tests.

usage: gen_tree.py DIR [--seed N] [--big-mb N] [--nonutf8-link] [--no-special]

Creates DIR (must not exist) with:
  * regular files: empty, tiny, 1 MiB random, a file larger than 8 MiB
    (--big-mb, default 12) mixing random and repetitive data so that it
    spans several chunks and dedups partly, a file of zeros;
  * directories: nested, empty, setgid (02755), sticky (01777);
  * a setuid file (04755), a setgid file, odd permissions (0600, 0444, 0700);
  * symlinks: relative, absolute, to a directory, dangling;
    with --nonutf8-link also one whose target is not UTF-8 (restic 0.14
    cannot store that losslessly, newer versions use linktarget_raw);
  * hard links: two names in one directory and one in another;
  * a fifo; a unix socket (restic skips sockets);
  * character and block devices when running as root (skipped if mknod
    is refused), unless --no-special;
  * xattrs: user.* with text, binary and empty values on files and dirs;
    trusted.* as root;
  * names: spaces, quotes, backslashes, control characters, newline, tab,
    non-UTF-8 bytes, non-printable and wide Unicode, HTML-ish <&>;
  * nanosecond mtimes everywhere (directories last, so they stick),
    atimes different from mtimes, several owners as root.
Deterministic for a given seed (except ctimes and inode numbers).
"""

import os
import random
import socket
import stat
import sys


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    root = os.fsencode(args[0])
    seed = 1
    big_mb = 12
    nonutf8_link = False
    special = True
    i = 1
    while i < len(args):
        a = args[i]
        if a == "--seed":
            seed = int(args[i + 1]); i += 2
        elif a == "--big-mb":
            big_mb = int(args[i + 1]); i += 2
        elif a == "--nonutf8-link":
            nonutf8_link = True; i += 1
        elif a == "--no-special":
            special = False; i += 1
        else:
            sys.exit("unknown option " + a)
    rng = random.Random(seed)
    is_root = os.geteuid() == 0
    os.makedirs(root)
    J = os.path.join

    def write(path, data, mode=0o644):
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)

    def rand(n):
        return rng.randbytes(n)

    def texty(n):
        words = [b"alpha", b"beta", b"gamma", b"delta", b"restic", b"backup", b"chunk", b"tree", b"\n"]
        out = bytearray()
        while len(out) < n:
            out += rng.choice(words) + b" "
        return bytes(out[:n])

    # --- files
    d = J(root, b"files")
    os.mkdir(d)
    write(J(d, b"empty"), b"")
    write(J(d, b"tiny.txt"), b"hello\n")
    write(J(d, b"one-mib.bin"), rand(1 << 20))
    big = bytearray()
    block = texty(3 << 20)
    while len(big) < big_mb << 20:
        big += rand(2 << 20)
        big += block
    write(J(d, b"big.bin"), bytes(big[: big_mb << 20]))
    write(J(d, b"zeros.bin"), bytes(3 << 20))
    write(J(d, b"setuid"), b"#!/bin/sh\n", 0o4755)
    write(J(d, b"setgid"), b"#!/bin/sh\n", 0o2755)
    write(J(d, b"private"), b"secret\n", 0o600)
    write(J(d, b"readonly"), b"ro\n", 0o444)
    write(J(d, b"exec"), b"x\n", 0o700)

    # --- directories
    os.makedirs(J(root, b"dirs", b"a", b"b", b"c"))
    write(J(root, b"dirs", b"a", b"b", b"c", b"deep.txt"), texty(5000))
    os.mkdir(J(root, b"dirs", b"empty"))
    os.mkdir(J(root, b"dirs", b"setgid"))
    os.chmod(J(root, b"dirs", b"setgid"), 0o2755)
    os.mkdir(J(root, b"dirs", b"sticky"))
    os.chmod(J(root, b"dirs", b"sticky"), 0o1777)
    os.mkdir(J(root, b"dirs", b"closed"))
    write(J(root, b"dirs", b"closed", b"inside"), b"in\n")
    os.chmod(J(root, b"dirs", b"closed"), 0o700)

    # --- links
    l = J(root, b"links")
    os.mkdir(l)
    os.symlink(b"../files/tiny.txt", J(l, b"relative"))
    os.symlink(os.path.abspath(J(root, b"files", b"tiny.txt")), J(l, b"absolute"))
    os.symlink(b"../dirs", J(l, b"to-dir"))
    os.symlink(b"does/not/exist", J(l, b"dangling"))
    if nonutf8_link:
        os.symlink(b"target-\xff\xfe", J(l, b"nonutf8-target"))
    write(J(l, b"hard1"), b"hard link content\n")
    os.link(J(l, b"hard1"), J(l, b"hard2"))
    os.link(J(l, b"hard1"), J(root, b"dirs", b"hard3"))

    # --- special files
    s = J(root, b"special")
    os.mkdir(s)
    os.mkfifo(J(s, b"fifo"), 0o640)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fsdecode(J(s, b"socket")))
    except OSError:
        pass
    sock.close()
    if is_root and special:
        for name, kind, dev in ((b"chardev", stat.S_IFCHR, os.makedev(1, 3)), (b"blockdev", stat.S_IFBLK, os.makedev(7, 200))):
            try:
                os.mknod(J(s, name), 0o660 | kind, dev)
            except OSError:
                pass

    # --- names
    n = J(root, b"names")
    os.mkdir(n)
    names = [
        b"with space", b'quote"double', b"quote'single", b"back\\slash", b"ctl\x01char", b"tab\there",
        b"new\nline", b"latin1-\xe9\xff.bin", b"lone-\x80", b"utf8-\xc3\xbc\xe2\x82\xac\xe2\x98\x83",
        b"nbsp\xc2\xa0zwj\xe2\x80\x8d", b"<tag>&amp", b"del\x7f", b"emoji-\xf0\x9f\x98\x80", b"-dash",
        b"#hash", b"$dollar", b"*star?", b"[bracket]", b"CamelCase", b"camelcase", b"a" * 200,
    ]
    for i, nm in enumerate(names):
        write(J(n, nm), b"name %d\n" % i)
    os.mkdir(J(n, b"dir \xe9\\\"x"))
    write(J(n, b"dir \xe9\\\"x", b"f"), b"f\n")

    # --- xattrs
    x = J(root, b"xattrs")
    os.mkdir(x)
    write(J(x, b"file"), b"x\n")
    os.setxattr(J(x, b"file"), b"user.text", b"hello")
    os.setxattr(J(x, b"file"), b"user.binary", bytes(range(256)))
    os.setxattr(J(x, b"file"), b"user.empty", b"")
    os.setxattr(x, b"user.dir", b"on a directory")
    if is_root:
        try:
            os.setxattr(J(x, b"file"), b"trusted.t", b"root only")
        except OSError:
            pass

    # --- owners, times (children before parents so directory mtimes stay)
    every = []
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for e in filenames + dirnames:
            every.append(J(dirpath, e))
        every.append(dirpath)
    owners = [(0, 0), (1000, 1000), (65534, 65534), (1234, 5678)]
    for idx, p in enumerate(every):
        if is_root and idx % 3 == 1:
            uid, gid = owners[idx % len(owners)]
            os.lchown(p, uid, gid)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):  # chown clears setuid/setgid
                os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) | (st.st_mode & 0o7000))
        mtime = 1_600_000_000_000_000_000 + rng.randrange(10**17) // 10 * 10 + rng.randrange(1, 10)
        atime = mtime - 3_000_000_123
        os.utime(p, ns=(atime, mtime), follow_symlinks=False)


if __name__ == "__main__":
    main()
