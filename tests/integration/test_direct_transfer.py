"""Issue 10: bytes in from a laptop, out to Spark. Direct streamed uploads
(PUT .../resources/{name}/content), staged blobs and whole-group commits, file-named downloads
(GET|HEAD .../files/...) with ETag, Range, Repr-Digest and in-stream verification, and presigned
URLs used by a real JVM (URLClassLoader) and by Python the way Spark's --py-files does.
All against the real server on loopback.
"""
import base64
import concurrent.futures
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
import xxhash

from conftest import sha256
from harness import RssSampler, wait_until
from test_auth import ALICE, ALICE_TOKEN, BOBBY, canonical_request, write_credentials, USERS

P = "/v2.0/p1"


# --- helpers ------------------------------------------------------------------------------------
def put_content(server, name, data, kind="file", group=None, headers=None, **kw):
    query = f"?kind={kind}" + (f"&group={group}" if group else "")
    return server.api("PUT", f"{P}/resources/{quote(name)}/content{query}", data=data,
                      headers=headers or {}, **kw)


def get_file(server, name, group=None, headers=None, method="GET", **kw):
    path = f"{P}/files/" + (f"{group}/" if group else "") + quote(name)
    return server.api(method, path, headers=headers or {}, **kw)


def stored_blobs(server):
    root = server.data_dir / "blobs"
    return sorted(p.name for p in root.glob("*/*")) if root.exists() else []


def temp_files(server):
    return sorted(p.name for p in (server.data_dir / "tmp").glob("*"))


def wait_for_log(server, pattern, timeout=20):
    """Waits (bounded) until the server log matches `pattern`; returns the match."""
    deadline = time.time() + timeout
    while True:
        m = re.search(pattern, server.logs())
        if m:
            return m
        assert time.time() < deadline, f"no log line /{pattern}/ in:\n{server.logs()[-3000:]}"
        time.sleep(0.02)


def assert_dli_error(r, status, code="DLI.0001"):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code, body
    return body["error_msg"]


def raw_request_head(server, method, path, headers):
    host, port = server.address.split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {server.address}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return s


def presign(server, body, **kw):
    r = server.api("POST", f"{P}/resources/urls", json=body, **kw)
    assert r.status_code == 200, r.text
    return r.json()["urls"]


# --- direct uploads -----------------------------------------------------------------------------
def test_put_content_stores_and_replaces_atomically(server):
    first = os.urandom(300_000)
    r = put_content(server, "lib.bin", first, group="g1",
                    headers={"X-Content-Sha256": sha256(first)})
    assert r.status_code == 200, r.text
    package = r.json()
    assert (package["resource_name"], package["group_name"], package["status"]) == \
        ("lib.bin", "g1", "READY")
    assert (package["sha256"], package["size"]) == (sha256(first), len(first))
    assert get_file(server, "lib.bin", "g1").content == first

    second = b"the second version\n"
    r = put_content(server, "lib.bin", second, group="g1")
    assert r.status_code == 200, r.text
    assert get_file(server, "lib.bin", "g1").content == second
    # The old bytes went once the new ones were committed; the old /content route still works.
    assert stored_blobs(server) == [sha256(second)]
    assert server.api("GET", f"{P}/resources/lib.bin/content?group=g1").content == second
    # Ungrouped, and a name the group also has: two packages.
    r = put_content(server, "lib.bin", first, kind="jar")
    assert r.status_code == 200 and "group_name" not in r.json()
    assert get_file(server, "lib.bin").content == first


def test_wrong_x_content_sha256_stores_nothing(server):
    data = os.urandom(100_000)
    r = put_content(server, "x.bin", data, headers={"X-Content-Sha256": sha256(b"other")})
    assert "differs from X-Content-Sha256" in assert_dli_error(r, 400)
    assert server.api("GET", f"{P}/resources/x.bin").status_code == 404
    assert stored_blobs(server) == [] and temp_files(server) == []
    r = put_content(server, "x.bin", data, headers={"X-Content-Sha256": "not-hex"})
    assert_dli_error(r, 400)


