"""What a user watching `v6ray up --simulate` gets: the monitor page in a real browser
(headless Chromium), request log lines in Ray's log files, the scheduler's metrics on the
node's Prometheus endpoint, actor info in `status`, and the dashboard login with the
token `up` says how to get.

One `up --detach` for the whole module (it starts and owns its own Ray cluster, as
test_up_down.py does); the browser tests need Debian's chromium and chromium-driver
(.ci/run installs them): in CI a missing browser fails, elsewhere it skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import v6ray
from v6ray.service.state import ServiceState

pytestmark = pytest.mark.slow

REPO = str(Path(v6ray.__file__).resolve().parent.parent)
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DOCS_SCREENSHOT = Path(REPO) / "docs" / "monitor.png"


def cli(*argv: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO}
    for var in ("V6RAY_DATA_DIR", "V6RAY_RAY_ADDRESS", "RAY_ADDRESS", "V6RAY_DEBUG"):
        env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "v6ray", *argv], capture_output=True,
                          text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    base = tmp_path_factory.mktemp("v6ray-observe")
    done = cli("up", "--simulate", "--detach", "--data-dir", str(base), "--time-scale", "0.05",
               "--monitor-port", "0")
    state_file = base / "_v6ray" / "service.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else None
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        yield {"base": base, "state": state, "out": done.stdout}
    finally:
        if state_file.exists():
            cli("down", "--data-dir", str(base), timeout=180)
        recorded = ServiceState(**state).head() if state else None
        if recorded is not None:
            from v6ray.service.cluster import cluster_processes, stop_head

            if cluster_processes(recorded):
                stop_head(recorded, timeout=10)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def submit_and_wait(base: Path, *argv: str) -> str:
    done = cli("submit", *argv, "--wait", "--timeout", "120", "--data-dir", str(base))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()[0]


# ------------------------------------------------------------------ up's output, status


def test_up_prints_the_monitor_and_how_to_get_the_dashboard_token(service):
    out, state = service["out"], service["state"]
    url = state["monitor_url"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
    assert f"monitor: {url}" in out
    assert "its token:   ray get-auth-token" in out  # token auth is Ray's default here
    monitor = cli("monitor", "--data-dir", str(service["base"]))
    assert monitor.returncode == 0 and monitor.stdout.strip() == url
    assert get_json(url + "api/status")["connection"]["state"] == "connected"


def test_status_lists_each_actor_with_node_pid_restarts_and_uptime(service):
    done = cli("status", "--json", "--data-dir", str(service["base"]))
    assert done.returncode == 0, done.stderr
    actors = {row["name"]: row for row in json.loads(done.stdout)["actors"]}
    for name in ("RequestQueue", "IBGateway", "UnifiedScheduler", "V6RayMonitor"):
        row = actors[name]
        assert row["state"] == "ALIVE" and row["node"] == "127.0.0.1", row
        assert row["pid"] > 0 and row["restarts"] == 0 and row["uptime_seconds"] > 0, row
    assert actors["IBGateway"]["repr"].startswith("IBGateway[IB 127.0.0.1:")
    text = cli("status", "--data-dir", str(service["base"])).stdout
    assert re.search(r"IBGateway\s+ALIVE\s+node 127\.0\.0\.1 · pid \d+ · restarts 0 · up ", text)


# ------------------------------------------------------------------ logs and metrics


def test_each_state_change_of_a_request_is_a_line_in_rays_log_files(service):
    rid = submit_and_wait(service["base"], "market_bars", "QQQ", "--param", "duration=2 D",
                          "--param", "bar_size=1 hour", "--priority", "1")
    logs = Path(service["state"]["head_temp_dir"]) / "session_latest" / "logs"
    deadline, found = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        found = [line for f in logs.glob("worker-*.err") for line in
                 f.read_text(errors="replace").splitlines() if f"request {rid} " in line]
        if any("->SUCCESS" in line for line in found):
            break
        time.sleep(1)
    changes = [re.search(r"(\S+->\S+) attempt=(\d+)", line).groups() for line in found]
    assert changes == [("NEW->PENDING", "0"), ("PENDING->PROCESSING", "1"),
                       ("PROCESSING->SUCCESS", "1")], found
    assert all("INFO requests.py" in line and "market_bars QQQ" in line and "priority=1" in line
               for line in found)
    # An account id never appears in full: this one reaches the request lines as a symbol.
    done = cli("submit", "position_update", "DU1234567", "--data-dir", str(service["base"]))
    assert done.returncode == 0, done.stderr
    masked, every_line = done.stdout.split()[0], ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        every_line = "\n".join(f.read_text(errors="replace") for f in logs.glob("worker-*"))
        if f"request {masked} position_update DU****567 NEW->PENDING" in every_line:
            break
        time.sleep(1)
    assert f"request {masked} position_update DU****567 NEW->PENDING" in every_line
    assert "DU1234567" not in every_line


def test_scheduler_and_queue_metrics_reach_this_clusters_prometheus_endpoint(service):
    session = Path(service["state"]["head_temp_dir"]) / "session_latest"
    targets = json.loads((session / "prom_metrics_service_discovery.json").read_text())
    deadline, text = time.monotonic() + 60, ""
    while time.monotonic() < deadline:
        text = ""
        for target in targets[0]["targets"]:
            try:
                with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as r:
                    text += r.read().decode()
            except OSError:
                continue
        if "ray_v6ray_scheduler_jobs_run_total" in text and "ray_v6ray_queue_depth" in text:
            break
        time.sleep(2)
    assert re.search(r'ray_v6ray_scheduler_jobs_run_total\{[^}]*job="futures', text), text[:500]
    assert "ray_v6ray_writer_rows_total" in text
    assert "ray_v6ray_requests_finished_total" in text


# ------------------------------------------------------------------ in a real browser


def browser(tmp_path: Path, *, offline: bool = False):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        message = "chromium / chromium-driver not installed (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:  # the test extra has it
        if os.environ.get("CI"):
            raise
        pytest.skip("selenium not installed (pip install -e '.[test]')")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1100",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    if offline:  # nothing but 127.0.0.1 resolves or connects
        options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
        options.add_argument("--proxy-server=http://127.0.0.1:9")
        options.add_argument("--proxy-bypass-list=127.0.0.1")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


READ_PAGE = """
const out = {};
for (const node of document.querySelectorAll('[data-field]')) {
  out[node.dataset.field] = node.textContent;
}
return out;
"""


def lookup(data, path: str):
    for key in path.split("."):
        data = data[int(key)] if isinstance(data, list) else data[key]
    return data


def shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # JavaScript prints 5.0 as "5"
    return str(value)


def wait_for_live_update(driver, timeout: float = 20.0) -> int:
    """The page's snapshot number moves on its own (no reload): returns the newer one."""
    deadline = time.monotonic() + timeout
    first = None
    while time.monotonic() < deadline:
        seq = int(driver.find_element("id", "seq").text or 0)
        if seq and first is None:
            first = seq
        elif first is not None and seq > first:
            return seq
        time.sleep(0.2)
    raise AssertionError(f"the page did not update by itself within {timeout:g} s")


