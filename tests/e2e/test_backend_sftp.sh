#!/usr/bin/env bash
# SFTP backend (spec §23.3) against a real server: a private OpenSSH sshd on
# a free loopback port (shared/spec/test-servers.md recipe), public-key login.
#   - crestic init / backup / snapshots / restore / check --read-data /
#     forget --prune over sftp.command, restic's layout and file modes
#   - interop with restic 0.14 through the same sshd, both directions
#   - the default command line (ssh HOST -p PORT -l USER -s sftp) through a
#     wrapper `ssh` first in PATH, the URL form, relative paths, sftp.args
#   - refused login, a dead or chatty ssh: quick, clear failures
#   - ssh killed during a backup: clean failure, no partial object under a
#     final name, restic 0.14 still checks the repository
#   - the backend conformance suite (build/crestic-conformance)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
need_server_tool "OpenSSH server (sshd)" test -x /usr/sbin/sshd
need_server_tool "OpenSSH client (ssh)" command -v ssh

export RESTIC_PASSWORD=sftp-test-password

# ---- the server -------------------------------------------------------------
S=$T/sshd
mkdir -p "$S" "$T/sftp-home" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$S/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$S/clientkey"
ssh-keygen -q -t ed25519 -N '' -f "$S/otherkey"
cp "$S/clientkey.pub" "$S/authorized_keys"
PORT=$(free_port)
# Relative repository paths start in $T/sftp-home (internal-sftp -d), not
# in the real home of the user the tests run as.
cat >"$S/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $S/hostkey
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
Subsystem sftp internal-sftp -d $T/sftp-home
EOF
USER_NAME=$(id -un)
ssh_host_config() { # NAME HOSTNAME KEY
    cat <<EOF
Host $1
  HostName $2
  Port $PORT
  User $USER_NAME
  IdentityFile $3
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
EOF
}
{ ssh_host_config sftp-test 127.0.0.1 "$S/clientkey"; ssh_host_config wrong-key 127.0.0.1 "$S/otherkey"; } >"$T/ssh_config"
# for the default command line: options keyed by the real host name
ssh_host_config 127.0.0.1 127.0.0.1 "$S/clientkey" >"$T/ssh_config.url"

/usr/sbin/sshd -t -f "$S/sshd_config" || { fail "sshd refuses the test config"; finish; }
/usr/sbin/sshd -D -e -f "$S/sshd_config" >"$S/log" 2>&1 &
bg_register $!
wait_tcp "$PORT" 10 || { fail "sshd did not start"; show "$S/log"; finish; }

CMD="ssh -F $T/ssh_config sftp-test -s sftp"
c() { cr -o sftp.command="$CMD" "$@"; }
r() { rs -o sftp.command="$CMD" "$@"; }

# A small tree: nested folders, an empty file, a 3 MiB random file, a symlink.
small_source_tree

# ---------------------------------------------------------------------------
section "crestic on sftp: (sftp.command)"
CR=$T/srv/crestic-repo
expect_exit 0 c -r "sftp:ignored:$CR" init
expect_true "init made restic's layout (5 folders, data/00..ff)" \
    bash -c "[ -d '$CR/keys' ] && [ -d '$CR/locks' ] && [ -d '$CR/index' ] && [ -d '$CR/snapshots' ] && [ \$(ls '$CR/data' | grep -c '^[0-9a-f][0-9a-f]\$') = 256 ]"
expect_true "folders are 0700, saved files read-only 0400 (today's restic)" \
    bash -c "[ \$(stat -c %a '$CR/data/ab') = 700 ] && [ \$(stat -c %a '$CR/config') = 400 ] && [ \$(stat -c %a '$CR'/keys/*) = 400 ]"
expect_exit 1 c -r "sftp:ignored:$CR" init
expect_grep "$ERR" "config file already exists" "second init: config file already exists"
expect_exit 10 c -r "sftp:ignored:$T/srv/no-such-repo" snapshots
expect_grep "$ERR" "Is there a repository at the following location" "no repository there: exit 10, restic's message"
expect_exit 0 c -r "sftp:ignored:$CR" snapshots
expect_empty "$OUT" "snapshots of an empty repository: nothing listed"
expect_exit 0 c -r "sftp:ignored:$CR" backup "$T/src"
expect_exit 0 c -r "sftp:ignored:$CR" backup "$T/src"
expect_exit 0 c -r "sftp:ignored:$CR" snapshots --json
expect_true "snapshots lists two snapshots" \
    "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=2)' "$OUT"
