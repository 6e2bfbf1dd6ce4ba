"""Issue 6: several instances on one PostgreSQL (--metadata postgresql://...) and one bucket
(--blobs s3://... on Swift s3api), each with a data directory of its own, so they share nothing
else. Each test gets a schema of its own in the database of $DLIPKG_TEST_POSTGRES_URL
(scripts/test.sh starts one with scripts/postgres.sh; without it these tests fail, unless
DLIPKG_TEST_SKIP_POSTGRES=1) and a bucket of its own.
"""
import concurrent.futures
import json
import threading
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import sha256
from harness import wait_until

P = "/v2.0/p1/resources"
REPO = Path(__file__).resolve().parents[2]
LEASE_S = 3
SLOW_BYTES = 30 * 1024  # nginx serves /slow/ at 10 KiB/s: about 3 s per object


def psql(url, sql):
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def cluster(action):
    """scripts/postgres.sh stop|start on the test cluster."""
    subprocess.run([str(REPO / "scripts/postgres.sh"), action,
                    os.environ["DLIPKG_TEST_POSTGRES_DIR"]], check=True, capture_output=True)


@pytest.fixture
def metadata_url():
    if os.environ.get("DLIPKG_TEST_SKIP_POSTGRES", "0") not in ("", "0"):
        pytest.skip("DLIPKG_TEST_SKIP_POSTGRES is set")
    url = os.environ.get("DLIPKG_TEST_POSTGRES_URL", "")
    assert url, ("DLIPKG_TEST_POSTGRES_URL is not set: run scripts/test.sh, or "
                 "scripts/postgres.sh start DIR and export its URL")
    schema = "it_" + uuid.uuid4().hex[:12]
    psql(url, f"CREATE SCHEMA {schema}")
    yield url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    try:
        psql(url, f"DROP SCHEMA {schema} CASCADE")
    except subprocess.CalledProcessError:
        pass


@pytest.fixture
def shared(metadata_url, swift, tmp_path):
    """serve arguments for the shared stores: this test's schema and a fresh bucket."""
    bucket = "b" + uuid.uuid4().hex[:12]
    swift.create_bucket(bucket)
    stores = tmp_path / "stores.json"
    stores.write_text(json.dumps({"stores": [{
        "name": "swift", "endpoint": swift.endpoint, "access_key": "test:tester",
        "secret_key": "testing", "buckets": [bucket]}]}))
    return ["--metadata", metadata_url, "--blobs", f"s3://{bucket}/dlipkg",
            "--object-stores", str(stores)]


def slow_sources(sources, prefix, count):
    """Objects that take nginx about 3 s each to send: name -> bytes."""
    root, _ = sources
    made = {}
    for i in range(count):
        name = f"{prefix}{i}.bin"
        made[name] = os.urandom(SLOW_BYTES)
        (root / "slow" / name).write_bytes(made[name])
    return made


def upload_async(server, nginx, paths, group="g1"):
    return server.api("POST", P, json={"paths": [f"{nginx.url}/{p}" for p in paths],
                                       "kind": "file", "group": group, "is_async": True})


def show(server, name, group="g1"):
    return server.api("GET", f"{P}/{name}?group={group}")


def wait_settled(server, names, group="g1", timeout=30):
    """Waits until no package of `names` is UPLOADING; returns name -> detail."""
    deadline = time.time() + timeout
    while True:
        details = {n: show(server, n, group).json() for n in names}
        if all(d.get("status") not in (None, "UPLOADING") for d in details.values()):
            return details
        assert time.time() < deadline, f"still uploading after {timeout} s: {details}"
        time.sleep(0.1)


def jobs_leased(url):
    return int(psql(url, "SELECT COUNT(*) FROM jobs WHERE lease_owner <> ''"))


