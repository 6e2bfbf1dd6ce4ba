"""Authentication end to end: the real server with a credential file, real SDK-HMAC-SHA256
signatures from a Python signer that signs like the Python SDK and from the official Node.js SDK
core (tests/node), tokens, project isolation, SIGHUP reloads, and the start-up rules without
credentials. Only 127.0.0.1 is ever connected to.
"""
import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
import requests

from harness import DLIPKG, ROOT, Dlipkg, wait_for_fetch_in_flight, wait_for_log
from sdk_client import DliError, SdkLikeClient

NODE_DIR = ROOT / "tests" / "node"

ALICE = {"ak": "AKALICE0000000000001", "sk": "sk-alice-4f9d2c7e1b8a6053e2d1c0b9a8f7e6d5"}
BOBBY = {"ak": "AKBOBBY0000000000002", "sk": "sk-bobby-0a1b2c3d4e5f60718293a4b5c6d7e8f9"}
ALICE_TOKEN = "tok-alice-1f2e3d4c5b6a79880716253443526170"
BOBBY_TOKEN = "tok-bobby-8899aabbccddeeff0011223344556677"
EXPIRED_TOKEN = "tok-expired-00112233445566778899aabbccddeeff"
DAVE_TOKEN = "tok-dave-5566778899aabbccddeeff0011223344"
SECRETS = [ALICE["sk"], BOBBY["sk"], ALICE_TOKEN, BOBBY_TOKEN, EXPIRED_TOKEN, DAVE_TOKEN]

USERS = [
    {"name": "alice", "projects": ["p1"], "access_keys": [ALICE],
     "tokens": [{"token": ALICE_TOKEN, "expires_at": "2999-01-01T00:00:00Z"},
                {"token": EXPIRED_TOKEN, "expires_at": "2001-01-01T00:00:00Z"}]},
    {"name": "bobby", "projects": ["p2"], "access_keys": [BOBBY],
     "tokens": [{"token": BOBBY_TOKEN}]},
    {"name": "carol_owner", "projects": ["p1"]},  # no credentials: an owner only
]


# --- a signer that signs like the Python SDK (huaweicloudsdkcore) -----------------------------
def _encode(text):
    return quote(text, safe="~")  # keeps only A-Z a-z 0-9 - _ . ~, upper-case hex


def canonical_request(method, url, headers, signed, body_hash):
    parts = urlsplit(url)
    uri = "/".join(_encode(unquote(segment)) for segment in parts.path.split("/"))
    if not uri.endswith("/"):
        uri += "/"
    pairs = []
    for pair in filter(None, parts.query.split("&")):
        name, _, value = pair.partition("=")
        pairs.append((unquote(name), unquote(value)))
    query = "&".join(f"{_encode(n)}={_encode(v)}" for n, v in sorted(pairs))
    lower = {k.lower(): v for k, v in headers.items()}
    canonical_headers = "".join(f"{name}:{lower[name].strip()}\n" for name in signed)
    return "\n".join([method, uri, query, canonical_headers, ";".join(signed), body_hash])


