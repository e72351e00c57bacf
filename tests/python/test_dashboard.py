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

import os
import shutil
import time

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
    assert snapshot["nup"] == f"{total - 1}/{total}", snapshot["nup"]
    assert "DOWN" in snapshot["node_rows"][str(old_leader)]
    _screenshot(browser, "dashboard-failover.png")

    # The group still serves writes, and the stopped node comes back as shown.
    for key in ("hot:a", "hot:b"):
        client.set(key, "after")
        assert client.get(key) == b"after"
    _press(browser, f'button[data-start="{old_leader}"]')
    _wait(lambda: _groups(_snapshot(browser))[gid]["nodes"][old_leader], FAILOVER_TIMEOUT_S,
          f"node {old_leader} shown up again", browser)
