"""Collection commands through redis-py: distcache's replies compared with
redis-server 7's, command by command.

Run:  DISTCACHE_BIN=target/debug/distcache pytest tests/python/test_types.py

The module starts `distcache demo` (demo_process.running_demo) and, when
`redis-server` is installed (scripts/setup.sh installs it), a real
redis-server on a free loopback port with persistence off. Each scenario
sends the same commands to both and asserts identical replies, errors
included. Without redis-server the comparisons are skipped; the
scenarios' spot checks still run against distcache alone.

Keys that `LMOVE` moves between share a {hash tag}, so they live in the
same shard (distcache refuses a move across shards with CROSSSLOT); so do
the keys of one set-algebra command or `SMOVE`. Commands whose reply is a
set (`SINTER`, `SUNION`, `SDIFF`, `SMEMBERS`) are compared as sets: Redis
leaves their order unspecified.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import redis

from demo_process import running_demo


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def distcache():
    with running_demo(groups=2) as demo:
        host, port = demo.resp
        client = redis.Redis(host=host, port=port, socket_timeout=30)
        yield client
        client.close()


@pytest.fixture(scope="module")
def reference():
    """A redis-server 7 to compare with, or None."""
    binary = shutil.which("redis-server")
    if not binary:
        yield None
        return
    port = _free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", data_dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield client
            client.close()
        finally:
            process.terminate()
            process.wait(timeout=10)


def _reply(client, args):
    try:
        return ("ok", client.execute_command(*args))
    except redis.ResponseError as error:
        return ("error", str(error))


UNORDERED = {"SINTER", "SUNION", "SDIFF", "SMEMBERS"}


def _as_set(args, reply):
    """A set-valued reply with its order dropped."""
    kind, value = reply
    if kind == "ok" and args[0].upper() in UNORDERED and isinstance(value, (list, set)):
        return (kind, sorted(value))
    return reply


def compare(distcache, reference, script):
    """Runs each command on both servers; replies must be identical
    (set-valued ones as sets). Returns distcache's replies (for spot checks
    without a reference)."""
    replies = []
    for args in script:
        ours = _as_set(args, _reply(distcache, args))
        if reference is not None:
            theirs = _as_set(args, _reply(reference, args))
            assert ours == theirs, f"{args}: distcache {ours!r}, redis-server {theirs!r}"
        replies.append(ours)
    return replies


def _script(text, prefix):
    """One command a line; `$` stands for the scenario's key prefix."""
    return [line.replace("$", prefix).split() for line in text.strip().splitlines() if line.strip()]


LISTS = """
RPUSH $l a b c a b
LPUSH $l z y
LPUSHX $none x
RPUSHX $l w
LLEN $l
LRANGE $l 0 -1
LRANGE $l -3 -1
LRANGE $l 2 1
LRANGE $l -100 100
LRANGE $none 0 -1
LINDEX $l 0
LINDEX $l -1
LINDEX $l 99
LINDEX $l x
LPOP $l
RPOP $l
LPOP $l 2
RPOP $l 0
LPOP $none
LPOP $none 3
LPOP $l -1
LPOP $l x
LPOS $l a
LPOS $l b RANK -1
LPOS $l b RANK 2
LPOS $l a COUNT 0
LPOS $l a COUNT 1 MAXLEN 1
LPOS $l nope
LPOS $l nope COUNT 3
LPOS $none a
LPOS $l a RANK 0
LPOS $l a COUNT -1
LPOS $l a MAXLEN -1
LPOS $l a FOO 1
LPOS $l a RANK
LSET $l 0 A
LSET $l -1 B
LSET $l 99 x
LSET $none 0 x
LSET $l x y
LINSERT $l BEFORE c x
LINSERT $l AFTER c y
LINSERT $l AFTER nope y
LINSERT $none AFTER c y
LINSERT $l MIDDLE c y
LRANGE $l 0 -1
LREM $l 1 x
LREM $l -1 a
LREM $l 0 nope
LREM $none 0 a
RPUSH $r 1 2 1 2 1
LREM $r -2 1
LRANGE $r 0 -1
LTRIM $r 1 -1
LRANGE $r 0 -1
LTRIM $r 5 10
EXISTS $r
LTRIM $none 0 1
TYPE $l
LPUSH
LPUSH $l
LLEN $l extra
"""