def test_uploads_through_either_instance_are_visible_through_both(start_server, nginx, sources,
                                                                  shared, tmp_path):
    a = start_server(*shared, data_dir=tmp_path / "a")
    b = start_server(*shared, data_dir=tmp_path / "b")
    files = sources[1]

    r = a.api("POST", f"{P}/pyfiles",
              json={"paths": [f"{nginx.url}/a.py", f"{nginx.url}/b.py"], "group": "g1"})
    assert r.status_code == 200, r.text
    for server in (a, b):
        [group] = server.api("GET", P).json()["groups"]
        assert group["group_name"] == "g1" and group["resources"] == ["a.py", "b.py"]
    assert b.api("GET", f"{P}/a.py/content?group=g1").content == files["a.py"]

    r = upload_async(b, nginx, ["c.py"])
    assert r.status_code == 200, r.text
    detail = wait_settled(a, ["c.py"])["c.py"]
    assert detail["status"] == "READY" and detail["sha256"] == sha256(files["c.py"])

    assert a.api("DELETE", f"{P}/b.py?group=g1").status_code == 200
    assert show(b, "b.py").status_code == 404
    assert b.api("GET", P).json()["groups"][0]["resources"] == ["a.py", "c.py"]


def test_concurrent_uploads_spread_over_two_instances_are_all_kept(start_server, nginx, sources,
                                                                   shared, metadata_url, tmp_path):
    servers = [start_server(*shared, data_dir=tmp_path / f"i{i}") for i in range(2)]
    files = sources[1]
    count = 200

    def upload(i):
        name = f"m{i % 30:02d}.py"
        r = upload_async(servers[i % 2], nginx, [name], group=f"g{i:03d}")
        return r.status_code, r.text

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(upload, range(count)))
    assert [code for code, _ in answers] == [200] * count, [t for c, t in answers if c != 200][:3]

    deadline = time.time() + 60
    while True:
        groups = servers[0].api("GET", P).json()["groups"]
        if len(groups) == count and all(g["status"] != "UPLOADING" for g in groups):
            break
        assert time.time() < deadline, "async uploads did not settle"
        time.sleep(0.2)
    for g in groups:
        i = int(g["group_name"][1:])
        detail = show(servers[1], f"m{i % 30:02d}.py", g["group_name"]).json()
        assert detail["status"] == "READY", detail
        assert detail["sha256"] == sha256(files[f"m{i % 30:02d}.py"])
    assert int(psql(metadata_url, "SELECT COUNT(*) FROM jobs")) == 0


def test_an_instance_starting_beside_a_live_one_takes_none_of_its_work(start_server, nginx,
                                                                        sources, shared,
                                                                        metadata_url, tmp_path):
    """Issue 12: on shared stores a second instance's start-up neither releases the first one's
    leases nor deletes its temporaries: a sync and an async upload in flight on the first both
    end READY, the job fetched once, by the first instance."""
    a = start_server(*shared, data_dir=tmp_path / "a")
    slow = slow_sources(sources, "beside", 2)
    names = list(slow)
    assert upload_async(a, nginx, [f"slow/{names[0]}"]).status_code == 200
    deadline = time.time() + 10
    while jobs_leased(metadata_url) < 1:  # a is fetching it
        assert time.time() < deadline, "instance a did not claim the job"
        time.sleep(0.05)
    owner = psql(metadata_url, "SELECT lease_owner FROM jobs")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        sync = pool.submit(a.api, "POST", P, json={
            "paths": [f"{nginx.url}/slow/{names[1]}"], "kind": "file", "group": "g2"})
        wait_until(lambda: "job started" in a.logs() and sync.running(), "both uploads to run")
        b = start_server(*shared, data_dir=tmp_path / "b")
        # b sweeps after its port is bound and before it serves (its "listening" line).
        wait_until(lambda: "start-up sweep left to the collector" in b.logs(), "b's start-up")
        # b is serving now, and a's job is still a's.
        assert b.api("GET", "/readyz").status_code == 200
        assert psql(metadata_url, "SELECT lease_owner FROM jobs") == owner
        r = sync.result(timeout=60)
        assert r.status_code == 200, r.text
    detail = wait_settled(b, [names[0]])[names[0]]
    assert detail["status"] == "READY" and detail["sha256"] == sha256(slow[names[0]]), detail
    assert b.api("GET", f"{P}/{names[1]}/content?group=g2").content == slow[names[1]]
    assert len(re.findall(r"job started job=", a.logs())) == 1
    assert "job started job=" not in b.logs()


