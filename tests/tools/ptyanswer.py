#!/usr/bin/env python3
"""Run a command on a new pseudo-terminal (as its controlling terminal and
foreground job, like an interactive shell would) and answer one prompt.

    ptyanswer.py PROMPT_SUBSTRING ANSWER TIMEOUT_S -- CMD [ARGS...]

Everything the command writes to the terminal goes to our stdout.  When the
output first contains PROMPT_SUBSTRING (case-insensitive), ANSWER and a
newline are typed.  Exits with the command's exit code, or 124 when it did
not finish within TIMEOUT_S seconds (it is then killed).  A last line
"prompt answered: yes|no" tells whether the prompt was seen."""
import os
import pty
import select
import signal
import sys
import time


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        sys.exit(__doc__)
    prompt, answer, timeout = sys.argv[1].lower().encode(), sys.argv[2].encode(), float(sys.argv[3])
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(sys.argv[5], sys.argv[5:])
    out, answered, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # the terminal's other side is gone
            break
        if not data:
            break
        out += data
        if not answered and prompt in out.lower():
            os.write(fd, answer + b"\n")
            answered = True
    done, status = os.waitpid(pid, os.WNOHANG)
    while done == 0 and time.monotonic() < deadline:  # the terminal closes a little before the exit
        time.sleep(0.05)
        done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        os.killpg(pid, signal.SIGKILL)  # the command leads its own session
        os.waitpid(pid, 0)
        code = 124
    else:
        code = os.waitstatus_to_exitcode(status)
    sys.stdout.write(out.decode(errors="replace"))
    print("\nprompt answered:", "yes" if answered else "no")
    sys.exit(code)


main()