MOVES = """
RPUSH {$}a 1 2 3
LMOVE {$}a {$}b LEFT RIGHT
LMOVE {$}a {$}b RIGHT LEFT
RPOPLPUSH {$}a {$}b
LRANGE {$}b 0 -1
EXISTS {$}a
LMOVE {$}b {$}b LEFT RIGHT
LRANGE {$}b 0 -1
LMOVE {$}none {$}b LEFT LEFT
RPOPLPUSH {$}none {$}b
LMOVE {$}b {$}b UP LEFT
SET {$}s str
LMOVE {$}b {$}s LEFT LEFT
LMOVE {$}s {$}b LEFT LEFT
RPOPLPUSH {$}b {$}s
LRANGE {$}b 0 -1
LPUSH {$}s x
LRANGE {$}s 0 -1
LLEN {$}s
GET {$}b
TYPE {$}b
"""


SET_ALGEBRA = """
SADD {$}a 1 2 3 4
SADD {$}b 3 4 5
SADD {$}c 4 6
SET {$}s text
SINTER {$}a {$}b
SINTER {$}a {$}b {$}c
SINTER {$}a
SINTER {$}a {$}none
SINTER {$}none
SINTER {$}a {$}s
SINTER {$}none {$}s
SINTER {$}s {$}a
SINTER
SUNION {$}a {$}b {$}c
SUNION {$}none {$}c
SUNION {$}none
SUNION {$}a {$}s
SUNION {$}none {$}s
SUNION
SDIFF {$}a {$}b
SDIFF {$}a {$}b {$}c
SDIFF {$}b {$}a
SDIFF {$}a {$}none
SDIFF {$}none {$}a
SDIFF {$}a {$}s
SDIFF {$}none {$}s
SDIFF {$}s {$}none
SDIFF
SINTERSTORE {$}d {$}a {$}b
SMEMBERS {$}d
SUNIONSTORE {$}d {$}a {$}c
SMEMBERS {$}d
SDIFFSTORE {$}d {$}d {$}b
SMEMBERS {$}d
SDIFFSTORE {$}s {$}a {$}b
TYPE {$}s
SMEMBERS {$}s
SET {$}s text
EXPIRE {$}d 1000
SUNIONSTORE {$}d {$}a
TTL {$}d
SINTERSTORE {$}d {$}a {$}none
EXISTS {$}d
SUNIONSTORE {$}d {$}none
EXISTS {$}d
SDIFFSTORE {$}d {$}a {$}a
EXISTS {$}d
SINTERSTORE {$}d {$}a {$}s
SUNIONSTORE {$}d {$}s
SDIFFSTORE {$}d {$}none {$}s
SINTERSTORE {$}d
SINTERCARD 2 {$}a {$}b
SINTERCARD 1 {$}a
SINTERCARD 3 {$}a {$}b {$}c
SINTERCARD 2 {$}a {$}b LIMIT 1
SINTERCARD 2 {$}a {$}b LIMIT 0
SINTERCARD 2 {$}a {$}b LIMIT 99
SINTERCARD 2 {$}a {$}none
SINTERCARD 2 {$}a {$}s
SINTERCARD 2 {$}none {$}s
SINTERCARD 0 {$}a
SINTERCARD -1 {$}a
SINTERCARD x {$}a
SINTERCARD 3 {$}a {$}b
SINTERCARD 1 {$}a LIMIT -1
SINTERCARD 1 {$}a LIMIT x
SINTERCARD 1 {$}a LIMIT
SINTERCARD 1 {$}a FOO 1
SINTERCARD 1 {$}a {$}b
SINTERCARD 1
SMOVE {$}a {$}b 1
SMEMBERS {$}a
SMEMBERS {$}b
SMOVE {$}a {$}b 1
SMOVE {$}a {$}b 3
SMEMBERS {$}a
SMEMBERS {$}b
SMOVE {$}a {$}a 2
SMOVE {$}a {$}a 9
SMOVE {$}none {$}b 1
SMOVE {$}none {$}s 1
SMOVE {$}s {$}b 1
SMOVE {$}a {$}s 2
SMOVE {$}a {$}s 9
SMOVE {$}a {$}s
SMOVE {$}c {$}n 4
SMOVE {$}c {$}n 6
EXISTS {$}c
SMEMBERS {$}n
TYPE {$}n
"""


