#!/usr/bin/env python3
"""Print a deterministic manifest of a directory tree, one line per entry.

Used by the end-to-end tests to compare a tree restored by crestic with the
same snapshot restored by restic 0.14 (or with a source tree).  Only the
standard library is used.

Line format (fields separated by one TAB, sorted by the raw path bytes):

    <path>  type=<t>  mode=<oooo>  [uid=<n> gid=<n>]  [size=<n> sha256=<hex>]
            [mtime=<ns>] [atime=<ns>] [target=<path>] [xattr=<name>=<b64>,...]
            [hardlink=<first path>] [rdev=<major>,<minor>]

* path: relative to the root, "/"-separated; bytes outside printable ASCII,
  the backslash, TAB and "=" are written as \\xHH so every line is ASCII.
* type: file, dir, symlink, fifo, socket, chardev, blockdev.
* mode: permission bits incl. setuid/setgid/sticky, 4 octal digits.
  Not printed for symlinks (always 0777 on Linux).
* uid/gid: only when running as root (otherwise restores cannot chown).
* size and sha256: regular files only.
* mtime/atime: nanoseconds since the epoch.  atime only for files and dirs
  (a symlink's atime is not meaningful to compare); mtime for everything
  (restic restores symlink mtimes too; --no-symlink-times leaves them out).
  Everything is lstat()ed BEFORE it is read or listed, and files are opened
  with O_NOATIME where allowed, so the walk does not disturb atimes.
* target: symlink target.
* xattr: extended attributes of the user.* namespace, sorted by name, values
  base64 (standard alphabet).  Omitted when there are none.
* hardlink: for regular files whose inode appears at several paths inside the
  tree: the first of those paths (in sort order) -- the same value on every
  member of the group.
* rdev: device numbers of character/block devices.

The root directory itself is not listed unless --root is given (restore
targets are created by the tool, their metadata is not part of a snapshot).

Options:
  --no FIELD      leave out a field (repeatable): mode, owner, size, sha256,
                  mtime, atime, target, xattr, hardlink, rdev
  --no-atime, --no-mtime, --no-owner, --no-xattr, --no-hardlink
                  shorthands for --no FIELD
  --dir-mtime / --no-dir-mtime   (default on) compare mtimes of directories
  --no-symlink-times  leave out the mtime of symlinks
  --root          also list the root directory (path ".")
  --exclude PATH  leave out this relative path and everything below it
                  (repeatable; PATH as printed, i.e. escaped)
"""

import base64
import hashlib
import os
import stat
import sys

FIELDS = ("mode", "owner", "size", "sha256", "mtime", "atime", "target",
          "xattr", "hardlink", "rdev")


def esc(b):
    """Escape a bytes path/value to printable ASCII."""
    out = []
    for c in b:
        if 0x21 <= c <= 0x7E and c not in (0x5C, 0x3D):  # not '\' '='
            out.append(chr(c))
        elif c == 0x20:
            out.append(" ")
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


def file_type(m):
    if stat.S_ISREG(m):
        return "file"
    if stat.S_ISDIR(m):
        return "dir"
    if stat.S_ISLNK(m):
        return "symlink"
    if stat.S_ISFIFO(m):
        return "fifo"
    if stat.S_ISSOCK(m):
        return "socket"
    if stat.S_ISCHR(m):
        return "chardev"
    if stat.S_ISBLK(m):
        return "blockdev"
    return "unknown"


def sha256_file(path):
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    fd = None
    noatime = getattr(os, "O_NOATIME", 0)
    if noatime:
        try:
            fd = os.open(path, flags | noatime)
        except OSError:
            fd = None
    if fd is None:
        fd = os.open(path, flags)
    h = hashlib.sha256()
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


def user_xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []
    out = []
    for n in sorted(names):
        if not n.startswith("user."):
            continue
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
        except OSError:
            continue
        out.append((n, base64.b64encode(v).decode("ascii")))
    return out


