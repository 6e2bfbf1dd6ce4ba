#!/usr/bin/python3
"""Upload throughput and memory of dlipkg against `curl -o`, in one run, same disk.

For each size (default 10 MiB and 1 GiB): nginx on loopback serves a file of random bytes;
  - reference: `curl -o` copies it to the data disk, then the copy is fsynced (dlipkg fsyncs
    before it answers READY, so the fair reference includes it; curl alone is printed too);
  - dlipkg: POST /v2.0/bench/resources/files with that URL, timed from request to answer;
    the server's peak RSS is sampled every 20 ms during the upload.
Prints both throughputs, their ratio and the peak RSS. Targets: ratio >= 0.8, RSS < 64 MiB.

With --small N: N files of 10 KiB uploaded synchronously, each into a new group, by
--concurrency clients on keep-alive connections; the reference fetches the same files from
nginx with as many threads, writes and fsyncs each. Rounds alternate reference and dlipkg (a
fresh server each round); prints each round and min / median / max of the ratio (target 0.6).
--baseline BINARY adds another dlipkg (e.g. main's) to each round, as a third measurement.

Usage: bench/upload_throughput.py [--sizes 10MiB,1GiB] [--runs 3]
       bench/upload_throughput.py --small 1000 [--concurrency 8] [--rounds 3] [--baseline BIN]
"""
import argparse
import concurrent.futures
import os
import statistics
import threading
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from harness import Dlipkg, Nginx, RssSampler  # noqa: E402

from sizes import parse_size  # noqa: E402

import requests  # noqa: E402


def make_file(path, size):
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size // len(chunk)):
            f.write(chunk[:-8] + os.urandom(8))  # distinct chunks, cheap
        f.write(os.urandom(size % len(chunk)))


def curl_copy(url, dest):
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", str(dest), url], check=True)
    curl_only = time.perf_counter() - started
    fd = os.open(dest, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    with_fsync = time.perf_counter() - started
    os.unlink(dest)
    return curl_only, with_fsync


def in_parallel(count, concurrency, task):
    """Runs task(session, i) for i in range(count) on `concurrency` threads, each with its own
    keep-alive session; returns the elapsed seconds."""
    local = threading.local()

    def run(i):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        task(local.session, i)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(run, range(count)))
    return time.perf_counter() - started


def timed_uploads(work, nginx, count, concurrency, round_no, binary, label):
    """Seconds for `count` sync uploads into a fresh server of `binary` (None: build/dlipkg)."""
    data = work / f"data{round_no}-{label}"
    server = Dlipkg(data, ["--allow-source", "127.0.0.1"], binary=binary)
    server.start()
    try:
        def upload(session, i):
            r = session.post(server.url + "/v2.0/bench/resources/files",
                             json={"paths": [f"{nginx.url}/small/s{i:05d}.bin"],
                                   "group": f"g{round_no}-{i:05d}"}, timeout=60)
            if r.status_code != 200:
                raise SystemExit(f"upload failed: {r.status_code} {r.text}")

        return in_parallel(count, concurrency, upload)
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(data)])


