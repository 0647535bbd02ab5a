#!/usr/bin/env bash
# key add / remove / passwd: restic 0.14 opens the repository with exactly
# the passwords crestic says it has; the key in use is never removed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
repo=$(copy_repo v1)
echo second-pw >"$T/pw2"; echo third-pw >"$T/pw3"
opens() { RESTIC_PASSWORD=$1 rs -r "$repo" --no-lock snapshots >/dev/null 2>&1; }

RESTIC_PASSWORD=fixture-password expect_exit 0 "$CRESTIC" -r "$repo" key add --new-password-file "$T/pw2" --user alice --host box
expect_grep "$OUT" '^saved new key with ID [0-9a-f]{64}$' "new key ID printed"
new=$(sed -n 's/^saved new key with ID //p' "$OUT")
expect_true "restic opens with the new password" opens second-pw
expect_true "and still with the old one" opens fixture-password
RESTIC_PASSWORD=fixture-password rs -r "$repo" key list --no-lock >"$T/keys" 2>&1
expect_grep "$T/keys" "${new:0:8} +alice +box" "restic lists the key with its user and host"

cur=$(RESTIC_PASSWORD=fixture-password "$CRESTIC" -r "$repo" --no-lock key list --json | "$PY" -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["current"]][0])')
RESTIC_PASSWORD=fixture-password expect_exit 1 "$CRESTIC" -r "$repo" key remove "${cur:0:8}"
expect_grep "$ERR" 'refusing to remove key currently used' "the key in use is kept"

RESTIC_PASSWORD=second-pw expect_exit 0 "$CRESTIC" -r "$repo" key passwd --new-password-file "$T/pw3"
expect_true "restic opens with the changed password" opens third-pw
expect_true "the replaced password no longer opens" bash -c '! RESTIC_PASSWORD=second-pw "$0" -r "$1" --no-lock snapshots >/dev/null 2>&1' "$RESTIC" "$repo"

RESTIC_PASSWORD=third-pw expect_exit 0 "$CRESTIC" -r "$repo" key remove "${cur:0:8}"
expect_grep "$OUT" "^removed key ${cur}$" "removal reported with the full ID"
expect_true "the removed password no longer opens" bash -c '! RESTIC_PASSWORD=fixture-password "$0" -r "$1" --no-lock snapshots >/dev/null 2>&1' "$RESTIC" "$repo"
expect_true "restic check passes" bash -c 'RESTIC_PASSWORD=third-pw "$0" -r "$1" check >/dev/null 2>&1' "$RESTIC" "$repo"
RESTIC_PASSWORD=third-pw expect_exit 1 "$CRESTIC" -r "$repo" key remove
finish
