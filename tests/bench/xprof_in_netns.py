"""Run inside a fresh network namespace (by test_profile.py): start the xprof server, ask it
for its run list, note the addresses it listens on, stop it, and print all that as JSON."""

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script
from tests.bench.serving import fetch_runs, listening

xprof, logdir, port = sys.argv[1], sys.argv[2], sys.argv[3]
server = subprocess.Popen(
    [xprof, "--logdir", logdir, "--port", port],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
result = {"runs": None, "listening": None}
try:
    result["runs"] = fetch_runs(f"http://127.0.0.1:{port}", 90, lambda: server.poll() is None)
    result["listening"] = listening(server.pid)
finally:
    server.terminate()
    try:
        result["exit"] = server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        result["exit"] = "killed"
print(json.dumps(result))
