#!/usr/bin/python3
"""`dlipkg push` of a local file against `curl -T` and `cp` + fsync, in one run, same disk.

One dlipkg server (no credentials, loopback, embedded store) and one file of random bytes
(default 1 GiB). Rounds alternate, so a slow moment of the machine hits all three alike:
  - dlipkg: `dlipkg push --group bench FILE` (streams it to PUT /resources/{name}/content,
    hashing it on the way, then compares the server's SHA-256); its peak RSS is sampled every
    20 ms; with --baseline, the same push by another build (e.g. main's) in the same rounds;
  - curl: `curl -T FILE` to the same route with the same X-Content-Sha256 header, the hash
    computed beforehand and not timed (the reference for the CLI's overhead);
  - `openssl dgst -sha256` then `curl -T`: two passes (hash, then send), timed whole;
  - cp + fsync of the file to the server's data disk (the reference for a local copy).
Prints min / median / max of each, the ratios of the best rounds and the client's peak RSS.
Targets: dlipkg/curl >= 0.95 (time ratio curl/dlipkg), client peak RSS < 32 MiB.

Usage: bench/client_push.py [--size 1GiB] [--rounds 3] [--baseline BINARY]
"""
import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from harness import DLIPKG, Dlipkg  # noqa: E402

from sizes import parse_size  # noqa: E402


def make_file(path, size):
    digest = hashlib.sha256()
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            part = (chunk[:-8] + os.urandom(8))[: size - written]
            digest.update(part)
            f.write(part)
            written += len(part)
    return digest.hexdigest()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):  # the kernel's own peak: nothing is missed
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed_push(env, path, binary=DLIPKG):
    started = time.perf_counter()
    proc = subprocess.Popen([str(binary), "push", "-q", "--group", "bench", str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, rss_kib(proc.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"dlipkg push failed: {err.decode()}")
    return elapsed, peak


def timed_curl(server, path, sha):
    url = f"{server.url}/v2.0/bench/resources/{path.name}/content?kind=file&group=bench"
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-T", str(path),
                    "-H", f"X-Content-Sha256: {sha}", "-H", "Expect:", url], check=True)
    return time.perf_counter() - started


def timed_hash_then_curl(server, path):
    """What a careful script does: hash the file, then send it with the hash (the same two
    passes as dlipkg push)."""
    started = time.perf_counter()
    sha = subprocess.run(["openssl", "dgst", "-sha256", "-r", str(path)], check=True,
                         capture_output=True, text=True).stdout.split()[0]
    url = f"{server.url}/v2.0/bench/resources/{path.name}/content?kind=file&group=bench"
    subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-T", str(path),
                    "-H", f"X-Content-Sha256: {sha}", "-H", "Expect:", url], check=True)
    return time.perf_counter() - started


def timed_cp(path, dest_dir):
    dest = dest_dir / "copy.bin"
    started = time.perf_counter()
    shutil.copyfile(path, dest)
    fd = os.open(dest, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    elapsed = time.perf_counter() - started
    dest.unlink()
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", default=None, help="default: build/bench")
    parser.add_argument("--baseline", default=None,
                        help="another dlipkg binary (e.g. main's) whose push is timed in the "
                             "same rounds, against the same server")
    args = parser.parse_args()
    size = parse_size(args.size)
    base = Path(args.workdir or Path(__file__).resolve().parents[1] / "build" / "bench")
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base, prefix="client-push-"))
    server = Dlipkg(work / "data", ["--max-object-size", str(2 * size)])
    try:
        source = work / "payload.bin"
        sha = make_file(source, size)
        server.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DLIPKG_")}
        env.update(HOME=str(work), DLIPKG_ENDPOINT=server.url, DLIPKG_PROJECT="bench")
        times = {"dlipkg": [], "curl": [], "hash+curl": [], "cp": [], "baseline": []}
        peak_rss = 0
        for round_number in range(1, args.rounds + 1):
            push_s, rss = timed_push(env, source)
            curl_s = timed_curl(server, source, sha)
            hash_curl_s = timed_hash_then_curl(server, source)
            cp_s = timed_cp(source, work / "data")
            times["dlipkg"].append(push_s)
            times["curl"].append(curl_s)
            times["hash+curl"].append(hash_curl_s)
            times["cp"].append(cp_s)
            line = (f"round {round_number}: dlipkg push {push_s:.2f} s, curl -T {curl_s:.2f} s, "
                    f"openssl+curl {hash_curl_s:.2f} s, cp+fsync {cp_s:.2f} s")
            if args.baseline:
                base_s, _ = timed_push(env, source, args.baseline)
                times["baseline"].append(base_s)
                line += f", baseline push {base_s:.2f} s"
            peak_rss = max(peak_rss, rss)
            print(f"{line}, client peak RSS {rss / 1024:.1f} MiB", flush=True)
        mib = size / (1 << 20)
        best = {name: min(t) for name, t in times.items() if t}
        print(f"\n{args.size} local file, {args.rounds} alternating rounds "
              "(min / median / max seconds):")
        labels = [("dlipkg", "dlipkg push"), ("curl", "curl -T (same route)"),
                  ("hash+curl", "openssl sha256 + curl"), ("cp", "cp + fsync")]
        if args.baseline:
            labels.append(("baseline", "baseline dlipkg push"))
        for name, label in labels:
            t = sorted(times[name])
            print(f"  {label:22s} {t[0]:6.2f} / {statistics.median(t):6.2f} / {t[-1]:6.2f} s"
                  f"  best {mib / best[name]:7.1f} MiB/s")
        print(f"  dlipkg push / curl -T  {best['curl'] / best['dlipkg']:.2f}  (target >= 0.95; "
              f"median {statistics.median(times['curl']) / statistics.median(times['dlipkg']):.2f})")
        if args.baseline:
            print(f"  baseline push / curl -T {best['curl'] / best['baseline']:.2f}  (before)")
        print(f"  dlipkg push / (openssl sha256 + curl -T) "
              f"{best['hash+curl'] / best['dlipkg']:.2f}  (report)")
        print(f"  dlipkg push / cp+fsync {best['cp'] / best['dlipkg']:.2f}  (report)")
        print(f"  client peak RSS        {peak_rss / 1024:.1f} MiB  (target < 32 MiB)")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
