#!/usr/bin/env bash
# Workspace start: install crestic from a local file (no download), write the
# backup settings, initialise the repository only when it does not exist,
# restore the workspace and start the interval backups.
#
# Settings come from the environment (main.tf sets them; tests set them by
# hand): CRESTIC_SOURCE, AUTO_INIT, RESTORE_ON_START, SNAPSHOT_ID,
# RESTORE_TARGET, BACKUP_INTERVAL (minutes; BACKUP_INTERVAL_SECONDS wins when
# set), BACKUP_PATHS / EXCLUDE_PATTERNS / BACKUP_TAGS (JSON arrays),
# DIRECTORY, RETENTION_LAST/DAILY/WEEKLY/MONTHLY, AUTO_FORGET, AUTO_PRUNE; the
# agent's CODER_SCRIPT_BIN_DIR / CODER_SCRIPT_DATA_DIR, RESTIC_* variables.
set -euo pipefail

: "${CODER_SCRIPT_BIN_DIR:=$HOME/.local/bin}"
: "${CODER_SCRIPT_DATA_DIR:=$HOME/.local/share/coder}"
export CODER_SCRIPT_DATA_DIR
mkdir -p "$CODER_SCRIPT_BIN_DIR" "$CODER_SCRIPT_DATA_DIR"
export PATH="$CODER_SCRIPT_BIN_DIR:$PATH"

: "${CRESTIC_SOURCE:=}" "${AUTO_INIT:=true}" "${RESTORE_ON_START:=true}" "${SNAPSHOT_ID:=}"
: "${RESTORE_TARGET:=/}" "${BACKUP_INTERVAL:=0}" "${BACKUP_INTERVAL_SECONDS:=}"
: "${BACKUP_PATHS:=[\"$HOME\"]}" "${EXCLUDE_PATTERNS:=[]}" "${BACKUP_TAGS:=[]}" "${DIRECTORY:=~}"
: "${RETENTION_LAST:=10}" "${RETENTION_DAILY:=14}" "${RETENTION_WEEKLY:=8}" "${RETENTION_MONTHLY:=6}"
: "${AUTO_FORGET:=false}" "${AUTO_PRUNE:=false}"

echo "--------------------------------"
echo "Restic Backup Module Setup"
echo "--------------------------------"

# crestic from a local binary, a directory holding one, or a .deb / .tar.gz
# package; else one already on PATH.  Never from the network.
install_crestic() {
  local src=$CRESTIC_SOURCE bin=$CODER_SCRIPT_BIN_DIR/crestic
  if [ -z "$src" ]; then
    if ! command -v crestic >/dev/null 2>&1; then
      echo "Error: crestic not found: set crestic_source to a local binary or package" >&2
      exit 1
    fi
    src=$(command -v crestic)
  fi
  local unpack=$CODER_SCRIPT_DATA_DIR/crestic-pkg
  case $src in
    *.deb)
      rm -rf "$unpack" && mkdir -p "$unpack"
      dpkg-deb -x "$src" "$unpack"
      src=$(find "$unpack" -type f -name crestic -perm -u+x | head -n1) ;;
    *.tar.gz | *.tgz)
      rm -rf "$unpack" && mkdir -p "$unpack"
      tar -xzf "$src" -C "$unpack"
      src=$(find "$unpack" -type f -name crestic -perm -u+x | head -n1) ;;
  esac
  [ -d "$src" ] && src=$src/crestic
  if [ ! -x "$src" ]; then
    echo "Error: no crestic binary in $CRESTIC_SOURCE" >&2
    exit 1
  fi
  if [ "$(readlink -f "$src")" != "$(readlink -f "$bin")" ]; then
    cp -f "$src" "$bin.new" && chmod 755 "$bin.new" && mv -f "$bin.new" "$bin"
  fi
  ln -sf crestic "$CODER_SCRIPT_BIN_DIR/restic-backup"
  ln -sf crestic "$CODER_SCRIPT_BIN_DIR/restic-restore"
  echo "crestic installed: $("$bin" version | head -n1)"
}