def test_kill9_of_one_instance_its_jobs_finish_on_the_other(start_server, nginx, sources,
                                                            shared, metadata_url, tmp_path):
    lease = ["--job-lease", str(LEASE_S)]
    a = start_server(*shared, "--workers", "4", *lease, data_dir=tmp_path / "a")
    slow = slow_sources(sources, "kill", 4)

    assert upload_async(a, nginx, [f"slow/{n}" for n in slow]).status_code == 200
    deadline = time.time() + 10
    while jobs_leased(metadata_url) < len(slow):  # a is fetching all of them
        assert time.time() < deadline, "instance a did not claim the jobs"
        time.sleep(0.05)
    b = start_server(*shared, *lease, data_dir=tmp_path / "b")
    a.kill()
    killed_at = time.time()

    details = wait_settled(b, list(slow), timeout=30)
    # Taken over once a's leases ran out, then fetched again (about 3 s each, 4 workers).
    assert time.time() - killed_at < LEASE_S + 3 + 5
    for name, data_bytes in slow.items():
        assert details[name]["status"] == "READY", details[name]
        assert details[name]["sha256"] == sha256(data_bytes)
    assert int(psql(metadata_url, "SELECT COUNT(*) FROM jobs")) == 0


def test_group_replaced_through_one_instance_is_never_seen_mixed_through_the_other(
        start_server, nginx, shared, tmp_path):
    a = start_server(*shared, data_dir=tmp_path / "a")
    b = start_server(*shared, data_dir=tmp_path / "b")
    sets = [["a.py", "b.py"], ["c.py", "d.py", "m00.py"], ["m01.py"]]
    done = threading.Event()
    seen, bad = [], []

    def replace():
        try:
            for i in range(30):
                r = a.api("POST", f"{P}/pyfiles", json={
                    "paths": [f"{nginx.url}/{n}" for n in sets[i % 3]], "group": "swap"})
                assert r.status_code == 200, r.text
        finally:
            done.set()

    writer = threading.Thread(target=replace)
    writer.start()
    while not done.is_set():
        for g in b.api("GET", P).json()["groups"]:
            seen.append(g["resources"])
            if g["resources"] not in sets or len(g["details"]) != len(g["resources"]):
                bad.append(g["resources"])
    writer.join()
    assert not bad, bad[:3]
    assert len({tuple(r) for r in seen}) >= 2, "the lists never saw a replacement happen"


def test_postgres_restart_fails_requests_cleanly_and_loses_no_job(start_server, nginx, sources,
                                                                  metadata_url, tmp_path):
    assert os.environ.get("DLIPKG_TEST_POSTGRES_DIR"), "DLIPKG_TEST_POSTGRES_DIR is not set"
    server = start_server("--metadata", metadata_url, "--job-lease", str(LEASE_S))
    slow = slow_sources(sources, "restart", 3)
    assert server.api("POST", f"{P}/pyfiles",
                      json={"paths": [f"{nginx.url}/a.py"], "group": "g0"}).status_code == 200
    assert upload_async(server, nginx, [f"slow/{n}" for n in slow]).status_code == 200

    cluster("stop")
    try:
        for r in (server.api("GET", P),
                  server.api("POST", f"{P}/pyfiles",
                             json={"paths": [f"{nginx.url}/b.py"], "group": "g0"}),
                  upload_async(server, nginx, ["c.py"], group="g2")):
            assert r.status_code == 500, r.text
            assert r.json()["error_code"] == "DLI.0999", r.text
            assert metadata_url not in r.text and "127.0.0.1" not in r.text, r.text
        # The fetches in flight end meanwhile; their results cannot commit, and the runner says
        # so for each job it had started (none starts while PostgreSQL is down).
        def unsettled():
            logs = server.logs()
            return (len(re.findall(r"job started job=", logs)) -
                    len(re.findall(r"store error: (?:complete|retry|fail) job", logs)))
        wait_until(lambda: unsettled() <= 0, "the started jobs to report their lost results",
                   timeout=SLOW_BYTES / 10240 + 20)
        assert server.proc.poll() is None, "the server died with PostgreSQL"
    finally:
        cluster("start")

    r = server.api("GET", P)
    assert r.status_code == 200, r.text
    assert [g["group_name"] for g in r.json()["groups"]] == ["g0", "g1"]
    details = wait_settled(server, list(slow), timeout=LEASE_S + 20)
    for name, data_bytes in slow.items():  # no job lost: each fetched again once its lease ran out
        assert details[name]["status"] == "READY", details[name]
        assert details[name]["sha256"] == sha256(data_bytes)
    logs = server.logs()
    assert "calls fail until PostgreSQL is reachable again" in logs
    assert "PostgreSQL is reachable again" in logs
    assert metadata_url not in logs


