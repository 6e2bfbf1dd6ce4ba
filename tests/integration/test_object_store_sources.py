"""Issue 5: obs://, s3:// and OBS-style https sources against a real S3 server that checks
signatures (Swift + s3api, scripts/swift_s3.sh). Objects are private: only a correctly signed
request (libcurl's SigV4, with the canonical URL and payload header it needs) gets them.

The dlipkg servers here run WITHOUT --allow-source 127.0.0.1: the store's loopback endpoint
is reached because the operator declared it in --object-stores, nothing else.
"""
import json
import urllib.parse

import pytest
import requests

P = "/v2.0/p1/resources"
BUCKET = "dlipkg-src"
OBS_DOMAIN = "myhuaweicloud.com"
WRONG_SECRET = "wr0ng-s3cret-value"

# key -> bytes; keys with spaces, '+', UTF-8 and '~' in both directories and names.
OBJECTS = {
    "plain/a.py": b"print('plain')\n",
    "with space/a b.py": b"print('space')\n",
    "plus+dir/a+b.py": b"print('plus')\n",
    "\u00fcml\u00e4ut/\u65e5\u672c.py": b"print('utf-8')\n",
    "tilde~dir/x~y.py": b"print('tilde')\n",
}


@pytest.fixture(scope="module")
def bucket(swift):
    swift.create_bucket(BUCKET)
    for key, data in OBJECTS.items():
        swift.put_object(BUCKET, key, data)
        assert swift.get_object(BUCKET, key).content == data
    return swift


@pytest.fixture
def store_server(start_server, bucket, tmp_path):
    """store_server(**store fields) -> a dlipkg whose only store is the Swift test server."""
    count = [0]

    def start(**fields):
        store = {"name": "swift", "endpoint": bucket.endpoint, "region": "us-east-1",
                 "addressing": "path", "access_key": "test:tester", "secret_key": "testing",
                 "buckets": [BUCKET], "obs_domains": [OBS_DOMAIN]}
        store.update(fields)
        store = {k: v for k, v in store.items() if v is not None}
        count[0] += 1
        path = tmp_path / f"stores-{count[0]}.json"
        path.write_text(json.dumps({"stores": [store]}))
        return start_server("--object-stores", str(path), allow_loopback=False,
                            data_dir=tmp_path / f"data-{count[0]}")

    return start


def upload(server, paths, group):
    return server.api("POST", f"{P}/files", json={"paths": paths, "group": group})


def content(server, name, group):
    quoted = urllib.parse.quote(name, safe="")
    return server.api("GET", f"{P}/{quoted}/content", params={"group": group})


def stored_blobs(server):
    return sorted(p.name for p in (server.data_dir / "blobs").rglob("*") if p.is_file())


def assert_refused(server, paths, error_code, text, group="refused"):
    before = server.api("GET", P).json()
    blobs = stored_blobs(server)
    r = upload(server, paths, group)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["error_code"] == error_code, err
    assert text in err["error_msg"], err
    assert server.api("GET", P).json() == before
    assert stored_blobs(server) == blobs
    return err


def url_forms(key):
    """The three spellings of one object: obs://, s3:// and the OBS virtual-hosted https URL."""
    encoded = urllib.parse.quote(key)
    return [f"obs://{BUCKET}/{encoded}", f"s3://{BUCKET}/{encoded}",
            f"https://{BUCKET}.obs.us-east-1.{OBS_DOMAIN}/{encoded}"]


def test_the_objects_are_private(bucket):
    """Without a signature Swift refuses: a fetch that works below was signed."""
    r = requests.get(bucket.url(BUCKET, "plain/a.py"), timeout=30)
    assert r.status_code in (400, 401, 403), r.status_code


def test_private_object_in_every_url_form(store_server):
    server = store_server()
    for i, url in enumerate(url_forms("plain/a.py")):
        r = upload(server, [url], f"g{i}")
        assert r.status_code == 200, (url, r.text)
        assert r.json()["resources"] == ["a.py"]
        got = content(server, "a.py", f"g{i}")
        assert got.status_code == 200, got.text
        assert got.content == OBJECTS["plain/a.py"], url


@pytest.mark.parametrize("key", [k for k in OBJECTS if k != "plain/a.py"])
def test_keys_with_spaces_plus_utf8_and_tilde(store_server, key):
    server = store_server()
    name = key.rsplit("/", 1)[1]
    # Percent-encoded as a client would send it, and raw (spaces and UTF-8 as they are).
    for i, url in enumerate([*url_forms(key), f"obs://{BUCKET}/{key}"]):
        r = upload(server, [url], f"g{i}")
        assert r.status_code == 200, (url, r.text)
        got = content(server, name, f"g{i}")
        assert got.status_code == 200, (url, got.text)
        assert got.content == OBJECTS[key], url


def test_wrong_secret_is_refused_with_the_reason(store_server):
    server = store_server(secret_key=WRONG_SECRET)
    err = assert_refused(server, [f"obs://{BUCKET}/plain/a.py"], "DLI.0012",
                         "access denied by the object store (HTTP 403 SignatureDoesNotMatch)")
    assert f"obs://{BUCKET}/plain/a.py" in err["error_msg"]
    assert WRONG_SECRET not in err["error_msg"]
    assert WRONG_SECRET not in server.logs()


def test_wrong_access_key_is_refused(store_server):
    server = store_server(access_key="test:nobody")
    assert_refused(server, [f"s3://{BUCKET}/plain/a.py"], "DLI.0012",
                   "access denied by the object store (HTTP 403")


def test_store_entry_without_credentials_is_refused_by_swift(store_server):
    """The same request unsigned: Swift refuses it, so signing is what made the others work."""
    server = store_server(access_key=None, secret_key=None)
    err = assert_refused(server, [f"obs://{BUCKET}/plain/a.py"], "DLI.0012", "object store")
    assert "(HTTP 4" in err["error_msg"], err


def test_missing_object_is_unavailable(store_server):
    server = store_server()
    assert_refused(server, [f"obs://{BUCKET}/plain/nothing.py"], "DLI.0012",
                   "not found (HTTP 404 NoSuchKey)")


def test_bucket_without_a_store_is_a_bad_path(store_server):
    server = store_server()
    assert_refused(server, ["obs://another-bucket/a.py"], "DLI.0001",
                   "no object store is configured for bucket 'another-bucket'")


def test_one_failing_path_keeps_the_group_unchanged(store_server):
    server = store_server()
    r = upload(server, [f"obs://{BUCKET}/plain/a.py"], "keep")
    assert r.status_code == 200, r.text
    assert_refused(server, [f"obs://{BUCKET}/plain/a.py", f"obs://{BUCKET}/x/missing.py"],
                   "DLI.0012", "NoSuchKey", group="keep")
