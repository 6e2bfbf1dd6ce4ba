"""Issue 6: package bytes in an S3 bucket (--blobs s3://bucket/prefix) on the Swift + s3api test
server: uploads sync and async from nginx, bytes read back through the API, deletes reclaim the
object (seen with the tests' own signed listing, not dlipkg's), restarts keep everything, and
memory stays flat while a 64 MiB package streams through multipart.
"""
import hashlib
import json
import os
import time

import pytest

from conftest import sha256
from harness import SANITIZED, RssSampler, memory_measured_env

P = "/v2.0/p1/resources"
BUCKET = "dlipkg-blobs"
PREFIX = "it"
BIG = 64 << 20


@pytest.fixture(scope="module")
def blob_bucket(swift):
    swift.create_bucket(BUCKET)
    return swift


@pytest.fixture(scope="module")
def big_source(sources):
    """A 64 MiB file beside nginx's other sources: name and SHA-256."""
    root, _ = sources
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(root / "big64.bin", "wb") as f:
        for i in range(BIG >> 20):
            chunk = i.to_bytes(8, "little") + block[8:]
            f.write(chunk)
            digest.update(chunk)
    return "big64.bin", digest.hexdigest()


@pytest.fixture
def s3_server(start_server, blob_bucket, tmp_path, request):
    """s3_server(data_dir=None) -> a dlipkg keeping its blobs under a prefix of its own."""
    prefix = f"{PREFIX}/{request.node.name}"
    stores = tmp_path / "stores.json"
    stores.write_text(json.dumps({"stores": [{
        "name": "swift", "endpoint": blob_bucket.endpoint, "access_key": "test:tester",
        "secret_key": "testing", "buckets": [BUCKET]}]}))

    def start(data_dir=None, env=None):
        server = start_server("--blobs", f"s3://{BUCKET}/{prefix}", "--object-stores",
                              str(stores), "--blob-part-size", "5MiB",
                              data_dir=data_dir or tmp_path / "data", env=env)
        server.blob_keys = lambda: blob_bucket.list_keys(BUCKET, f"{prefix}/")
        return server

    return start


