#!/usr/bin/python3
"""Listing cost against project size: pages, the whole listing, and memory.

For 1,000 and 100,000 groups (one tagged 10-byte package each, written straight into a stopped
server's SQLite file: a bulk path for this benchmark only), in one run:
  - page: GET /resources?limit=100 at three offsets (start, middle, end), median of 20 each;
    the figure is the 100,000-group time over the 1,000-group time at the same offset; and the
    same pages reached by the keyset cursor (not for --baseline, which has none);
  - name= deep: the first page of name=S where S matches only one of the last 20 groups (20
    different S, so no request reuses what an earlier one counted), median, same ratio;
  - whole: the unpaginated listing (about 51 MB of JSON at 100,000 groups) against nginx
    serving the same body from a file; and the server's RSS growth while it answers;
  - memory: RSS after 50 page requests (100 rows, spread offsets), then after 3 whole
    listings and 2 s idle, each above the idle server's RSS.
Every measure runs in >= 3 rounds that alternate between the servers measured (this build and,
with --baseline, another build, e.g. of main; with --preload, this build under another
allocator), printing min / median / max.

With --postgres the servers keep their metadata in a PostgreSQL started here
(scripts/postgres.sh, loopback, stopped after), each server in a schema of its own, filled by
psql with the same rows and then VACUUM ANALYZEd (what autovacuum does after a bulk load).

With --whole-only only the unpaginated listing (and the RSS while it is answered) is measured.

Usage: bench/list_scale.py [--rounds 3] [--sizes 1000,100000] [--baseline PATH]
                           [--preload NAME=LIB ...] [--postgres] [--whole-only]
"""
import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
import harness  # noqa: E402
from harness import Dlipkg, Nginx, RssSampler  # noqa: E402

PROJECT = "bench"
P = f"/v2.0/{PROJECT}/resources"
ROOT = Path(__file__).resolve().parents[1]


def fill(db_file, groups):
    """Writes `groups` groups of one package (tag team=x) into a stopped server's database."""
    now = int(time.time() * 1000)
    sha = "ab" * 32
    db = sqlite3.connect(db_file)
    with db:
        db.executemany(
            "INSERT INTO groups (project, name, owner, description, create_time, update_time) "
            "VALUES (?, ?, 'bench', '', ?, ?)",
            ((PROJECT, f"g{i:06d}", now, now) for i in range(groups)))
        db.executemany(
            "INSERT INTO packages (project, group_name, name, position, kind, status, sha256, "
            "size, underlying_name, owner, create_time, update_time, is_async, status_reason) "
            "VALUES (?, ?, 'a.py', 0, 'pyFile', 'READY', ?, 10, ?, 'bench', ?, ?, 0, '')",
            ((PROJECT, f"g{i:06d}", sha, sha[:32] + "_a.py", now, now) for i in range(groups)))
        db.executemany(
            "INSERT INTO package_tags (project, group_name, name, position, key, value) "
            "VALUES (?, ?, 'a.py', 0, 'team', 'x')",
            ((PROJECT, f"g{i:06d}") for i in range(groups)))
    db.close()


def fill_postgres(url, schema, groups):
    """The rows of fill(), written by psql into `schema` of a PostgreSQL database."""
    script = f"""
SET search_path TO {schema};
BEGIN;
INSERT INTO groups (project, name, owner, description, create_time, update_time)
  SELECT '{PROJECT}', 'g' || lpad(i::text, 6, '0'), 'bench', '', 0, 0
  FROM generate_series(0, {groups - 1}) i;
INSERT INTO packages (project, group_name, name, position, kind, status, sha256, size,
                      underlying_name, owner, create_time, update_time, is_async, status_reason)
  SELECT '{PROJECT}', 'g' || lpad(i::text, 6, '0'), 'a.py', 0, 'pyFile', 'READY',
         repeat('ab', 32), 10, repeat('ab', 16) || '_a.py', 'bench', 0, 0, 0, ''
  FROM generate_series(0, {groups - 1}) i;
INSERT INTO package_tags (project, group_name, name, position, key, value)
  SELECT '{PROJECT}', 'g' || lpad(i::text, 6, '0'), 'a.py', 0, 'team', 'x'
  FROM generate_series(0, {groups - 1}) i;
COMMIT;
VACUUM ANALYZE groups, packages, package_tags;
"""
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input=script, text=True,
                   check=True, stdout=subprocess.DEVNULL)