def test_readyz_names_postgres_while_it_is_stopped(start_server, metadata_url, shared):
    assert os.environ.get("DLIPKG_TEST_POSTGRES_DIR"), "DLIPKG_TEST_POSTGRES_DIR is not set"
    server = start_server(*shared)
    r = server.api("GET", "/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"metadata store": "ok", "blob store": "ok"}
    cluster("stop")
    try:
        r = server.api("GET", "/readyz")
        assert r.status_code == 503, r.text
        assert r.json()["status"] == "unavailable"
        assert r.json()["checks"]["metadata store"].startswith("failed: "), r.text
        assert r.json()["checks"]["blob store"] == "ok", r.text
        assert metadata_url not in r.text and "testing" not in r.text, r.text
        assert server.api("HEAD", "/readyz").status_code == 503
        assert server.api("GET", "/healthz").status_code == 200  # alive, only not ready
    finally:
        cluster("start")
    deadline = time.time() + 30
    while server.api("GET", "/readyz").status_code != 200:
        assert time.time() < deadline, "not ready again after PostgreSQL came back"
        time.sleep(0.1)


def test_readyz_refuses_a_schema_newer_than_the_servers(start_server, metadata_url):
    server = start_server("--metadata", metadata_url)
    assert server.api("GET", "/readyz").status_code == 200
    schema = metadata_url.rsplit("search_path%3D", 1)[1]
    psql(os.environ["DLIPKG_TEST_POSTGRES_URL"], f"UPDATE {schema}.schema_version SET version = 999")
    r = server.api("GET", "/readyz")
    assert r.status_code == 503, r.text
    assert "schema version 999" in r.json()["checks"]["metadata store"], r.text


# --- issue 15: the bucket holds exactly the referenced objects once the collector has run ------
SWIFT_SCRIPT = REPO / "scripts" / "swift_s3.sh"


def bucket_of(shared_args):
    """The bucket and key prefix of the shared stores' --blobs s3://bucket/prefix."""
    bucket, prefix = shared_args[shared_args.index("--blobs") + 1][len("s3://"):].split("/", 1)
    return bucket, prefix + "/"


def referenced(metadata_url):
    out = psql(metadata_url, "SELECT DISTINCT sha256 FROM packages WHERE sha256 <> ''")
    return set(out.split()) if out else set()


def streaming_body(total, sent_enough, release):
    """A body of `total` bytes that pauses, once `sent_enough` is set after 7 MiB, on `release`."""
    def chunks():
        for i in range(total // (1 << 20)):
            if i == 7:
                sent_enough.set()
                release.wait(60)
            yield os.urandom(1 << 20)
    return chunks()


def test_the_bucket_holds_exactly_the_referenced_objects_after_kills_and_an_outage(
        start_server, nginx, sources, shared, metadata_url, swift, tmp_path):
    """Issue 15's scale-out leaks: kill -9 mid-upload (a multipart upload left open in tmp/),
    kill -9 between an async job's blob commit and its metadata commit (an unreferenced blob
    and a stale pin), deletes while the bucket is down (answered 200, the object queued, not
    forgotten); once the collector has run, the bucket holds exactly what packages refer to."""
    bucket, prefix = bucket_of(shared)
    collect = ["--collect-interval", "1", "--collect-grace", "2", "--job-lease", str(LEASE_S)]
    root, files = sources
    (root / "c15").mkdir(exist_ok=True)
    made = {}
    for name in ("orphan.bin", "kept.bin", "gone1.bin", "gone2.bin"):
        made[name] = os.urandom(4096)
        (root / "c15" / name).write_bytes(made[name])
    b = start_server(*shared, *collect, data_dir=tmp_path / "b")

    # 1. kill -9 in the middle of a direct upload: its first 5 MiB part is in the bucket.
    a = start_server(*shared, *collect, "--blob-part-size", str(5 << 20), data_dir=tmp_path / "a")
    sent_enough, release = threading.Event(), threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        put = pool.submit(a.api, "PUT", f"/v2.0/p1/resources/big.bin/content?kind=file",
                          data=streaming_body(12 << 20, sent_enough, release))
        assert sent_enough.wait(30)
        wait_until(lambda: swift.list_uploads(bucket, prefix), "a multipart upload in the bucket")
        a.kill()
        release.set()
        with pytest.raises(requests.ConnectionError):
            put.result(timeout=30)

    # 2. kill -9 right after an async job committed its blob (the fault point kills the
    #    process), then the package is deleted: its bytes are referenced by nothing.
    c = start_server(*shared, *collect, data_dir=tmp_path / "c",
                     env={"DLIPKG_TEST_FAULT": "after-blob-commit"})
    assert upload_async(c, nginx, ["c15/orphan.bin"], group="gc").status_code == 200
    c.proc.wait(30)
    assert c.proc.returncode == -9, c.logs()
    assert b.api("DELETE", f"{P}/orphan.bin?group=gc").status_code == 200
    orphan = sha256(made["orphan.bin"])
    assert f"{prefix}blobs/{orphan}" in swift.list_keys(bucket, prefix)

    # 3. deletes while the bucket is down: 200, and the objects stay queued for reclaim.
    r = b.api("POST", P, json={"paths": [f"{nginx.url}/c15/{n}" for n in made if n != "orphan.bin"],
                               "kind": "file", "group": "g"})
    assert r.status_code == 200, r.text
    subprocess.run([str(SWIFT_SCRIPT), "proxy-down", str(swift.workdir)], check=True, timeout=60)
    try:
        for name in ("gone1.bin", "gone2.bin"):
            r = b.api("DELETE", f"{P}/{name}?group=g")
            assert r.status_code == 200, r.text
        queued = set(psql(metadata_url, "SELECT sha256 FROM reclaim_queue").split())
        assert {sha256(made["gone1.bin"]), sha256(made["gone2.bin"])} <= queued
    finally:
        subprocess.run([str(SWIFT_SCRIPT), "proxy-up", str(swift.workdir)], check=True,
                       timeout=120)
    assert "reclaim blob" in b.logs()

    # b takes the dead c's job over once its lease ran out, and drops it (its package is gone).
    wait_until(lambda: psql(metadata_url, "SELECT COUNT(*) FROM jobs") == "0",
               "c's job to be taken over and dropped", timeout=30, interval=0.1)
    # The dead instances' pins would run out after 30 minutes: let them have.
    psql(metadata_url, "UPDATE blob_pins SET pinned_until = 0")

    def exactly_the_referenced():
        keys = swift.list_keys(bucket, prefix)
        blobs = {k[len(prefix + "blobs/"):] for k in keys if k.startswith(prefix + "blobs/")}
        others = [k for k in keys if not k.startswith(prefix + "blobs/")]
        return (blobs == referenced(metadata_url) and not others
                and not swift.list_uploads(bucket, prefix))

    wait_until(exactly_the_referenced, "the bucket to hold exactly the referenced objects",
               timeout=30, interval=0.2)
    assert referenced(metadata_url) == {sha256(made["kept.bin"])}
    assert psql(metadata_url, "SELECT COUNT(*) FROM reclaim_queue") == "0"
    assert psql(metadata_url, "SELECT COUNT(*) FROM blob_pins") == "0"
    assert b.api("GET", f"{P}/kept.bin/content?group=g").content == made["kept.bin"]
    metrics = b.api("GET", "/metrics").text
    for what in ("temporaries", "blobs"):
        m = re.search(rf'dlipkg_collector_removed_total{{what="{what}"}} (\S+)', metrics)
        assert m and float(m.group(1)) >= 1, (what, metrics)
    assert re.search(rf"collected: blobs.*count=1", b.logs()), b.logs()