def test_x_want_xxh3_answers_the_checksum_of_the_bytes_received(server):
    """A client that sends X-Want-Xxh3 gets the XXH3-128 of the body the server read, with
    Content-Length, chunked and empty bodies alike; without it, no checksum is computed."""
    data = os.urandom(3_000_000)
    r = put_content(server, "sum.bin", data, headers={"X-Want-Xxh3": "1"})
    assert r.status_code == 200, r.text
    assert r.headers["X-Content-Xxh3"] == xxhash.xxh3_128_hexdigest(data)
    assert r.json()["sha256"] == sha256(data)
    chunked = put_content(server, "sum.bin", iter([data[:12345], data[12345:]]),
                          headers={"X-Want-Xxh3": "1"})
    assert chunked.status_code == 200, chunked.text
    assert chunked.headers["X-Content-Xxh3"] == xxhash.xxh3_128_hexdigest(data)
    empty = put_content(server, "empty.bin", b"", headers={"X-Want-Xxh3": "1"})
    assert empty.headers["X-Content-Xxh3"] == xxhash.xxh3_128_hexdigest(b"")
    assert "X-Content-Xxh3" not in put_content(server, "sum.bin", data).headers


def test_bad_kind_name_and_missing_kind(server):
    assert_dli_error(server.api("PUT", f"{P}/resources/a.py/content", data=b"x"), 400)
    assert_dli_error(put_content(server, "a.py", b"x", kind="exe"), 400)
    assert_dli_error(put_content(server, ".hidden", b"x"), 400)
    assert_dli_error(put_content(server, "a.py", b"x", group="bad/group"), 400)
    assert stored_blobs(server) == []


def test_over_size_without_content_length_is_413_and_stores_nothing(start_server):
    server = start_server("--max-object-size", "1MiB")
    sent = []

    def body():
        for _ in range(64):  # 4 MiB in 64 KiB chunks, chunked: no Content-Length
            sent.append(1)
            yield b"z" * 65536

    try:
        r = put_content(server, "big.bin", body())
        assert "larger than the server's limit" in assert_dli_error(r, 413)
    except requests.ConnectionError:
        pass  # the server may close before the client has sent everything
    wait_for_log(server, r"method=PUT target=/v2.0/p1/resources/big.bin/content\S* status=413")
    assert server.api("GET", f"{P}/resources/big.bin").status_code == 404
    assert stored_blobs(server) == [] and temp_files(server) == []
    # With a Content-Length over the limit it is refused before any byte is read.
    s = raw_request_head(server, "PUT", f"{P}/resources/big.bin/content?kind=file",
                         {"Content-Length": str(2 << 20)})
    reply = s.recv(65536).decode(errors="replace")
    s.close()
    assert reply.startswith("HTTP/1.1 413") and "DLI.0001" in reply


def test_disconnect_mid_body_leaves_nothing(server):
    s = raw_request_head(server, "PUT", f"{P}/resources/cut.bin/content?kind=file",
                         {"Content-Length": str(8 << 20)})
    s.sendall(os.urandom(1 << 20))
    s.close()
    wait_for_log(server, r"target=/v2.0/p1/resources/cut.bin/content\S* status=400")
    assert server.api("GET", f"{P}/resources/cut.bin").status_code == 404
    assert stored_blobs(server) == [] and temp_files(server) == []


def test_stall_past_read_timeout_leaves_nothing(start_server):
    server = start_server("--read-timeout", "1")
    s = raw_request_head(server, "PUT", f"{P}/resources/stall.bin/content?kind=file",
                         {"Content-Length": str(4 << 20)})
    s.sendall(os.urandom(1 << 20))
    try:
        wait_for_log(server, r"target=/v2.0/p1/resources/stall.bin/content\S* status=400")
        assert server.api("GET", f"{P}/resources/stall.bin").status_code == 404
        assert stored_blobs(server) == [] and temp_files(server) == []
    finally:
        s.close()


def test_same_name_uploaded_twice_concurrently_ends_as_one_of_them(server):
    versions = [os.urandom(5 << 20), os.urandom(5 << 20)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda d: put_content(server, "race.bin", d, group="g"), versions))
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    final = get_file(server, "race.bin", "g").content
    assert final in versions
    shown = server.api("GET", f"{P}/resources/race.bin?group=g").json()
    assert (shown["sha256"], shown["size"]) == (sha256(final), len(final))
    assert temp_files(server) == []


