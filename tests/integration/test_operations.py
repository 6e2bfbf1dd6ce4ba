"""Issue 12: an operable service. The data-directory lock and the bind before recovery, /metrics
read by a real Prometheus text parser, /readyz and /healthz, the start-up line and messages,
request ids, and the systemd unit checked by systemd-analyze."""
import concurrent.futures
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from conftest import sha256
from harness import DLIPKG, ROOT, free_port

P = "/v2.0/p1/resources"
SLOW_BYTES = 40 * 1024  # nginx serves /slow/ at 10 KiB/s: about 4 s per object


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.time() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def temporaries(data_dir):
    tmp = Path(data_dir) / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def test_second_server_on_the_same_data_dir_exits_and_changes_nothing(start_server, nginx,
                                                                      sources, tmp_path):
    root, _ = sources
    slow = {f"lock{i}.bin": os.urandom(SLOW_BYTES) for i in range(2)}
    for name, data in slow.items():
        (root / "slow" / name).write_bytes(data)
    data_dir = tmp_path / "data"
    server = start_server(data_dir=data_dir)
    r = server.api("POST", P, json={"paths": [f"{nginx.url}/slow/lock0.bin"], "kind": "file",
                                    "group": "g", "is_async": True})
    assert r.status_code == 200, r.text
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        sync = pool.submit(server.api, "POST", P, json={
            "paths": [f"{nginx.url}/slow/lock1.bin"], "kind": "file", "group": "h"})
        # Both fetches are streaming into temporaries of the running server.
        before = wait_for(lambda: len(temporaries(data_dir)) == 2 and temporaries(data_dir),
                          10, "two uploads in flight")
        port = server.address.rsplit(":", 1)[1]
        for listen in (f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}"):
            second = subprocess.run(
                [str(DLIPKG), "serve", "--listen", listen, "--data-dir", str(data_dir),
                 "--allow-source", "127.0.0.1"], capture_output=True, text=True, timeout=30)
            assert second.returncode != 0, second.stdout + second.stderr
            said = second.stdout + second.stderr
            assert f"another dlipkg (pid {server.proc.pid}) is serving {data_dir}" in said, said
            assert temporaries(data_dir) == before, "the second server swept temporaries"
        assert sync.result(timeout=60).status_code == 200
    detail = wait_for(lambda: (lambda d: d["status"] != "UPLOADING" and d)(
        server.api("GET", f"{P}/lock0.bin?group=g").json()), 60, "the async upload")
    assert detail["status"] == "READY", detail
    assert detail["sha256"] == sha256(slow["lock0.bin"])
    assert server.api("GET", f"{P}/lock1.bin/content?group=h").content == slow["lock1.bin"]
    assert (data_dir / "LOCK").read_text().strip() == str(server.proc.pid)


def test_a_stopped_servers_lock_is_free_again(start_server, tmp_path):
    first = start_server(data_dir=tmp_path / "d")
    assert first.stop() == 0
    second = start_server(data_dir=tmp_path / "d")
    assert second.api("GET", "/healthz").status_code == 200


def test_port_in_use_fails_before_recovery_and_sweep(start_server, tmp_path):
    first = start_server(data_dir=tmp_path / "one")
    stray = tmp_path / "two" / "tmp" / "left-by-a-crash"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    port = first.address.rsplit(":", 1)[1]
    second = subprocess.run([str(DLIPKG), "serve", "--listen", f"127.0.0.1:{port}",
                             "--data-dir", str(tmp_path / "two")],
                            capture_output=True, text=True, timeout=30)
    assert second.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in second.stdout + second.stderr
    assert stray.exists(), "the sweep ran although the port could not be bound"


