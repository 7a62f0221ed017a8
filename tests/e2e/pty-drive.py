#!/usr/bin/env python3
"""pty-drive.py — run a command on a new pseudo-terminal (su reads passwords
from its terminal), answer one prompt, print everything the command wrote and
exit with its status.  usage: pty-drive.py PROMPT ANSWER CMD [ARG...]
The answer is read from the environment variable named ANSWER, so a key never
appears in a process list."""
import os
import pty
import select
import sys
import time


def main():
    prompt, answer_var, cmd = sys.argv[1].encode(), sys.argv[2], sys.argv[3:]
    answer = os.environ.get(answer_var, "").encode()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    out, answered, deadline = b"", False, time.monotonic() + 20
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not answered and prompt in out:
            os.write(fd, answer + b"\n")
            answered = True
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode(errors="replace").replace(answer.decode(), "<answer>") if answer else out.decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128)


main()
