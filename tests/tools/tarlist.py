#!/usr/bin/env python3
"""List a tar or zip archive (as written by `dump`) one member per line, in
archive order, with every header field that matters and the SHA-256 of each
member's content, so two archives can be compared with diff.

    tarlist.py [--zip] FILE

tar line: name, type, mode (octal), uid, gid, uname, gname, size, mtime,
          linkname, devmajor,devminor, pax records (sorted, escaped), sha256
zip line: name, mode (from external_attr, octal), date_time, mtime from the
          extended-timestamp extra field (0x5455) when present, size, sha256
Names and values are escaped like manifest.py (bytes outside printable ASCII,
backslash, TAB and "=" as \\xHH).  Exits 1 when the archive cannot be read
(also when it is empty or truncated).
"""
import hashlib
import sys
import tarfile
import zipfile


def esc(b):
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    out = []
    for c in b:
        if 0x21 <= c <= 0x7E and c not in (0x5C, 0x3D):
            out.append(chr(c))
        elif c == 0x20:
            out.append(" ")
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


def tar_main(path):
    with tarfile.open(path, "r:", encoding="utf-8", errors="surrogateescape") as t:
        n = 0
        for m in t:
            n += 1
            digest = "-"
            if m.isreg():
                f = t.extractfile(m)
                h = hashlib.sha256()
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    h.update(chunk)
                digest = h.hexdigest()
            pax = ",".join("%s=%s" % (esc(k), esc(v))
                           for k, v in sorted(m.pax_headers.items()))
            print("\t".join([
                esc(m.name), "type=" + esc(m.type), "mode=%04o" % m.mode,
                "uid=%d" % m.uid, "gid=%d" % m.gid, "uname=" + esc(m.uname),
                "gname=" + esc(m.gname), "size=%d" % m.size,
                "mtime=%s" % repr(m.mtime), "link=" + esc(m.linkname),
                "dev=%d,%d" % (m.devmajor, m.devminor), "pax=" + pax,
                "sha256=" + digest]))
        if n == 0:
            print("empty archive", file=sys.stderr)
            return 1
    return 0


def zip_utime(extra):
    i = 0
    while i + 4 <= len(extra):
        tag = int.from_bytes(extra[i:i + 2], "little")
        size = int.from_bytes(extra[i + 2:i + 4], "little")
        body = extra[i + 4:i + 4 + size]
        if tag == 0x5455 and len(body) >= 5 and body[0] & 1:
            return str(int.from_bytes(body[1:5], "little", signed=True))
        i += 4 + size
    return "-"


def zip_main(path):
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        if not infos:
            print("empty archive", file=sys.stderr)
            return 1
        for i in infos:
            data = z.read(i)
            print("\t".join([
                esc(i.filename), "mode=%06o" % (i.external_attr >> 16),
                "date=%04d-%02d-%02dT%02d:%02d:%02d" % i.date_time,
                "utime=" + zip_utime(i.extra),
                "size=%d" % i.file_size,
                "sha256=" + hashlib.sha256(data).hexdigest()]))
    return 0


def main(argv):
    if argv and argv[0] == "--zip":
        fn, argv = zip_main, argv[1:]
    else:
        fn = tar_main
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return fn(argv[0])
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as e:
        print("cannot read archive: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
