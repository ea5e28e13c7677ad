"""Start a long-lived grandchild, record its pid, then wait or exit.

`spawn.py PIDFILE [--setsid] [--exit] [--ignore-term]`: with --setsid the
grandchild leaves the process group (as a daemon would); with --exit this
process exits at once, leaving the grandchild behind; with --ignore-term
this process ignores SIGTERM.
"""

import os
import signal
import subprocess
import sys
import time

pidfile = sys.argv[1]
flags = set(sys.argv[2:])
if "--ignore-term" in flags:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(
    ["sleep", "300"],
    start_new_session="--setsid" in flags,
    stdout=subprocess.DEVNULL if "--setsid" in flags else None,
)
with open(pidfile + ".tmp", "w") as file:
    file.write(f"{os.getpid()} {child.pid}\n")
os.replace(pidfile + ".tmp", pidfile)
print(f"spawned {child.pid}", flush=True)
if "--exit" in flags:
    os._exit(0)
while True:
    time.sleep(1)
