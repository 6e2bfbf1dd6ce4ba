#!/usr/bin/python3
"""Direct transfer of dlipkg against plain references, in one run, alternating rounds.

  1. upload: `curl -T` of a local file to PUT /v2.0/bench/resources/{name}/content (streamed,
     hashed, fsynced, committed) against `cp` of the same file to the same disk plus fsync;
     the server's peak RSS is sampled every 20 ms. Targets: ratio >= 0.8, peak RSS < 64 MiB.
     With --baseline, the same upload to another build in the same rounds.
  2. download: `curl -o /dev/null` of the same package through GET /files/... against nginx
     serving the same file. Each round downloads twice: first right after the upload, then
     again. On the directory store both go out with sendfile, since the upload hashed the bytes
     it committed; with --baseline, a build from before that change shows the hashed first
     download. Target (on the repeat): ratio >= 0.8. With --baseline, the
     same download from another build (e.g. main's) in the same rounds.
  3. presigned: 1,000 downloads of a 10 KiB package through a presigned URL, 16 at a time
     (`curl --parallel`, keep-alive), against nginx serving the same file the same way.

Each round runs dlipkg and its reference back to back; the best round of each gives the ratios,
and min / median / max of every measure are printed.
Usage: bench/direct_transfer.py [--size 1GiB] [--rounds 3] [--requests 1000] [--baseline BIN]
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

P = "/v2.0/bench"
from sizes import parse_size  # noqa: E402


def make_file(path, size):
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size // len(chunk)):
            f.write(chunk[:-8] + os.urandom(8))
        f.write(os.urandom(size % len(chunk)))


def timed(cmd):
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def cp_fsync(src, dest):
    started = time.perf_counter()
    subprocess.run(["cp", str(src), str(dest)], check=True)
    fd = os.open(dest, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    elapsed = time.perf_counter() - started
    os.unlink(dest)
    return elapsed


def parallel_get(url, count, connections, workdir):
    config = workdir / "curl.cfg"
    config.write_text("".join(f'url = "{url}"\noutput = "/dev/null"\n' for _ in range(count)))
    return timed(["curl", "-sS", "--fail", "--parallel", "--parallel-max", str(connections),
                  "--parallel-immediate", "-K", str(config)])


def spread(label, seconds, mib):
    """"label  min / median / max MiB/s" of a list of timings."""
    rates = sorted(mib / t for t in seconds)
    return (f"{label:34s} min {rates[0]:7.0f}  median {statistics.median(rates):7.0f}  "
            f"max {rates[-1]:7.0f} MiB/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workdir", default=None, help="where files go (default: build/bench)")
    parser.add_argument("--binary", default=None, help="the dlipkg to measure (build/dlipkg)")
    parser.add_argument("--baseline", default=None,
                        help="another dlipkg binary (e.g. main's) whose /files download is "
                             "measured in the same rounds")
    args = parser.parse_args()

    base = Path(args.workdir or Path(__file__).resolve().parents[1] / "build" / "bench")
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base))
    src = work / "src"
    src.mkdir()
    size = parse_size(args.size)
    big, small = src / "big.bin", src / "small.bin"
    make_file(big, size)
    small.write_bytes(os.urandom(10 << 10))
    nginx = Nginx(src, work / "nginx").start()
    server = Dlipkg(work / "data", ["--max-object-size", "8GiB"], binary=args.binary)
    server.start()
    baseline = None
    if args.baseline:
        baseline = Dlipkg(work / "baseline", ["--max-object-size", "8GiB"], binary=args.baseline)
        baseline.start()
    mib = size / (1 << 20)
    missed = []
    try:
        up, cp_ref, peak, first, repeat, old, ngx_down, signed, ngx_small = ([], [], 0, [], [], [],
                                                                            [], [], [])
        old_up = []
        put_url = f"{server.url}{P}/resources/big.bin/content?kind=file&group=g"
        if baseline:
            subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-T", str(big),
                            f"{baseline.url}{P}/resources/big.bin/content?kind=file&group=g"],
                           check=True)
        for _ in range(args.rounds):
            cp_ref.append(cp_fsync(big, work / "copy.bin"))
            server.api("DELETE", f"{P}/resources/big.bin?group=g")
            with RssSampler(server) as rss:
                up.append(timed(["curl", "-sS", "--fail", "-T", str(big), put_url]))
            peak = max(peak, rss.peak_kib)
            if baseline:
                baseline.api("DELETE", f"{P}/resources/big.bin?group=g")
                old_up.append(timed(["curl", "-sS", "--fail", "-o", "/dev/null", "-T", str(big),
                                     f"{baseline.url}{P}/resources/big.bin/content?kind=file"
                                     "&group=g"]))
            # The first download right after the upload (trusted from the upload's own hashing on
            # the directory store), and a repeat.
            first.append(timed(["curl", "-sS", "--fail", "-o", "/dev/null",
                                f"{server.url}{P}/files/g/big.bin"]))
            repeat.append(timed(["curl", "-sS", "--fail", "-o", "/dev/null",
                                 f"{server.url}{P}/files/g/big.bin"]))
            if baseline:
                old.append(timed(["curl", "-sS", "--fail", "-o", "/dev/null",
                                  f"{baseline.url}{P}/files/g/big.bin"]))
            ngx_down.append(timed(["curl", "-sS", "--fail", "-o", "/dev/null",
                                   f"{nginx.url}/big.bin"]))
        r = server.api("PUT", f"{P}/resources/small.bin/content?kind=file", data=small.read_bytes())
        assert r.status_code == 200, r.text
        r = server.api("POST", f"{P}/resources/urls", json={"resource_names": ["small.bin"]})
        url = r.json()["urls"][0]["url"]
        old_signed, old_url = [], None
        if baseline:
            r = baseline.api("PUT", f"{P}/resources/small.bin/content?kind=file",
                             data=small.read_bytes())
            assert r.status_code == 200, r.text
            r = baseline.api("POST", f"{P}/resources/urls", json={"resource_names": ["small.bin"]})
            old_url = r.json()["urls"][0]["url"]
        for _ in range(args.rounds):
            signed.append(parallel_get(url, args.requests, args.connections, work))
            if old_url:
                old_signed.append(parallel_get(old_url, args.requests, args.connections, work))
            ngx_small.append(parallel_get(f"{nginx.url}/small.bin", args.requests,
                                          args.connections, work))

        up_rate, cp_rate = mib / min(up), mib / min(cp_ref)
        first_rate, repeat_rate = mib / min(first), mib / min(repeat)
        ngx_rate = mib / min(ngx_down)
        rps, ngx_rps = args.requests / min(signed), args.requests / min(ngx_small)
        print(f"{args.rounds} alternating rounds, {args.size}:")
        print(spread("  upload: dlipkg PUT", up, mib))
        if baseline:
            print(spread("  upload: baseline binary", old_up, mib))
        print(spread("  upload: cp+fsync", cp_ref, mib))
        print(spread("  download: dlipkg first after upload", first, mib))
        print(spread("  download: dlipkg repeat (verified)", repeat, mib))
        if baseline:
            print(spread("  download: baseline binary", old, mib))
        print(spread("  download: nginx", ngx_down, mib))
        print(f"upload {args.size}:   dlipkg PUT {up_rate:7.0f} MiB/s | cp+fsync {cp_rate:7.0f} "
              f"MiB/s | ratio {up_rate / cp_rate:.2f} (target >= 0.8) | server peak RSS "
              f"{peak / 1024:.1f} MiB (target < 64)")
        print(f"download {args.size}: dlipkg /files repeat {repeat_rate:7.0f} MiB/s | nginx "
              f"{ngx_rate:7.0f} MiB/s | ratio {repeat_rate / ngx_rate:.2f} (target >= 0.8)")
        print(f"download {args.size}: dlipkg /files first {first_rate:7.0f} MiB/s | ratio "
              f"{first_rate / ngx_rate:.2f} (target >= 0.8)")
        if baseline:
            print(f"upload {args.size}:   baseline PUT {mib / min(old_up):7.0f} MiB/s | ratio "
                  f"{mib / min(old_up) / cp_rate:.2f} (before)")
            old_rate = mib / min(old)
            print(f"download {args.size}: baseline /files {old_rate:7.0f} MiB/s | ratio "
                  f"{old_rate / ngx_rate:.2f} (before)")
        print(f"presigned {args.requests} x 10 KiB at {args.connections} connections: dlipkg "
              f"{rps:7.0f} req/s | nginx {ngx_rps:7.0f} req/s | ratio {rps / ngx_rps:.2f}")
        if old_signed:
            old_rps = args.requests / min(old_signed)
            print(f"presigned: baseline {old_rps:7.0f} req/s | ratio {old_rps / ngx_rps:.2f} "
                  "(before)")
        if up_rate / cp_rate < 0.8:
            missed.append("upload ratio")
        if peak >= 64 * 1024:
            missed.append("peak RSS")
        if repeat_rate / ngx_rate < 0.8:
            missed.append("download ratio")
    finally:
        server.stop()
        if baseline:
            baseline.stop()
        nginx.stop()
        subprocess.run(["rm", "-rf", str(work)])
    print("targets:", "MISSED " + ", ".join(missed) if missed else "met")


if __name__ == "__main__":
    main()
