"""Issue 4: asynchronous uploads on the durable job queue, retries, deadlines, crash safety."""
import hashlib
import os
import time
from pathlib import Path

import pytest
import requests

from harness import SANITIZED, RssSampler, memory_measured_env
from source_server import SourceServer

P = "/v2.0/p1/resources"


@pytest.fixture
def scripted():
    source = SourceServer().start()
    yield source
    source.stop()


def upload_async(server, paths, group="g", kind="file"):
    body = {"paths": paths, "kind": kind, "is_async": True}
    if group:
        body["group"] = group
    return server.api("POST", P, json=body)


def show(server, name, group="g"):
    query = f"?group={group}" if group else ""
    r = server.api("GET", f"{P}/{name}{query}")
    assert r.status_code == 200, r.text
    return r.json()


def wait_settled(server, names, group="g", timeout=60):
    deadline = time.time() + timeout
    while True:
        packages = {n: show(server, n, group) for n in names}
        if all(p["status"] != "UPLOADING" for p in packages.values()):
            return packages
        assert time.time() < deadline, {n: p["status"] for n, p in packages.items()}
        time.sleep(0.05)


def content(server, name, group="g"):
    query = f"?group={group}" if group else ""
    return server.api("GET", f"{P}/{name}/content{query}").content


def write_big(path, size):
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(size >> 20):
            chunk = i.to_bytes(8, "little") + block[8:]
            f.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def test_large_async_upload_answers_at_once_then_ready(server, nginx):
    (nginx.root / "throttled").mkdir(exist_ok=True)
    sha = write_big(nginx.root / "throttled" / "big512.bin", 512 << 20)
    try:
        started = time.time()
        r = upload_async(server, [f"{nginx.url}/throttled/big512.bin"])
        answered = time.time() - started
        assert r.status_code == 200, r.text
        assert answered < 1.0, f"answered after {answered:.2f} s"
        body = r.json()
        assert body["is_async"] is True and body["status"] == "UPLOADING"
        assert body["details"][0]["status"] == "UPLOADING"
        done = wait_settled(server, ["big512.bin"], timeout=120)["big512.bin"]
        assert done["status"] == "READY", done
        assert done["sha256"] == sha and done["size"] == 512 << 20
    finally:
        (nginx.root / "throttled" / "big512.bin").unlink()


def test_retryable_503_twice_then_ready(server, scripted):
    r = upload_async(server, [f"{scripted.url}/flaky/k1/lib.jar?fail=2"], kind="jar")
    assert r.status_code == 200, r.text
    done = wait_settled(server, ["lib.jar"])["lib.jar"]
    assert done["status"] == "READY", done
    assert scripted.hits["k1"] == 3
    assert content(server, "lib.jar") == scripted.body("lib.jar")
    assert "status_reason" not in done


def test_not_found_fails_at_once_with_reason(server, scripted):
    started = time.time()
    assert upload_async(server, [f"{scripted.url}/missing/x.py"], group=None).status_code == 200
    done = wait_settled(server, ["x.py"], group=None)["x.py"]
    assert done["status"] == "FAILED"
    assert "404" in done["status_reason"] and "x.py" in done["status_reason"]
    assert time.time() - started < 5


def test_stalling_source_fails_after_the_deadline(start_server, scripted):
    server = start_server("--job-deadline", "4", "--fetch-stall-timeout", "1",
                          "--retry-base-delay-ms", "100")
    started = time.time()
    assert upload_async(server, [f"{scripted.url}/stall/s.bin"]).status_code == 200
    done = wait_settled(server, ["s.bin"], timeout=30)["s.bin"]
    elapsed = time.time() - started
    assert done["status"] == "FAILED", done
    assert "deadline" in done["status_reason"], done["status_reason"]
    assert 3 <= elapsed < 15, elapsed
    group = server.api("GET", P).json()["groups"][0]
    assert group["status"] == "FAILED"


