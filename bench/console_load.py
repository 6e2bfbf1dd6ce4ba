#!/usr/bin/python3
"""The web console's first load with 100,000 groups in the project.

Fills a project with --groups groups (one real upload, then its rows copied in SQLite in one
transaction while the server is stopped: the same bytes, referenced 100,000 times), restarts
dlipkg on it and opens /console/?project=bench in headless Chromium (Debian's, via Selenium)
with the cache disabled. Measures, from the browser's Performance API:
  - time to first render of the package table (the console's own performance mark, from the
    start of navigation);
  - bytes transferred on first load (headers and bodies of the page and every resource, from
    Chromium's DevTools network events; the list answer's transferSize shown apart);
  - the list call's own time in the same load.
Reference from the same run, alternating rounds: nginx serving the same console files and,
for the list call, the very same JSON page as a static file, so the console renders the same
table from a server that does no work.

Usage: bench/console_load.py [--groups 100000] [--rounds 5]
"""
import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from browser import Browser  # noqa: E402
from harness import Dlipkg, Nginx, find_nginx, free_port  # noqa: E402

PROJECT = "bench"
LIMIT = 50  # the console's default page size


def fill(data_dir, nginx_url, groups):
    """One real upload, then `groups` groups holding a copy of its package row."""
    server = Dlipkg(data_dir, ["--allow-source", "127.0.0.1"]).start()
    try:
        r = server.api("POST", f"/v2.0/{PROJECT}/resources/pyfiles",
                       json={"paths": [f"{nginx_url}/pkg.py"], "group": "g0000000"})
        r.raise_for_status()
    finally:
        server.stop()
    db = sqlite3.connect(data_dir / "metadata.db")
    with db:
        for table, name_col in (("groups", "name"), ("packages", "group_name")):
            cols = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            picked = ", ".join(f"printf('g%07d', n)" if c == name_col else c for c in cols)
            db.execute(f"""
                WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq
                                          WHERE n < {groups - 1})
                INSERT INTO {table} ({", ".join(cols)})
                SELECT {picked} FROM {table}, seq
                WHERE project = '{PROJECT}' AND {name_col} = 'g0000000'""")
    count = db.execute("SELECT count(*) FROM groups WHERE project = ?", (PROJECT,)).fetchone()[0]
    db.close()
    assert count == groups, count


class StaticConsole:
    """nginx serving console/ at /console/ and one JSON page for the list call."""

    def __init__(self, workdir, page_json):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "page.json").write_bytes(page_json)
        user = "user root;" if os.geteuid() == 0 else ""
        w = self.workdir
        (w / "nginx.conf").write_text(f"""
{user}
worker_processes 1; daemon off; pid {w}/nginx.pid; error_log {w}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {w}/cb; proxy_temp_path {w}/p; fastcgi_temp_path {w}/f;
  uwsgi_temp_path {w}/u; scgi_temp_path {w}/s;
  types {{ text/html html; text/css css; text/javascript js; }}
  server {{
    listen 127.0.0.1:{self.port};
    location /console/ {{ alias {ROOT}/console/; }}
    location = /v2.0/{PROJECT}/resources {{
      default_type application/json; alias {w}/page.json; }}
  }}
}}""")
        self.proc = subprocess.Popen([find_nginx(), "-c", str(w / "nginx.conf"), "-p", str(w)],
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


MEASURE = """
const nav = performance.getEntriesByType('navigation')[0];
const rendered = performance.getEntriesByName('dlipkg-table-rendered')[0];
const resources = performance.getEntriesByType('resource');
const list = resources.filter((r) => r.name.includes('/resources?'));
return {
  render_ms: rendered ? rendered.startTime : null,
  bytes: nav.transferSize + resources.reduce((n, r) => n + r.transferSize, 0),
  list_bytes: list.reduce((n, r) => n + r.transferSize, 0),
  list_ms: list.length ? list[0].duration : null,
  rows: document.querySelectorAll('#rows tr').length,
};
"""


def wire_bytes(log_entries):
    """Bytes on the wire (headers and bodies) of every response finished, from Chromium's
    DevTools network events (the Performance API's transferSize is rounded for privacy)."""
    total = 0
    for entry in log_entries:
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.loadingFinished":
            total += int(message["params"]["encodedDataLength"])
    return total


def load_once(browser, base):
    d = browser.driver
    d.get("about:blank")
    d.execute_cdp_cmd("Network.clearBrowserCache", {})
    d.get_log("performance")  # drop what came before this load
    d.get(f"{base}/console/?project={PROJECT}")
    browser.wait(lambda: d.execute_script("return document.body.dataset.loaded"), "the table", 60)
    result = d.execute_script(MEASURE)
    result["bytes"] = wire_bytes(d.get_log("performance"))
    if not result["rows"] or result["render_ms"] is None:
        raise SystemExit(f"the console rendered nothing from {base}: {result}")
    return result


def summary(values):
    return f"{min(values):8.1f} / {statistics.median(values):8.1f} / {max(values):8.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dlipkg-console-bench-"))
    servers = []
    browser = None
    try:
        (work / "src").mkdir()
        (work / "src" / "pkg.py").write_bytes(b"print('bench')\n")
        source = Nginx(work / "src", work / "nginx-src").start()
        servers.append(source)
        started = time.perf_counter()
        fill(work / "data", source.url, args.groups)
        print(f"filled {args.groups} groups in {time.perf_counter() - started:.1f} s")
        dlipkg = Dlipkg(work / "data", []).start()
        servers.append(dlipkg)
        page = dlipkg.api("GET", f"/v2.0/{PROJECT}/resources?limit={LIMIT}&offset=0")
        page.raise_for_status()
        static = StaticConsole(work / "nginx-console", page.content)
        servers.append(static)
        browser = Browser()
        browser.driver.execute_cdp_cmd("Network.enable", {})
        browser.driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        results = {"dlipkg": [], "nginx": []}
        for _ in range(args.rounds):  # alternating rounds, the same browser
            results["dlipkg"].append(load_once(browser, dlipkg.url))
            results["nginx"].append(load_once(browser, static.url))
        print(f"{args.groups} groups, page of {LIMIT} packages, {args.rounds} alternating rounds, "
              "min / median / max")
        for name, rs in results.items():
            print(f"  {name:7s} first render ms {summary([r['render_ms'] for r in rs])}   "
                  f"list call ms {summary([r['list_ms'] for r in rs])}   "
                  f"bytes {summary([r['bytes'] for r in rs])} "
                  f"(list answer {rs[0]['list_bytes']})")
        ours = statistics.median(r["render_ms"] for r in results["dlipkg"])
        ref = statistics.median(r["render_ms"] for r in results["nginx"])
        kib = statistics.median(r["bytes"] for r in results["dlipkg"]) / 1024
        print(f"first render: {ours:.0f} ms (target < 1000), {ours / ref:.2f}x nginx's {ref:.0f} ms")
        print(f"first load: {kib:.1f} KiB transferred (target < 200 KiB)")
    finally:
        if browser:
            browser.close()
        for s in reversed(servers):
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
