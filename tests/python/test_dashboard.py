"""The dashboard in a real browser: Debian's headless Chromium, driven by
chromedriver through Selenium, against a real `distcache demo`.

    scripts/setup.sh            # chromium, chromium-driver, selenium, redis-py
    DISTCACHE_BIN=target/debug/distcache target/python-venv/bin/python -m pytest tests/python/test_dashboard.py

The page is loaded from node 1; the test waits for live data (every group
with a leader, the whole shard map, the keys it writes over RESP among the
hot keys), then presses the page's own "stop" button on another group's
leader and waits for the page to show that node down and a new leader in
its group. Screenshots are saved as test artefacts under
target/artifacts/ (DISTCACHE_ARTIFACTS overrides the directory).
"""

import http.server
import json
import os
import shutil
import threading
import time
import urllib.request

import pytest
import redis
from demo_process import running_demo
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.environ.get("DISTCACHE_ARTIFACTS", os.path.join(ROOT, "target", "artifacts"))
GROUPS = 3
READY_TIMEOUT_S = 120
# An election after the leader stops: the election timeout plus the
# dashboard's polling, with room for a loaded 2-core machine.
FAILOVER_TIMEOUT_S = 60



def _browser_paths():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("chromium and chromedriver are missing: run scripts/setup.sh")
    return chromium, driver