def test_one_gib_streams_with_flat_memory(server):
    chunk = os.urandom(1 << 20)
    digest = hashlib.sha256()

    def body():
        for _ in range(1024):
            digest.update(chunk)
            yield chunk

    before = server.rss_kib()
    with RssSampler(server) as sampler:
        r = put_content(server, "huge.bin", body(), timeout=600)
    assert r.status_code == 200, r.text
    assert r.json()["size"] == 1 << 30 and r.json()["sha256"] == digest.hexdigest()
    assert sampler.peak_kib - before < 64 * 1024, (before, sampler.peak_kib)
    assert temp_files(server) == []


# --- AK/SK: the payload hash of a streamed body -------------------------------------------------
def signed_headers(method, url, body_hash, declare=True, ak=ALICE["ak"], sk=ALICE["sk"]):
    """AK/SK headers over `body_hash`, declared in X-Sdk-Content-Sha256 unless not `declare`."""
    import hmac
    headers = {"X-Sdk-Date": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
               "Host": urlsplit(url).netloc}
    signed = ["host", "x-sdk-date"]
    if declare:
        headers["X-Sdk-Content-Sha256"] = body_hash
        signed = ["host", "x-sdk-content-sha256", "x-sdk-date"]
    text = canonical_request(method, url, headers, signed, body_hash)
    to_sign = "\n".join(["SDK-HMAC-SHA256", headers["X-Sdk-Date"],
                         hashlib.sha256(text.encode()).hexdigest()])
    signature = hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"SDK-HMAC-SHA256 Access={ak}, "
                                f"SignedHeaders={';'.join(signed)}, Signature={signature}")
    return headers


@pytest.fixture
def auth_server(start_server, tmp_path):
    path = tmp_path / "credentials.json"
    write_credentials(path, USERS)
    return start_server("--credentials", str(path))


def test_aksk_streamed_payload_hash_is_checked_before_commit(auth_server):
    data = os.urandom(200_000)
    url = auth_server.url + f"{P}/resources/s.bin/content?kind=file"
    r = requests.put(url, data=data, headers=signed_headers("PUT", url, sha256(data)))
    assert r.status_code == 200, r.text
    assert r.json()["owner"] == "alice"
    # Signed for other bytes: 401 after the body, nothing stored.
    other = os.urandom(200_000)
    url2 = auth_server.url + f"{P}/resources/s2.bin/content?kind=file"
    r = requests.put(url2, data=other, headers=signed_headers("PUT", url2, sha256(data)))
    assert r.status_code == 401 and r.json()["error_code"] == "APIGW.0301", r.text
    assert "payload hash" in r.json()["error_msg"]
    assert stored_blobs(auth_server) == [sha256(data)] and temp_files(auth_server) == []
    # UNSIGNED-PAYLOAD, as SDKs send for streams.
    r = requests.put(url2, data=other, headers=signed_headers("PUT", url2, "UNSIGNED-PAYLOAD"))
    assert r.status_code == 200, r.text
    # No X-Sdk-Content-Sha256 on a streamed body cannot be checked before reading it: 401.
    r = requests.put(url2, data=other,
                     headers=signed_headers("PUT", url2, sha256(other), declare=False))
    assert r.status_code == 401 and "X-Sdk-Content-Sha256" in r.json()["error_msg"]
    # A token works too; no credentials at all does not.
    r = requests.put(url2, data=b"tok", headers={"X-Auth-Token": ALICE_TOKEN})
    assert r.status_code == 200, r.text
    assert requests.put(url2, data=b"anon").status_code == 401


