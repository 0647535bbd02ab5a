#!/usr/bin/env bash
# The backend conformance suite (tests/conformance/conformance.c) on the
# local backend: a plain path, a local: string, and a path with spaces.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

CONF=$(dirname "$CRESTIC")/crestic-conformance
[ -x "$CONF" ] || { fail "crestic-conformance not built next to $CRESTIC"; finish; }

section "conformance: plain path"
expect_exit 0 "$CONF" "$T/repo"
show "$OUT" 200

section "conformance: local: string, path with spaces"
expect_exit 0 "$CONF" "local:$T/a dir/re po"

section "conformance: streamed saves through temporary names (no O_TMPFILE)"
expect_exit 0 env CRESTIC_LOCAL_NO_TMPFILE=1 "$CONF" "$T/repo3"
expect_grep "$OUT" 'ok   stream commit: named by the SHA-256' "streamed saves were checked"
find "$T/repo3" -name '*tmp-*' >"$T/left"
expect_empty "$T/left" "no temporary file left behind"

section "conformance: unknown local option refused"
expect_exit 1 "$CONF" -o local.nope=1 "$T/repo2"
expect_grep "$OUT" 'FAIL create the backend' "create fails with an unknown option"
expect_grep "$OUT" 'local has no such option' "the message names the option problem"

finish
