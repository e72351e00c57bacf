"""Starts `distcache demo` for a test and reads the addresses it prints.

    with running_demo(groups=2) as demo:
        demo.http      # "127.0.0.1:PORT" of node 1's HTTP gateway
        demo.resp      # ("127.0.0.1", PORT) of node 1's RESP listener
        demo.data_dir  # its --data-dir (--tls: the CA is data_dir/tls/ca.pem)
    demo.final_log     # everything it printed, once it has stopped

DISTCACHE_BIN picks the binary (default target/debug/distcache, built if
missing). Ports: a block found free just before the start. The demo is
stopped with Ctrl-C (SIGINT), as a person would.
"""

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READY_TIMEOUT_S = 120


@dataclass
class Demo:
    http: str
    resp: tuple
    log_path: str
    # The demo's --data-dir (with --tls, its CA is <data_dir>/tls/ca.pem).
    data_dir: str = ""
    # What the demo printed, from start to exit: set once it has stopped.
    final_log: str = ""


def free_port_block(count):
    """A first port whose `count` successors are all free now, below the
    kernel's ephemeral range: a port from that range (what binding port 0
    gives) can be taken meanwhile by any outgoing connection, the demo's own
    connections between its nodes included."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, 32000 - count)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no block of {count} free ports")


def distcache_binary():
    binary = os.environ.get("DISTCACHE_BIN") or os.path.join(ROOT, "target", "debug", "distcache")
    if not os.path.exists(binary):
        subprocess.run(["cargo", "build", "--quiet", "-p", "distcache"], cwd=ROOT, check=True)
    return binary


@contextlib.contextmanager
def running_demo(groups=3, extra_args=()):
    base = free_port_block(80)
    with tempfile.TemporaryDirectory() as data_dir:
        log_path = os.path.join(data_dir, "demo.log")
        with open(log_path, "w", encoding="utf-8") as log:
            process = subprocess.Popen(
                [
                    distcache_binary(), "demo", "--data-dir", os.path.join(data_dir, "data"),
                    "--groups", str(groups),
                    "--grpc-port", str(base), "--resp-port", str(base + 40), "--http-port", str(base + 60),
                    *extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            text = ""
            while time.monotonic() < deadline and process.poll() is None:
                with open(log_path, encoding="utf-8", errors="replace") as log:
                    text = log.read()
                if "distcache demo: ready" in text:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError(f"the demo did not become ready:\n{text}")
            http = re.search(r"^  HTTPS? https?://([0-9.]+:\d+)/", text, re.MULTILINE)
            resp = re.search(r"^  RESP ([0-9.]+):(\d+) ", text, re.MULTILINE)
            if not (http and resp):
                raise RuntimeError(f"the demo printed no HTTP or RESP address:\n{text}")
            demo = Demo(http=http.group(1), resp=(resp.group(1), int(resp.group(2))), log_path=log_path,
                        data_dir=os.path.join(data_dir, "data"))
            yield demo
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with open(log_path, encoding="utf-8", errors="replace") as log:
                final_log = log.read()
            if "demo" in locals():
                demo.final_log = final_log