def test_set_algebra_answers_as_redis_server(distcache, reference):
    replies = compare(distcache, reference, _script(SET_ALGEBRA, "types:sets:"))
    assert replies[4] == ("ok", [b"3", b"4"])
    assert ("error", "WRONGTYPE Operation against a key holding the wrong kind of value") in replies


def test_set_algebra_across_shards_is_refused_and_changes_nothing(distcache):
    distcache.delete("a", "b", "{b}d")
    distcache.sadd("a", "1", "2")
    distcache.sadd("b", "2")
    # "a" and "b" are in different shards (see the LMOVE test below).
    for args in [
        ("SINTER", "a", "b"),
        ("SUNIONSTORE", "{b}d", "a", "b"),
        ("SINTERCARD", "2", "a", "b"),
        ("SMOVE", "a", "b", "1"),
    ]:
        with pytest.raises(redis.ResponseError, match="don.t hash to the same slot"):
            distcache.execute_command(*args)
    assert distcache.smembers("a") == {b"1", b"2"}
    assert distcache.smembers("b") == {b"2"}
    assert distcache.exists("{b}d") == 0


def test_list_commands_answer_as_redis_server(distcache, reference):
    replies = compare(distcache, reference, _script(LISTS, "types:lists:"))
    assert replies[0] == ("ok", 5)
    assert ("error", "no such key") in replies
    assert ("error", "index out of range") in replies


def test_list_moves_answer_as_redis_server(distcache, reference):
    replies = compare(distcache, reference, _script(MOVES, "types:moves:"))
    assert replies[1] == ("ok", b"1")
    assert ("error", "WRONGTYPE Operation against a key holding the wrong kind of value") in replies


def test_a_move_across_shards_is_refused_and_changes_nothing(distcache):
    distcache.delete("a", "b")
    distcache.rpush("a", "1")
    # "a" and "b" are in different slots (15495, 3300) and, with two groups,
    # in different shards.
    with pytest.raises(redis.ResponseError, match="don.t hash to the same slot"):
        distcache.lmove("a", "b", "LEFT", "RIGHT")
    assert distcache.lrange("a", 0, -1) == [b"1"]
    assert distcache.exists("b") == 0


