"""Run inside a fresh network namespace (by test_profile.py): start the xprof server on
loopback, ask it for its run list, stop it, and print what happened as JSON."""

import gzip
import json
import subprocess
import sys
import time
import urllib.request

xprof, logdir, port = sys.argv[1], sys.argv[2], sys.argv[3]
server = subprocess.Popen(
    [xprof, "--logdir", logdir, "--port", port],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
result = {"runs": None, "error": None}
try:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and result["runs"] is None:
        try:
            url = f"http://127.0.0.1:{port}/data/plugin/profile/runs"
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read()
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            result["runs"] = json.loads(body)
        except OSError as exc:
            result["error"] = str(exc)
            if server.poll() is not None:
                break
            time.sleep(0.5)
finally:
    server.terminate()
    try:
        result["exit"] = server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        result["exit"] = "killed"
print(json.dumps(result))