class PySdkSigner:
    """The SdkLikeClient signer hook: adds X-Sdk-Date and Host, signs
    content-type;host;user-agent;x-project-id;x-sdk-date over the raw body bytes."""

    SIGNED = ["content-type", "host", "user-agent", "x-project-id", "x-sdk-date"]

    def __init__(self, ak, sk, date=None, security_token=None):
        self.ak, self.sk, self.date, self.security_token = ak, sk, date, security_token

    def __call__(self, method, url, headers, body):
        headers = dict(headers)
        headers["X-Sdk-Date"] = self.date or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        headers["Host"] = urlsplit(url).netloc
        signed = list(self.SIGNED)
        if self.security_token:
            headers["X-Security-Token"] = self.security_token
            signed.append("x-security-token")
        text = canonical_request(method, url, headers, signed, hashlib.sha256(body).hexdigest())
        to_sign = "\n".join(["SDK-HMAC-SHA256", headers["X-Sdk-Date"],
                             hashlib.sha256(text.encode()).hexdigest()])
        signature = hmac.new(self.sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (f"SDK-HMAC-SHA256 Access={self.ak}, "
                                    f"SignedHeaders={';'.join(signed)}, Signature={signature}")
        return headers


def token_signer(token):
    def add(method, url, headers, body):
        return dict(headers, **{"X-Auth-Token": token})
    return add


# --- the Node.js SDK ----------------------------------------------------------------------------
def node_sdk(mode, server, keys, method, url, project="p1", query=None, body=None,
             security_token=None, path_params=None):
    """Runs tests/node/sdk_call.js: the official SDK core sends ("send") or signs ("sign")."""
    if not (NODE_DIR / "node_modules" / "@huaweicloud" / "huaweicloud-sdk-core").exists():
        pytest.fail("tests/node/node_modules is missing: run scripts/setup.sh --test")
    spec = {"mode": mode, "endpoint": server.url, "ak": keys["ak"], "sk": keys["sk"],
            "project_id": project, "method": method, "url": url, "query": query or {},
            "body": body, "security_token": security_token, "path_params": path_params or {}}
    done = subprocess.run(["node", "sdk_call.js", json.dumps(spec)], cwd=NODE_DIR,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def send(signed, **changes):
    """Sends a request signed by the Node.js SDK, after applying `changes` to it."""
    request = {**signed, **changes}
    body = request["body"].encode() if request["body"] is not None else None
    return requests.request(request["method"], request["url"], headers=request["headers"],
                            data=body, timeout=60)


# --- fixtures -----------------------------------------------------------------------------------
def write_credentials(path, users):
    path.write_text(json.dumps({"users": users}, indent=2))
    path.chmod(0o600)


@pytest.fixture
def credentials(tmp_path):
    path = tmp_path / "credentials.json"
    write_credentials(path, USERS)
    return path


@pytest.fixture
def auth_server(start_server, credentials):
    """A server with authentication and debug logging; its log is checked for secrets after."""
    server = start_server("--credentials", str(credentials), "--log-level", "debug")
    yield server
    assert server.stop() == 0
    assert_no_secret_in(server.logs())


def assert_no_secret_in(log):
    for secret in SECRETS:
        assert secret not in log, "a secret appeared in the server log"


def url_of(nginx, name):
    return f"{nginx.url}/{quote(name)}"


def assert_rejected(call, status, code, message=None):
    with pytest.raises(DliError) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (status, code), caught.value.msg
    if message is not None:
        assert caught.value.msg == message
    return caught.value


# --- AK/SK with the Python-SDK-like signer ------------------------------------------------------
def test_python_signed_lifecycle_owned_by_the_user(auth_server, nginx):
    client = SdkLikeClient(auth_server.url, "p1", signer=PySdkSigner(**ALICE))
    group = client.upload_py_files([url_of(nginx, "a.py"), url_of(nginx, "a b.py")], "g1")
    assert group["owner"] == "alice"
    assert {d["owner"] for d in group["details"]} == {"alice"}
    loose = client.create_resources([url_of(nginx, "b.py")], "pyFile")
    assert loose["resource_names"] == ["b.py"] and loose["owner"] == "alice"
    listing = client.list_resources(kind="pyFile", tags=None)
    assert listing["total"] == 3
    shown = client.show_resource_info("a b.py", group="g1")  # a%20b.py, ?group=g1, signed
    assert (shown["resource_name"], shown["owner"]) == ("a b.py", "alice")
    assert client.change_resource_owner("carol_owner", group_name="g1") == {
        "is_success": True, "message": ""}
    assert client.show_resource_info("a.py", group="g1")["owner"] == "carol_owner"
    assert_rejected(lambda: client.change_resource_owner("mallory", group_name="g1"),
                    400, "DLI.0002", "No such user. userName:mallory.")
    assert client.delete_resource("a b.py", group="g1") is None
    assert client.delete_resource("b.py") is None
    assert client.list_resources()["total"] == 1


def test_python_signed_with_a_security_token(auth_server, nginx):
    signer = PySdkSigner(**ALICE, security_token="temporary-security-token-value")
    client = SdkLikeClient(auth_server.url, "p1", signer=signer)
    assert client.list_resources()["total"] == 0


def test_signature_errors_and_missing_credentials(auth_server):
    stale = (datetime.now(timezone.utc) - timedelta(minutes=16)).strftime("%Y%m%dT%H%M%SZ")
    client = SdkLikeClient(auth_server.url, "p1", signer=PySdkSigner(**ALICE, date=stale))
    error = assert_rejected(client.list_resources, 401, "APIGW.0301")
    assert "more than 15 minutes" in error.msg
    wrong_sk = SdkLikeClient(auth_server.url, "p1",
                             signer=PySdkSigner(ALICE["ak"], "not-the-secret"))
    error = assert_rejected(wrong_sk.list_resources, 401, "APIGW.0301")
    assert error.msg.endswith("|content-type;host;user-agent;x-project-id;x-sdk-date|"
                              + hashlib.sha256(b"").hexdigest())
    anonymous = SdkLikeClient(auth_server.url, "p1")
    error = assert_rejected(anonymous.list_resources, 401, "APIGW.0301")
    assert "missing credentials" in error.msg
    r = auth_server.api("GET", "/v2.0/p1/resources")
    assert r.status_code == 401 and r.json()["request_id"] == r.headers["X-Request-Id"]
    assert auth_server.api("GET", "/healthz").json() == {"status": "ok"}


def test_x_project_id_other_than_the_path_is_forbidden(auth_server):
    signer = PySdkSigner(**ALICE)

    def sign_for_p2_header(method, url, headers, body):
        return signer(method, url, dict(headers, **{"X-Project-Id": "p2"}), body)

    client = SdkLikeClient(auth_server.url, "p1", signer=sign_for_p2_header)
    error = assert_rejected(client.list_resources, 403, "APIGW.0302")
    assert "X-Project-Id" in error.msg
    # Her own signature, but on a project she may not use.
    elsewhere = SdkLikeClient(auth_server.url, "p2", signer=PySdkSigner(**ALICE))
    assert_rejected(elsewhere.list_resources, 403, "APIGW.0302")


# --- tokens -------------------------------------------------------------------------------------
def test_token_mode_and_project_isolation(auth_server, nginx):
    bobby = SdkLikeClient(auth_server.url, "p2", signer=token_signer(BOBBY_TOKEN))
    created = bobby.create_resources([url_of(nginx, "c.py")], "pyFile", group="gb")
    assert created["owner"] == "bobby"
    assert bobby.show_resource_info("c.py", group="gb")["owner"] == "bobby"
    # bobby's token (project p2) on project p1.
    on_p1 = SdkLikeClient(auth_server.url, "p1", signer=token_signer(BOBBY_TOKEN))
    assert_rejected(on_p1.list_resources, 403, "APIGW.0302")
    # alice's token works on p1 and sees nothing of p2.
    alice = SdkLikeClient(auth_server.url, "p1", signer=token_signer(ALICE_TOKEN))
    assert alice.list_resources()["total"] == 0
    for token in (EXPIRED_TOKEN, "tok-nobody-has-this-one"):
        unknown = SdkLikeClient(auth_server.url, "p1", signer=token_signer(token))
        assert_rejected(unknown.list_resources, 401, "APIGW.0301")


# --- the official Node.js SDK -------------------------------------------------------------------
def test_node_sdk_calls_are_accepted(auth_server, nginx):
    base = "/v2.0/{project_id}/resources"
    uploaded = node_sdk("send", auth_server, ALICE, "POST", base + "/pyfiles",
                        body={"paths": [url_of(nginx, "a.py"), url_of(nginx, "d.py")],
                              "group": "gn"})
    assert uploaded["status"] == 200, uploaded
    assert uploaded["body"]["owner"] == "alice"
    listed = node_sdk("send", auth_server, ALICE, "GET", base,
                      query={"kind": "pyFile", "tags": ""})
    assert listed["status"] == 200 and listed["body"]["total"] == 2, listed
    shown = node_sdk("send", auth_server, ALICE, "GET", base + "/d.py", query={"group": "gn"})
    assert shown["status"] == 200 and shown["body"]["owner"] == "alice", shown
    owner = node_sdk("send", auth_server, ALICE, "PUT", base + "/owner",
                     body={"new_owner": "nobody_here", "group_name": "gn"})
    assert (owner["status"], owner["error_code"], owner["error_msg"]) == (
        400, "DLI.0002", "No such user. userName:nobody_here.")
    deleted = node_sdk("send", auth_server, ALICE, "DELETE", base + "/d.py",
                       query={"group": "gn"})
    assert deleted["status"] == 200, deleted
    temporary = node_sdk("send", auth_server, BOBBY, "GET", base, project="p2",
                         security_token="temporary-security-token-value")
    assert temporary["status"] == 200, temporary
    forbidden = node_sdk("send", auth_server, BOBBY, "GET", base, project="p1")
    assert (forbidden["status"], forbidden["error_code"]) == (403, "APIGW.0302")


# The Node.js SDK signs the escaped path escaped again ("a%20b.py" as "a%2520b.py"); the server
# accepts that form too, so the official client reaches names with spaces.
def test_node_sdk_resource_name_with_a_space(auth_server):
    shown = node_sdk("send", auth_server, ALICE, "GET",
                     "/v2.0/{project_id}/resources/{resource_name}",
                     path_params={"resource_name": "a b.py"})
    assert (shown["status"], shown["error_code"]) == (404, "DLI.0002"), shown


def test_node_sdk_resource_names_with_plus_tilde_and_utf8(auth_server):
    for name in ("a+b.py", "a~b.py", "数据.py"):
        shown = node_sdk("send", auth_server, ALICE, "GET",
                         "/v2.0/{project_id}/resources/{resource_name}",
                         path_params={"resource_name": name})
        assert (shown["status"], shown["error_code"]) == (404, "DLI.0002"), (name, shown)


def test_each_tampering_with_a_node_signed_request_is_rejected(auth_server, nginx):
    signed = node_sdk("sign", auth_server, ALICE, "POST", "/v2.0/{project_id}/resources",
                      query={"z": "last", "a": "first x"},
                      body={"paths": [url_of(nginx, "a.py")], "kind": "pyFile", "group": "gt"})
    assert "user-agent" not in signed["headers"]["Authorization"]  # Node.js does not sign it
    auth = signed["headers"]["Authorization"]
    date = signed["headers"]["X-Sdk-Date"]
    later = (datetime.strptime(date, "%Y%m%dT%H%M%SZ") + timedelta(seconds=1)).strftime(
        "%Y%m%dT%H%M%SZ")
    tamperings = {
        "method": dict(method="PUT"),
        "path": dict(url=signed["url"].replace("/resources?", "/resources/x.py?")),
        "query": dict(url=signed["url"] + "&kind=jar"),
        "signed header": dict(headers=dict(signed["headers"], **{"content-type": "text/json"})),
        "body": dict(body=signed["body"].replace("a.py", "b.py")),
        "body re-serialised": dict(body=json.dumps(json.loads(signed["body"]))),
        "date": dict(headers=dict(signed["headers"], **{"X-Sdk-Date": later})),
        "AK": dict(headers=dict(signed["headers"],
                                Authorization=auth.replace(ALICE["ak"], BOBBY["ak"]))),
    }
    for what, change in tamperings.items():
        r = send(signed, **change)
        assert r.status_code == 401, (what, r.text)
        assert r.json()["error_code"] == "APIGW.0301", what
        assert r.json()["request_id"] == r.headers["X-Request-Id"]
    r = send(signed)  # untouched, it goes through
    assert r.status_code == 200, r.text
    assert r.json()["owner"] == "alice"


# --- SIGHUP -------------------------------------------------------------------------------------
def test_sighup_reloads_credentials_without_dropping_requests(auth_server, credentials, nginx,
                                                              sources):
    root, _ = sources
    (root / "slow" / "auth-reload.bin").write_bytes(os.urandom(30 * 1024))  # ~3 s at 10 KiB/s
    dave = SdkLikeClient(auth_server.url, "p1", signer=token_signer(DAVE_TOKEN))
    assert_rejected(dave.list_resources, 401, "APIGW.0301")

    alice = SdkLikeClient(auth_server.url, "p1", signer=token_signer(ALICE_TOKEN))
    in_flight = {}

    def slow_upload():
        try:
            in_flight["result"] = alice.upload_files([url_of(nginx, "slow/auth-reload.bin")], "gs")
        except Exception as e:  # reported by the assertion below
            in_flight["error"] = e

    thread = threading.Thread(target=slow_upload)
    thread.start()
    wait_for_fetch_in_flight(auth_server)  # authenticated with alice's token, being fetched
    users = [dict(USERS[0], tokens=[]), *USERS[1:],  # alice's tokens withdrawn, dave added
             {"name": "dave_new", "projects": ["p1"], "tokens": [{"token": DAVE_TOKEN}]}]
    write_credentials(credentials, users)
    auth_server.proc.send_signal(signal.SIGHUP)
    wait_for_log(auth_server, r"credentials reloaded: 4 user", 1)
    assert thread.is_alive(), "the slow upload finished too early to test anything"
    assert dave.list_resources()["total"] == 0
    assert_rejected(alice.list_resources, 401, "APIGW.0301")
    thread.join(60)
    assert "error" not in in_flight, in_flight.get("error")
    assert in_flight["result"]["owner"] == "alice"

    # A file that no longer parses keeps the credentials in force, and the log says why.
    credentials.write_text('{"users": [{"name": "dave_new", "tokens": [{"token": "' + DAVE_TOKEN)
    auth_server.proc.send_signal(signal.SIGHUP)
    wait_for_log(auth_server, r"credentials not reloaded", 1)
    assert "not valid JSON" in auth_server.logs()
    assert dave.list_resources()["total"] == 1
    assert auth_server.proc.poll() is None


# --- without credentials ------------------------------------------------------------------------
def test_refuses_a_non_loopback_listen_without_credentials(tmp_path):
    done = subprocess.run([str(DLIPKG), "serve", "--listen", "0.0.0.0:0",
                           "--data-dir", str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "refusing to listen on 0.0.0.0:0 without authentication" in done.stderr
    assert "--credentials" in done.stderr and "--insecure-no-auth" in done.stderr


def test_a_bad_credential_file_stops_the_start(tmp_path):
    bad = tmp_path / "credentials.json"
    bad.write_text('{"users": [{"name": "alice", "access_keys": [{"ak": "AK1"}]}]}')
    done = subprocess.run([str(DLIPKG), "serve", "--listen", "127.0.0.1:0",
                           "--data-dir", str(tmp_path / "data"), "--credentials", str(bad)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "users[0] (alice).access_keys[0].sk must be a non-empty string" in done.stdout


def test_insecure_no_auth_on_a_wildcard_address(tmp_path, nginx):
    server = Dlipkg(tmp_path / "data", ["--insecure-no-auth", "--allow-source", "127.0.0.1"],
                    listen="0.0.0.0:0")
    server.start()
    try:
        assert server.address.startswith("127.0.0.1:")
        assert "authentication is disabled (--insecure-no-auth)" in server.logs()
        assert server.api("GET", "/healthz").json() == {"status": "ok", "auth": "disabled"}
        # Credentials are ignored and the configured default owner is used.
        client = SdkLikeClient(server.url, "p1", signer=PySdkSigner("AKUNKNOWN", "whatever"))
        assert client.upload_py_files([url_of(nginx, "a.py")], "g")["owner"] == "local"
        assert client.change_resource_owner("anyone", group_name="g")["is_success"] is True
    finally:
        assert server.stop() == 0


def test_loopback_without_credentials_is_unchanged(server, nginx):
    assert server.api("GET", "/healthz").json() == {"status": "ok"}
    client = SdkLikeClient(server.url, "p1", signer=token_signer("ignored-token"))
    assert client.upload_py_files([url_of(nginx, "a.py")], "g")["owner"] == "local"
