"""redis-py and Python's ssl module against `distcache demo --tls
--requirepass`: the demo writes its throwaway CA to <data-dir>/tls/ca.pem;
a client that trusts it is served over TLS, a plaintext client and a
client that does not trust the CA are refused, and the password is still
required.

Run:  pytest tests/python/test_tls.py   (DISTCACHE_BIN=... picks the binary)
"""

import http.client
import json
import os
import ssl
import urllib.error
import urllib.request

import pytest
import redis
from demo_process import running_demo

PASSWORD = "tls-demo-password"


@pytest.fixture(scope="module")
def demo():
    with running_demo(groups=1, extra_args=["--tls", "--requirepass", PASSWORD]) as demo:
        yield demo
    assert PASSWORD not in demo.final_log, "the password reached the log"


def ca_of(demo):
    ca = os.path.join(demo.data_dir, "tls", "ca.pem")
    assert os.path.getsize(ca) > 0
    return ca


def test_the_demo_says_how_to_connect(demo):
    with open(demo.log_path, encoding="utf-8") as log:
        text = log.read()
    assert f"redis-cli --tls --cacert {ca_of(demo)}" in text
    assert f"curl --cacert {ca_of(demo)} https://" in text


def test_redis_py_over_tls(demo):
    host, port = demo.resp
    client = redis.Redis(host=host, port=port, password=PASSWORD, ssl=True,
                         ssl_ca_certs=ca_of(demo), decode_responses=True)
    assert client.ping() is True
    assert client.set("tls:py", "secret value") is True
    assert client.get("tls:py") == "secret value"
    client.close()


def test_redis_py_over_tls_still_needs_the_password(demo):
    host, port = demo.resp
    client = redis.Redis(host=host, port=port, ssl=True, ssl_ca_certs=ca_of(demo))
    with pytest.raises(redis.AuthenticationError):
        client.get("tls:py")
    client.close()


def test_plaintext_redis_client_is_refused(demo):
    host, port = demo.resp
    client = redis.Redis(host=host, port=port, password=PASSWORD, socket_timeout=15)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()


def test_a_client_that_does_not_trust_the_ca_is_refused(demo):
    host, port = demo.resp
    # The system's roots do not know the throwaway CA.
    client = redis.Redis(host=host, port=port, password=PASSWORD, ssl=True,
                         ssl_cert_reqs="required", socket_timeout=15)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()


def test_https_with_the_ca(demo):
    context = ssl.create_default_context(cafile=ca_of(demo))
    with urllib.request.urlopen(f"https://{demo.http}/livez", context=context, timeout=30) as answer:
        assert answer.status == 200
    request = urllib.request.Request(f"https://{demo.http}/v1/cluster",
                                     headers={"Authorization": f"Bearer {PASSWORD}"})
    with urllib.request.urlopen(request, context=context, timeout=30) as answer:
        cluster = json.loads(answer.read())
    assert cluster["cluster_id"] == "demo"
    # Node 1 asked every other node over TLS, trusting the demo's CA.
    assert len(cluster["nodes"]) == 3 and all(node["reachable"] for node in cluster["nodes"]), cluster
    # Plain HTTP on the HTTPS port: the connection is closed unanswered.
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://{demo.http}/livez", timeout=15)