expect_exit 0 c -r "sftp:ignored:$CR" restore latest --target "$T/r-cr"
manifest --no-atime "$T/r-cr$T/src" >"$T/m.r-cr"
expect_same "$T/m.src" "$T/m.r-cr" "crestic restore from sftp: equals the source"
expect_exit 0 c -r "sftp:ignored:$CR" check --read-data
expect_true "packs lie under data/XX/, no temporary files left" \
    bash -c "ls '$CR'/data/??/* >/dev/null && ! find '$CR' -name '*-restic-temp-*' | grep -q ."
expect_true "locks were removed again" bash -c "[ -z \"\$(ls -A '$CR/locks')\" ]"
expect_exit 0 c -r "sftp:ignored:$CR" forget --keep-last 1 --prune
expect_exit 0 c -r "sftp:ignored:$CR" snapshots --json
expect_true "forget --prune kept one snapshot" \
    "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=1)' "$OUT"
expect_exit 0 c -r "sftp:ignored:$CR" check --read-data

section "restic 0.14 reads what crestic wrote"
expect_exit 0 r -r "sftp:ignored:$CR" check --read-data
expect_exit 0 r -r "sftp:ignored:$CR" restore latest --target "$T/r-rs"
manifest --no-atime "$T/r-rs$T/src" >"$T/m.r-rs"
expect_same "$T/m.src" "$T/m.r-rs" "restic restore of crestic's snapshot equals the source"

section "crestic reads what restic 0.14 wrote"
RR=$T/srv/restic-repo
expect_exit 0 r -r "sftp:ignored:$RR" init
expect_exit 0 r -r "sftp:ignored:$RR" backup "$T/src"
expect_exit 0 c -r "sftp:ignored:$RR" check --read-data
expect_exit 0 c -r "sftp:ignored:$RR" restore latest --target "$T/r-cr2"
manifest --no-atime "$T/r-cr2$T/src" >"$T/m.r-cr2"
expect_same "$T/m.src" "$T/m.r-cr2" "crestic restore of restic's snapshot equals the source"
expect_exit 0 c -r "sftp:ignored:$RR" backup "$T/src/sub"
expect_exit 0 r -r "sftp:ignored:$RR" check --read-data
expect_true "files crestic saved in restic's repository are read-only too" \
    bash -c "[ \$(find '$RR/snapshots' -type f -perm 0400 | wc -l) = 1 ] && [ \$(find '$RR/snapshots' -type f -perm 0600 | wc -l) = 1 ]"

section "--limit-upload / --limit-download apply over sftp (as in restic)"
# 1 MiB of random data at 512 KiB/s: at least 1.75 s each way (2 s less the burst)
mkdir -p "$T/slow"
head -c 1048576 /dev/urandom >"$T/slow/data.bin"
LR=$T/srv/limit-repo
expect_exit 0 c -r "sftp:x:$LR" init
timed() { local t0; t0=$(date +%s%N); run "$@"; MS=$(( ($(date +%s%N) - t0) / 1000000 )); }
timed c -r "sftp:x:$LR" --limit-upload 512 backup "$T/slow"
if [ "$RC" -eq 0 ] && [ "$MS" -ge 1700 ]; then pass "1 MiB uploaded at 512 KiB/s: $MS ms (at least 1700)"
else fail "1 MiB uploaded at 512 KiB/s takes at least 1700 ms" "rc=$RC, $MS ms"; show "$ERR"; fi
timed c -r "sftp:x:$LR" --limit-download 512 restore latest --target "$T/r-lim"
if [ "$RC" -eq 0 ] && [ "$MS" -ge 1700 ]; then pass "1 MiB downloaded at 512 KiB/s: $MS ms (at least 1700)"
else fail "1 MiB downloaded at 512 KiB/s takes at least 1700 ms" "rc=$RC, $MS ms"; show "$ERR"; fi
expect_true "the rate-limited restore equals the source" cmp "$T/slow/data.bin" "$T/r-lim$T/slow/data.bin"