ZSETS = """
ZADD {$}z 1 a 2 b 3 c
ZADD {$}z 1.1 d -0 e +inf top -inf bottom
ZADD {$}z NX 9 a 4 f
ZADD {$}z XX CH 9 a 4 g
ZADD {$}z GT CH 5 a 10 a
ZADD {$}z LT CH 1 b 3 b
ZADD {$}z XX GT CH 1 c 7 c
ZADD {$}z INCR 2 a
ZADD {$}z NX INCR 2 a
ZADD {$}z XX INCR 2 nobody
ZADD {$}z GT INCR -1 a
ZADD {$}z CH 1 dup 2 dup
ZADD {$}z NX XX 1 a
ZADD {$}z GT LT 1 a
ZADD {$}z NX GT 1 a
ZADD {$}z INCR 1 a 2 b
ZADD {$}z 1 a 2
ZADD {$}z nan a
ZADD {$}z x a
ZADD {$}z 1e400 a
ZADD {$}z NX
ZINCRBY {$}z 1.5 b
ZINCRBY {$}z x b
ZINCRBY {$}z +inf b
ZINCRBY {$}z -inf b
ZINCRBY {$}new 3 m
ZCARD {$}z
ZCARD {$}none
ZSCORE {$}z d
ZSCORE {$}z top
ZSCORE {$}z e
ZSCORE {$}z nobody
ZSCORE {$}none a
ZMSCORE {$}z a nobody d
ZMSCORE {$}none a b
ZRANK {$}z d
ZREVRANK {$}z d
ZRANK {$}z nobody
ZRANK {$}none a
ZRANGE {$}z 0 -1
ZRANGE {$}z 0 -1 WITHSCORES
ZRANGE {$}z -3 -1 WITHSCORES
ZRANGE {$}z 5 2
ZRANGE {$}z 0 -1 REV
ZRANGE {$}z 1 2 REV WITHSCORES
ZRANGE {$}z (1 3 BYSCORE WITHSCORES
ZRANGE {$}z +inf -inf BYSCORE REV
ZRANGE {$}z -inf +inf BYSCORE LIMIT 1 3
ZRANGE {$}z -inf +inf BYSCORE LIMIT -1 3
ZRANGE {$}z -inf +inf BYSCORE LIMIT 2 -1
ZRANGE {$}z 0 -1 LIMIT 0 1
ZRANGE {$}z 0 -1 LIMIT 1 -1
ZRANGE {$}z a b
ZRANGE {$}z 0 1 BYSCORE BYLEX
ZRANGE {$}z - + BYLEX WITHSCORES
ZRANGE {$}z 0 -1 FOO
ZRANGE {$}none 0 -1
ZRANGEBYSCORE {$}z -inf +inf
ZRANGEBYSCORE {$}z (1 (3 WITHSCORES
ZRANGEBYSCORE {$}z 1 10 LIMIT 1 2 WITHSCORES
ZRANGEBYSCORE {$}z x 1
ZRANGEBYSCORE {$}z 1 nan
ZRANGEBYSCORE {$}z 0 1 REV
ZREVRANGEBYSCORE {$}z +inf -inf
ZREVRANGEBYSCORE {$}z 3 (1 WITHSCORES LIMIT 0 2
ZREVRANGE {$}z 0 2 WITHSCORES
ZREVRANGE {$}z -1 -1
ZCOUNT {$}z -inf +inf
ZCOUNT {$}z (1 3
ZCOUNT {$}z 3 1
ZCOUNT {$}z a 1
ZCOUNT {$}none 0 1
ZPOPMIN {$}z
ZPOPMAX {$}z
ZPOPMIN {$}z 2
ZPOPMAX {$}z 0
ZPOPMIN {$}z -1
ZPOPMIN {$}z x
ZPOPMIN {$}z 1 2
ZPOPMIN {$}none
ZPOPMAX {$}none 3
ZREM {$}z a nobody d
ZREM {$}none a
ZRANGE {$}z 0 -1 WITHSCORES
ZREMRANGEBYRANK {$}z 0 0
ZREMRANGEBYRANK {$}z x 1
ZREMRANGEBYSCORE {$}z (2 +inf
ZREMRANGEBYSCORE {$}z a b
ZRANGE {$}z 0 -1 WITHSCORES
ZADD {$}lex 0 a 0 b 0 c 0 d 0 e
ZRANGEBYLEX {$}lex - +
ZRANGEBYLEX {$}lex [b (e
ZRANGEBYLEX {$}lex (a [c LIMIT 1 5
ZRANGEBYLEX {$}lex + -
ZRANGEBYLEX {$}lex b c
ZRANGEBYLEX {$}lex - + WITHSCORES
ZREVRANGEBYLEX {$}lex + -
ZREVRANGEBYLEX {$}lex [d [b
ZRANGE {$}lex [b [d BYLEX REV
ZRANGE {$}lex [d [b BYLEX REV LIMIT 0 2
ZLEXCOUNT {$}lex - +
ZLEXCOUNT {$}lex (a [c
ZLEXCOUNT {$}lex a c
ZREMRANGEBYLEX {$}lex [a (c
ZRANGE {$}lex 0 -1
ZREMRANGEBYLEX {$}lex x y
ZRANDMEMBER {$}none
ZRANDMEMBER {$}none 3
ZRANDMEMBER {$}lex x
ZRANDMEMBER {$}lex 1 WITHSCORE
ZRANDMEMBER {$}lex 0
SET {$}str x
ZADD {$}str 1 a
ZRANGE {$}str 0 -1
ZSCORE {$}str a
ZCARD {$}str
ZPOPMIN {$}str
ZREM {$}str a
ZINCRBY {$}str 1 a
ZREMRANGEBYRANK {$}str 0 -1
ZRANDMEMBER {$}str
TYPE {$}lex

"""

