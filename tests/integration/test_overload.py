"""Issue 15, bugs 1 and 2: slow sources must not freeze the API, and SIGTERM must stop the server
within its grace period whatever the sources do.

The source trickles one byte every 0.3 s (never silent, hopelessly slow) or stalls (silent).
"""
import concurrent.futures
import socket
import time

import pytest
import requests

from source_server import SourceServer

P = "/v2.0/p1/resources"


@pytest.fixture
def scripted():
    source = SourceServer().start()
    yield source
    source.stop()


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def sync_upload(server, url, group, timeout=60):
    started = time.time()
    try:
        r = server.api("POST", P, json={"paths": [url], "kind": "file", "group": group},
                       timeout=timeout)
        return r.status_code, r.json().get("error_code", ""), time.time() - started
    except requests.RequestException as e:
        return None, type(e).__name__, time.time() - started


def test_slow_sources_do_not_freeze_the_api(start_server, scripted):
    """Two async jobs take both job fetchers; eight sync uploads arrive on eight handler threads.
    Lists and health checks keep answering at once, every sync upload gets an answer within a
    bound (429 when no fetcher or slot is free, 400 DLI.0012 when the low-speed limit ends a
    trickling fetch), and the trickling async jobs are cut off by the low-speed limit too."""
    server = start_server("--workers", "2", "--sync-workers", "2", "--handler-threads", "8",
                          "--max-sync-uploads", "4", "--sync-wait", "2",
                          "--fetch-stall-timeout", "3", "--fetch-low-speed-limit", "100",
                          "--job-deadline", "4")
    for i in range(2):
        r = server.api("POST", P, json={"paths": [f"{scripted.url}/trickle/async{i}.py"],
                                        "kind": "file", "is_async": True, "group": "slow"})
        assert r.status_code == 200, r.text
    wait_for(lambda: scripted.hits["trickle"] >= 2, 10, "both async fetches to start")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        uploads = [pool.submit(sync_upload, server, f"{scripted.url}/trickle/s{i}.py", f"g{i}")
                   for i in range(8)]
        wait_for(lambda: scripted.hits["trickle"] >= 4, 10, "two sync fetches to start")
        # Requests that need no fetch are served at once meanwhile.
        for _ in range(5):
            started = time.time()
            assert server.api("GET", "/healthz", timeout=5).status_code == 200
            assert server.api("GET", P, timeout=5).status_code == 200
            assert time.time() - started < 1.5
        answers = [u.result() for u in uploads]

    codes = sorted((status, code) for status, code, _ in answers)
    assert all(seconds < 15 for _, _, seconds in answers), answers
    # Two fetched (and failed the low-speed limit), six refused as busy: four at once because
    # four sync uploads were running, two after waiting 2 s for a fetcher.
    assert codes.count((400, "DLI.0012")) == 2, answers
    assert codes.count((429, "APIGW.0308")) == 6, answers
    # The trickling async jobs end too (retried within their deadline, then FAILED).
    def failed():
        listing = server.api("GET", P, timeout=5).json()
        statuses = [r["status"] for g in listing["groups"] if g["group_name"] == "slow"
                    for r in g["details"]]
        return statuses == ["FAILED", "FAILED"]
    wait_for(failed, 30, "the trickling async jobs to fail")


def test_sigterm_stops_within_the_grace_whatever_the_sources_do(start_server, scripted):
    """One sync upload streams from a silent source, one waits for the only sync fetcher, one
    async job streams from a trickling source: SIGTERM stops the server within the grace."""
    server = start_server("--sync-workers", "1", "--sync-wait", "120", "--workers", "1",
                          "--fetch-stall-timeout", "120", "--shutdown-grace", "3")
    r = server.api("POST", P, json={"paths": [f"{scripted.url}/trickle/job.py"],
                                    "kind": "file", "is_async": True, "group": "slow"})
    assert r.status_code == 200, r.text
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        uploads = [pool.submit(sync_upload, server, f"{scripted.url}/stall/s{i}.py", f"g{i}")
                   for i in range(2)]
        wait_for(lambda: scripted.hits["stall"] >= 1 and scripted.hits["trickle"] >= 1, 10,
                 "the fetches to start")
        started = time.time()
        code = server.stop(timeout=20)
        elapsed = time.time() - started
        answers = [u.result() for u in uploads]
    assert code == 0, server.logs()
    assert elapsed < 3 + 1.5, f"stopped after {elapsed:.1f} s; grace 3 s"
    # Both uploads were answered (busy: the server is shutting down), none left hanging.
    assert sorted(a[:2] for a in answers) == [(429, "APIGW.0308")] * 2, answers
    # Nothing was committed: the next start shows no package of the cancelled uploads, and the
    # async job waits to be resumed.
    again = start_server()
    listing = again.api("GET", P).json()
    names = {r["resource_name"] for g in listing["groups"] for r in g["details"]}
    assert names == {"job.py"}, listing


def test_streamed_uploads_count_against_the_sync_upload_limit(start_server):
    """Direct uploads (PUT .../content) hold a handler thread while the client sends the body, as
    fetching uploads do while the source sends it: two clients that start an upload and go
    quiet take the two sync slots, a third upload is refused at once with 429, and lists and
    health checks keep answering from the handler threads left."""
    server = start_server("--handler-threads", "4", "--max-sync-uploads", "2",
                          "--read-timeout", "60")
    host, port = server.address.split(":")
    quiet = []
    try:
        for i in range(2):
            s = socket.create_connection((host, int(port)), timeout=30)
            s.sendall((f"PUT {P}/quiet{i}.bin/content?kind=file HTTP/1.1\r\n"
                       f"Host: {server.address}\r\nContent-Length: 1000000\r\n\r\n").encode()
                      + b"x" * 1000)
            quiet.append(s)
        # Each streaming upload has a temporary blob once it holds its slot.
        wait_for(lambda: len(list((server.data_dir / "tmp").glob("*"))) == 2, 10,
                 "both streamed uploads to start")
        started = time.time()
        r = server.api("PUT", f"{P}/third.bin/content?kind=file", data=b"abc", timeout=10)
        assert (r.status_code, r.json().get("error_code")) == (429, "APIGW.0308"), r.text
        assert server.api("GET", "/healthz", timeout=5).status_code == 200
        assert server.api("GET", P, timeout=5).status_code == 200
        assert time.time() - started < 2
    finally:
        for s in quiet:
            s.close()
    # Once the quiet clients are gone, their slots are free again.
    wait_for(lambda: server.api("PUT", f"{P}/third.bin/content?kind=file", data=b"abc",
                                timeout=10).status_code == 200, 10, "a free slot")
