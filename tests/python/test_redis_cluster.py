"""redis-py's RedisCluster and redis-cli -c against `distcache demo --cluster-mode`.

In cluster mode every node answers CLUSTER SLOTS/SHARDS/NODES from the
controller's configuration and sends a key another group owns elsewhere with
-MOVED, so cluster clients route each key to its owner directly.

Run:  pytest tests/python/test_redis_cluster.py
"""

import shutil
import subprocess
import urllib.request

import pytest
import redis
from redis.cluster import RedisCluster

from demo_process import running_demo


@pytest.fixture(scope="module")
def cluster_demo():
    with running_demo(groups=2, extra_args=("--cluster-mode",)) as demo:
        yield demo


def test_cluster_slots_cover_every_slot(cluster_demo):
    host, port = cluster_demo.resp
    client = redis.Redis(host=host, port=port)
    try:
        ranges = client.execute_command("CLUSTER", "SLOTS")
        covered = sorted((int(start), int(end)) for start, end, *_ in ranges)
        assert covered[0][0] == 0 and covered[-1][1] == 16383
        assert all(a[1] + 1 == b[0] for a, b in zip(covered, covered[1:])), covered
        assert client.execute_command("CLUSTER", "KEYSLOT", "foo") == 12182
        assert len(client.execute_command("CLUSTER", "MYID")) == 40
        info = client.execute_command("CLUSTER", "INFO")
        info = info.decode() if isinstance(info, bytes) else info
        assert "cluster_state:ok" in info
    finally:
        client.close()


def test_redis_cluster_client_routes_directly(cluster_demo):
    host, port = cluster_demo.resp
    cluster = RedisCluster(host=host, port=port, decode_responses=True)
    try:
        for index in range(50):
            cluster.set(f"ck{index}", index)
        assert [cluster.get(f"ck{index}") for index in range(50)] == [str(i) for i in range(50)]
        # One answer per node written to: both keys share the slot of "t".
        assert cluster.mset_nonatomic({"{t}a": "1", "{t}b": "2"}) == [True]
        assert cluster.msetnx({"{t}c": "3", "{t}d": "4"}) is True
        assert cluster.rename("{t}c", "{t}e") is True
        assert cluster.mget("{t}a", "{t}b", "{t}e") == ["1", "2", "3"]
        assert len(cluster.get_primaries()) == 2
    finally:
        cluster.close()


def follower_reads(demo):
    """distcache_follower_reads_total summed over the demo's nodes (node 1
    serves HTTP on demo.http, every other node on the ports after it)."""
    host, port = demo.http.rsplit(":", 1)
    total = 0.0
    for node in range(16):
        try:
            with urllib.request.urlopen(f"http://{host}:{int(port) + node}/metrics", timeout=10) as answer:
                text = answer.read().decode()
        except OSError:
            break
        total += sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("distcache_follower_reads_total")
        )
    return total


def test_redis_cluster_reads_from_replicas_see_every_acknowledged_write(cluster_demo):
    host, port = cluster_demo.resp
    try:
        from redis.cluster import LoadBalancingStrategy

        # Every read to a replica (READONLY connections), never the primary.
        options = {"load_balancing_strategy": LoadBalancingStrategy.ROUND_ROBIN_REPLICAS}
    except ImportError:  # redis-py before 5.3
        options = {"read_from_replicas": True}
    cluster = RedisCluster(host=host, port=port, decode_responses=True, **options)
    try:
        before = follower_reads(cluster_demo)
        for round_ in range(40):
            key = f"rr{round_ % 8}"
            cluster.set(key, round_)
            # READONLY connections to replicas answer; never an older value.
            assert cluster.get(key) == str(round_)
        assert len(cluster.get_replicas()) > 0
        assert follower_reads(cluster_demo) > before, "no read was answered by a follower"
    finally:
        cluster.close()


def test_a_plain_client_gets_moved_for_another_groups_key(cluster_demo):
    host, port = cluster_demo.resp
    client = redis.Redis(host=host, port=port)
    try:
        moved = 0
        for index in range(20):
            try:
                client.get(f"plain{index}")
            except redis.exceptions.MovedError as error:
                # redis-py parses "-MOVED <slot> <host>:<port>".
                assert error.slot_id == client.execute_command("CLUSTER", "KEYSLOT", f"plain{index}")
                assert error.host == host and error.port != port, error
                moved += 1
        assert moved > 0, "no key of another group among 20: the demo has 2 groups"
    finally:
        client.close()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed")
def test_redis_cli_follows_redirects(cluster_demo):
    host, port = cluster_demo.resp
    base = ["redis-cli", "-c", "-h", host, "-p", str(port)]
    for index in range(10):
        out = subprocess.run(base + ["SET", f"cli{index}", f"v{index}"], capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == "OK", out
    for index in range(10):
        out = subprocess.run(base + ["GET", f"cli{index}"], capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == f"v{index}", out
