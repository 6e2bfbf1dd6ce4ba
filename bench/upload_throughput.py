#!/usr/bin/python3
"""Upload throughput and memory of dlipkg against `curl -o`, in one run, same disk.

For each size (default 10 MiB and 1 GiB): nginx on loopback serves a file of random bytes;
  - reference: `curl -o` copies it to the data disk, then the copy is fsynced (dlipkg fsyncs
    before it answers READY, so the fair reference includes it; curl alone is printed too);
  - dlipkg: POST /v2.0/bench/resources/files with that URL, timed from request to answer;
    the server's peak RSS is sampled every 20 ms during the upload.
Prints both throughputs, their ratio and the peak RSS. Targets: ratio >= 0.8, RSS < 64 MiB.

Usage: bench/upload_throughput.py [--sizes 10MiB,1GiB] [--runs 3]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from harness import Dlipkg, Nginx, RssSampler  # noqa: E402

from sizes import parse_size  # noqa: E402


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10MiB,1GiB")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the best is kept")
    parser.add_argument("--workdir", default=None, help="where files go (default: build/bench)")
    args = parser.parse_args()

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