# ---------------------------------------------------------------------------
section "the default command line: ssh HOST -p PORT -l USER -s sftp"
mkdir -p "$T/bin"
cat >"$T/bin/ssh" <<EOF
#!/bin/sh
echo "\$*" >>"$T/ssh-argv.log"
exec /usr/bin/ssh -F "$T/ssh_config.url" "\$@"
EOF
chmod +x "$T/bin/ssh"
UR=$T/srv/url-repo
: >"$T/ssh-argv.log"
expect_exit 0 env PATH="$T/bin:$PATH" RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "sftp://$USER_NAME@127.0.0.1:$PORT/$UR" init
expect_exit 0 env PATH="$T/bin:$PATH" RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "sftp://$USER_NAME@127.0.0.1:$PORT/$UR" backup "$T/src/sub"
cp "$T/ssh-argv.log" "$T/argv.cr"
: >"$T/ssh-argv.log"
expect_exit 0 env PATH="$T/bin:$PATH" RESTIC_CACHE_DIR="$T/cache-restic" "$RESTIC" -r "sftp://$USER_NAME@127.0.0.1:$PORT/$UR" check --read-data
sort -u "$T/argv.cr" >"$T/argv.cr.u"
sort -u "$T/ssh-argv.log" >"$T/argv.rs.u"
expect_same "$T/argv.rs.u" "$T/argv.cr.u" "URL form: crestic runs ssh with restic 0.14's arguments"
expect_grep "$T/argv.cr.u" "^127\.0\.0\.1 -p $PORT -l $USER_NAME -s sftp\$" "URL form: ssh 127.0.0.1 -p PORT -l USER -s sftp"
expect_exit 0 env PATH="$T/bin:$PATH" RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "sftp:$USER_NAME@127.0.0.1:$UR" snapshots
expect_grep "$T/ssh-argv.log" "^127\.0\.0\.1 -l $USER_NAME -s sftp\$" "user@host:path form: ssh 127.0.0.1 -l USER -s sftp"

section "relative paths and sftp.args"
expect_exit 0 cr -o sftp.args="-F $T/ssh_config" -r "sftp:sftp-test:rel/repo" init
expect_true "a relative path starts in the login folder" test -f "$T/sftp-home/rel/repo/config"
expect_exit 0 cr -o sftp.args="-F $T/ssh_config" -r "sftp:sftp-test:rel/repo" backup "$T/src/sub"
expect_exit 0 r -r "sftp:ignored:$T/sftp-home/rel/repo" check --read-data
expect_exit 1 cr -o sftp.args="-F $T/ssh_config" -o sftp.command="$CMD" -r "sftp:sftp-test:rel/repo" snapshots
expect_grep "$ERR" "cannot specify both sftp.command and sftp.args" "sftp.command and sftp.args together are refused"
expect_exit 1 cr -o sftp.bogus=1 -r "sftp:sftp-test:rel/repo" snapshots
expect_grep "$ERR" "sftp has no such option" "unknown sftp option refused"
expect_exit 1 cr -r "sftp:host:~/repo" snapshots
expect_grep "$ERR" "tilde" "a path starting with ~ is refused (as restic)"

# ---------------------------------------------------------------------------
section "refused login, dead or chatty ssh"
t0=$(date +%s)
run cr -o sftp.command="ssh -F $T/ssh_config wrong-key -s sftp" -r "sftp:x:$CR" snapshots
t1=$(date +%s)
if [ "$RC" = 1 ] && [ $((t1 - t0)) -le 5 ]; then pass "wrong key: exit 1 within 5 s"
else fail "wrong key: exit 1 within 5 s" "rc=$RC, $((t1 - t0)) s"; show "$ERR"; fi
expect_grep "$ERR" "Permission denied" "wrong key: ssh's own message reaches stderr"
expect_grep "$ERR" "ssh command exited: exit status 255" "wrong key: the error names ssh's exit status"
expect_exit 1 cr -o sftp.command="false" -r "sftp:x:$CR" snapshots
expect_grep "$ERR" "unable to start the sftp session: ssh command exited: exit status 1" "ssh exiting at once: its status"
expect_exit 1 cr -o sftp.command="echo Welcome to our server" -r "sftp:x:$CR" snapshots
expect_grep "$ERR" "login script" "text instead of SFTP: a hint at login scripts"
expect_exit 1 cr -o sftp.command="/nonexistent/ssh" -r "sftp:x:$CR" snapshots
expect_grep "$ERR" "unable to start the program \"/nonexistent/ssh\"" "missing program: named"

section "a passphrase prompt on the terminal reaches ssh"
# crestic runs on a terminal (a pty) as the foreground job; ssh, in its own
# process group, gets the terminal while it logs in (restic does the same),
# so it can ask for the key's passphrase.  Without the hand-over ssh stops
# (SIGTTIN) and the command hangs.
ssh-keygen -q -t ed25519 -N 'key-pass-123' -f "$S/passkey"
cat "$S/passkey.pub" >>"$S/authorized_keys"
{ ssh_host_config with-passphrase 127.0.0.1 "$S/passkey" | grep -v BatchMode; } >"$T/ssh_config.pass"
expect_exit 0 env -u SSH_AUTH_SOCK RESTIC_CACHE_DIR="$T/cache-crestic" "$PY" "$TOOLS/ptyanswer.py" passphrase key-pass-123 20 -- \
    "$CRESTIC" -o sftp.command="ssh -F $T/ssh_config.pass with-passphrase -s sftp" -r "sftp:x:$CR" snapshots
expect_grep "$OUT" "prompt answered: yes" "ssh asked for the passphrase on the terminal"
expect_grep "$OUT" "1 snapshots" "... and the command went on over the session"

