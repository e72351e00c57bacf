#!/usr/bin/env python3
"""Client-side caching against a running distcache (or Redis >= 7.4):
how long an invalidation takes to reach a tracking client, and what the
client cache saves.

  scripts/bench-client-cache.py [--host 127.0.0.1] [--port 6379] [--samples 200]

`distcache demo` serves RESP on --port (node 1) and the ports after it
(nodes 2, 3); the writer uses --writer-port (default: --port + 1, another
node, so invalidations travel through the change feed). Prints the delay
from a SET's reply to the `invalidate` push on a RESP3 connection that read
the key (p50/p99/max over the samples, through node 1 and through the
writer's node), then GETs per second of one key with redis-py's client
cache and without. Uses the project's venv (scripts/setup.sh makes it).
"""

import argparse
import socket
import statistics
import time

import redis
from redis.cache import CacheConfig


def command(*words):
    wire = f"*{len(words)}\r\n".encode()
    for word in words:
        data = word.encode() if isinstance(word, str) else word
        wire += f"${len(data)}\r\n".encode() + data + b"\r\n"
    return wire


class Raw:
    """A bare RESP3 socket, so the push's arrival is timed, not a library's."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, *words):
        self.sock.sendall(command(*words))

    def read_until(self, needle, timeout_s=10.0):
        self.sock.settimeout(timeout_s)
        while needle not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buffer += chunk
        index = self.buffer.index(needle) + len(needle)
        seen, self.buffer = self.buffer[:index], self.buffer[index:]
        return seen


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def invalidation_delays(host, port, writer_port, samples):
    reader = Raw(host, port)
    reader.send("HELLO", "3")
    reader.read_until(b"modules")
    reader.read_until(b"\r\n*0\r\n")
    reader.send("CLIENT", "TRACKING", "ON")
    reader.read_until(b"+OK\r\n")
    writer = redis.Redis(host=host, port=writer_port)
    delays = []
    for sample in range(samples):
        key = f"bench:cc:{sample}"
        writer.set(key, "1")
        reader.send("GET", key)
        reader.read_until(b"$1\r\n1\r\n")
        # Let any flush or earlier push arrive before timing.
        time.sleep(0.01)
        writer.set(key, "2")
        written = time.perf_counter()
        reader.read_until(f"{key}\r\n".encode())
        delays.append((time.perf_counter() - written) * 1000.0)
        writer.delete(key)
    return delays


def gets_per_second(client, key, seconds=2.0):
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        client.get(key)
        count += 1
    return count / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--writer-port", type=int)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    for label, writer_port in (("another node", args.writer_port or args.port + 1),
                               ("the same node", args.port)):
        delays = invalidation_delays(args.host, args.port, writer_port, args.samples)
        print(f"invalidation after a SET through {label}: p50 {statistics.median(delays):.2f} ms, "
              f"p99 {percentile(delays, 0.99):.2f} ms, max {max(delays):.2f} ms ({len(delays)} samples)")
    plain = redis.Redis(host=args.host, port=args.port, protocol=3)
    cached = redis.Redis(host=args.host, port=args.port, protocol=3, cache_config=CacheConfig())
    plain.set("bench:cc:hot", "x" * 100)
    without = gets_per_second(plain, "bench:cc:hot")
    with_cache = gets_per_second(cached, "bench:cc:hot")
    print(f"GET of one key, one redis-py client: {without:,.0f}/s without its cache, "
          f"{with_cache:,.0f}/s with it ({with_cache / without:.1f}x)")
    plain.delete("bench:cc:hot")


if __name__ == "__main__":
    main()