ZSET_ALGEBRA = """
ZADD {$}a 1 x 2 y 3 z
ZADD {$}b 10 y 20 w 1 z
SADD {$}s y q
SET {$}str v
ZUNIONSTORE {$}d 2 {$}a {$}b
ZRANGE {$}d 0 -1 WITHSCORES
ZUNIONSTORE {$}d 2 {$}a {$}b WEIGHTS 2 0.5 AGGREGATE MAX
ZRANGE {$}d 0 -1 WITHSCORES
ZUNIONSTORE {$}d 3 {$}a {$}b {$}s AGGREGATE MIN
ZRANGE {$}d 0 -1 WITHSCORES
ZINTERSTORE {$}d 2 {$}a {$}b
ZRANGE {$}d 0 -1 WITHSCORES
ZINTERSTORE {$}d 3 {$}a {$}b {$}s WEIGHTS 1 1 100
ZRANGE {$}d 0 -1 WITHSCORES
ZINTERSTORE {$}d 2 {$}a {$}none
EXISTS {$}d
ZDIFFSTORE {$}d 2 {$}a {$}b
ZRANGE {$}d 0 -1 WITHSCORES
ZDIFFSTORE {$}d 1 {$}none
EXISTS {$}d
ZUNIONSTORE {$}d 2 {$}a {$}str
ZUNIONSTORE {$}d 0 {$}a
ZUNIONSTORE {$}d -1 {$}a
ZUNIONSTORE {$}d x {$}a
ZUNIONSTORE {$}d 3 {$}a {$}b
ZUNIONSTORE {$}d 2 {$}a {$}b WEIGHTS 1
ZUNIONSTORE {$}d 2 {$}a {$}b WEIGHTS 1 x
ZUNIONSTORE {$}d 2 {$}a {$}b AGGREGATE AVG
ZUNIONSTORE {$}d 2 {$}a {$}b AGGREGATE
ZDIFFSTORE {$}d 2 {$}a {$}b WEIGHTS 1 1
ZINTERSTORE {$}d 1 {$}a WITHSCORES
ZUNIONSTORE {$}a 2 {$}a {$}b
ZRANGE {$}a 0 -1 WITHSCORES
ZRANGESTORE {$}r {$}b 0 1
ZRANGE {$}r 0 -1 WITHSCORES
ZRANGESTORE {$}r {$}b (1 +inf BYSCORE LIMIT 0 1
ZRANGE {$}r 0 -1 WITHSCORES
ZRANGESTORE {$}r {$}b [a [z BYLEX REV
ZRANGESTORE {$}r {$}none 0 -1
EXISTS {$}r
ZRANGESTORE {$}r {$}str 0 -1
ZRANGESTORE {$}r {$}s 0 -1
ZRANGESTORE {$}r {$}b 0 -1 WITHSCORES
COPY {$}b {$}copy
ZRANGE {$}copy 0 -1 WITHSCORES
RENAME {$}copy {$}renamed
ZRANGE {$}renamed 0 -1 WITHSCORES
TYPE {$}renamed
"""


