"""The admin dashboard (`GET /admin`) in headless Chromium against a live `collector serve`.

Run by tests/dashboard/run.sh, which seeds the store with `collector demo`, starts the server and
sets DASHBOARD_BASE_URL, DASHBOARD_ADMIN_TOKEN, DASHBOARD_USER_TOKEN, DASHBOARD_SCREENSHOTS and
DASHBOARD_DOWNLOADS. Every figure the page shows is compared with what the API answers for the
same store (the test reads the API itself; no number is written here).
"""

import json
import os
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = os.environ["DASHBOARD_BASE_URL"].rstrip("/")
ADMIN_TOKEN = os.environ["DASHBOARD_ADMIN_TOKEN"]
USER_TOKEN = os.environ.get("DASHBOARD_USER_TOKEN", "")
SHOTS = Path(os.environ["DASHBOARD_SCREENSHOTS"])
DOWNLOADS = Path(os.environ["DASHBOARD_DOWNLOADS"])
CHROMIUM = os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DASHBOARD_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 20


# -- the API, read directly -----------------------------------------------------------------------

def api(method, path, token=ADMIN_TOKEN, body=None):
    """(status, headers, body bytes) of a call to the API."""
    headers = {"Authorization": "Bearer " + token}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(BASE + path, method=method, headers=headers, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def api_json(path, token=ADMIN_TOKEN):
    status, _, body = api("GET", path, token)
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


def user_records(user_id):
    items, cursor = [], None
    while True:
        q = {"user_id": user_id, "limit": "100"}
        if cursor:
            q["cursor"] = cursor
        page = api_json("/api/interactions?" + urllib.parse.urlencode(q))
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


# -- the browser ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def driver():
    SHOTS.mkdir(parents=True, exist_ok=True)
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions", "--lang=en-US"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {
        "download.default_directory": str(DOWNLOADS),
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
        "safebrowsing.enabled": False,
        # Several downloads from this origin without asking (each test exports).
        "profile.default_content_setting_values.automatic_downloads": 1,
    })
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    drv.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(DOWNLOADS)})
    yield drv
    drv.quit()


def wait_for(drv, what, timeout=WAIT):
    return WebDriverWait(drv, timeout).until(lambda d: what(d))


def shot(drv, name, element=None):
    path = SHOTS / name
    if element is None:
        # The whole page: grow the window to the document's height first.
        height = drv.execute_script("return document.documentElement.scrollHeight")
        drv.set_window_size(1400, max(1000, min(int(height) + 40, 8000)))
        drv.save_screenshot(str(path))
        drv.set_window_size(1400, 1000)
    else:
        drv.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)
        element.screenshot(str(path))
    assert path.stat().st_size > 1000, path