# --- whole-group replacement with staged blobs --------------------------------------------------
def test_group_replacement_from_staged_blobs_is_all_or_nothing(server):
    a, b, c = b"print('a')\n", os.urandom(50_000), b"print('c')\n"
    assert server.api("HEAD", f"{P}/blobs/{sha256(a)}").status_code == 404
    for data in (a, b):
        r = server.api("PUT", f"{P}/blobs/{sha256(data)}", data=data)
        assert r.status_code == 200 and r.json() == {"sha256": sha256(data), "size": len(data)}
    assert server.api("HEAD", f"{P}/blobs/{sha256(a)}").status_code == 200
    # Bytes that do not hash to the path are refused and dropped.
    assert_dli_error(server.api("PUT", f"{P}/blobs/{sha256(c)}", data=b"not c"), 400)
    assert server.api("HEAD", f"{P}/blobs/{sha256(c)}").status_code == 404

    commit = {"group": "g", "packages": [{"name": "a.py", "kind": "pyFile", "sha256": sha256(a)},
                                         {"name": "b.jar", "kind": "jar", "sha256": sha256(b)}]}
    r = server.api("POST", f"{P}/resources/commit", json=commit)
    assert r.status_code == 200, r.text
    assert r.json()["group_name"] == "g" and r.json()["resources"] == ["a.py", "b.jar"]
    assert get_file(server, "b.jar", "g").content == b

    # One blob not staged: nothing changes.
    bad = {"group": "g", "packages": [{"name": "c.py", "kind": "pyFile", "sha256": sha256(a)},
                                      {"name": "d.py", "kind": "pyFile", "sha256": sha256(c)}]}
    assert "is not stored" in assert_dli_error(
        server.api("POST", f"{P}/resources/commit", json=bad), 400)
    group = server.api("GET", f"{P}/resources").json()["groups"][0]
    assert group["resources"] == ["a.py", "b.jar"]
    assert_dli_error(server.api("POST", f"{P}/resources/commit",
                                json={"group": "g", "packages": [{"name": "x"}]}), 400)

    # Replacing: the group holds exactly the new packages.
    r = server.api("PUT", f"{P}/blobs/{sha256(c)}", data=c)
    assert r.status_code == 200
    r = server.api("POST", f"{P}/resources/commit", json={
        "group": "g", "packages": [{"name": "c.py", "kind": "pyFile", "sha256": sha256(c)}]})
    assert r.status_code == 200 and r.json()["resources"] == ["c.py"]
    assert get_file(server, "a.py", "g").status_code == 404