def test_sorted_set_commands_answer_as_redis_server(distcache, reference):
    replies = compare(distcache, reference, _script(ZSETS, "types:zsets:"))
    assert replies[0] == ("ok", 3)
    assert ("error", "resulting score is not a number (NaN)") in replies
    assert ("error", "WRONGTYPE Operation against a key holding the wrong kind of value") in replies


def test_sorted_set_stores_answer_as_redis_server(distcache, reference):
    replies = compare(distcache, reference, _script(ZSET_ALGEBRA, "types:zalgebra:"))
    assert replies[4] == ("ok", 4)


def test_sorted_set_random_members_are_members(distcache):
    distcache.delete("{zr}z")
    distcache.zadd("{zr}z", {"a": 1, "b": 2, "c": 3})
    assert distcache.zrandmember("{zr}z") in {b"a", b"b", b"c"}
    assert sorted(distcache.zrandmember("{zr}z", 5)) == [b"a", b"b", b"c"]
    picked = distcache.zrandmember("{zr}z", -7)
    assert len(picked) == 7 and set(picked) <= {b"a", b"b", b"c"}
    with_scores = distcache.execute_command("ZRANDMEMBER", "{zr}z", "2", "WITHSCORES")
    # redis-py pairs them up (member, float score).
    pairs = {(member, float(score)) for member, score in with_scores}
    assert len(pairs) == 2 and pairs <= {(b"a", 1.0), (b"b", 2.0), (b"c", 3.0)}


def test_sorted_set_stores_across_shards_are_refused_and_change_nothing(distcache):
    distcache.delete("a", "b", "{a}d")
    distcache.zadd("a", {"m": 1})
    distcache.zadd("b", {"m": 2})
    for args in [
        ("ZUNIONSTORE", "{a}d", "2", "a", "b"),
        ("ZINTERSTORE", "{a}d", "2", "a", "b"),
        ("ZRANGESTORE", "b", "a", "0", "-1"),
    ]:
        with pytest.raises(redis.ResponseError, match="don.t hash to the same slot"):
            distcache.execute_command(*args)
    assert distcache.zrange("b", 0, -1, withscores=True) == [(b"m", 2.0)]
    assert distcache.exists("{a}d") == 0


ZSET_READS = """
ZADD {$}a 1 x 2 y 3 z
ZADD {$}b 10 y 20 w 1 z
SADD {$}s y q
SET {$}str v
ZUNION 2 {$}a {$}b
ZUNION 2 {$}a {$}b WITHSCORES
ZUNION 3 {$}a {$}b {$}s WEIGHTS 1 2 3 AGGREGATE MAX WITHSCORES
ZINTER 2 {$}a {$}b WITHSCORES
ZINTER 2 {$}a {$}none
ZDIFF 2 {$}a {$}b WITHSCORES
ZDIFF 1 {$}none
ZINTERCARD 2 {$}a {$}b
ZINTERCARD 2 {$}a {$}b LIMIT 1
ZINTERCARD 3 {$}a {$}b {$}s
ZINTERCARD 1 {$}a LIMIT -1
ZINTERCARD 1 {$}a LIMIT a
ZINTERCARD 1 {$}a {$}b
ZINTERCARD 0 {$}a
ZUNION 0 {$}a
ZUNION 2 {$}a {$}str
ZDIFF 1 {$}a WEIGHTS 1
ZINTER 1 {$}a AGGREGATE
"""


def test_sorted_set_combinations_answer_as_redis_server(distcache, reference):
    replies = compare(distcache, reference, _script(ZSET_READS, "types:zreads:"))
    assert replies[4] == ("ok", [b"x", b"z", b"y", b"w"])


