#!/usr/bin/env python3
"""Compare two JSON outputs field by field (reference first, candidate second).

    jsoncmp.py [options] REFERENCE CANDIDATE

Options:
  --ndjson            each non-empty line is one JSON document (e.g. `ls --json`)
  --sort-by K1,K2     top-level list (or each ndjson stream) of objects: sort both
                      by these keys before comparing (ties in the reference order)
  --unordered         compare top-level lists as multisets
  --ignore KEY        ignore this object member wherever it appears (repeatable)
  --allow-extra KEY   the candidate may have this member where the reference
                      has none (members newer restic versions added); when
                      both have it, it is compared (repeatable)
  --expect-nonempty   fail when the reference is an empty list / has no lines
                      (guards against a comparison that cannot fail)
  --check-time-order  candidate: a top-level list whose objects' "time" must be
                      non-decreasing (restic prints oldest first); for a list
                      of groups ({"group_key", "snapshots"}) within each group
  --unordered-groups  a top-level list of {"group_key", ...} objects is
                      compared in any order (restic 0.14 prints groups in Go
                      map order); other lists keep their order

Prints every difference as  <json path>: <reference> != <candidate>  (at most
40), and exits 1 when there are any; "same" and exit 0 otherwise.  Numbers are
compared as numbers (1 == 1.0 is NOT equal: an integer must stay an integer).
Member order inside objects is not compared; members present on one side only
are differences.
"""
import datetime
import json
import sys


def load(path, ndjson):
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8", errors="surrogateescape")
    if ndjson:
        out = []
        for n, line in enumerate(text.split("\n"), 1):
            if line.strip() == "":
                continue
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise SystemExit("%s:%d: not JSON (%s): %.200s" % (path, n, e, line))
        return out
    try:
        return json.loads(text)
    except ValueError as e:
        raise SystemExit("%s: not JSON (%s): %.300s" % (path, e, text))


def kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return type(v).__name__


def canon(v):
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


ALLOW_EXTRA = set()


def diff(a, b, path, ignore, out):
    if kind(a) != kind(b):
        out.append("%s: %s != %s (type %s vs %s)" % (path or "$", short(a), short(b), kind(a), kind(b)))
        return
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k in ignore:
                continue
            p = "%s.%s" % (path, k)
            if k not in a:
                if k in ALLOW_EXTRA:
                    continue
                out.append("%s: (absent) != %s" % (p, short(b[k])))
            elif k not in b:
                out.append("%s: %s != (absent)" % (p, short(a[k])))
            else:
                diff(a[k], b[k], p, ignore, out)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append("%s: list of %d != list of %d" % (path or "$", len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, "%s[%d]" % (path, i), ignore, out)
    elif a != b:
        out.append("%s: %s != %s" % (path or "$", short(a), short(b)))


def short(v):
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= 120 else s[:117] + "..."


def strip(v, ignore):
    if isinstance(v, dict):
        return {k: strip(x, ignore) for k, x in v.items() if k not in ignore}
    if isinstance(v, list):
        return [strip(x, ignore) for x in v]
    return v


def parse_time(s):
    # RFC 3339 with up to 9 fraction digits (Python handles 6)
    base, _, rest = s.partition(".")
    frac = "0"
    tz = ""
    if rest:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, tz = rest[:i], rest[i:]
    else:
        for sep in ("Z", "+", "-"):
            j = base.find(sep, 11)
            if j >= 0:
                base, tz = base[:j], base[j:]
                break
    if tz == "Z":
        tz = "+00:00"
    dt = datetime.datetime.fromisoformat(base + tz)
    return dt.timestamp() + float("0." + (frac or "0"))


def main(argv):
    ndjson = unordered = nonempty = timeorder = ugroups = False
    sort_by = None
    ignore = set()
    files = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--ndjson":
            ndjson = True
        elif a == "--unordered":
            unordered = True
        elif a == "--expect-nonempty":
            nonempty = True
        elif a == "--unordered-groups":
            ugroups = True
        elif a == "--check-time-order":
            timeorder = True
        elif a == "--sort-by":
            i += 1
            sort_by = argv[i].split(",")
        elif a == "--ignore":
            i += 1
            ignore.add(argv[i])
        elif a == "--allow-extra":
            i += 1
            ALLOW_EXTRA.add(argv[i])
        elif a.startswith("--"):
            raise SystemExit("jsoncmp.py: unknown option " + a)
        else:
            files.append(a)
        i += 1
    if len(files) != 2:
        raise SystemExit(__doc__)
    ref = load(files[0], ndjson)
    cand = load(files[1], ndjson)
    problems = []
    if nonempty and (ref is None or ref == [] or ref == {}):
        problems.append("reference is empty: the comparison would prove nothing")
    if timeorder and isinstance(cand, list):
        lists = [("", cand)]
        if cand and all(isinstance(x, dict) and "group_key" in x for x in cand):
            lists = [("[%d].snapshots" % n, g.get("snapshots") or [])
                     for n, g in enumerate(cand)]
        for where, lst in lists:
            try:
                ts = [parse_time(x["time"]) for x in lst]
            except (KeyError, TypeError, ValueError) as e:
                problems.append("candidate%s: cannot read times (%s)" % (where, e))
                continue
            for k in range(1, len(ts)):
                if ts[k] < ts[k - 1]:
                    problems.append("candidate%s not sorted by time at [%d]" % (where, k))
                    break
    if ignore:
        ref, cand = strip(ref, ignore), strip(cand, ignore)
    if sort_by and isinstance(ref, list) and isinstance(cand, list):
        def key(o):
            if not isinstance(o, dict):
                return ("", canon(o))
            return tuple(canon(o.get(k)) for k in sort_by)
        ref = sorted(ref, key=key)
        cand = sorted(cand, key=key)
    def is_groups(v):
        return isinstance(v, list) and v and all(
            isinstance(x, dict) and "group_key" in x for x in v)
    if ugroups and is_groups(ref) and isinstance(cand, list):
        gkey = lambda g: canon(g.get("group_key")) if isinstance(g, dict) else canon(g)
        ref = sorted(ref, key=gkey)
        cand = sorted(cand, key=gkey)
    if unordered and isinstance(ref, list) and isinstance(cand, list):
        ref = sorted(ref, key=canon)
        cand = sorted(cand, key=canon)
    diff(ref, cand, "", ignore, problems)
    if problems:
        for p in problems[:40]:
            print(p)
        if len(problems) > 40:
            print("... %d more" % (len(problems) - 40))
        return 1
    print("same")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
