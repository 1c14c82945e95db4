#!/usr/bin/env python3
"""Schema-driven fuzzing of the HTTP API: schemathesis against `composio-cache
serve` (over the emulator and a temporary directory), driven by the OpenAPI
document the service itself serves. Fails on any 5xx or any response that
breaks the document. Everything on 127.0.0.1; every process stopped on exit.

Usage: scripts/fuzz_api.py [extra schemathesis args]   (schemathesis on PATH)
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = "/api/connections/schemas/composio"
procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, **kw):
    p = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, **kw)
    procs.append(p)
    return p


def main():
    subprocess.run(["cargo", "build", "--bin", "composio-cache"], cwd=ROOT, check=True, timeout=3600)
    exe = os.path.join(ROOT, "target", "debug", "composio-cache")
    emu = start([exe, "emulator", "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    emulator_url = emu.stdout.readline().strip()
    port = free_port()
    cache = tempfile.mkdtemp(prefix="fuzz-cache-")
    env = dict(os.environ, COMPOSIO_API_KEY="emulator-key", COMPOSIO_BASE_URL=emulator_url,
               CACHE_DIR=cache, RUST_LOG="warn")
    start([exe, "serve", "--addr", f"127.0.0.1:{port}"], env=env)
    origin = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(origin + BASE + "/openapi.json", timeout=2)
            break
        except Exception:
            if time.time() > deadline:
                sys.exit("fuzz: serve did not come up")
            time.sleep(0.2)
    # Something to read: one sync first.
    urllib.request.urlopen(urllib.request.Request(origin + BASE + "/sync", method="POST"), timeout=60)
    cmd = ["st", "run", origin + BASE + "/openapi.json", "--url", origin,
           "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
           "--max-examples", "40", "--seed", "1", "--no-color", "--warnings", "off"] + sys.argv[1:]
    print("fuzz:", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, cwd=ROOT, timeout=1800)
    sys.exit(r.returncode)


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=10)
