"""The host of the robot example: the person at a terminal, played by a program.

    python host.py [rebeam options]

Python inside a run reads the safety state but never changes it, so main.py says when it
wants a change ("waiting for the host to run `rebeam ctl arm`") and waits for it. This
program is the host: it starts the run with a control socket in a directory of its own,
reads what the run prints, and answers each request with `rebeam ctl --socket PATH ACTION`,
from outside the run. Arming from inside main.py would be refused.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUEST = "waiting for the host to run `rebeam ctl "


def rebeam_command() -> str:
    beside = Path(sys.executable).with_name("rebeam")
    return os.environ.get("REBEAM_BIN") or (str(beside) if beside.exists() else shutil.which("rebeam") or "rebeam")


def main() -> int:
    rebeam = rebeam_command()
    with tempfile.TemporaryDirectory(prefix="robot-") as private:  # 0700: only we can reach the socket
        socket = os.path.join(private, "ctl.sock")
        cmd = [rebeam, "--control-socket", socket, *sys.argv[1:], "main.py"]
        with subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.PIPE, text=True, bufsize=1) as run:
            for line in run.stdout:
                print(line, end="", flush=True)
                if line.startswith(REQUEST):
                    action = line[len(REQUEST):].split("`", 1)[0]
                    r = subprocess.run([rebeam, "ctl", "--socket", socket, action], capture_output=True, text=True,
                                       timeout=10)
                    said = (r.stdout + r.stderr).strip().replace("\n", "; ")
                    print(f"host: $ rebeam ctl {action} -> {said}", flush=True)
        return run.returncode


if __name__ == "__main__":
    sys.exit(main())