# --- downloads ----------------------------------------------------------------------------------
def test_file_download_headers_head_and_conditional(server):
    data = os.urandom(10_000)
    name = "données é.py"
    assert put_content(server, name, data, kind="pyFile", group="g").status_code == 200
    r = get_file(server, name, "g")
    assert r.status_code == 200 and r.content == data
    etag = f'"{sha256(data)}"'
    assert r.headers["ETag"] == etag
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Repr-Digest"] == \
        "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"
    assert r.headers["Content-Disposition"] == \
        "attachment; filename=\"donn__es __.py\"; filename*=UTF-8''" + quote(name, safe="")
    datetime.strptime(r.headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT")

    head = get_file(server, name, "g", method="HEAD")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(data)) and head.headers["ETag"] == etag

    r = get_file(server, name, "g", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == etag
    r = get_file(server, name, "g", headers={"If-None-Match": '"other", W/' + etag})
    assert r.status_code == 304
    assert get_file(server, name, "g", headers={"If-None-Match": '"other"'}).status_code == 200
    assert_dli_error(get_file(server, "absent.py", "g"), 404, "DLI.0002")
    assert_dli_error(get_file(server, name), 404, "DLI.0002")  # not ungrouped


@pytest.mark.parametrize("spec,first,last", [
    ("bytes=0-0", 0, 0), ("bytes=9999-9999", 9999, 9999), ("bytes=-10", 9990, 9999),
    ("bytes=100-", 100, 9999), ("bytes=5000-20000", 5000, 9999)])
def test_range(server, spec, first, last):
    data = os.urandom(10_000)
    put_content(server, "r.bin", data)
    r = get_file(server, "r.bin", headers={"Range": spec})
    assert r.status_code == 206, r.text
    assert r.content == data[first:last + 1]
    assert r.headers["Content-Range"] == f"bytes {first}-{last}/10000"
    assert r.headers["Content-Length"] == str(last - first + 1)


def test_range_unsatisfiable_and_ignored(server):
    data = os.urandom(1000)
    put_content(server, "r.bin", data)
    r = get_file(server, "r.bin", headers={"Range": "bytes=1000-"})
    assert_dli_error(r, 416)
    assert r.headers["Content-Range"] == "bytes */1000"
    assert_dli_error(get_file(server, "r.bin", headers={"Range": "bytes=-0"}), 416)
    # Several ranges or a stale If-Range: the whole file.
    for headers in ({"Range": "bytes=0-1,5-6"}, {"Range": "bytes=0-1", "If-Range": '"x"'}):
        r = get_file(server, "r.bin", headers=headers)
        assert r.status_code == 200 and r.content == data


def test_altered_blob_is_cut_short_and_reported(server):
    data = os.urandom(3 << 20)
    put_content(server, "bad.bin", data, group="g")
    blob = server.data_dir / "blobs" / sha256(data)[:2] / sha256(data)
    altered = bytearray(data)
    altered[-1] ^= 0xFF
    blob.write_bytes(bytes(altered))
    r = get_file(server, "bad.bin", "g", stream=True)
    assert r.status_code == 200 and r.headers["Content-Length"] == str(len(data))
    got = bytearray()
    try:
        for piece in r.iter_content(1 << 16):
            got += piece
    except requests.exceptions.ChunkedEncodingError:
        pass  # urllib3 2 reports the short body; 1.x just ends it
    # Cut short before the last (altered) bytes: never completed with wrong bytes.
    assert len(got) < len(data) and bytes(got) == data[:len(got)]
    shown = server.api("GET", f"{P}/resources/bad.bin?group=g").json()
    assert shown["status"] == "FAILED" and "no longer match" in shown["status_reason"]
    assert "do not match their SHA-256" in server.logs()
    # Its size changed too: refused before any byte is sent.
    blob.write_bytes(data[:-1])
    assert_dli_error(get_file(server, "bad.bin", "g"), 500, "DLI.0999")


def test_verified_blob_is_sent_whole_again_and_cut_short_once_altered(server):
    """A whole read verifies a blob; later downloads of the unchanged file skip hashing (sent
    with sendfile) but confirm, before the last bytes, that the file is still the verified
    one."""
    data = os.urandom(32 << 20)  # more than loopback socket buffers hold
    put_content(server, "v.bin", data, group="g")
    blob = server.data_dir / "blobs" / sha256(data)[:2] / sha256(data)
    # Timestamps are coarse: a file changed moments ago is never trusted, so let it settle.
    wait_until(lambda: time.time() - blob.stat().st_ctime > 0.1, "the blob to settle")
    for _ in range(2):  # the first read verifies, the second is sent unhashed
        r = get_file(server, "v.bin", "g")
        assert r.status_code == 200 and r.content == data
    r = get_file(server, "v.bin", "g", headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content == data[1000:2000]

    r = get_file(server, "v.bin", "g", stream=True)
    assert r.status_code == 200
    got = bytearray(r.raw.read(1 << 16))
    with open(blob, "r+b") as f:  # same inode, same size: only the change time tells
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))
    try:
        for piece in r.iter_content(1 << 16):
            got += piece
    except requests.exceptions.ChunkedEncodingError:
        pass
    assert len(got) < len(data) and bytes(got) == data[:len(got)]
    shown = server.api("GET", f"{P}/resources/v.bin?group=g").json()
    assert shown["status"] == "FAILED" and "no longer match" in shown["status_reason"]
    assert "changed since its SHA-256 was verified" in server.logs()


