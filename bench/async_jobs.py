#!/usr/bin/python3
"""Asynchronous upload queue: latency to READY and memory while jobs wait.

1. 1,000 small packages (10 requests x 100 paths, is_async=true) from nginx on loopback:
   time from the first request to the moment all 1,000 are READY. Reference in the same
   run: one `curl --parallel` process fetching the same 1,000 URLs into files on the same
   disk, then an fsync of each (dlipkg makes each durable before READY), with as many parallel
   transfers as dlipkg has workers. --rounds alternate the two; min / median / max of the
   ratio are printed (target 0.6, with fsync). READY is watched through the server's job counter
   (/metrics, every 10 ms) and confirmed by the listing.
2. 10,000 jobs queued (100 requests x 100 paths, one worker kept busy by a 10 KiB/s
   source): the server's RSS idle before, and its peak while they wait.

Usage: bench/async_jobs.py [--workers 8] [--rounds 3] [--skip-queued] [--baseline BIN]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from harness import Dlipkg, Nginx, RssSampler  # noqa: E402

P = "/v2.0/bench/resources"


def jobs_reached(server, state):
    """The server's count of jobs that reached `state` (its Prometheus counter)."""
    text = server.session.get(server.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("dlipkg_jobs_total{") and f'state="{state}"' in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def wait_ready(server, expected, timeout=300):
    """Waits until the listing shows `expected` packages READY. The listing of 1,000 packages
    costs the server about 10 ms, so it is asked only once the jobs' READY counter (one small
    /metrics answer, polled every 10 ms) says all are done: a listing polled every 0.1 s added
    up to 0.1 s to a figure of about 0.4 s, and polling it faster would cost the server more
    CPU than the uploads themselves."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if jobs_reached(server, "failed") > 0:
            raise SystemExit("a package FAILED")
        if jobs_reached(server, "ready") < expected:
            time.sleep(0.01)
            continue
        listing = server.api("GET", P).json()
        states = [d["status"] for g in listing["groups"] for d in g["details"]]
        if states.count("READY") == expected:
            return
        if "FAILED" in states:
            raise SystemExit("a package FAILED")
        time.sleep(0.01)
    raise SystemExit("timed out")


def to_ready(work, urls, workers, round_no, binary=None):
    """(seconds to answer the 10 requests, seconds until all 1,000 are READY) on a fresh server
    of `binary` (None: build/dlipkg)."""
    server = Dlipkg(work / f"data1-{round_no}-{'baseline' if binary else 'this'}",
                    ["--allow-source", "127.0.0.1", "--workers", str(workers)], binary=binary)
    server.start()
    try:
        started = time.perf_counter()
        for batch in range(10):
            r = server.api("POST", P, json={"paths": urls[batch * 100:batch * 100 + 100],
                                            "kind": "pyFile", "group": f"g{batch}",
                                            "is_async": True})
            assert r.status_code == 200, r.text
        answered = time.perf_counter() - started
        wait_ready(server, 1000)
        return answered, time.perf_counter() - started
    finally:
        server.stop()


def latency_run(work, nginx, workers, round_no=0, baseline=None):
    if round_no == 0:
        for i in range(1000):
            (nginx.root / "small" / f"s{i:04d}.py").write_text(f"print({i})\n" * 50)
    urls = [f"{nginx.url}/small/s{i:04d}.py" for i in range(1000)]

    out = work / f"curl-out{round_no}"
    out.mkdir()
    started = time.perf_counter()
    args = ["curl", "-sS", "--fail", "--parallel", "--parallel-max", str(workers),
            "--output-dir", str(out)]
    for url in urls:
        args += ["-o", url.rsplit("/", 1)[1], url]
    subprocess.run(args, check=True)
    curl_s = time.perf_counter() - started
    # dlipkg makes each package durable (fsync) before READY; so does this second reference.
    for path in out.iterdir():
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    curl_fsync_s = time.perf_counter() - started

    answered, dlipkg_s = to_ready(work, urls, workers, round_no)
    print(f"1,000 async packages: all READY after {dlipkg_s:.2f} s "
          f"({1000 / dlipkg_s:.0f}/s; the 10 requests were answered in {answered * 1000:.0f} ms); "
          f"curl --parallel {workers} fetching the same URLs: {curl_s:.2f} s "
          f"({1000 / curl_s:.0f}/s), then an fsync of each file: {curl_fsync_s:.2f} s; "
          f"ratio {curl_s / dlipkg_s:.2f} (with fsync {curl_fsync_s / dlipkg_s:.2f})", flush=True)
    if baseline:
        _, baseline_s = to_ready(work, urls, workers, round_no, baseline)
        print(f"  baseline {baseline}: all READY after {baseline_s:.2f} s; ratio "
              f"{curl_s / baseline_s:.2f} (with fsync {curl_fsync_s / baseline_s:.2f})", flush=True)
    return curl_fsync_s / dlipkg_s


def queued_run(work, nginx):
    slow = nginx.root / "slow"
    for j in range(100):
        (slow / f"f{j:02d}.bin").write_bytes(b"x" * (1 << 20))
    server = Dlipkg(work / "data2", ["--allow-source", "127.0.0.1", "--workers", "1"])
    server.start()
    try:
        time.sleep(0.5)
        idle_kib = server.rss_kib()
        with RssSampler(server, interval=0.05) as rss:
            started = time.perf_counter()
            for g in range(100):
                paths = [f"{nginx.url}/slow/f{j:02d}.bin" for j in range(100)]
                r = server.api("POST", P, json={"paths": paths, "kind": "file",
                                                "group": f"q{g:02d}", "is_async": True})
                assert r.status_code == 200, r.text
            enqueue_s = time.perf_counter() - started
            time.sleep(2)
        listing = server.api("GET", P + "?limit=1").json()
    finally:
        server.stop()
    print(f"10,000 jobs queued in {enqueue_s:.2f} s ({10000 / enqueue_s:.0f} jobs/s, "
          f"100 per request); {listing['total']} packages listed; RSS idle "
          f"{idle_kib / 1024:.1f} MiB, peak while queued {rss.peak_kib / 1024:.1f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-queued", action="store_true", help="only the latency rounds")
    parser.add_argument("--baseline", default=None,
                        help="another dlipkg binary (e.g. main's) timed in each round too")
    args = parser.parse_args()
    base = Path(__file__).resolve().parents[1] / "build" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base))
    (work / "src" / "small").mkdir(parents=True)
    nginx = Nginx(work / "src", work / "nginx").start()
    try:
        ratios = [latency_run(work, nginx, args.workers, r, args.baseline)
                  for r in range(args.rounds)]
        print(f"1,000 async packages to READY: ratio to curl --parallel {args.workers} + fsync "
              f"min / median / max {min(ratios):.2f} / {statistics.median(ratios):.2f} / "
              f"{max(ratios):.2f} (target >= 0.6: "
              f"{'met' if statistics.median(ratios) >= 0.6 else 'MISSED'})")
        if not args.skip_queued:
            queued_run(work, nginx)
    finally:
        nginx.stop()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