def upload(server, nginx, names, group="g", is_async=False):
    body = {"paths": [f"{nginx.url}/{n}" for n in names], "kind": "file", "group": group,
            "is_async": is_async}
    r = server.api("POST", P, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def wait_ready(server, names, group="g", timeout=120):
    deadline = time.time() + timeout
    while True:
        statuses = {n: server.api("GET", f"{P}/{n}?group={group}").json()["status"]
                    for n in names}
        if all(s != "UPLOADING" for s in statuses.values()):
            assert all(s == "READY" for s in statuses.values()), statuses
            return
        assert time.time() < deadline, statuses
        time.sleep(0.05)


def content(server, name, group="g"):
    r = server.api("GET", f"{P}/{name}/content?group={group}")
    assert r.status_code == 200, r.text
    return r.content


def blob_key(data):
    return f"blobs/{sha256(data)}"


def test_sync_and_async_uploads_land_in_the_bucket_and_read_back(s3_server, nginx, sources):
    _, files = sources
    server = s3_server()
    upload(server, nginx, ["a.py", "lib.jar"])
    upload(server, nginx, ["b.py", "big.bin"], group="h", is_async=True)
    wait_ready(server, ["b.py", "big.bin"], group="h")
    for name, group in (("a.py", "g"), ("lib.jar", "g"), ("b.py", "h"), ("big.bin", "h")):
        assert content(server, name, group) == files[name]
    keys = server.blob_keys()
    for name in ("a.py", "lib.jar", "b.py", "big.bin"):
        assert any(k.endswith(blob_key(files[name])) for k in keys), (name, keys)
    assert not [k for k in keys if "/tmp/" in k], keys
    # Nothing in the data directory but metadata: the bytes are the bucket's.
    assert not (server.data_dir / "blobs").exists() or not any(
        (server.data_dir / "blobs").rglob("*.*"))


def test_delete_reclaims_the_object(s3_server, nginx, sources):
    _, files = sources
    server = s3_server()
    upload(server, nginx, ["c.py", "d.py"])
    assert any(k.endswith(blob_key(files["c.py"])) for k in server.blob_keys())
    r = server.api("DELETE", f"{P}/c.py?group=g")
    assert r.status_code == 200, r.text
    keys = server.blob_keys()
    assert not any(k.endswith(blob_key(files["c.py"])) for k in keys), keys
    assert any(k.endswith(blob_key(files["d.py"])) for k in keys), keys
    assert server.api("GET", f"{P}/c.py/content?group=g").status_code == 404


def test_restart_keeps_everything(s3_server, nginx, sources, tmp_path):
    _, files = sources
    first = s3_server(data_dir=tmp_path / "kept")
    upload(first, nginx, ["a.py", "big.bin"])
    keys_before = sorted(first.blob_keys())
    assert first.stop() == 0
    second = s3_server(data_dir=tmp_path / "kept")
    assert content(second, "a.py") == files["a.py"]
    assert content(second, "big.bin") == files["big.bin"]
    assert sorted(second.blob_keys()) == keys_before


def test_64_mib_upload_streams_with_flat_memory(s3_server, nginx, big_source):
    name, digest = big_source
    server = s3_server(env=memory_measured_env())
    with RssSampler(server) as rss:
        upload(server, nginx, [name])
    assert content_digest(server, name) == digest
    keys = server.blob_keys()
    assert any(k.endswith(f"blobs/{digest}") for k in keys), keys
    assert not [k for k in keys if "/tmp/" in k], keys
    print(f"RSS {rss.start_kib} KiB idle, {rss.peak_kib} KiB at the peak of a {BIG >> 20} MiB "
          "upload")
    # One 5 MiB part buffered at a time, plus the process itself: far below the object's size.
    if SANITIZED:  # ASan's own memory on top (harness.SANITIZED): growth, still below the object
        assert rss.growth_kib < 48 * 1024, f"RSS grew {rss.growth_kib} KiB"
    else:
        assert rss.peak_kib < 40 * 1024, f"peak RSS {rss.peak_kib} KiB for a {BIG >> 20} MiB upload"


def content_digest(server, name, group="g"):
    r = server.api("GET", f"{P}/{name}/content?group={group}", stream=True)
    assert r.status_code == 200, r.text
    digest = hashlib.sha256()
    for chunk in r.iter_content(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def test_bucket_outage_fails_requests_cleanly_then_recovers(start_server, nginx, sources,
                                                            tmp_path):
    """A Swift of its own, whose S3 endpoint goes down and comes back on the same port."""
    import subprocess
    from pathlib import Path

    from s3_util import S3Client

    script = Path(__file__).resolve().parents[2] / "scripts" / "swift_s3.sh"
    swift_dir = tmp_path / "swift"
    started = subprocess.run([str(script), "start", str(swift_dir)], capture_output=True,
                             text=True, timeout=900, check=True)
    try:
        endpoint = started.stdout.strip().splitlines()[-1]
        S3Client(endpoint).create_bucket("outage")
        stores = tmp_path / "stores.json"
        stores.write_text(json.dumps({"stores": [{
            "name": "swift", "endpoint": endpoint, "access_key": "test:tester",
            "secret_key": "testing", "buckets": ["outage"]}]}))
        server = start_server("--blobs", "s3://outage/p", "--object-stores", str(stores))
        files = sources[1]
        upload(server, nginx, ["a.py"])

        assert server.api("GET", "/readyz").status_code == 200
        subprocess.run([str(script), "proxy-down", str(swift_dir)], check=True, timeout=60)
        r = server.api("GET", "/readyz")  # the bucket is named as the part that fails
        assert r.status_code == 503, r.text
        assert r.json()["checks"]["blob store"].startswith("failed: "), r.text
        assert r.json()["checks"]["metadata store"] == "ok", r.text
        assert "testing" not in r.text, r.text
        r = server.api("POST", P, json={"paths": [f"{nginx.url}/b.py"], "kind": "file",
                                        "group": "g"})
        assert r.status_code == 500 and r.json()["error_code"] == "DLI.0999", r.text
        assert "testing" not in r.text and "127.0.0.1" not in r.text, r.text
        r = server.api("GET", f"{P}/a.py/content?group=g")
        assert r.status_code == 500 and r.json()["error_code"] == "DLI.0999", r.text
        assert server.proc.poll() is None, "the server died with the bucket"
        assert "failed: blob store failure" in server.logs()
        assert server.api("GET", f"{P}/a.py?group=g").status_code == 200  # metadata still up

        subprocess.run([str(script), "proxy-up", str(swift_dir)], check=True, timeout=120)
        assert server.api("GET", "/readyz").status_code == 200
        upload(server, nginx, ["b.py"])
        assert server.api("GET", f"{P}/a.py/content?group=g").content == files["a.py"]
        assert server.api("GET", f"{P}/b.py/content?group=g").content == files["b.py"]
        assert "testing" not in server.logs()
    finally:
        subprocess.run([str(script), "stop", str(swift_dir)], timeout=120)