# --- presigned URLs -----------------------------------------------------------------------------
def test_presigned_urls_with_credentials_need_no_header(auth_server):
    token = {"X-Auth-Token": ALICE_TOKEN}
    for name, data in (("a.py", b"A = 1\n"), ("b.py", b"B = 2\n")):
        r = put_content(auth_server, name, data, kind="pyFile", group="g", headers=token)
        assert r.status_code == 200, r.text
    assert get_file(auth_server, "a.py", "g").status_code == 401  # no credentials, no signature
    urls = presign(auth_server, {"group": "g", "expires_in": 600}, headers=token)
    assert [u["resource_name"] for u in urls] == ["a.py", "b.py"]
    now_ms = time.time() * 1000
    for u in urls:
        assert u["group_name"] == "g" and u["resource_type"] == "pyFile"
        assert now_ms + 590_000 < u["expires_at"] < now_ms + 610_000
        assert urlsplit(u["url"]).path == f"{P}/files/g/{u['resource_name']}"
        r = requests.get(u["url"])
        assert r.status_code == 200 and sha256(r.content) == u["sha256"]
        assert requests.head(u["url"]).status_code == 200

    url = urls[0]["url"]
    # Tampered signature, another package's path, a moved expiry, a missing part: 403.
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    other = url.replace("/files/g/a.py", "/files/g/b.py")
    moved = re.sub(r"X-Dli-Expires=(\d+)", lambda m: f"X-Dli-Expires={int(m.group(1)) + 60}", url)
    for bad in (tampered, other, moved, url.split("&")[0]):
        r = requests.get(bad)
        assert r.status_code == 403 and r.json()["error_code"] == "APIGW.0302", (bad, r.text)
    # The signature is for reading only: another method needs credentials like any request.
    assert requests.put(url, data=b"x").status_code == 401
    # Names, the cap, bad requests.
    urls = presign(auth_server, {"group": "g", "resource_names": ["b.py"],
                                 "expires_in": 10**9}, headers=token)
    assert len(urls) == 1 and urls[0]["expires_at"] <= (time.time() + 7 * 86400 + 5) * 1000
    r = auth_server.api("POST", f"{P}/resources/urls", json={"expires_in": 5}, headers=token)
    assert_dli_error(r, 400)
    r = auth_server.api("POST", f"{P}/resources/urls", json={"group": "nope"}, headers=token)
    assert_dli_error(r, 404, "DLI.0002")
    assert auth_server.api("POST", f"{P}/resources/urls", json={"group": "g"}).status_code == 401


def test_presigned_url_expires(start_server):
    server = start_server("--max-url-lifetime", "1")
    put_content(server, "e.py", b"E = 1\n", kind="pyFile")
    url = presign(server, {"resource_names": ["e.py"], "expires_in": 60})[0]["url"]
    expires = int(re.search(r"X-Dli-Expires=(\d+)", url).group(1))
    assert expires <= time.time() + 1.5  # capped to --max-url-lifetime
    deadline = time.time() + 5
    while requests.get(url).status_code == 200:
        assert time.time() < deadline, "the URL never expired"
        time.sleep(0.1)
    r = requests.get(url)
    assert r.status_code == 403 and "expired" in r.json()["error_msg"]


def test_presigned_urls_survive_restart_and_die_with_key_rotation(start_server, tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir=data_dir)
    put_content(server, "k.py", b"K = 1\n", kind="pyFile")
    url = presign(server, {"resource_names": ["k.py"]})[0]["url"]
    path = urlsplit(url).path + "?" + urlsplit(url).query
    server.stop()
    again = start_server(data_dir=data_dir)
    assert again.api("GET", path).content == b"K = 1\n"
    again.stop()
    rotated = start_server("--rotate-url-key", data_dir=data_dir)
    r = rotated.api("GET", path)
    assert r.status_code == 403 and "revoked" in r.json()["error_msg"]


# --- Spark's way of fetching: a JVM and Python ------------------------------------------------
JAVA_LIB = """
package demo;
public class Greeter { public String greet() { return "hello from a presigned jar"; } }
"""
JAVA_MAIN = """
import java.net.URL;
import java.net.URLClassLoader;
public class Main {
  public static void main(String[] args) throws Exception {
    try (URLClassLoader loader = new URLClassLoader(new URL[] {new URL(args[0])})) {
      Object greeter = loader.loadClass("demo.Greeter").getDeclaredConstructor().newInstance();
      System.out.println(greeter.getClass().getMethod("greet").invoke(greeter));
    }
  }
}
"""


def build_jar(workdir):
    assert shutil.which("javac") and shutil.which("jar"), \
        "javac/jar missing: scripts/setup.sh --test installs default-jdk-headless"
    src = workdir / "src"
    (src / "demo").mkdir(parents=True)
    (src / "demo" / "Greeter.java").write_text(JAVA_LIB)
    (src / "Main.java").write_text(JAVA_MAIN)
    classes = workdir / "classes"
    subprocess.run(["javac", "-d", str(classes), str(src / "demo" / "Greeter.java")], check=True)
    subprocess.run(["jar", "cf", str(workdir / "greeter.jar"), "-C", str(classes), "demo"],
                   check=True)
    main_classes = workdir / "main"
    subprocess.run(["javac", "-d", str(main_classes), str(src / "Main.java")], check=True)
    return (workdir / "greeter.jar").read_bytes(), main_classes