def with_search_path(url, schema):
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"


class Subject:
    """One server to measure: a binary, an environment, its own data directory (and, with
    PostgreSQL, its own schema)."""

    def __init__(self, label, binary, env, work, groups, postgres=None):
        self.label, self.binary, self.env = label, Path(binary), env
        self.data = work / f"data-{label}-{groups}"
        self.server = None
        self.args = ["--log-level", "warn"]
        schema = "bench_" + "".join(c if c.isalnum() else "_" for c in f"{label}_{groups}")
        if postgres:
            subprocess.run(["psql", "-q", postgres, "-c", f"CREATE SCHEMA {schema}"], check=True,
                           stdout=subprocess.DEVNULL)
            self.args += ["--metadata", with_search_path(postgres, schema)]
        self.start()  # creates the schema of this binary's version
        self.server.stop()
        if postgres:
            fill_postgres(postgres, schema, groups)
        else:
            fill(self.data / "metadata.db", groups)

    def start(self):
        harness.DLIPKG = self.binary  # read by Dlipkg.start
        self.server = Dlipkg(self.data, self.args, env=self.env).start()
        self.session = requests.Session()
        return self

    def get(self, path):
        r = self.session.get(self.server.url + path, timeout=600)
        if r.status_code != 200:
            raise SystemExit(f"{self.label}: {path}: {r.status_code} {r.text[:200]}")
        return r

    def stop(self):
        if self.server:
            self.server.stop()


def start_postgres(stops):
    """Starts a throw-away PostgreSQL on loopback; returns its URL. `stops` gets its stop."""
    # PostgreSQL runs as an unprivileged user, which needs a directory it can reach.
    pg_dir = Path(tempfile.mkdtemp(prefix="dlipkg-bench-pg-"))
    stops.append(lambda: subprocess.run([str(ROOT / "scripts" / "postgres.sh"), "stop",
                                         str(pg_dir)]))
    stops.append(lambda: subprocess.run(["rm", "-rf", str(pg_dir)]))
    return subprocess.run([str(ROOT / "scripts" / "postgres.sh"), "start", str(pg_dir)],
                          check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]