def scrape(server, **kw):
    r = server.api("GET", "/metrics", **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, r


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


SHOW = "/v2.0/{project_id}/resources/{resource_name}"
UPLOAD = "/v2.0/{project_id}/resources"


def test_metrics_counters_move_by_exactly_the_requests_made(server, nginx, sources):
    files = sources[1]
    before, first = scrape(server)
    assert value(before, "dlipkg_build_info", version="0.1.0") == 1
    sent = len(first.content)  # the first scrape's body is counted by the next one
    for _ in range(3):
        r = server.api("GET", f"{P}/missing.py")
        assert r.status_code == 404
        sent += len(r.content)
    r = server.api("POST", P, json={"paths": [f"{nginx.url}/a.py", f"{nginx.url}/lib.jar"],
                                    "kind": "file", "group": "g"})
    assert r.status_code == 200, r.text
    sent += len(r.content)
    r = server.api("GET", f"{P}/lib.jar/content?group=g")
    assert r.content == files["lib.jar"]
    sent += len(r.content)
    for path, status in ((f"{nginx.url}/nothing-here.py", 400),      # 404 at the source
                         ("http://169.254.169.254/latest.py", 400)):  # refused by the policy
        r = server.api("POST", P, json={"paths": [path], "kind": "file", "group": "g"})
        assert r.status_code == status, r.text
        sent += len(r.content)
    after, _ = scrape(server)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("dlipkg_http_requests_total", route=SHOW, method="GET", status="404") == 3
    assert delta("dlipkg_http_request_duration_seconds_count", route=SHOW) == 3
    assert delta("dlipkg_http_requests_total", route=UPLOAD, method="POST", status="200") == 1
    assert delta("dlipkg_http_requests_total", route=UPLOAD, method="POST", status="400") == 2
    assert delta("dlipkg_http_requests_total", route="/metrics", method="GET", status="200") == 1
    assert delta("dlipkg_uploads_total", mode="sync", outcome="ready") == 2
    assert delta("dlipkg_uploads_total", mode="sync", outcome="failed") == 2
    assert delta("dlipkg_fetched_bytes_total") == len(files["a.py"]) + len(files["lib.jar"])
    assert delta("dlipkg_fetch_failures_total", **{"class": "permanent"}) == 1
    assert delta("dlipkg_fetch_failures_total", **{"class": "refused"}) == 1
    assert delta("dlipkg_served_bytes_total") == sent
    assert delta("dlipkg_store_errors_total", store="blob", operation="write") == 0


def test_metrics_token_is_required_when_configured(start_server, tmp_path):
    token = tmp_path / "metrics-token"
    token.write_text("s3cr3t-token-0123456789\n")
    server = start_server("--metrics-token-file", str(token))
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
        r = server.api("GET", "/metrics", headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["error_code"] == "APIGW.0301"
        assert "s3cr3t" not in r.text
    samples, _ = scrape(server, headers={"Authorization": "Bearer s3cr3t-token-0123456789"})
    assert value(samples, "dlipkg_build_info", version="0.1.0") == 1


def test_metrics_off_means_no_route(start_server):
    server = start_server("--metrics", "false")
    assert server.api("GET", "/metrics").status_code == 404
    assert server.api("GET", f"{P}").status_code == 200


def test_readyz_and_healthz_answer_get_and_head(server, tmp_path):
    for path in ("/healthz", "/readyz"):
        r = server.api("GET", path)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ok"
        head = server.api("HEAD", path)
        assert head.status_code == 200 and head.content == b""
    assert server.api("GET", "/readyz").json()["checks"] == {"metadata store": "ok",
                                                              "blob store": "ok"}


def test_readyz_names_a_blob_directory_that_went_away(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    shutil.rmtree(tmp_path / "d" / "blobs")
    r = server.api("GET", "/readyz")
    assert r.status_code == 503, r.text
    assert r.json()["checks"]["blob store"] != "ok"
    assert r.json()["checks"]["metadata store"] == "ok"
    assert str(tmp_path) not in r.text
    assert server.api("HEAD", "/readyz").status_code == 503


def test_startup_line_says_what_is_in_force(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    line = next(l for l in server.logs().splitlines() if "starting:" in l)
    for part in ("dlipkg 0.1.0", f"data-dir={tmp_path / 'd'}", "metadata=sqlite:",
                 f"blobs=dir:{tmp_path / 'd'}", "listen=127.0.0.1:0",
                 "auth=none (loopback clients only)", "allow-source=127.0.0.1"):
        assert part in line, line


def test_startup_io_errors_name_their_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = subprocess.run([str(DLIPKG), "serve", "--listen", "127.0.0.1:0", "--data-dir",
                          str(blocker / "data")], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert str(blocker / "data") in out.stdout + out.stderr, out.stdout + out.stderr


def test_request_ids_kept_when_sane_and_in_every_error_body(server):
    r = server.api("GET", f"{P}/missing.py", headers={"X-Request-Id": "trace-42.a_b"})
    assert r.headers["X-Request-Id"] == "trace-42.a_b"
    assert r.json()["request_id"] == "trace-42.a_b"
    r = server.api("GET", f"{P}/missing.py", headers={"X-Request-Id": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])
    assert r.json()["request_id"] == r.headers["X-Request-Id"]
    for method, path, body in (("POST", P, b"{not json"), ("GET", "/nowhere", None),
                               ("POST", P, b"x" * (2 << 20))):
        r = server.api(method, path, data=body)
        assert r.status_code >= 400
        assert r.json()["request_id"] == r.headers["X-Request-Id"], r.text


def test_typed_upload_refuses_is_async(server, nginx):
    r = server.api("POST", f"{P}/pyfiles", json={"paths": [f"{nginx.url}/a.py"], "group": "g",
                                                 "is_async": True})
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "DLI.0007"
    assert server.api("GET", f"{P}/a.py?group=g").status_code == 404  # nothing was replaced


def test_command_line_mistakes_are_explained(tmp_path):
    def run(*args):
        out = subprocess.run([str(DLIPKG), *args], capture_output=True, text=True, timeout=30)
        return out.returncode, out.stdout + out.stderr

    code, said = run("serv")
    assert code == 2 and "did you mean 'serve'?" in said, said
    code, said = run("serve", "--owner", "bob")
    assert code == 2 and "--owner" in said, said
    bad = tmp_path / "bad.toml"
    bad.write_text("[serve]\nlisten = 127.0.0.1:8093\n")
    code, said = run("serve", "--config", str(bad))
    assert code == 2 and f"{bad}:2:" in said, said
    typo = tmp_path / "typo.toml"
    typo.write_text("[serve]\nworkrs = 4\n")
    code, said = run("serve", "--config", str(typo))
    assert code == 2 and f"{typo}:2: unknown key 'workrs' in [serve]; did you mean 'workers'?" \
        in said, said


def test_systemd_unit_verifies_with_the_built_binary(tmp_path):
    unit = (ROOT / "config" / "dlipkg.service").read_text()
    assert "/usr/local/bin/dlipkg" in unit
    checked = tmp_path / "dlipkg.service"
    checked.write_text(unit.replace("/usr/local/bin/dlipkg", str(DLIPKG)))
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(checked)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dlipkg.service" not in out.stderr, out.stderr  # no warning about the unit itself


def test_uploading_package_shows_its_progress(server, nginx, sources):
    root, _ = sources
    data = os.urandom(SLOW_BYTES)
    (root / "slow" / "progress.bin").write_bytes(data)
    r = server.api("POST", P, json={"paths": [f"{nginx.url}/slow/progress.bin"], "kind": "file",
                                    "group": "g", "is_async": True})
    assert r.status_code == 200, r.text
    shown = wait_for(lambda: (lambda d: d.get("bytes_fetched", 0) > 0 and d)(
        server.api("GET", f"{P}/progress.bin?group=g").json()), 10, "progress to show")
    assert shown["status"] == "UPLOADING"
    assert shown["expected_size"] == len(data)
    assert shown["attempt"] == 1
    assert 0 < shown["bytes_fetched"] < len(data)
    # The fetch takes about 4 s, so the list, made at once, still sees it running.
    listed = [p for g in server.api("GET", P).json()["groups"] for p in g["details"]
              if p["resource_name"] == "progress.bin"]
    assert listed and listed[0]["status"] == "UPLOADING", listed
    assert listed[0]["expected_size"] == len(data) and listed[0]["attempt"] == 1, listed
    assert listed[0]["bytes_fetched"] >= shown["bytes_fetched"], listed
    done = wait_for(lambda: (lambda d: d["status"] != "UPLOADING" and d)(
        server.api("GET", f"{P}/progress.bin?group=g").json()), 30, "the upload")
    assert done["status"] == "READY" and done["size"] == len(data)
    assert "bytes_fetched" not in done and "attempt" not in done


def test_retrying_package_shows_attempt_and_last_cause(start_server, nginx):
    server = start_server("--retry-base-delay-ms", "200", "--retry-max-delay-ms", "400",
                          "--job-deadline", "30")
    r = server.api("POST", P, json={"paths": [f"{nginx.url}/status/503"], "kind": "file",
                                    "group": "g", "is_async": True})
    assert r.status_code == 200, r.text
    shown = wait_for(lambda: (lambda d: d.get("attempt", 0) >= 2 and d.get("status_reason") and d)(
        server.api("GET", f"{P}/503?group=g").json()), 20, "a retried attempt")
    assert shown["status"] == "UPLOADING"
    assert "503" in shown["status_reason"], shown
    assert shown["expected_size"] is None or isinstance(shown["expected_size"], int)


def test_job_events_are_logged_and_counted(start_server, nginx, sources):
    """A job retried until its deadline, then FAILED, and a job that ends READY: each event is
    one log line naming job, project, group and package, and /metrics counts exactly those."""
    files = sources[1]
    server = start_server("--retry-base-delay-ms", "100", "--retry-max-delay-ms", "200",
                          "--job-deadline", "2")
    before, _ = scrape(server)
    for path, group in (("status/503", "f"), ("a.py", "r")):
        r = server.api("POST", P, json={"paths": [f"{nginx.url}/{path}"], "kind": "file",
                                        "group": group, "is_async": True})
        assert r.status_code == 200, r.text
    failed = wait_for(lambda: (lambda d: d["status"] != "UPLOADING" and d)(
        server.api("GET", f"{P}/503?group=f").json()), 30, "the retried job to fail")
    ready = wait_for(lambda: (lambda d: d["status"] != "UPLOADING" and d)(
        server.api("GET", f"{P}/a.py?group=r").json()), 30, "the other job")
    assert failed["status"] == "FAILED" and "503" in failed["status_reason"], failed
    assert ready["status"] == "READY", ready

    def lines(kind, group, name):
        pattern = (rf"{kind} job=(\d+) project=p1 group={group} "
                   rf"package={re.escape(name)}(?: |$)(.*)")
        return [m.groups() for m in re.finditer(pattern, server.logs(), re.M)]

    # The failing job: queued once, each attempt started, retried with attempt, delay and cause
    # until the deadline, then failed with the cause.
    queued, started = lines("job queued", "f", "503"), lines("job started", "f", "503")
    retrying, gave_up = lines("job retrying", "f", "503"), lines("job failed", "f", "503")
    assert len(queued) == 1 and len(gave_up) == 1, server.logs()
    assert len({j for j, _ in queued + started + retrying + gave_up}) == 1  # one job throughout
    assert len(retrying) >= 1
    for attempt, (_, rest) in enumerate(retrying, start=1):
        m = re.fullmatch(r"attempt=(\d+) delay_ms=(\d+) cause: (.*)", rest)
        assert m and int(m.group(1)) == attempt and int(m.group(2)) <= 200, rest
        assert "503" in m.group(3), rest
    assert [rest for _, rest in started] == [f"attempt={i}" for i in range(1, len(started) + 1)]
    assert len(started) in (len(retrying), len(retrying) + 1)  # the last may end at the deadline
    assert re.search(r"cause: .*(503|deadline)", gave_up[0][1]), gave_up
    # The READY job: queued, started, ready with its size and duration.
    (ready_job, _), = lines("job queued", "r", "a.py")
    assert [rest for _, rest in lines("job started", "r", "a.py")] == ["attempt=1"]
    assert {j for j, _ in lines("job started", "r", "a.py")} == {ready_job}
    assert ready_job != queued[0][0]
    (_, rest), = lines("job ready", "r", "a.py")
    m = re.search(r"attempt=1 bytes=(\d+) duration_ms=(\d+)", rest)
    assert m and int(m.group(1)) == len(files["a.py"]), rest

    after, _ = scrape(server)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("dlipkg_jobs_total", state="queued") == 2
    assert delta("dlipkg_jobs_total", state="started") == len(started) + 1
    assert delta("dlipkg_jobs_total", state="retrying") == len(retrying)
    assert delta("dlipkg_job_retries_total") == len(retrying)
    assert delta("dlipkg_jobs_total", state="failed") == 1
    assert delta("dlipkg_jobs_total", state="ready") == 1
    assert delta("dlipkg_uploads_total", mode="async", outcome="failed") == 1
    assert delta("dlipkg_uploads_total", mode="async", outcome="ready") == 1


FILE = "/v2.0/{project_id}/files/{group}/{resource_name}"
CONTENT = "/v2.0/{project_id}/resources/{resource_name}/content"


def test_metrics_count_direct_uploads_downloads_presigned_urls_and_console(server):
    """The routes of direct transfer, /files, presigned URLs and the console are instrumented
    like the others: each counter moves by exactly the requests made."""
    before, first = scrape(server)
    sent = len(first.content)
    data = os.urandom(5000)
    r = server.api("PUT", f"{P}/x.bin/content?kind=file&group=g", data=data)
    assert r.status_code == 200, r.text
    sent += len(r.content)
    r = server.api("PUT", f"{P}/y.bin/content?kind=file&group=g", data=b"other",
                   headers={"X-Content-Sha256": sha256(b"not these bytes")})
    assert r.status_code == 400, r.text
    sent += len(r.content)
    staged = b"staged = 1\n"
    r = server.api("PUT", f"/v2.0/p1/blobs/{sha256(staged)}", data=staged)
    assert r.status_code == 200, r.text
    sent += len(r.content)
    r = server.api("POST", f"{P}/commit", json={"group": "h", "packages": [
        {"name": "s.py", "kind": "pyFile", "sha256": sha256(staged)}]})
    assert r.status_code == 200, r.text
    sent += len(r.content)
    r = server.api("GET", "/v2.0/p1/files/g/x.bin")
    assert r.content == data
    sent += len(r.content)
    r = server.api("POST", f"{P}/urls", json={"group": "g", "expires_in": 600})
    assert r.status_code == 200, r.text
    sent += len(r.content)
    url = r.json()["urls"][0]["url"].split("/v2.0/", 1)[1]
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    expired = re.sub(r"X-Dli-Expires=(\d+)", "X-Dli-Expires=1000", url)
    for bad in (tampered, tampered, expired, url.split("&")[0]):
        r = server.api("GET", "/v2.0/" + bad)
        assert r.status_code == 403, r.text
        sent += len(r.content)
    r = server.api("GET", "/v2.0/" + url)
    assert r.content == data
    sent += len(r.content)
    r = server.api("GET", "/console/")
    assert r.status_code == 200
    sent += len(r.content)
    after, _ = scrape(server)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("dlipkg_http_requests_total", route=CONTENT, method="PUT", status="200") == 1
    assert delta("dlipkg_http_requests_total", route=CONTENT, method="PUT", status="400") == 1
    assert delta("dlipkg_http_request_duration_seconds_count", route=CONTENT) == 2
    assert delta("dlipkg_http_requests_total", route="/v2.0/{project_id}/blobs/{sha256}",
                 method="PUT", status="200") == 1
    assert delta("dlipkg_http_requests_total", route="/v2.0/{project_id}/resources/commit",
                 method="POST", status="200") == 1
    assert delta("dlipkg_http_requests_total", route="/v2.0/{project_id}/resources/urls",
                 method="POST", status="200") == 1
    assert delta("dlipkg_http_requests_total", route=FILE, method="GET", status="200") == 2
    assert delta("dlipkg_http_requests_total", route=FILE, method="GET", status="403") == 4
    assert delta("dlipkg_http_requests_total", route="/console/{file...}", method="GET",
                 status="200") == 1
    assert delta("dlipkg_uploads_total", mode="direct", outcome="ready") == 2
    assert delta("dlipkg_uploads_total", mode="direct", outcome="failed") == 1
    assert delta("dlipkg_presign_refusals_total", reason="signature") == 2
    assert delta("dlipkg_presign_refusals_total", reason="expired") == 1
    assert delta("dlipkg_presign_refusals_total", reason="malformed") == 1
    assert delta("dlipkg_served_bytes_total") == sent