def walk(root, opts):
    """Yield (relpath_bytes, fullpath_bytes, stat) for every entry, stat'ed
    before the entry is listed or read."""
    root_b = os.fsencode(root)
    st = os.lstat(root_b)
    todo = [(b".", root_b, st)]
    while todo:
        rel, full, st = todo.pop()
        yield rel, full, st
        if stat.S_ISDIR(st.st_mode):
            # lstat every child before descending (listing a dir updates
            # only that dir's atime, which was already recorded above)
            children = []
            with os.scandir(full) as it:
                for e in it:
                    children.append(e.name)
            for name in sorted(children, reverse=True):
                crel = name if rel == b"." else rel + b"/" + name
                cfull = os.path.join(full, name)
                todo.append((crel, cfull, os.lstat(cfull)))


def main(argv):
    opts = {"no": set(), "root": False, "dir_mtime": True,
            "symlink_times": True, "exclude": []}
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--no":
            i += 1
            if argv[i] not in FIELDS:
                sys.exit("manifest.py: unknown field %r" % argv[i])
            opts["no"].add(argv[i])
        elif a.startswith("--no-") and a[5:] in FIELDS:
            opts["no"].add(a[5:])
        elif a == "--root":
            opts["root"] = True
        elif a == "--dir-mtime":
            opts["dir_mtime"] = True
        elif a == "--no-dir-mtime":
            opts["dir_mtime"] = False
        elif a == "--symlink-times":
            opts["symlink_times"] = True
        elif a == "--no-symlink-times":
            opts["symlink_times"] = False
        elif a == "--exclude":
            i += 1
            opts["exclude"].append(argv[i])
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        elif a.startswith("--"):
            sys.exit("manifest.py: unknown option %r" % a)
        else:
            args.append(a)
        i += 1
    if len(args) != 1:
        sys.exit("usage: manifest.py [options] DIR")
    root = args[0]
    if not os.path.isdir(root):
        sys.exit("manifest.py: not a directory: %s" % root)
    is_root = os.geteuid() == 0
    no = opts["no"]

    entries = []
    inodes = {}
    for rel, full, st in walk(root, opts):
        erel = esc(rel)
        if any(erel == x or erel.startswith(x.rstrip("/") + "/")
               for x in opts["exclude"]):
            continue
        if rel == b"." and not opts["root"]:
            continue
        entries.append((rel, full, st))
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)

    link_group = {}
    for paths in inodes.values():
        if len(paths) > 1:
            first = min(paths)
            for p in paths:
                link_group[p] = first

    entries.sort(key=lambda e: e[0])
    out = sys.stdout
    for rel, full, st in entries:
        m = st.st_mode
        t = file_type(m)
        f = [esc(rel), "type=" + t]
        if "mode" not in no and t != "symlink":
            f.append("mode=%04o" % stat.S_IMODE(m))
        if "owner" not in no and is_root:
            f.append("uid=%d" % st.st_uid)
            f.append("gid=%d" % st.st_gid)
        if t == "file":
            if "size" not in no:
                f.append("size=%d" % st.st_size)
            if "sha256" not in no:
                f.append("sha256=" + sha256_file(full))
        if "mtime" not in no:
            if (t not in ("dir", "symlink")
                    or (t == "dir" and opts["dir_mtime"])
                    or (t == "symlink" and opts["symlink_times"])):
                f.append("mtime=%d" % st.st_mtime_ns)
        if "atime" not in no and t in ("file", "dir"):
            f.append("atime=%d" % st.st_atime_ns)
        if "target" not in no and t == "symlink":
            f.append("target=" + esc(os.readlink(full)))
        if "xattr" not in no:
            xs = user_xattrs(full)
            if xs:
                f.append("xattr=" + ",".join(
                    "%s=%s" % (esc(os.fsencode(n)), v) for n, v in xs))
        if "hardlink" not in no and rel in link_group:
            f.append("hardlink=" + esc(link_group[rel]))
        if "rdev" not in no and t in ("chardev", "blockdev"):
            f.append("rdev=%d,%d" % (os.major(st.st_rdev),
                                     os.minor(st.st_rdev)))
        out.write("\t".join(f) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