# ---------------------------------------------------------------------------
section "ssh killed during a backup"
KR=$T/srv/kill-repo
expect_exit 0 c -r "sftp:x:$KR" init
mkdir -p "$T/big"
for i in 1 2 3 4; do head -c 8000000 /dev/urandom >"$T/big/f$i"; done
cat >"$T/bin/ssh-pid" <<EOF
#!/bin/sh
echo \$\$ >"$T/ssh.pid"
exec ssh -F "$T/ssh_config" sftp-test -s sftp
EOF
chmod +x "$T/bin/ssh-pid"
rm -f "$T/ssh.pid"
t0=$(date +%s)
cr -o sftp.command="$T/bin/ssh-pid" -r "sftp:x:$KR" backup "$T/big" >"$T/kill.out" 2>"$T/kill.err" </dev/null &
BPID=$!
for i in $(seq 200); do # until the first pack is stored
    [ -s "$T/ssh.pid" ] && ls "$KR"/data/??/* >/dev/null 2>&1 && break
    sleep 0.05
done
kill -KILL "$(cat "$T/ssh.pid")"
KRC=0
wait "$BPID" || KRC=$?
t1=$(date +%s)
if [ "$KRC" = 1 ] && [ $((t1 - t0)) -le 30 ]; then pass "ssh killed: the backup fails with exit 1 (not SIGPIPE, no hang)"
else fail "ssh killed: the backup fails with exit 1 (not SIGPIPE, no hang)" "rc=$KRC, $((t1 - t0)) s"; show "$T/kill.err"; fi
expect_grep "$T/kill.err" "ssh command exited: killed by signal 9" "ssh killed: the error says how ssh ended"
expect_true "no snapshot was written" bash -c "[ -z \"\$(ls -A '$KR/snapshots')\" ]"
bad=0
for f in "$KR"/data/??/* "$KR"/index/*; do
    [ -f "$f" ] || continue
    n=$(basename "$f")
    case $n in *-restic-temp-*) continue ;; esac
    [ "$(sha256sum <"$f" | cut -c1-64)" = "$n" ] || { bad=1; echo "     partial or corrupt: $f"; }
done
if [ $bad = 0 ]; then pass "ssh killed: every object under a final name is complete"
else fail "ssh killed: every object under a final name is complete"; fi
# the lock of the dead process stays behind (nothing could remove it);
# unlock removes it as stale (same host, no such process)
expect_exit 0 c -r "sftp:x:$KR" unlock
expect_true "unlock removed the stale lock" bash -c "[ -z \"\$(ls -A '$KR/locks')\" ]"
expect_exit 0 r -r "sftp:x:$KR" check
expect_exit 0 c -r "sftp:x:$KR" backup "$T/big"
expect_exit 0 r -r "sftp:x:$KR" check --read-data

section "Ctrl-C reaches crestic, not ssh (own process group)"
# A backup waiting on stdin holds a lock; SIGINT to crestic's whole process
# group (what a terminal's Ctrl-C does) must leave ssh running, so that
# crestic can still remove its lock over it before exiting 130.
mkfifo "$T/fifo"
sleep 60 >"$T/fifo" &
bg_register $!
setsid "$CRESTIC" --cache-dir "$T/cache-crestic" -o sftp.command="$CMD" -r "sftp:x:$KR" backup --stdin \
    <"$T/fifo" >"$T/int.out" 2>"$T/int.err" &
CPID=$!
for i in $(seq 200); do [ -n "$(ls -A "$KR/locks")" ] && break; sleep 0.05; done
expect_true "the waiting backup holds a lock" test -n "$(ls -A "$KR/locks")"
kill -INT -- "-$CPID"
IRC=0
wait "$CPID" || IRC=$?
if [ "$IRC" = 130 ]; then pass "SIGINT to the group: exit 130"; else fail "SIGINT to the group: exit 130" "rc=$IRC"; show "$T/int.err"; fi
expect_true "SIGINT to the group: the lock was removed over the still running ssh" bash -c "[ -z \"\$(ls -A '$KR/locks')\" ]"

# ---------------------------------------------------------------------------
CONF=${CRESTIC_BUILD:-$(dirname "$CRESTIC")}/crestic-conformance
if [ -x "$CONF" ]; then
    section "backend conformance suite"
    # (no fault-injection run: a dropped ssh connection is fatal, as in restic,
    # and is tested above by killing ssh)
    expect_exit 0 "$CONF" -o sftp.command="$CMD" "sftp:x:$T/srv/conformance"
    grep -E '^FAIL' "$OUT" | head -n 10
else
    skip "crestic-conformance not built (CRESTIC_TESTS=ON builds it)"
fi

finish