def page_equals_api(driver, url: str) -> int:
    """Every number on the page equals /api/status of the snapshot the page shows."""
    for _ in range(5):
        fields = driver.execute_script(READ_PAGE)
        seq = int(fields["seq"])
        if fields == driver.execute_script(READ_PAGE):  # not caught mid-render
            break
    api = get_json(f"{url}api/status?seq={seq}")
    mismatched = {path: (text, shown(lookup(api, path))) for path, text in fields.items()
                  if path != "queue.oldest_pending_age_s" and text != shown(lookup(api, path))}
    assert not mismatched, mismatched
    assert len(fields) >= 30  # cards, per-priority table, gauges, error codes, connection
    assert any(p.startswith("pacing.") for p in fields)
    assert any(p.startswith("ib_errors.") for p in fields)
    return seq


def test_monitor_page_shows_the_api_numbers_live(service, tmp_path):
    base, url = service["base"], service["state"]["monitor_url"]
    # Some work to watch, a failure among it (an unknown futures root).
    cli("submit", "futures_snapshot", "NOSUCHROOT", "--wait", "--timeout", "90",
        "--data-dir", str(base))
    driver = browser(tmp_path)
    try:
        driver.get(url)
        wait_for_live_update(driver)
        page_equals_api(driver, url)
        failures = driver.execute_script(
            "return [...document.querySelectorAll('#failures [data-field$=\".symbol\"]')]"
            ".map(n => n.textContent)")
        assert "NOSUCHROOT" in failures
        assert driver.find_element("id", "chart").find_elements("css selector", "polyline")
        shot = tmp_path / "monitor.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("V6RAY_UPDATE_SCREENSHOT"):
            DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
            shutil.copy(shot, DOCS_SCREENSHOT)
    finally:
        driver.quit()


def test_monitor_page_works_with_the_network_cut_to_all_but_loopback(service, tmp_path):
    url = service["state"]["monitor_url"]
    driver = browser(tmp_path, offline=True)
    try:
        driver.get(url)
        wait_for_live_update(driver)
        page_equals_api(driver, url)
        resources = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert resources, "the page loaded nothing"
        assert all(r.startswith(url) for r in resources), resources
        assert driver.find_element("id", "offline").get_attribute("hidden") is not None
    finally:
        driver.quit()


def test_ray_dashboard_login_with_the_token_up_points_to(service, tmp_path):
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    hint = next(line for line in service["out"].splitlines() if "its token:" in line)
    command = hint.split("its token:", 1)[1].split("(")[0].strip()
    assert command == "ray get-auth-token"
    token = subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "get-auth-token"],
                           capture_output=True, text=True, timeout=60).stdout.strip()
    assert token
    driver = browser(tmp_path)
    try:
        driver.get(service["state"]["dashboard_url"])
        wait = WebDriverWait(driver, 60)
        box = wait.until(ec.visibility_of_element_located(
            ("css selector", "input[placeholder='Enter your authentication token']")))
        box.send_keys(token)
        driver.find_element("xpath", "//button[normalize-space()='Submit']").click()
        wait.until(ec.invisibility_of_element_located(("id", "token-auth-dialog-title")))
        assert driver.get_cookie("ray-authentication-token") or any(
            "auth" in c["name"] for c in driver.get_cookies()), driver.get_cookies()
        driver.get(service["state"]["dashboard_url"] + "/#/actors")
        wait.until(lambda d: "IBGateway" in d.page_source)
        assert not driver.find_elements("id", "token-auth-dialog-title")
        driver.save_screenshot(str(tmp_path / "dashboard.png"))
    finally:
        driver.quit()
