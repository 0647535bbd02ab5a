#!/usr/bin/env bash
# Lower layers never include upper ones: cli -> repo -> backends/crypto/chunker -> util.
set -u
top=${1:-.}
fail=0
check() { # dir forbidden-prefixes...
  local dir=$1; shift
  for f in "$top"/src/"$dir"/*.[ch]; do
    [ -e "$f" ] || continue
    for p in "$@"; do
      if grep -nE "#include +\"$p/" "$f"; then echo "layering: $f includes $p/"; fail=1; fi
    done
  done
}
check util crypto chunker backends repo cli
check crypto chunker backends repo cli
check chunker crypto backends repo cli
check backends crypto chunker repo cli
check repo cli
[ $fail = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $fail
