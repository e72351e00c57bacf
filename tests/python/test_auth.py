"""redis-py against a distcache demo with a password and an ACL user:
no password, a wrong password, the right one, and a user denied a command
and a key, with Redis's error classes (NOAUTH, WRONGPASS, NOPERM).

Run:  pytest tests/python/test_auth.py   (DISTCACHE_BIN=... picks the binary)
"""

import pytest
import redis
from demo_process import running_demo

PASSWORD = "demo-password"
READER = "user reader on >reader-pw ~cache:* +@read -@dangerous"


@pytest.fixture(scope="module")
def address():
    extra = ["--requirepass", PASSWORD, "--acl", READER]
    with running_demo(groups=1, extra_args=extra) as demo:
        yield demo.resp
    assert "distcache demo: ready" in demo.final_log, "the demo's whole log was read"
    assert PASSWORD not in demo.final_log and "reader-pw" not in demo.final_log, "a password reached the log"


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
