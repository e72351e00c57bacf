"""redis-py against a distcache demo with a password and an ACL user:
no password, a wrong password, the right one, and a user denied a command
and a key, with Redis's error classes (NOAUTH, WRONGPASS, NOPERM).

Run:  pytest tests/python/test_auth.py   (DISTCACHE_BIN=... to skip the build)
"""

import os
import re
import subprocess
import tempfile
import time

import pytest
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "demo-password"
READER = "user reader on >reader-pw ~cache:* +@read -@dangerous"


def _wait_for_resp_address(log_path, process, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    pattern = re.compile(r"^  RESP (127\.0\.0\.1):(\d+) ", re.MULTILINE)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with open(log_path, encoding="utf-8", errors="replace") as log:
            match = pattern.search(log.read())
        if match:
            return match.group(1), int(match.group(2))
        time.sleep(0.2)
    with open(log_path, encoding="utf-8", errors="replace") as log:
        raise RuntimeError(f"distcache demo printed no RESP address:\n{log.read()}")


@pytest.fixture(scope="module")
def address():
    binary = os.environ.get("DISTCACHE_BIN")
    if not binary:
        subprocess.run(["cargo", "build", "--quiet", "-p", "distcache"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target/debug/distcache")
    base = 20000 + (os.getpid() % 100) * 100
    with tempfile.TemporaryDirectory() as data_dir:
        log_path = os.path.join(data_dir, "demo.log")
        with open(log_path, "w", encoding="utf-8") as log:
            process = subprocess.Popen(
                [
                    binary, "demo", "--data-dir", os.path.join(data_dir, "data"),
                    "--groups", "1", "--replicas", "3",
                    "--grpc-port", str(base), "--resp-port", str(base + 40), "--http-port", str(base + 60),
                    "--requirepass", PASSWORD, "--acl", READER,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            yield _wait_for_resp_address(log_path, process)
        finally:
            process.terminate()
            process.wait(timeout=30)
        with open(log_path, encoding="utf-8", errors="replace") as log:
            text = log.read()
        assert PASSWORD not in text and "reader-pw" not in text, "a password reached the log"


def test_no_password_is_refused(address):
    client = redis.Redis(host=address[0], port=address[1])
    with pytest.raises(redis.AuthenticationError, match="Authentication required|already authenticated"):
        client.get("cache:1")
    client.close()


def test_wrong_password_is_refused(address):
    client = redis.Redis(host=address[0], port=address[1], password="wrong")
    with pytest.raises(redis.AuthenticationError, match="invalid username-password pair"):
        client.ping()
    client.close()


def test_right_password_serves(address):
    client = redis.Redis(host=address[0], port=address[1], password=PASSWORD, decode_responses=True)
    assert client.set("cache:1", "one") is True
    assert client.set("private", "p") is True
    assert client.get("cache:1") == "one"
    assert client.acl_whoami() == "default"
    client.close()


def test_resp3_hello_auth(address):
    client = redis.Redis(host=address[0], port=address[1], username="default", password=PASSWORD,
                         protocol=3, decode_responses=True)
    assert client.ping() is True
    client.close()


def test_acl_user_denied_a_command_and_a_key(address):
    admin = redis.Redis(host=address[0], port=address[1], password=PASSWORD)
    admin.set("cache:2", "two")
    admin.close()
    reader = redis.Redis(host=address[0], port=address[1], username="reader", password="reader-pw",
                         decode_responses=True)
    assert reader.get("cache:2") == "two"
    with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions to run the 'set' command"):
        reader.set("cache:2", "x")
    with pytest.raises(redis.exceptions.NoPermissionError, match="No permissions to access a key"):
        reader.get("private")
    reader.close()