def _scan_all(client, command, key, count=None, match=None):
    """Every element a full HSCAN/SSCAN/ZSCAN iteration answers, in order."""
    cursor, seen, steps = "0", [], 0
    while True:
        args = [command, key, cursor]
        if match is not None:
            args += ["MATCH", match]
        if count is not None:
            args += ["COUNT", str(count)]
        cursor, page = client.execute_command(*args)
        seen.extend(_flat(page))
        steps += 1
        assert steps < 10_000, "the scan ends"
        if int(cursor) == 0:
            return seen


def _flat(page):
    """redis-py's HSCAN dict and ZSCAN (member, score) pairs, flat again."""
    if isinstance(page, dict):
        return [item for pair in page.items() for item in pair]
    if page and isinstance(page[0], tuple):
        return [item for pair in page for item in pair]
    return list(page)


def _pairs(flat):
    return {(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)}


SCAN_ERRORS = """
SET {$}str v
HSET {$}h f v
HSCAN {$}h x
HSCAN {$}h 0 COUNT 0
HSCAN {$}h 0 COUNT x
HSCAN {$}h 0 MATCH
HSCAN {$}h 0 FOO 1
SSCAN {$}str 0
ZSCAN {$}str 0
HSCAN {$}str 0
HSCAN {$}none 0
ZSCAN {$}none 0 MATCH *
"""


def test_collection_scans_visit_everything_and_refuse_as_redis(distcache, reference):
    compare(distcache, reference, _script(SCAN_ERRORS, "types:scans:"))
    servers = [distcache] + ([reference] if reference is not None else [])
    for server in servers:
        server.delete("{sc}h", "{sc}s", "{sc}z")
        server.hset("{sc}h", mapping={f"f{i}": f"v{i}" for i in range(200)})
        server.sadd("{sc}s", *[f"m{i}" for i in range(200)])
        server.zadd("{sc}z", {f"m{i}": i / 4 for i in range(200)})
    expected_hash = {(f"f{i}".encode(), f"v{i}".encode()) for i in range(200)}
    for count in (None, 1, 7, 1000):
        hash_seen = _scan_all(distcache, "HSCAN", "{sc}h", count)
        assert _pairs(hash_seen) == expected_hash and len(hash_seen) == 400
        set_seen = _scan_all(distcache, "SSCAN", "{sc}s", count)
        assert sorted(set_seen) == sorted(f"m{i}".encode() for i in range(200))
        zset_seen = _scan_all(distcache, "ZSCAN", "{sc}z", count)
        assert len(zset_seen) == 400
    # Scores read as redis-server writes them; MATCH filters the same way.
    for command, key in [("HSCAN", "{sc}h"), ("SSCAN", "{sc}s"), ("ZSCAN", "{sc}z")]:
        ours = _scan_all(distcache, command, key, 13, match="*1?")
        if reference is not None:
            theirs = _scan_all(reference, command, key, 1000, match="*1?")
            if command == "SSCAN":
                assert sorted(ours) == sorted(theirs)
            else:
                assert _pairs(ours) == _pairs(theirs)


def test_a_collection_scan_survives_concurrent_writes(distcache):
    """Elements present for the whole iteration are answered; writes
    between steps (adds, removes of other elements) do not hide them."""
    distcache.delete("{cw}h")
    distcache.hset("{cw}h", mapping={f"stay{i}": "1" for i in range(150)})
    distcache.hset("{cw}h", mapping={f"gone{i}": "1" for i in range(150)})
    cursor, seen, step = "0", set(), 0
    while True:
        cursor, page = distcache.execute_command("HSCAN", "{cw}h", cursor, "COUNT", "9")
        seen.update(_flat(page)[0::2])
        distcache.hset("{cw}h", f"new{step}", "1")
        distcache.hdel("{cw}h", f"gone{step}")
        step += 1
        if int(cursor) == 0:
            break
    assert {f"stay{i}".encode() for i in range(150)} <= seen


