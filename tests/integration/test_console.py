"""The web console at /console/, in a real headless Chromium (Debian's, driven by Debian's
Selenium) against the real server on loopback: sign-in with a token, local uploads with
progress, async URL packages watched to READY, filters, owner changes, deletes, the
spark-submit line, and hostile text shown as text. Screenshots go to build/console-screenshots/.
"""
import hashlib
import json
import os
import re

import pytest
import requests
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browser import Browser
from harness import ROOT

SHOTS = ROOT / "build" / "console-screenshots"
TOKEN = "console-test-token-0123456789abcdef"
# Sources that do not exist (nginx answers 404, a permanent failure), so the packages end FAILED
# with a status_reason quoting the URL, markup and all.
XSS_SCRIPT = "/<script>alert(1)</script>/x1.py"
XSS_IMG = "/<img src=x onerror=alert(2)>/x2.py"


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.close()


SLOW_SIZE = 60_000


def progress_of(row):
    """(value, max, text) of an UPLOADING row's byte progress, or None while it shows none."""
    bars = row.find_elements(By.CSS_SELECTOR, "progress.live[value][max]")
    fetched = row.find_elements(By.CLASS_NAME, "fetched")
    if not bars or not fetched:
        return None
    return (float(bars[0].get_attribute("value")), float(bars[0].get_attribute("max")),
            fetched[0].text)


@pytest.fixture
def console_server(start_server, tmp_path, nginx, sources):
    root, _ = sources
    # A source slow enough (nginx /slow/ sends 10 KiB/s, so about 6 s) to be seen UPLOADING,
    # with its byte progress moving.
    (root / "slow" / "console.py").write_bytes(b"# slow\n" + b"x" * (SLOW_SIZE - 7))
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"users": [
        {"name": "alice_c", "projects": ["p1"], "tokens": [{"token": TOKEN}]},
        {"name": "bobby"}]}))
    return start_server("--credentials", str(creds))


def auth(server):
    return {"X-Auth-Token": TOKEN}


def sign_in(b, server, project="p1"):
    b.driver.get(f"{server.url}/console/?project={project}")
    b.visible("sign-in")
    b.wait(lambda: "APIGW.0301" in b.by_id("sign-in").text,
           "the server's own 401 message on the sign-in form")
    b.by_id("token").send_keys(TOKEN)
    b.by_id("sign-in-form").submit()
    b.visible("console")


def reload_table(b):
    before = b.driver.execute_script("return document.body.dataset.loaded || ''")
    b.by_id("refresh").click()
    b.wait(lambda: b.driver.execute_script("return document.body.dataset.loaded || ''") != before,
           "the table to reload")


def no_alert(b):
    try:
        text = b.driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    raise AssertionError(f"a script ran and opened an alert: {text!r}")