@pytest.fixture(scope="module")
def demo():
    with running_demo(groups=GROUPS) as running:
        yield {"http": running.http, "resp": running.resp}


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = _browser_paths()
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(condition, timeout_s, what, browser=None):
    """Polls `condition` until it returns something truthy; a screenshot on failure."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # the page re-renders under us: retry
            last_error = error
        time.sleep(0.25)
    if browser is not None:
        _screenshot(browser, "dashboard-failure.png")
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last error: {last_error})")


def _screenshot(browser, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name)
    browser.save_screenshot(path)
    return path


# The page replaces its elements at every poll, so the test reads what it
# shows in one script call (a consistent snapshot) rather than element by
# element, which would race the re-rendering.
SNAPSHOT_JS = """
const text = id => document.getElementById(id).textContent;
return {
  status: document.getElementById("status").className,
  ngroups: text("ngroups"), nup: text("nup"), self: text("self"),
  groups: [...document.querySelectorAll("#groups .group")].map(card => ({
    gid: Number(card.dataset.gid),
    leader: card.querySelector(".leader").dataset.leader,
    nodes: [...card.querySelectorAll(".replica")].map(r => [Number(r.dataset.node), r.dataset.up === "true"]),
  })),
  shards: [...document.querySelectorAll("#shardmap .shard")].map(s => Number(s.dataset.gid)),
  cut_off: [...document.querySelectorAll("#groups .replica")].filter(r => r.dataset.cutOff === "true").map(r => Number(r.dataset.node)),
  hot: text("hot"),
  memory_rows: document.querySelectorAll("#memory tr").length,
  node_rows: Object.fromEntries([...document.querySelectorAll("#nodes tr[data-node]")].map(r => [r.dataset.node, r.textContent])),
};
"""


def _snapshot(browser):
    return browser.execute_script(SNAPSHOT_JS)


def _groups(snapshot):
    """{gid: {"leader": node id or None, "nodes": {node id: up}}} as the page shows it."""
    return {
        g["gid"]: {"leader": int(g["leader"]) if g["leader"] else None, "nodes": dict(g["nodes"])}
        for g in snapshot["groups"]
    }


def _press(browser, selector):
    """Clicks a button the page may be re-rendering (retried until it takes)."""
    def click():
        browser.find_element(By.CSS_SELECTOR, selector).click()
        return True

    _wait(click, 10, f"a clickable {selector}", browser)


def test_dashboard_shows_the_cluster_and_a_failover(demo, browser):
    # Some traffic over RESP, so that hot keys and ops/s have something to show.
    client = redis.Redis(host=demo["resp"][0], port=demo["resp"][1], socket_timeout=10)
    for round_ in range(20):
        for key in ("hot:a", "hot:b"):
            client.set(key, str(round_))
            assert client.get(key) == str(round_).encode()

    browser.get(f"http://{demo['http']}/")
    assert browser.title, "the page has a title"

    # Live data: every group with a leader and three replicas up, the whole shard map.
    def complete():
        snapshot = _snapshot(browser)
        groups = _groups(snapshot)
        whole = len(groups) == GROUPS and all(
            g["leader"] is not None and len(g["nodes"]) == 3 and all(g["nodes"].values()) for g in groups.values()
        )
        return snapshot if whole and snapshot["shards"] else None

    snapshot = _wait(complete, READY_TIMEOUT_S, "every group with a leader and its replicas up", browser)
    groups = _groups(snapshot)
    assert "live" in snapshot["status"]
    assert snapshot["ngroups"] == str(GROUPS)
    assert len(snapshot["shards"]) >= GROUPS
    assert set(snapshot["shards"]) == set(groups), "every shard assigned to a shown group"
    assert snapshot["memory_rows"] == len(snapshot["shards"]) + 1, "a memory row per shard, under a header"
    hot = _wait(lambda: (lambda h: h if "hot:a" in h else None)(_snapshot(browser)["hot"]), 30,
                "the written keys among the hot keys", browser)
    assert "distcache-ready-probe" not in hot, f"the node's own probes are not users' hot keys: {hot}"
    _screenshot(browser, "dashboard.png")

    # Failover you can watch: stop a leader that is not the node serving the page.
    served_by = int(snapshot["self"])
    gid, group = next((g, v) for g, v in sorted(groups.items()) if served_by not in v["nodes"])
    old_leader = group["leader"]
    _press(browser, f'button[data-stop="{old_leader}"]')

    def failed_over():
        snapshot = _snapshot(browser)
        now = _groups(snapshot)[gid]
        moved = (not now["nodes"][old_leader]) and now["leader"] not in (None, old_leader)
        return snapshot if moved else None

    snapshot = _wait(failed_over, FAILOVER_TIMEOUT_S,
                     f"node {old_leader} shown down and a new leader of group {gid}", browser)
    total = sum(len(v["nodes"]) for v in groups.values())
    # (A replica that has not yet heard from the new leader may show as cut off.)
    assert snapshot["nup"].startswith(f"{total - 1}/{total}"), snapshot["nup"]
    assert "DOWN" in snapshot["node_rows"][str(old_leader)]
    _screenshot(browser, "dashboard-failover.png")

    # The group still serves writes, and the stopped node comes back as shown.
    for key in ("hot:a", "hot:b"):
        client.set(key, "after")
        assert client.get(key) == b"after"
    _press(browser, f'button[data-start="{old_leader}"]')
    _wait(lambda: _groups(_snapshot(browser))[gid]["nodes"][old_leader], FAILOVER_TIMEOUT_S,
          f"node {old_leader} shown up again", browser)


LARGE_GROUPS = 30


def _thirty_group_view(real):
    """A /v1/dashboard answer for 30 groups of three, made from a real one
    (so its shape is the server's): every group with a leader, one node
    down, one cut off from its group, shards spread over the groups."""
    template = next(n for n in real["nodes"] if n["up"] and n["report"])
    shard_count = max(len(real["shards"]), 4 * LARGE_GROUPS)
    view = dict(real)
    view["demo"] = False
    view["groups"] = []
    view["nodes"] = []
    view["shards"] = [1 + shard % LARGE_GROUPS for shard in range(shard_count)]
    down = 3 * 7 + 2  # the second replica of group 8
    cut = 3 * 11 + 3  # the third replica of group 12
    for gid in range(1, LARGE_GROUPS + 1):
        ids = [3 * (gid - 1) + i + 1 for i in range(3)]
        view["groups"].append({**real["groups"][0], "gid": gid, "leader_node_id": ids[0], "term": 2 + gid % 5,
                               "shards": view["shards"].count(gid)})
        for node_id in ids:
            report = json.loads(json.dumps(template["report"]))
            for replica in report["replicas"]:
                replica.update(gid=gid, is_leader=(node_id == ids[0] and replica["role"] == "data"))
            report["shards"] = [{**(report["shards"][0] if report["shards"] else {}), "shard": shard,
                                 "state": "Serving", "keys": shard, "bytes": 100 * shard}
                                for shard in range(shard_count) if view["shards"][shard] == gid]
            view["nodes"].append({**template, "node_id": node_id, "group": gid, "controller": gid == 1,
                                  "up": node_id != down, "cut_off": node_id == cut,
                                  "report": None if node_id == down else report})
    return view, down, cut


def test_dashboard_stays_readable_at_thirty_groups(demo, browser):
    """The page served with a 30-group view (a stand-in server: a demo of
    30 groups does not fit this machine): every group, replica and shard
    shown, the down node and the cut-off node marked, nothing wider than
    the window."""
    base = f"http://{demo['http']}"
    page = urllib.request.urlopen(f"{base}/", timeout=30).read()
    real = json.loads(urllib.request.urlopen(f"{base}/v1/dashboard", timeout=30).read())
    view, down, cut = _thirty_group_view(real)
    body = json.dumps(view).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            content, kind = (page, "text/html") if self.path == "/" else (body, "application/json")
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.set_window_size(1400, 1000)
        browser.get(f"http://127.0.0.1:{server.server_address[1]}/")

        def shown():
            snapshot = _snapshot(browser)
            return snapshot if len(snapshot["groups"]) == LARGE_GROUPS else None

        snapshot = _wait(shown, 30, "30 groups on the page", browser)
        groups = _groups(snapshot)
        assert sorted(groups) == list(range(1, LARGE_GROUPS + 1))
        assert all(len(g["nodes"]) == 3 and g["leader"] is not None for g in groups.values())
        assert [node for g in groups.values() for node, up in g["nodes"].items() if not up] == [down]
        assert snapshot["nup"] == f"{3 * LARGE_GROUPS - 1}/{3 * LARGE_GROUPS} (1 cut off)", snapshot["nup"]
        assert snapshot["cut_off"] == [cut], "the node cut off from its group is marked, and only it"
        assert "cut off" in snapshot["node_rows"][str(cut)], snapshot["node_rows"][str(cut)]
        assert snapshot["shards"] == view["shards"]
        layout = browser.execute_script("""
            const cards = [...document.querySelectorAll('#groups .group')].map(c => c.getBoundingClientRect());
            const colors = new Set([...document.querySelectorAll('#groups .group')].map(c => c.style.borderLeftColor));
            return { page: document.documentElement.scrollWidth, window: window.innerWidth,
                     narrowest: Math.min(...cards.map(r => r.width)), right: Math.max(...cards.map(r => r.right)),
                     colors: colors.size };
        """)
        assert layout["page"] <= layout["window"], f"wider than the window: {layout}"
        assert layout["right"] <= layout["window"] and layout["narrowest"] >= 200, layout
        assert layout["colors"] == LARGE_GROUPS, f"a colour per group: {layout}"
        browser.set_window_size(1400, 2600)
        _screenshot(browser, "dashboard-30-groups.png")
    finally:
        browser.set_window_size(1400, 1000)
        server.shutdown()