def small_round(work, nginx, count, concurrency, round_no, baseline=None):
    out = work / f"ref{round_no}"
    out.mkdir()

    def fetch_write_fsync(session, i):
        r = session.get(f"{nginx.url}/small/s{i:05d}.bin")
        r.raise_for_status()
        fd = os.open(out / f"s{i:05d}.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, r.content)
        os.fsync(fd)
        os.close(fd)

    reference_s = in_parallel(count, concurrency, fetch_write_fsync)
    subprocess.run(["rm", "-rf", str(out)])

    dlipkg_s = timed_uploads(work, nginx, count, concurrency, round_no, None, "this")
    baseline_s = (timed_uploads(work, nginx, count, concurrency, round_no, baseline, "baseline")
                  if baseline else None)
    return reference_s, dlipkg_s, baseline_s


def small_uploads(args):
    base = Path(args.workdir or Path(__file__).resolve().parents[1] / "build" / "bench")
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base))
    (work / "src" / "small").mkdir(parents=True)
    for i in range(args.small):
        (work / "src" / "small" / f"s{i:05d}.bin").write_bytes(os.urandom(10 << 10))
    nginx = Nginx(work / "src", work / "nginx").start()
    ratios, baseline_ratios = [], []
    try:
        for round_no in range(args.rounds):
            reference_s, dlipkg_s, baseline_s = small_round(
                work, nginx, args.small, args.concurrency, round_no, args.baseline)
            ratios.append(reference_s / dlipkg_s)
            line = (f"round {round_no + 1}: fetch+write+fsync {args.small / reference_s:.0f}/s, "
                    f"dlipkg {args.small / dlipkg_s:.0f}/s, ratio {ratios[-1]:.2f}")
            if baseline_s:
                baseline_ratios.append(reference_s / baseline_s)
                line += (f"; baseline {args.small / baseline_s:.0f}/s, "
                         f"ratio {baseline_ratios[-1]:.2f}")
            print(line, flush=True)
    finally:
        nginx.stop()
        subprocess.run(["rm", "-rf", str(work)])
    print(f"{args.small} x 10 KiB sync uploads, new group each, concurrency "
          f"{args.concurrency}: ratio to fetch+write+fsync min / median / max "
          f"{min(ratios):.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f} "
          f"(target >= 0.6: {'met' if statistics.median(ratios) >= 0.6 else 'MISSED'})")
    if baseline_ratios:
        print(f"baseline {args.baseline}: ratio min / median / max {min(baseline_ratios):.2f} / "
              f"{statistics.median(baseline_ratios):.2f} / {max(baseline_ratios):.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=0, help="N small sync uploads instead")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="10MiB,1GiB")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the best is kept")
    parser.add_argument("--workdir", default=None, help="where files go (default: build/bench)")
    parser.add_argument("--baseline", default=None,
                        help="with --small: another dlipkg binary (e.g. main's) measured in "
                             "each round too")
    args = parser.parse_args()
    if args.small:
        return small_uploads(args)

    base = Path(args.workdir or Path(__file__).resolve().parents[1] / "build" / "bench")
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base))
    src = work / "src"
    src.mkdir()
    nginx = Nginx(src, work / "nginx").start()
    server = Dlipkg(work / "data", ["--allow-source", "127.0.0.1", "--max-object-size", "4GiB"])
    server.start()
    print(f"{'size':>8} {'curl -o':>10} {'curl+fsync':>11} {'dlipkg':>10} "
          f"{'ratio':>6} {'ratio(no fsync)':>15} {'peak RSS':>9}")
    failed = False
    try:
        for size_text in args.sizes.split(","):
            size = parse_size(size_text)
            name = f"obj-{size_text}.bin"
            make_file(src / name, size)
            best = None
            for run in range(args.runs):
                curl_only, curl_fsync = curl_copy(f"{nginx.url}/{name}", work / "copy.bin")
                # Each run uploads into a fresh group; deleting the previous one reclaims bytes.
                server.api("DELETE", f"/v2.0/bench/resources/{name}?group=g")
                with RssSampler(server) as rss:
                    started = time.perf_counter()
                    r = server.api("POST", "/v2.0/bench/resources/files",
                                   json={"paths": [f"{nginx.url}/{name}"], "group": "g"},
                                   timeout=600)
                    elapsed = time.perf_counter() - started
                if r.status_code != 200:
                    raise SystemExit(f"upload failed: {r.status_code} {r.text}")
                result = (elapsed, curl_only, curl_fsync, rss.peak_kib)
                if best is None or elapsed < best[0]:
                    best = result
            elapsed, curl_only, curl_fsync, peak = best
            mib = size / (1 << 20)
            ratio = (mib / elapsed) / (mib / curl_fsync)
            ratio_plain = (mib / elapsed) / (mib / curl_only)
            print(f"{size_text:>8} {mib / curl_only:>7.0f} MiB/s {mib / curl_fsync:>7.0f} MiB/s "
                  f"{mib / elapsed:>7.0f} MiB/s {ratio:>6.2f} {ratio_plain:>15.2f} "
                  f"{peak / 1024:>6.1f} MiB")
            failed |= ratio < 0.8 or peak >= 64 * 1024
            (src / name).unlink()
    finally:
        server.stop()
        nginx.stop()
        subprocess.run(["rm", "-rf", str(work)])
    print("targets: ratio >= 0.80 against curl+fsync, peak RSS < 64 MiB:",
          "MISSED" if failed else "met")


if __name__ == "__main__":
    main()
