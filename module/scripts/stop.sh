#!/usr/bin/env bash
# Workspace stop: the user's stop script, then the interval loop stopped,
# then one backup that always finishes: with STOP_DEADLINE (seconds) set, it
# stops reading in time and saves a partial snapshot of what it has.
set -euo pipefail

: "${CODER_SCRIPT_BIN_DIR:=$HOME/.local/bin}"
: "${CODER_SCRIPT_DATA_DIR:=$HOME/.local/share/coder}"
export CODER_SCRIPT_DATA_DIR
export PATH="$CODER_SCRIPT_BIN_DIR:$PATH"
: "${CUSTOM_STOP_SCRIPT:=}" "${STOP_DEADLINE:=0}"

if [ -n "$CUSTOM_STOP_SCRIPT" ]; then
  bash -c "$CUSTOM_STOP_SCRIPT"
fi

pidfile=$CODER_SCRIPT_DATA_DIR/interval-backup.pid
if [ -f "$pidfile" ]; then
  # the loop only; a backup it is running keeps the lock, and restic-backup
  # below waits for it (or, with a deadline, asks it to wind down)
  kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
fi

args=(--tag stop-backup)
[ "$STOP_DEADLINE" -gt 0 ] && args+=(--deadline "$STOP_DEADLINE")
exec restic-backup "${args[@]}"