def test_failed_replacement_keeps_previous_bytes(server, nginx, scripted):
    assert upload_async(server, [f"{scripted.url}/ok/v.py"]).status_code == 200
    first = wait_settled(server, ["v.py"])["v.py"]
    assert first["status"] == "READY"
    # The replacement's source answers 403: FAILED, and the old bytes still download.
    r = upload_async(server, [f"{nginx.url}/status/403/v.py"])
    assert r.status_code == 200
    done = wait_settled(server, ["v.py"])["v.py"]
    assert done["status"] == "FAILED" and "403" in done["status_reason"]
    assert done["sha256"] == first["sha256"]
    assert content(server, "v.py") == scripted.body("v.py")


def test_queue_bound_refuses_and_creates_nothing(start_server, scripted):
    server = start_server("--max-queued-jobs", "3")
    paths = [f"{scripted.url}/ok/q{i}.py" for i in range(4)]
    r = upload_async(server, paths, group="bounded")
    assert r.status_code == 400 and r.json()["error_code"] == "DLI.1028", r.text
    assert server.api("GET", P).json()["groups"] == []


def blobs_and_temps(data_dir):
    blobs = {p.name for p in (data_dir / "blobs").rglob("*") if p.is_file()}
    temps = [p for p in (data_dir / "tmp").rglob("*") if p.is_file()]
    return blobs, temps


@pytest.mark.parametrize("point", ["before-fetch", "mid-fetch", "after-blob-commit"])
def test_kill9_then_restart_settles_every_package(start_server, nginx, sources, tmp_path, point):
    data = tmp_path / f"d-{point}"
    names = ["a.py", "lib.jar", "big.bin"]
    crashing = start_server(data_dir=data, env={"DLIPKG_TEST_FAULT": point})
    try:
        r = upload_async(crashing, [f"{nginx.url}/{n}" for n in names])
        assert r.status_code == 200, r.text
    except requests.ConnectionError:
        # The worker may claim the job and die before the answer is written; the jobs were
        # committed before any claim, so the restarted server must still have them.
        pass
    crashing.proc.wait(30)
    assert crashing.proc.returncode == -9, crashing.logs()

    again = start_server(data_dir=data)
    done = wait_settled(again, names)
    blobs, temps = blobs_and_temps(data)
    assert temps == []
    for name, package in done.items():
        assert package["status"] == "READY", (name, package)
        data_bytes = content(again, name)
        assert hashlib.sha256(data_bytes).hexdigest() == package["sha256"]
        assert data_bytes == sources[1][name]
    assert blobs == {p["sha256"] for p in done.values()}  # no orphan left behind


def test_thousand_async_uploads_complete_with_none_lost(start_server, nginx):
    server = start_server("--workers", "8", env=memory_measured_env())
    folder = nginx.root / "many"
    folder.mkdir(exist_ok=True)
    for i in range(1000):
        (folder / f"n{i:04d}.py").write_text(f"print({i})\n")
    with RssSampler(server, interval=0.05) as rss:
        for batch in range(10):
            paths = [f"{nginx.url}/many/n{i:04d}.py" for i in range(batch * 100, batch * 100 + 100)]
            r = upload_async(server, paths, group=f"b{batch}", kind="pyFile")
            assert r.status_code == 200, r.text
        deadline = time.time() + 120
        while True:
            listing = server.api("GET", P).json()
            states = [d["status"] for g in listing["groups"] for d in g["details"]]
            if states.count("READY") == 1000:
                break
            assert "FAILED" not in states
            assert time.time() < deadline, f"{states.count('READY')} READY"
            time.sleep(0.2)
    assert listing["total"] == 1000
    print(f"RSS {rss.start_kib} KiB idle, {rss.peak_kib} KiB at the peak")
    if SANITIZED:  # ASan's own memory on top (harness.SANITIZED): the normal ceiling, as growth
        assert rss.growth_kib < 150 * 1024, f"RSS grew {rss.growth_kib} KiB"
    else:
        assert rss.peak_kib < 150 * 1024, f"peak RSS {rss.peak_kib} KiB"
    assert content(server, "n0999.py", "b9") == b"print(999)\n"