def test_static_files_headers_and_redirect(start_server):
    server = start_server()
    root = requests.get(server.url + "/", allow_redirects=False, timeout=10)
    assert root.status_code == 302 and root.headers["Location"] == "/console/"
    page = requests.get(server.url + "/console/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    # No inline script and no external resource in the page itself.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    for name, kind in [("app.js", "text/javascript"), ("console.css", "text/css")]:
        r = requests.get(f"{server.url}/console/{name}", timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(kind)
        assert r.headers["X-Frame-Options"] == "DENY"
    missing = requests.get(server.url + "/console/nope.js", timeout=10)
    assert missing.status_code == 404 and missing.json()["error_code"] == "APIGW.0101"


def test_console_without_credentials_opens_project_directly(start_server, nginx, browser):
    server = start_server()
    r = server.api("POST", "/v2.0/p2/resources/files",
                   json={"paths": [f"{nginx.url}/a.py"], "group": "plain"})
    assert r.status_code == 200, r.text
    browser.driver.get(f"{server.url}/console/?project=p2")
    browser.visible("console")
    browser.wait(lambda: browser.row("a.py", "plain"), "a.py in group plain")
    # Remembered: the bare console opens the same project.
    browser.driver.get(f"{server.url}/console/")
    browser.wait(lambda: browser.row("a.py", "plain"), "the remembered project")
    assert browser.driver.execute_script("return localStorage.getItem('dlipkg.project')") == "p2"


def test_console_scenario(console_server, nginx, sources, browser):
    """Sign-in, async URL packages to READY, hostile text, filters, owner, delete, errors."""
    server, b = console_server, browser
    sign_in(b, server)
    b.screenshot(SHOTS / "01-empty.png")
    # The token is in session storage, not in the URL nor local storage.
    assert TOKEN not in b.driver.current_url
    assert b.driver.execute_script("return sessionStorage.getItem('dlipkg.token')") == TOKEN
    assert TOKEN not in (b.driver.execute_script("return JSON.stringify(localStorage)") or "")

    # Two packages in group "laptop" (the next test uploads them from local files instead).
    root, _ = sources
    (root / "local_one.py").write_bytes(b"print('one')\n")
    (root / "local_two.jar").write_bytes(os.urandom(100_000))
    for name, kind in (("local_one.py", "pyFile"), ("local_two.jar", "jar")):
        r = server.api("POST", "/v2.0/p1/resources", headers=auth(server),
                       json={"paths": [f"{nginx.url}/{name}"], "kind": kind, "group": "laptop"})
        assert r.status_code == 200, r.text
    reload_table(b)
    assert b.row("local_two.jar", "laptop")

    # --- a URL package, asynchronously, watched from UPLOADING to READY ----------------------
    b.by_id("open-add-url").click()
    b.visible("add-url-dialog")
    b.by_id("au-paths").send_keys(f"{nginx.url}/slow/console.py\n{nginx.url}/a.py")
    Select(b.by_id("au-kind")).select_by_visible_text("pyFile")
    b.by_id("au-group").send_keys("etl")
    b.by_id("au-tags").send_keys("team=data")
    assert b.by_id("au-async").is_selected()
    b.by_id("add-url-form").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    uploading = b.wait(lambda: (r := b.row("console.py", "etl")) and
                       r.get_attribute("data-status") == "UPLOADING" and r, "UPLOADING", 20)
    assert uploading.find_elements(By.CSS_SELECTOR, "progress.live")
    # Byte progress: the bar's maximum is the size the source announced, its value the bytes
    # fetched so far (reported by the job while it runs), and the text says both.
    value, top, text = b.wait(
        lambda: (r := b.row("console.py", "etl")) and r.get_attribute("data-status") ==
        "UPLOADING" and (p := progress_of(r)) and p[0] > 0 and p, "byte progress", 20)
    assert top == SLOW_SIZE and 0 < value < SLOW_SIZE, (value, top)
    assert text.endswith("of 59 KiB (%d%%)" % (value * 100 // SLOW_SIZE)), text
    b.screenshot(SHOTS / "02-uploading.png")
    b.screenshot(SHOTS / "readme-uploading.png", scale=0.75)  # docs/console-uploading.png
    # No click: the page polls while something on it is UPLOADING.
    b.wait(lambda: (r := b.row("console.py", "etl")) and
           r.get_attribute("data-status") == "READY", "console.py READY", 60)

    # --- a FAILED package whose reason quotes markup: shown as text, no script runs ----------
    r = server.api("POST", "/v2.0/p1/resources", headers=auth(server),
                   json={"paths": [nginx.url + XSS_SCRIPT, nginx.url + XSS_IMG], "kind": "pyFile", "is_async": True})
    assert r.status_code == 200, r.text
    reload_table(b)
    for name, needle in (("x1.py", "<script>alert(1)</script>"),
                         ("x2.py", "<img src=x onerror=alert(2)>")):
        row = b.wait(lambda: (r := b.row(name)) and r.get_attribute("data-status") == "FAILED"
                     and r, f"{name} FAILED", 60)
        reason = row.find_element(By.CLASS_NAME, "reason").text
        assert needle in reason, reason
    assert not b.css("#rows script") and not b.css("#rows img")
    assert b.driver.execute_script("return document.scripts.length") == 1
    no_alert(b)
    b.screenshot(SHOTS / "03-table.png")
    b.screenshot(SHOTS / "readme.png", scale=0.75)  # small enough for docs/console.png

    # --- filters: kind, tag, name -------------------------------------------------------------
    Select(b.by_id("f-kind")).select_by_visible_text("jar")
    b.wait(lambda: b.row("local_two.jar", "laptop") and not b.row("a.py", "etl"), "kind=jar")
    Select(b.by_id("f-kind")).select_by_visible_text("any")
    b.by_id("f-tag").send_keys("team=data")
    b.by_id("filters").submit()
    b.wait(lambda: b.row("a.py", "etl") and not b.row("local_one.py", "laptop"), "tag filter")
    b.by_id("f-tag").clear()
    b.by_id("f-name").send_keys("local_o")
    b.wait(lambda: b.row("local_one.py", "laptop") and not b.row("local_two.jar", "laptop")
           and not b.row("a.py", "etl"), "name search")
    b.by_id("f-name").clear()
    b.by_id("filters").submit()
    b.wait(lambda: b.row("a.py", "etl") and b.row("x1.py"), "filters cleared")

    # --- owner: an unknown user is refused with the server's words, a known one is taken -----
    b.click_in_row(b.group_row("etl"), "Owner")
    b.visible("owner-dialog")
    b.by_id("owner-name").send_keys("mallory")
    b.by_id("owner-form").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    err = b.wait(lambda: (e := b.css("#owner-dialog .dialog-error")[0]).is_displayed() and e,
                 "the owner error")
    assert "DLI.0002" in err.text and "mallory" in err.text
    b.by_id("owner-name").clear()
    b.by_id("owner-name").send_keys("bobby")
    b.by_id("owner-form").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    b.wait(lambda: not b.by_id("owner-dialog").is_displayed(), "the owner dialog to close")
    b.wait(lambda: (g := b.group_row("etl")) and "bobby" in g.text, "bobby owning etl")
    shown = server.api("GET", "/v2.0/p1/resources", headers=auth(server)).json()
    assert [g["owner"] for g in shown["groups"] if g["group_name"] == "etl"] == ["bobby"]

    # --- delete: cancel keeps it, confirm removes it ------------------------------------------
    b.click_in_row(b.row("a.py", "etl"), "Delete")
    b.visible("confirm-dialog")
    b.screenshot(SHOTS / "04-confirm-delete.png")
    b.by_id("confirm-dialog").find_element(By.CLASS_NAME, "cancel").click()
    assert b.row("a.py", "etl")
    b.click_in_row(b.row("a.py", "etl"), "Delete")
    b.by_id("confirm-form").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    b.wait(lambda: not b.row("a.py", "etl"), "a.py deleted")
    gone = server.api("GET", "/v2.0/p1/resources/a.py?group=etl", headers=auth(server))
    assert gone.status_code == 404

    # --- an API error is shown as the server wrote it, markup in it as text ------------------
    b.by_id("open-add-url").click()
    b.by_id("au-paths").send_keys(f"{nginx.url}/b.py")
    b.by_id("au-tags").clear()
    b.by_id("au-tags").send_keys("<script>alert(3)</script><b>k</b>=v")
    b.by_id("add-url-form").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    err = b.wait(lambda: (e := b.css("#add-url-dialog .dialog-error")[0]).is_displayed() and e,
                 "the add-by-URL error")
    assert err.text.startswith(
        "DLI.0001: Invalid tag key '<script>alert(3)</script><b>k</b>'"), err.text
    assert not b.css("#add-url-dialog script") and not b.css("#add-url-dialog b")
    b.by_id("add-url-dialog").find_element(By.CLASS_NAME, "cancel").click()
    assert not b.row("b.py", "etl")

    # --- a phone-sized view stays readable ----------------------------------------------------
    b.driver.set_window_size(390, 844)
    b.wait(lambda: not b.css("thead")[0].is_displayed(), "the card layout")
    b.screenshot(SHOTS / "05-phone.png")
    no_alert(b)


def test_console_local_files_presigned_urls_and_spark(console_server, nginx, sources, browser,
                                                      tmp_path):
    """The direct-transfer routes: local uploads with progress, a whole group replaced with
    local bytes, presigned URLs, a download and the spark-submit line."""
    server, b = console_server, browser
    _, files = sources
    sign_in(b, server)

    # --- two local files, through the direct-upload route, with progress per file --------------
    local1, local2 = tmp_path / "local_one.py", tmp_path / "local_two.jar"
    local1.write_bytes(b"print('one')\n" * 1000)
    local2.write_bytes(os.urandom(3 * 1024 * 1024))
    b.by_id("upload-group").send_keys("laptop")
    b.by_id("file-input").send_keys(f"{local1}\n{local2}")
    for local in (local1, local2):
        li = b.wait(lambda: [x for x in b.css("#uploads li")
                             if x.get_attribute("data-file") == local.name], f"{local.name} listed")[0]
        state = b.wait(lambda: li.get_attribute("data-state"), f"{local.name} uploaded", 60)
        assert state == "done", li.find_element(By.CLASS_NAME, "outcome").text
        bar = li.find_element(By.TAG_NAME, "progress")
        assert int(bar.get_attribute("value")) == local.stat().st_size
        assert li.find_element(By.CLASS_NAME, "pct").text == "100%"
    for local, kind in ((local1, "pyFile"), (local2, "jar")):
        row = b.wait(lambda: b.row(local.name, "laptop"), f"{local.name} in the table")
        assert kind in row.text and "READY" in row.text
        sha = hashlib.sha256(local.read_bytes()).hexdigest()
        button = row.find_element(By.CSS_SELECTOR, "button.sha")
        assert button.text == sha[:12] and sha in button.get_attribute("title")
    stored = server.api("GET", "/v2.0/p1/resources/local_two.jar?group=laptop", headers=auth(server))
    assert stored.json()["sha256"] == hashlib.sha256(local2.read_bytes()).hexdigest()

    # A URL package beside them, for the spark line's --py-files.
    r = server.api("POST", "/v2.0/p1/resources", headers=auth(server),
                   json={"paths": [f"{nginx.url}/a.py"], "kind": "pyFile", "group": "etl"})
    assert r.status_code == 200, r.text
    reload_table(b)

    # --- spark-submit arguments of a group: every URL fetches the package without headers -----
    b.click_in_row(b.group_row("etl"), "Spark args")
    line = b.wait(lambda: b.by_id("copied").text.startswith("--py-files"), "the spark line") and \
        b.by_id("copied").text
    urls = re.fullmatch(r"--py-files '([^']+)'", line).group(1).split(",")
    assert len(urls) == 1
    assert requests.get(urls[0], timeout=10).content == files["a.py"]
    b.click_in_row(b.group_row("laptop"), "Spark args")
    b.wait(lambda: b.by_id("copied").text.startswith("--py-files") and "--jars" in
           b.by_id("copied").text, "the laptop group's spark line")
    line = b.by_id("copied").text
    jars = re.search(r"--jars '([^']+)'", line).group(1).split(",")
    assert requests.get(jars[0], timeout=10).content == local2.read_bytes()
    # One package's presigned URL, and a download through the browser.
    b.click_in_row(b.row("local_two.jar", "laptop"), "Copy URL")
    url = b.wait(lambda: b.by_id("copied").text.startswith("http") and
                 b.by_id("copied").text, "the presigned URL")
    assert "/files/laptop/local_two.jar?" in url
    assert requests.get(url, timeout=10).content == local2.read_bytes()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    b.driver.execute_cdp_cmd("Page.setDownloadBehavior",
                             {"behavior": "allow", "downloadPath": str(downloads)})
    b.click_in_row(b.row("local_one.py", "laptop"), "Download")
    b.wait(lambda: (downloads / "local_one.py").exists() and
           (downloads / "local_one.py").read_bytes() == local1.read_bytes(), "the download", 30)

    # --- replace a whole group with local files: staged blobs, then one commit ---------------
    local3 = tmp_path / "local_three.py"
    local3.write_bytes(b"print('three')\n")
    local1.write_bytes(b"print('one, replaced')\n")
    b.click_in_row(b.group_row("laptop"), "Replace")
    b.visible("replace-dialog")
    assert b.by_id("rg-group").get_attribute("value") == "laptop"
    Select(b.by_id("rg-kind")).select_by_visible_text("pyFile")
    b.by_id("rg-files").send_keys(f"{local1}\n{local3}")
    b.by_id("replace-form").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    b.wait(lambda: not b.by_id("replace-dialog").is_displayed(), "the replace dialog to close", 30)
    b.wait(lambda: b.row("local_three.py", "laptop") and not b.row("local_two.jar", "laptop"),
           "group laptop replaced")
    group = server.api("GET", "/v2.0/p1/resources?name=laptop", headers=auth(server)).json()
    details = {p["resource_name"]: p["sha256"] for p in group["groups"][0]["details"]}
    assert details == {n.name: hashlib.sha256(n.read_bytes()).hexdigest() for n in (local1, local3)}

    no_alert(b)


def test_drag_and_drop_uploads(start_server, browser):
    server, b = start_server(), browser
    b.driver.get(f"{server.url}/console/?project=p3")
    b.visible("console")
    # A drop event carrying a file, as a person's drag from the desktop delivers it.
    b.driver.execute_script("""
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped bytes'], 'dropped.txt'));
      document.getElementById('drop').dispatchEvent(
        new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    """)
    b.wait(lambda: (r := b.row("dropped.txt")) and "READY" in r.text, "the dropped file")
    got = server.api("GET", "/v2.0/p3/resources/dropped.txt")
    assert got.json()["size"] == len(b"dropped bytes") and got.json()["resource_type"] == "file"


def test_cross_site_form_posts_are_refused_without_credentials(start_server, nginx):
    server = start_server()
    body = json.dumps({"paths": [f"{nginx.url}/a.py"], "group": "csrf"})
    # What a form or a no-cors fetch from another site can send: nothing happens.
    for headers in ({"Content-Type": "text/plain"},
                    {"Content-Type": "application/x-www-form-urlencoded"},
                    {"Content-Type": "multipart/form-data; boundary=x"}, {}):
        r = server.api("POST", "/v2.0/p1/resources/files", data=body.encode(), headers=headers)
        assert r.status_code == 400 and "Content-Type: application/json" in r.json()["error_msg"]
    assert server.api("GET", "/v2.0/p1/resources/a.py?group=csrf").status_code == 404
    r = server.api("POST", "/v2.0/p1/resources/files", data=body,
                   headers={"Content-Type": "application/json;charset=UTF-8"})
    assert r.status_code == 200, r.text