def open_page(drv, token=ADMIN_TOKEN, expect="accepted"):
    """Load /admin in a fresh tab state, paste the token, wait for the page to judge it."""
    drv.get(BASE + "/admin")
    drv.execute_script("sessionStorage.clear()")
    drv.get(BASE + "/admin")
    wait_for(drv, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-auth") == "none")
    drv.find_element(By.ID, "token-input").send_keys(token)
    click(drv, "token-use")
    if expect == "none":
        return
    try:
        wait_for(drv, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-auth") not in (None, "", "none", "loading"))
    except TimeoutException:
        pytest.fail("the page never finished loading: " + drv.find_element(By.ID, "auth-status").text)
    auth = drv.find_element(By.TAG_NAME, "body").get_attribute("data-auth")
    assert auth == expect, drv.find_element(By.ID, "auth-status").text


def click(drv, element_id):
    """Click a button as a user would: scrolled into the middle of the view, clear of the sticky header."""
    el = drv.find_element(By.ID, element_id)
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    el.click()
    return el


def value(el):
    """The raw API value the page put next to a figure."""
    raw = el.get_attribute("data-value")
    assert raw not in (None, ""), el.get_attribute("outerHTML")
    return json.loads(raw)


# -- the tests ------------------------------------------------------------------------------------

def test_the_page_is_served_with_a_strict_policy():
    for path, kind in (("/admin", "text/html"), ("/admin/dashboard.js", "text/javascript"), ("/admin/dashboard.css", "text/css")):
        status, headers, body = api("GET", path, token="")
        assert status == 200, path
        assert headers["Content-Type"].startswith(kind), (path, headers["Content-Type"])
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "'unsafe-inline'" not in csp, csp
        assert headers["Cache-Control"], path
        assert b"http://" not in body.replace(b'"http://www.w3.org/2000/svg"', b"") and b"https://" not in body, path


def test_a_wrong_token_and_a_non_admin_token_are_named(driver):
    # Not a JWT at all: said before any call.
    open_page(driver, token="not a token", expect="none")
    wait_for(driver, lambda d: "not a JWT" in d.find_element(By.ID, "auth-status").text)
    # A JWT the server does not accept (signed with another secret).
    forged = ADMIN_TOKEN.rsplit(".", 1)[0] + ".c2lnbmVkLWVsc2V3aGVyZQ"
    open_page(driver, token=forged, expect="refused")
    status = driver.find_element(By.ID, "auth-status").text
    assert "401" in status and "token" in status.lower(), status
    shot(driver, "01-wrong-token.png")
    if USER_TOKEN:
        open_page(driver, token=USER_TOKEN, expect="not-admin")
        status = driver.find_element(By.ID, "auth-status").text
        assert "403" in status and "admin" in status.lower(), status


def test_the_figures_are_the_apis(driver):
    open_page(driver)
    stats = api_json("/api/feedback/stats")
    figures = driver.find_elements(By.CSS_SELECTOR, "[data-stat]")
    assert len(figures) >= 20
    for el in figures:
        path = el.get_attribute("data-stat")
        want = stats
        for k in path.split("."):
            want = want[k]
        assert value(el) == want, path
        if el.get_attribute("data-format") is None and isinstance(want, int):
            assert el.text == f"{want:,}", (path, el.text)
    rows = driver.find_elements(By.CSS_SELECTOR, "#by-platform tbody tr")
    assert sorted(r.get_attribute("data-platform") for r in rows) == sorted(stats["by_platform"])
    for row in rows:
        want = stats["by_platform"][row.get_attribute("data-platform")]
        for td in row.find_elements(By.CSS_SELECTOR, "td[data-field]"):
            assert value(td) == want[td.get_attribute("data-field")]
    recs = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#recommendations li")]
    assert recs == stats["recommendations"]
    # The page's script and style ran under the policy without a violation.
    logs = driver.get_log("browser")
    violations = [m for m in logs if "Content Security Policy" in m.get("message", "")]
    assert not violations, violations
    shot(driver, "02-dashboard.png")


def test_a_gauge_per_platform_with_what_is_missing(driver):
    open_page(driver)
    platforms = [p["platform"] for p in api_json("/api/platforms")["items"]]
    assert platforms
    gauges = driver.find_elements(By.CSS_SELECTOR, "#readiness-gauges .gauge")
    assert [g.get_attribute("data-platform") for g in gauges] == platforms
    for g in gauges:
        p = g.get_attribute("data-platform")
        r = api_json("/api/feedback/readiness/" + urllib.parse.quote(p))
        assert int(g.get_attribute("data-score")) == r["readiness_score"], p
        assert g.get_attribute("data-ready") == str(r["is_ready"]).lower(), p
        assert g.find_element(By.CSS_SELECTOR, "svg text").text == str(r["readiness_score"])
        assert r["status"] in g.get_attribute("class")
        # One line per threshold; the missing ones say how many are missing.
        for li in g.find_elements(By.CSS_SELECTOR, "li[data-metric]"):
            metric = li.get_attribute("data-metric")
            if metric == "min_score":
                met = r["readiness_score"] >= r["thresholds"]["min_score"]
            else:
                have, need = r["metrics"][metric], r["thresholds"][metric]
                met = have >= need
                if not met:
                    assert f"needs {need - have:,} more" in li.text, li.text
            assert li.get_attribute("class") == ("met" if met else "missing"), (p, metric, li.text)
    shot(driver, "readiness-gauges.png", driver.find_element(By.ID, "readiness"))


def test_the_archive_preview_is_a_dry_run(driver):
    open_page(driver)
    before = api_json("/api/feedback/stats")
    click(driver, "archive-preview")
    status = driver.find_element(By.ID, "archive-status")
    wait_for(driver, lambda d: status.get_attribute("class") in ("status ok", "status bad"))
    assert status.get_attribute("class") == "status ok", status.text
    code, _, body = api("POST", "/api/feedback/archive", token=ADMIN_TOKEN, body={"dry_run": True})
    assert code == 200, body[:300]
    report = json.loads(body)
    rows = driver.find_elements(By.CSS_SELECTOR, "#archive-objects tbody tr")
    assert len(rows) == len(report["archives"])
    assert f"{report['archived_records']:,} would be archived" in status.text, status.text
    # Nothing moved.
    after = api_json("/api/feedback/stats")
    assert after["overview"] == before["overview"] and after["storage"] == before["storage"]
    shot(driver, "06-archive-preview.png", driver.find_element(By.ID, "archive"))


def downloaded(timeout=WAIT):
    """The one finished file in the (emptied) download folder."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        files = list(DOWNLOADS.iterdir())
        done = [f for f in files if not f.name.endswith((".crdownload", ".tmp"))]
        if done and len(done) == len(files):
            assert len(done) == 1, done
            return done[0]
        time.sleep(0.2)
    pytest.fail(f"no download in {DOWNLOADS}: {list(DOWNLOADS.iterdir())}")


def export_on_page(driver, platform, split=""):
    # Chromium overwrites a file of the same name: start from an empty folder.
    for f in DOWNLOADS.iterdir():
        f.unlink()
    Select(driver.find_element(By.ID, "export-platform")).select_by_value(platform)
    Select(driver.find_element(By.ID, "export-split")).select_by_value(split)
    click(driver, "export-download")
    status = driver.find_element(By.ID, "export-status")
    wait_for(driver, lambda d: "ok" in status.get_attribute("class").split() or "bad" in status.get_attribute("class").split())
    assert "bad" not in status.get_attribute("class").split(), status.text
    return downloaded(), status


def test_an_export_downloads_with_its_options(driver):
    open_page(driver)
    platform = "n8n"
    file, status = export_on_page(driver, platform, split="train")
    lines = [l for l in file.read_text().splitlines() if l.strip()]
    # The API's answer to the same query: the same lines.
    q = "format=openai&split=train&success_only=true&with_feedback_only=false&include_archived=false&include_metadata=false"
    code, headers, body = api("GET", f"/api/feedback/export/{platform}?{q}")
    assert code == 200
    want = [l for l in body.decode().splitlines() if l.strip()]
    assert len(lines) == len(want) == int(headers["X-Export-Lines"]) > 0
    assert lines == want
    assert file.name.startswith(f"training_data_{platform}_") and file.name.endswith(".jsonl"), file.name
    assert int(status.get_attribute("data-lines")) == len(lines)
    # The export's manifest is listed on the page (lineage), as the API lists it.
    export_id = status.get_attribute("data-export-id")
    assert export_id
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'#exports-list tr[data-export-id="{export_id}"]'))
    manifest = api_json("/api/exports/" + export_id)
    assert manifest["lines"] == len(lines) and manifest["split"]["side"] == "train"
    # This test's own API call above made a newer one: the page lists it after a refresh.
    newest = [m["export_id"] for m in api_json("/api/exports?limit=50")["items"]]
    click(driver, "refresh")
    listed_ids = "return [...document.querySelectorAll('#exports-list tbody tr[data-export-id]')].map(r => r.dataset.exportId)"
    wait_for(driver, lambda d: d.execute_script(listed_ids) == newest)
    shot(driver, "03-export.png", driver.find_element(By.ID, "export"))


def test_a_users_data_is_shown_and_deleted_with_the_exports_that_held_it(driver):
    open_page(driver)
    # A user with a successful, liked n8n conversation: it is in an unfiltered n8n export.
    everyone = api_json("/api/interactions?limit=100")["items"]
    liked = [i for i in everyone if i["platform"] == "n8n" and i["success"] and i["last_feedback_type"] == "thumbs_up"]
    assert liked, "the demo store has liked n8n records"
    user = liked[0]["user_id"]
    records = user_records(user)
    assert records

    file, status = export_on_page(driver, "n8n")
    export_id = status.get_attribute("data-export-id")
    assert export_id and file.stat().st_size > 0

    box = driver.find_element(By.ID, "user-id")
    box.clear()
    box.send_keys(user)
    click(driver, "user-lookup")
    user_status = driver.find_element(By.ID, "user-status")
    wait_for(driver, lambda d: user_status.get_attribute("data-count") not in (None, ""))
    # The lookup pages through everything ("Load more" until the end).
    while driver.find_element(By.ID, "user-more").is_displayed():
        n = len(driver.find_elements(By.CSS_SELECTOR, "#user-records tbody tr"))
        click(driver, "user-more")
        wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#user-records tbody tr")) > n)
    shown = [r.get_attribute("data-interaction-id") for r in driver.find_elements(By.CSS_SELECTOR, "#user-records tbody tr")]
    assert shown == [r["interaction_id"] for r in records]
    shot(driver, "04-user-lookup.png", driver.find_element(By.ID, "users"))

    click(driver, "user-delete")
    confirm = driver.find_element(By.ID, "user-delete-confirm")
    assert confirm.is_displayed() and user in confirm.text
    click(driver, "user-delete-confirm")
    wait_for(driver, lambda d: d.find_element(By.ID, "delete-result").is_displayed())
    wait_for(driver, lambda d: user_status.get_attribute("data-count") == "0")
    # Gone from the API.
    assert user_records(user) == []
    counts = {tr.get_attribute("data-field"): value(tr.find_element(By.CSS_SELECTOR, "td"))
              for tr in driver.find_elements(By.CSS_SELECTOR, "#delete-counts tr[data-field]")}
    assert counts["interactions"] == len(records), counts
    assert counts["feedback"] >= 1, counts  # the liked record's feedback at least
    affected = [li.get_attribute("data-export-id") for li in driver.find_elements(By.CSS_SELECTOR, "#affected-exports li[data-export-id]")]
    assert export_id in affected, (export_id, affected)
    known = {m["export_id"] for m in api_json("/api/exports?limit=100")["items"]}
    assert set(affected) <= known
    shot(driver, "05-user-deleted.png", driver.find_element(By.ID, "users"))