def cursor_after(index):
    """The next_cursor a page ending with group `index` gives (hex of "group NUL name")."""
    return (f"g{index:06d}" + "\0" + "a.py").encode().hex()


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def spread(values):
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--baseline", help="another dlipkg binary to measure beside this build")
    parser.add_argument("--preload", action="append", default=[],
                        help="NAME=LIB: also this build with LD_PRELOAD=LIB")
    parser.add_argument("--postgres", action="store_true",
                        help="metadata in a PostgreSQL started for the run")
    parser.add_argument("--whole-only", action="store_true",
                        help="measure only the unpaginated listing")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    base = ROOT / "build" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base))
    kinds = [("this", ROOT / "build" / "dlipkg", None)]
    if args.baseline:
        kinds.append(("baseline", args.baseline, None))
    for item in args.preload:
        name, lib = item.split("=", 1)
        kinds.append((f"this+{name}", ROOT / "build" / "dlipkg", {"LD_PRELOAD": lib}))
    (work / "www").mkdir()
    nginx = Nginx(work / "www", work / "nginx").start()
    subjects, stops = {}, []
    try:
        postgres = start_postgres(stops) if args.postgres else None
        print(f"metadata: {'PostgreSQL' if postgres else 'SQLite'}")
        for groups in sizes:
            for label, binary, env in kinds:
                subjects[(label, groups)] = Subject(label, binary, env, work, groups, postgres)
        page = {key: {o: [] for o in range(3)} for key in subjects}
        cursor_page = {key: {o: [] for o in range(3)} for key in subjects}
        name_page = {key: [] for key in subjects}
        whole, whole_ref, growth, after50, after_whole = ({} for _ in range(5))
        for key in subjects:
            whole[key], whole_ref[key], growth[key] = [], [], []
            after50[key], after_whole[key] = [], []
        def report(rounds_done):
            print(f"\nlist_scale: {rounds_done} alternating rounds (so far), min / median / max\n")
            for label, _, _ in kinds:
                print(f"== {label}")
                small, large = min(sizes), max(sizes)
                if args.whole_only:
                    small = large  # no page figures to print
                for groups in sizes if not args.whole_only else []:
                    key = (label, groups)
                    for i, name in enumerate(["start", "middle", "end"]):
                        print(f"  page limit=100 at {name:<6} {groups:>7} groups: "
                              f"{spread(page[key][i])} ms")
                if small != large:
                    for i, name in enumerate(["start", "middle", "end"]):
                        ratios = [b / a for a, b in zip(page[(label, small)][i],
                                                        page[(label, large)][i])]
                        print(f"  page at {name}: {large} vs {small} groups: {spread(ratios)} x "
                              f"(target <= 1.5)")
                    ratios = [b / a for a, b in zip(name_page[(label, small)],
                                                    name_page[(label, large)])]
                    print(f"  name= first page, one match among the last groups: {large} groups "
                          f"{spread(name_page[(label, large)])} ms, vs {small} groups: "
                          f"{spread(ratios)} x (target <= 1.5)")
                    if label != "baseline":
                        for i, name in enumerate(["start", "middle", "end"]):
                            ratios = [b / a for a, b in zip(cursor_page[(label, small)][i],
                                                            cursor_page[(label, large)][i])]
                            print(f"  cursor page at {name}: {large} groups "
                                  f"{spread(cursor_page[(label, large)][i])} ms, vs {small} groups: "
                                  f"{spread(ratios)} x (target <= 1.5)")
                for groups in sizes:
                    key = (label, groups)
                    ratios = [a / b for a, b in zip(whole[key], whole_ref[key])]
                    print(f"  whole list {groups:>7} groups: {spread(whole[key])} ms | nginx same "
                          f"body {spread(whole_ref[key])} ms | ratio {spread(ratios)} x "
                          f"(target <= 5) | RSS growth while answering {spread(growth[key])} MiB "
                          f"(target < 32)")
                    if after50[key]:
                        print(f"  RSS above idle after 50 pages: {spread(after50[key])} MiB; "
                              f"2 s after 3 whole lists: {spread(after_whole[key])} MiB (target < 64)")
        for rnd in range(args.rounds):
            for key, subject in subjects.items():
                label, groups = key
                subject.start()
                try:
                    idle = subject.server.rss_kib()
                    offsets = [] if args.whole_only else [0, groups // 2, max(0, groups - 100)]
                    for i, offset in enumerate(offsets):
                        page[key][i].append(timed(
                            lambda: subject.get(f"{P}?limit=100&offset={offset}"), 20) * 1000)
                        if label != "baseline":
                            at = f"&cursor={cursor_after(offset - 1)}" if offset else ""
                            cursor_page[key][i].append(timed(
                                lambda: subject.get(f"{P}?limit=100{at}"), 20) * 1000)
                    needles = iter(f"g{groups - 1 - k:06d}" for k in range(20))
                    if not args.whole_only:
                        name_page[key].append(timed(
                            lambda: subject.get(f"{P}?limit=100&name={next(needles)}"), 20) * 1000)
                    if groups >= 10000 and not args.whole_only:
                        for i in range(50):
                            subject.get(f"{P}?limit=100&offset={(i * 7919) % groups}")
                        after50[key].append((subject.server.rss_kib() - idle) / 1024)
                    body = subject.get(P).content
                    (work / "www" / "whole.json").write_bytes(body)
                    with RssSampler(subject.server) as sampler:
                        t = timed(lambda: subject.get(P), 3)
                    growth[key].append((sampler.peak_kib - idle) / 1024)
                    whole[key].append(t * 1000)
                    ref = timed(lambda: requests.get(nginx.url + "/whole.json", timeout=600), 3)
                    whole_ref[key].append(ref * 1000)
                    time.sleep(2)  # what the allocator gives back once the answers are done
                    after_whole[key].append((subject.server.rss_kib() - idle) / 1024)
                    print(f"round {rnd + 1}: {label} {groups} groups done "
                          f"(whole {len(body) / 1e6:.1f} MB)", file=sys.stderr)
                finally:
                    subject.stop()
            report(rnd + 1)  # printed as it goes: a long run that is cut off still tells
    finally:
        for subject in subjects.values():
            subject.stop()
        nginx.stop()
        for stop in stops:
            stop()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