def test_jvm_loads_a_class_from_a_presigned_jar_url(auth_server, tmp_path):
    jar, main_classes = build_jar(tmp_path / "java")
    token = {"X-Auth-Token": ALICE_TOKEN}
    assert put_content(auth_server, "greeter.jar", jar, kind="jar", group="spark",
                       headers=token).status_code == 200
    url = presign(auth_server, {"group": "spark"}, headers=token)[0]["url"]
    run = subprocess.run(["java", "-cp", str(main_classes), "Main", url],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "hello from a presigned jar"


def test_python_imports_py_files_saved_under_the_url_name(auth_server, tmp_path):
    token = {"X-Auth-Token": ALICE_TOKEN}
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("zipped_pkg/__init__.py", "VALUE = 'from the zip'\n")
    packages = {"helper_mod.py": b"VALUE = 'from the py file'\n", "deps.zip": zipped.getvalue()}
    for name, data in packages.items():
        r = put_content(auth_server, name, data, kind="pyFile", group="py", headers=token)
        assert r.status_code == 200, r.text
    urls = presign(auth_server, {"group": "py"}, headers=token)
    workdir = tmp_path / "executor"
    workdir.mkdir()
    script = """
import sys, urllib.request, urllib.parse, os
for url in sys.argv[1:]:
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit('/', 1)[-1])
    with urllib.request.urlopen(url) as r, open(name, 'wb') as f:
        f.write(r.read())
    sys.path.insert(0, os.path.abspath(name) if name.endswith('.zip') else os.getcwd())
import helper_mod, zipped_pkg
print(helper_mod.VALUE, '|', zipped_pkg.VALUE)
"""
    run = subprocess.run([sys.executable, "-c", script, *[u["url"] for u in urls]],
                         cwd=workdir, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "from the py file | from the zip"
    assert sorted(os.listdir(workdir)) == ["deps.zip", "helper_mod.py"]


# --- scale-out: PostgreSQL + S3 blobs, two instances --------------------------------------------
from test_postgres import metadata_url, shared  # noqa: E402,F401  (fixtures)


def test_two_instances_share_uploads_urls_and_key_rotation(start_server, shared, tmp_path):
    a = start_server(*shared, data_dir=tmp_path / "a")
    b = start_server(*shared, data_dir=tmp_path / "b")
    data = os.urandom(20 << 20)  # several multipart parts
    r = put_content(a, "big.bin", data, group="g", headers={"X-Content-Sha256": sha256(data)})
    assert r.status_code == 200, r.text
    small = b"S = 1\n"
    assert b.api("PUT", f"{P}/blobs/{sha256(small)}", data=small).status_code == 200
    assert a.api("HEAD", f"{P}/blobs/{sha256(small)}").status_code == 200
    r = a.api("POST", f"{P}/resources/commit", json={
        "group": "h", "packages": [{"name": "s.py", "kind": "pyFile", "sha256": sha256(small)}]})
    assert r.status_code == 200, r.text

    url = presign(a, {"group": "g"})[0]["url"]
    parts = urlsplit(url)
    path = parts.path + "?" + parts.query
    got = b.api("GET", path)  # signed by a, served by b
    assert got.status_code == 200 and sha256(got.content) == sha256(data)
    r = b.api("GET", path, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    assert get_file(b, "s.py", "h").content == small
    # A rotation by a third instance revokes the URL on both within the key refresh (5 s).
    c = start_server(*shared, "--rotate-url-key", data_dir=tmp_path / "c")
    assert c.api("GET", path).status_code == 403
    deadline = time.time() + 15
    while a.api("GET", path).status_code != 403 or b.api("GET", path).status_code != 403:
        assert time.time() < deadline, "the rotated key was not picked up"
        time.sleep(0.2)