MULTI_POPS = """
LMPOP 2 {$}a {$}b LEFT
RPUSH {$}b 1 2 3 4
LMPOP 2 {$}a {$}b RIGHT COUNT 2
LMPOP 2 {$}a {$}b LEFT COUNT 10
EXISTS {$}b
LMPOP 0 {$}a LEFT
LMPOP a {$}a LEFT
LMPOP 1 {$}a bad_where
LMPOP 1 {$}a LEFT COUNT 0
LMPOP 1 {$}a LEFT COUNT 1 COUNT 2
LMPOP 3 {$}a LEFT
SET {$}s str
LMPOP 2 {$}s {$}b LEFT
RPUSH {$}b x
LMPOP 2 {$}b {$}s LEFT
ZADD {$}z 1 a 2 b 3 c
ZMPOP 2 {$}y {$}z MIN
ZMPOP 1 {$}z MAX COUNT 5
ZMPOP 1 {$}z MAX
ZMPOP 1 {$}z LEFT
ZMPOP 2 {$}s {$}z MIN
BLPOP {$}a -1
BLPOP {$}a x
BLPOP {$}a 0x7FFFFFFFFFFFFF
BLMPOP -1 1 {$}a LEFT
BLMPOP 0 1 {$}a LEFT COUNT 0
BZMPOP 0 0 {$}z MIN
BLMOVE {$}a {$}b LEFT UP 0
RPUSH {$}q 1 2
BLPOP {$}q 0
BRPOP {$}q 0
RPUSH {$}q 3
BLMPOP 0 2 {$}none {$}q RIGHT COUNT 3
RPUSH {$}q 4
BLMOVE {$}q {$}r RIGHT LEFT 0
BRPOPLPUSH {$}r {$}q 0
ZADD {$}w 5 m 6 n
BZPOPMIN {$}w 0
BZPOPMAX {$}w 0
ZADD {$}w 7 o 8 p
BZMPOP 0 1 {$}w MAX COUNT 2
BLPOP {$}s 0
BZPOPMIN {$}s 0
BLPOP {$}none 0.01
BZMPOP 0.01 1 {$}none MIN
SET {$}n 12345
OBJECT ENCODING {$}n
SET {$}n 12345x
OBJECT ENCODING {$}n
APPEND {$}n yz
OBJECT ENCODING {$}none
RPUSH {$}l a
OBJECT REFCOUNT {$}l
"""


def test_multi_pops_and_blocking_forms_answer_as_redis_server(distcache, reference):
    replies = compare(distcache, reference, _script(MULTI_POPS, "types:mpop:"))
    assert replies[0] == ("ok", None)
    assert replies[2] == ("ok", [b"{types:mpop:}b", [b"4", b"3"]])


def test_a_blocked_pop_is_woken_by_a_push_from_another_connection(distcache):
    """Two connections: one blocks in BLPOP, the other pushes; the element
    arrives once, and a blocked client whose timeout passes gets nil."""
    import threading

    host, port = distcache.connection_pool.connection_kwargs["host"], \
        distcache.connection_pool.connection_kwargs["port"]
    blocked = redis.Redis(host=host, port=port, socket_timeout=30)
    key = "{types:block}queue"
    distcache.delete(key)
    answers = []
    waiter = threading.Thread(target=lambda: answers.append(blocked.blpop([key], timeout=0)))
    waiter.start()
    time.sleep(0.5)
    assert answers == [], "BLPOP answered before anything was pushed"
    started = time.monotonic()
    distcache.rpush(key, "job")
    waiter.join(timeout=10)
    assert answers == [(key.encode(), b"job")]
    assert time.monotonic() - started < 2.0, "the push should wake the blocked client promptly"
    assert distcache.llen(key) == 0
    started = time.monotonic()
    assert blocked.blpop([key], timeout=0.3) is None
    assert time.monotonic() - started >= 0.3
    blocked.close()