# KEY='value' with single quotes escaped the shell way.
conf_line() {
  local v=${2//\'/\'\\\'\'}
  printf "%s='%s'\n" "$1" "$v"
}

write_config() {
  local conf=$CODER_SCRIPT_DATA_DIR/restic-backup.conf
  umask 077
  {
    conf_line BACKUP_PATHS "$BACKUP_PATHS"
    conf_line EXCLUDE_PATTERNS "$EXCLUDE_PATTERNS"
    conf_line BACKUP_TAGS "$BACKUP_TAGS"
    conf_line DIRECTORY "$DIRECTORY"
    conf_line RETENTION_LAST "$RETENTION_LAST"
    conf_line RETENTION_DAILY "$RETENTION_DAILY"
    conf_line RETENTION_WEEKLY "$RETENTION_WEEKLY"
    conf_line RETENTION_MONTHLY "$RETENTION_MONTHLY"
    conf_line AUTO_FORGET "$AUTO_FORGET"
    conf_line AUTO_PRUNE "$AUTO_PRUNE"
    conf_line SNAPSHOT_ID "$SNAPSHOT_ID"
    conf_line RESTORE_TARGET "$RESTORE_TARGET"
  } >"$conf.new"
  mv -f "$conf.new" "$conf"
  echo "Backup settings written: $conf"
}

# Initialise only when the repository does not exist (exit 10 from opening
# it); any other failure (password, network, lock) stops the start.
init_repository() {
  if [ "$AUTO_INIT" != "true" ]; then
    echo "Skipping repository initialization (auto_init_repo=false)"
    return
  fi
  echo "Checking repository..."
  local rc=0
  crestic cat config >/dev/null 2>"$CODER_SCRIPT_DATA_DIR/init-check.err" || rc=$?
  case $rc in
    0) echo "Repository already initialized" ;;
    10)
      echo "Initializing repository..."
      if crestic init; then echo "Repository initialized"
      else echo "Error: Failed to initialize repository" >&2; exit 1; fi ;;
    *)
      # not "no repository": never initialise; the restore below reports
      # the precise failure (and blocks backups)
      echo "Error: the repository could not be checked (exit $rc), not initializing it" >&2
      [ "$RESTORE_ON_START" = "true" ] || exit "$rc" ;;
  esac
}

restore_on_start() {
  if [ "$RESTORE_ON_START" != "true" ]; then
    echo "Skipping restore (restore_on_start=false)"
    return
  fi
  local rc=0
  restic-restore || rc=$?
  if [ "$rc" != 0 ]; then
    echo "Error: Restore failed (exit $rc); backups are blocked until a restore succeeds" >&2
    exit "$rc"
  fi
}

start_interval_backup() {
  local secs=${BACKUP_INTERVAL_SECONDS:-$((BACKUP_INTERVAL * 60))}
  local pidfile=$CODER_SCRIPT_DATA_DIR/interval-backup.pid
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
  [ "$secs" -gt 0 ] || return 0
  echo "Setting up interval backup (every $secs seconds)..."
  local script=$CODER_SCRIPT_DATA_DIR/interval-backup.sh
  cat >"$script" <<'EOF'
#!/usr/bin/env bash
# Interval backups: one at a time (restic-backup's own lock keeps them apart
# from the stop backup too); a failure is logged and retried next time.
set -u
echo "Starting interval backup loop (every $1 seconds)"
while true; do
  sleep "$1"
  echo "$(date -u +%FT%TZ) Running scheduled backup..."
  rc=0
  restic-backup --tag interval-backup || rc=$?
  case $rc in
    0) echo "Scheduled backup completed" ;;
    3) echo "Scheduled backup incomplete (partial snapshot)" ;;
    *) echo "Scheduled backup failed (exit $rc); retrying at the next interval" ;;
  esac
done
EOF
  chmod 755 "$script"
  nohup "$script" "$secs" >>"$CODER_SCRIPT_DATA_DIR/interval-backup.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "Interval backup started in background (PID: $!)"
}

install_crestic
write_config
init_repository
restore_on_start
start_interval_backup

echo "--------------------------------"
echo "Restic setup complete"
echo "--------------------------------"
echo "Available commands:"
echo "  restic-backup          - Run manual backup"
echo "  restic-restore         - Restore this workspace's latest backup"
echo "  crestic snapshots      - List all snapshots"
