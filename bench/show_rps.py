#!/usr/bin/python3
"""Show-package requests per second and upload throughput, per deployment.

For each deployment (the embedded default; with --scale-out, also one and two instances on
PostgreSQL + Swift s3api, both started here by scripts/postgres.sh and scripts/swift_s3.sh on
loopback and stopped after), in one run:
  - show: wrk (keep-alive, --connections, --seconds) against GET /resources/{name}?group=g,
    spread over both instances when there are two; reference: nginx serving the same JSON
    body as a static file, measured by the same wrk in the same run;
  - upload: 20 synchronous uploads of a 16 MiB object from nginx, MiB/s.
Installs wrk (Debian) if it is missing.

With --rounds N (N >= 3 for figures to quote), the embedded show is measured N times in rounds
alternating nginx, this build and, with --baseline PATH, another build (e.g. of main), each
printed as min / median / max; the upload figure is then left out. With --postgres the servers
keep their metadata in a PostgreSQL started here (scripts/postgres.sh, loopback, stopped
after; blobs stay in a directory, which a show never reads); --metadata URL uses one of yours.

With --metrics instead: the cost of the /metrics instrumentation on show requests/s. Two
embedded servers, one with --metrics=true and one with --metrics=false, are measured by the same
wrk in alternating rounds (--rounds of each, 5 if not given), beside nginx serving the same body;
prints the median of each, and the cost in percent (target < 5%).

Usage: bench/show_rps.py [--connections 64] [--seconds 5] [--scale-out]
                         [--rounds 3 [--baseline PATH] [--postgres | --metadata URL]]
       bench/show_rps.py --metrics [--rounds 5]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
import harness  # noqa: E402
from harness import Dlipkg, Nginx  # noqa: E402

P = "/v2.0/bench/resources"


def ensure_wrk():
    if shutil.which("wrk"):
        return
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def wrk(urls, connections, seconds):
    """Requests/s over all urls (one wrk per url, run at once, summed)."""
    procs = [subprocess.Popen(["wrk", "-t", "1", "-c", str(max(1, connections // len(urls))),
                               "-d", f"{seconds}s", "--latency", url],
                              stdout=subprocess.PIPE, text=True) for url in urls]
    total, p99 = 0.0, []
    for proc in procs:
        out = proc.communicate()[0]
        total += float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
        if m:
            p99.append(float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)])
        if "Non-2xx" in out:
            raise SystemExit("wrk saw errors:\n" + out)
    return total, max(p99) if p99 else float("nan")


def upload_throughput(servers, nginx_url, name, size):
    started = time.perf_counter()
    for i in range(20):
        server = servers[i % len(servers)]
        r = server.api("POST", P + "/files", json={"paths": [f"{nginx_url}/{name}"],
                                                   "group": f"u{i}"}, timeout=300)
        assert r.status_code == 200, r.text
    return 20 * size / (1 << 20) / (time.perf_counter() - started)


def run_deployment(label, servers, nginx, args, work):
    r = servers[0].api("POST", P + "/pyfiles", json={"paths": [f"{nginx.url}/a.py"],
                                                      "group": "g"})
    assert r.status_code == 200, r.text
    body = servers[0].api("GET", P + "/a.py?group=g").content
    (nginx.root / "show.json").write_bytes(body)
    reference, ref_p99 = wrk([f"{nginx.url}/show.json"], args.connections, args.seconds)
    rps, p99 = wrk([f"{s.url}{P}/a.py?group=g" for s in servers], args.connections, args.seconds)
    mib_s = upload_throughput(servers, nginx.url, "obj16.bin", 16 << 20)
    print(f"{label:<34} show {rps:>8.0f} req/s (p99 {p99:.1f} ms) | nginx same body "
          f"{reference:>8.0f} req/s (p99 {ref_p99:.1f} ms) | ratio {rps / reference:.2f} | "
          f"upload 16 MiB x20: {mib_s:.0f} MiB/s")


def spread(values, fmt="{:.2f}"):
    return " / ".join(fmt.format(v) for v in (min(values), sorted(values)[len(values) // 2],
                                               max(values)))


def compare_show(args, nginx, work, extra):
    """Alternating rounds: nginx, then each binary, show req/s and p99."""
    subjects = [("this build", harness.DLIPKG)]
    if args.baseline:
        subjects.append(("baseline", Path(args.baseline)))
    servers = {}
    for label, binary in subjects:
        harness.DLIPKG = binary  # read by Dlipkg.start
        server = start(work, label.replace(" ", "-"), extra)
        servers[label] = server
        r = server.api("POST", P + "/pyfiles", json={"paths": [f"{nginx.url}/a.py"],
                                                      "group": "g"})
        assert r.status_code == 200, r.text
        (nginx.root / "show.json").write_bytes(server.api("GET", P + "/a.py?group=g").content)
    try:
        ref, figures = [], {label: ([], []) for label, _ in subjects}
        for _ in range(args.rounds):
            ref.append(wrk([f"{nginx.url}/show.json"], args.connections, args.seconds)[0])
            for label, _ in subjects:
                server = servers[label]
                rps, p99 = wrk([f"{server.url}{P}/a.py?group=g"], args.connections, args.seconds)
                figures[label][0].append(rps)
                figures[label][1].append(p99)
        print(f"show, {args.connections} keep-alive connections, {args.rounds} alternating "
              f"rounds (min / median / max)")
        print(f"  nginx same body: {spread(ref, '{:.0f}')} req/s")
        for label, _ in subjects:
            rps, p99 = figures[label]
            ratios = [a / b for a, b in zip(rps, ref)]
            print(f"  {label:<10}: {spread(rps, '{:.0f}')} req/s, p99 {spread(p99, '{:.1f}')} ms,"
                  f" ratio to nginx {spread(ratios)}")
    finally:
        for server in servers.values():
            server.stop()


def metrics_cost(nginx, args, work):
    """Show requests/s with the instrumentation on and off, alternating rounds."""
    servers = {}
    try:
        for mode in ("on", "off"):
            servers[mode] = start(work, f"metrics-{mode}",
                                  ["--metrics", "true" if mode == "on" else "false"])
            r = servers[mode].api("POST", P + "/pyfiles", json={"paths": [f"{nginx.url}/a.py"],
                                                                 "group": "g"})
            assert r.status_code == 200, r.text
        (nginx.root / "show.json").write_bytes(servers["on"].api("GET", P + "/a.py?group=g").content)
        results = {"on": [], "off": [], "nginx": []}
        for i in range(args.rounds):
            order = ("on", "off") if i % 2 == 0 else ("off", "on")
            for mode in order:
                results[mode].append(wrk([f"{servers[mode].url}{P}/a.py?group=g"],
                                         args.connections, args.seconds)[0])
            results["nginx"].append(wrk([f"{nginx.url}/show.json"], args.connections,
                                        args.seconds)[0])
        # The instrumented server really counted: its /metrics saw the show requests.
        scraped = servers["on"].api("GET", "/metrics").text
        assert 'route="/v2.0/{project_id}/resources/{resource_name}"' in scraped, scraped[:2000]
    finally:
        for server in servers.values():
            server.stop()
    median = {mode: sorted(v)[len(v) // 2] for mode, v in results.items()}
    cost = (median["off"] - median["on"]) / median["off"] * 100
    for mode in ("on", "off", "nginx"):
        print(f"show, metrics {mode:<5} median {median[mode]:>8.0f} req/s over {args.rounds} "
              f"rounds: {' '.join(f'{x:.0f}' for x in results[mode])}")
    print(f"instrumentation cost: {cost:+.1f}% of show requests/s (target < 5%); "
          f"nginx same body {median['nginx']:.0f} req/s")


def start_postgres(stops):
    """Starts a throw-away PostgreSQL on loopback; returns its URL. `stops` gets its stop."""
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    # PostgreSQL runs as an unprivileged user, which needs a directory it can reach.
    pg_dir = Path(tempfile.mkdtemp(prefix="dlipkg-bench-pg-"))
    stops.append(lambda: subprocess.run([str(scripts / "postgres.sh"), "stop", str(pg_dir)]))
    stops.append(lambda: subprocess.run(["rm", "-rf", str(pg_dir)]))
    return subprocess.run([str(scripts / "postgres.sh"), "start", str(pg_dir)], check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]


def start_scale_out(work, stops):
    """Starts PostgreSQL and Swift s3api; returns the serve arguments that use them."""
    from s3_util import S3Client
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    url, swift_dir = start_postgres(stops), work / "swift"
    endpoint = subprocess.run([str(scripts / "swift_s3.sh"), "start", str(swift_dir)], check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]
    stops.append(lambda: subprocess.run([str(scripts / "swift_s3.sh"), "stop", str(swift_dir)]))
    S3Client(endpoint).create_bucket("benchblobs")
    stores = work / "stores.json"
    stores.write_text(json.dumps({"stores": [{
        "name": "swift", "endpoint": endpoint, "access_key": "test:tester",
        "secret_key": "testing", "buckets": ["benchblobs"]}]}))
    return ["--metadata", url, "--blobs", "s3://benchblobs/dlipkg", "--object-stores", str(stores)]


def start(work, tag, extra):
    server = Dlipkg(work / f"data-{tag}", ["--allow-source", "127.0.0.1",
                                           "--log-level", "warn", *extra])
    return server.start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--scale-out", action="store_true",
                        help="also PostgreSQL + Swift s3api, one and two instances")
    parser.add_argument("--rounds", type=int, default=0,
                        help="alternating rounds of the show measurement only (with --metrics:"
                        " rounds of each, default 5)")
    parser.add_argument("--baseline", help="another dlipkg binary measured in the same rounds")
    parser.add_argument("--metadata", help="with --rounds: a postgresql:// URL to use")
    parser.add_argument("--postgres", action="store_true",
                        help="with --rounds: metadata in a PostgreSQL started for the run")
    parser.add_argument("--metrics", action="store_true",
                        help="instead: show requests/s with /metrics instrumentation on vs off")
    args = parser.parse_args()
    ensure_wrk()
    base = Path(__file__).resolve().parents[1] / "build" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base))
    (work / "src").mkdir()
    (work / "src" / "a.py").write_text("print('a')\n")
    (work / "src" / "obj16.bin").write_bytes(os.urandom(16 << 20))
    nginx = Nginx(work / "src", work / "nginx").start()
    if args.metrics:
        args.rounds = args.rounds or 5
        try:
            metrics_cost(nginx, args, work)
        finally:
            nginx.stop()
            subprocess.run(["rm", "-rf", str(work)])
        return
    if args.rounds:
        stops = []
        try:
            metadata = start_postgres(stops) if args.postgres else args.metadata
            print(f"metadata: {'PostgreSQL' if metadata else 'SQLite'}")
            compare_show(args, nginx, work, ["--metadata", metadata] if metadata else [])
        finally:
            nginx.stop()
            for stop in stops:
                stop()
            subprocess.run(["rm", "-rf", str(work)])
        return
    deployments = [("embedded (SQLite + directory)", 1, [])]
    stops = []
    try:
        if args.scale_out:
            shared = start_scale_out(work, stops)
            deployments += [("PostgreSQL + Swift, 1 instance", 1, shared),
                            ("PostgreSQL + Swift, 2 instances", 2, shared)]
        for label, count, extra in deployments:
            servers = []
            try:
                for i in range(count):
                    servers.append(start(work, f"{label[:3]}{i}", extra))
                run_deployment(label, servers, nginx, args, work)
            finally:
                for s in servers:
                    s.stop()
    finally:
        nginx.stop()
        for stop in stops:
            stop()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
