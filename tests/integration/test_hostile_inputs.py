"""Issue 5: hostile inputs through the real server. Each gets its answer (status and error_code)
and leaves nothing behind: the listing is unchanged and no file appears under <data>/blobs or
<data>/tmp. Protocol-level abuse (floods, a slow client) must not stop the server serving.

Every case lands in one table, printed with `pytest -s` and written to build/hostile-inputs.md
(hostile input -> expected -> what it got), which the closing note quotes.
"""
import json
import select
import socket
import time

import pytest

from harness import ROOT
from source_server import SourceServer

P = "/v2.0/p1/resources"
TABLE = ROOT / "build" / "hostile-inputs.md"
READ_TIMEOUT_S = 2
MAX_OBJECT = 1 << 20
ROWS = []  # (section, input, expected, got, ok)


@pytest.fixture(scope="module", autouse=True)
def table():
    yield
    lines = ["| # | hostile input | expected | got | ok |", "| --- | --- | --- | --- | --- |"]
    for i, (section, shown, expected, got, ok) in enumerate(ROWS, 1):
        cells = [str(i), f"{section}: {shown}", expected, got, "yes" if ok else "**NO**"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    text = "\n".join(lines) + "\n"
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text(text)
    print("\n" + text)


def record(section, shown, expected, got, ok):
    ROWS.append((section, shown, expected, got, ok))
    return None if ok else f"{section}: {shown}: expected {expected}, got {got}"


@pytest.fixture(scope="module")
def hostile_source():
    source = SourceServer().start()
    yield f"{source.url}/hostile"
    source.stop()


def snapshot(server):
    files = sorted(str(p.relative_to(server.data_dir))
                   for d in ("blobs", "tmp") for p in (server.data_dir / d).rglob("*")
                   if p.is_file())
    return server.api("GET", P).json(), files


def describe(r):
    try:
        err = r.json()
        return r.status_code, err.get("error_code", ""), err.get("error_msg", "")
    except ValueError:
        return r.status_code, "", r.text[:80]


def run_requests(server, section, cases):
    """cases: (shown input, method, path, body bytes, status, error_code, text in error_msg).
    Returns the failures; every case is recorded in the table."""
    failures = []
    for shown, method, path, body, status, code, text in cases:
        before = snapshot(server)
        r = server.api(method, path, data=body, headers={"Content-Type": "application/json"},
                       timeout=60)
        got_status, got_code, message = describe(r)
        changed = snapshot(server) != before
        got = f"{got_status} {got_code}: {message}" + (" [SOMETHING WAS STORED]" if changed else "")
        ok = (got_status, got_code) == (status, code) and text in message and not changed
        failures.append(record(section, shown, f"{status} {code} ({text!r})", got, ok))
    return [f for f in failures if f]


def upload(url):
    return json.dumps({"paths": [url], "group": "g"}).encode()


def source_cases(urls, status, code, text):
    return [(url, "POST", f"{P}/pyfiles", upload(url), status, code, text) for url in urls]


@pytest.fixture
def seeded(start_server, tmp_path):
    """A server with no loopback allowance and a short read timeout, holding one package (from
    a file:// root, the one local source it allows), so "nothing changed" has something to keep."""
    files = tmp_path / "files"
    files.mkdir()
    (files / "seed.py").write_bytes(b"print('seed')\n")
    server = start_server("--read-timeout", str(READ_TIMEOUT_S), "--allow-file-root", str(files),
                          allow_loopback=False, data_dir=tmp_path / "data-a")
    r = server.api("POST", f"{P}/files", json={"paths": [f"file://{files}/seed.py"],
                                                "group": "keep"})
    assert r.status_code == 200, r.text
    return server


def test_addresses_the_policy_refuses(seeded, nginx):
    port = nginx.url.rsplit(":", 1)[1]
    loopback_forms = [f"http://{host}:{port}/a.py" for host in (
        "127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001", "0177.0.0.1",
        "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "0.0.0.0")]
    inside = ["http://169.254.169.254/latest/meta-data/a.py", "http://10.0.0.1/a.py",
              "http://192.168.1.1/a.py", "http://[fd00::1]/a.py", "http://[fe80::1]/a.py"]
    failures = run_requests(seeded, "address", [
        *source_cases(inside[:1], 400, "DLI.0001", "not allowed"),
        *source_cases(loopback_forms, 400, "DLI.0001", "not allowed"),
        *source_cases(inside[1:], 400, "DLI.0001", "not allowed"),
    ])
    assert not failures, "\n".join(failures)


def test_names_that_decode_to_dot_dot(seeded, nginx):
    src = nginx.url
    failures = run_requests(seeded, "name", [
        *source_cases([f"{src}/x/%2E%2E%2Fa.py", f"{src}/x/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                       f"{src}/x/..%2Fa.py", f"{src}/%2E%2E", f"{src}/x/%2E%2E/"],
                      400, "DLI.0001", "path"),
        ("GET .../resources/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "GET",
         f"{P}/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", b"", 400, "DLI.0001", "name"),
        ("DELETE .../resources/%2E%2E", "DELETE", f"{P}/%2E%2E", b"", 400, "DLI.0001", "name"),
    ])
    assert not failures, "\n".join(failures)


def test_hostile_request_bodies(seeded, nginx):
    failures = run_requests(seeded, "body", [
        ("JSON nested 10,000 deep", "POST", f"{P}/pyfiles", b"[" * 10000 + b"]" * 10000,
         400, "DLI.0001", "JSON"),
        ('JSON object nested 10,000 deep', "POST", f"{P}/pyfiles",
         b'{"a":' * 10000 + b"1" + b"}" * 10000, 400, "DLI.0001", "JSON"),
        ("invalid UTF-8 (\\xff) in a path", "POST", f"{P}/pyfiles",
         b'{"paths": ["http://x/\xff.py"], "group": "g"}', 400, "DLI.0001", "JSON"),
        ("invalid UTF-8 (overlong \\xc0\\xaf)", "POST", f"{P}/pyfiles",
         b'{"paths": ["http://x/\xc0\xaf.py"], "group": "g"}', 400, "DLI.0001", "JSON"),
        ("body of 2 MiB (limit 1 MiB)", "POST", f"{P}/pyfiles",
         b'{"paths": ["' + b"x" * (2 << 20) + b'"]}', 413, "DLI.0001", ""),
    ])
    assert not failures, "\n".join(failures)


# --- protocol-level abuse: raw sockets --------------------------------------------------------

def connect(server, timeout=10):
    host, port = server.address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


def read_reply(sock, timeout=10):
    """The status line the server sent, or how the connection ended."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return data.split(b"\r\n")[0].decode(errors="replace") or "connection reset"
    except socket.timeout:
        return "no answer within %d s" % timeout
    return data.split(b"\r\n")[0].decode(errors="replace") or "connection closed"


def send_raw(server, data):
    with connect(server) as sock:
        try:
            sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server stopped reading: what it said before, if anything, is below
        return read_reply(sock)


def refused_or_closed(reply, statuses):
    return any(f" {s} " in reply + " " for s in statuses) or reply in (
        "connection closed", "connection reset")


def healthy(server):
    return server.api("GET", "/healthz", timeout=10).status_code == 200


def test_header_and_body_floods(seeded):
    server = seeded
    before = snapshot(server)
    request = f"POST {P}/pyfiles HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    many = request + "".join(f"X-Flood-{i}: {'v' * 20}\r\n" for i in range(10000)) + "\r\n"
    huge = request + "X-Huge: " + "h" * (256 << 10) + "\r\n\r\n"
    chunk = b"x" * 65536
    chunked = (request + "Transfer-Encoding: chunked\r\n\r\n").encode() + \
        b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(64)) + b"0\r\n\r\n"
    cases = [
        ("header flood: 10,000 headers (~300 KiB)", many.encode(), (400, 413, 431)),
        ("header flood: one 256 KiB header", huge.encode(), (400, 413, 431)),
        ("body flood: 4 MiB chunked body (limit 1 MiB)", chunked, (413,)),
    ]
    failures = []
    for shown, data, statuses in cases:
        reply = send_raw(server, data)
        alive = healthy(server)
        ok = refused_or_closed(reply, statuses) and alive
        expected = " or ".join(map(str, statuses)) + " (or close), then still serving"
        failures.append(record("protocol", shown, expected,
                               f"{reply}; serving afterwards: {alive}", ok))
    assert snapshot(server) == before
    failures = [f for f in failures if f]
    assert not failures, "\n".join(failures)


def test_slow_client_is_cut_off_by_the_read_timeout(seeded):
    """One byte a second: the server must drop the connection once its read timeout passes,
    and keep answering everyone else meanwhile."""
    server = seeded
    body = json.dumps({"paths": ["http://x/a.py"], "group": "g"})
    request = (f"POST {P}/pyfiles HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
    sock = connect(server)
    start = time.monotonic()
    outcome = f"still open after {len(request)} s"
    served_meanwhile = None
    for i, byte in enumerate(request):
        try:
            sock.send(bytes([byte]))
        except OSError:
            outcome = "closed (send failed)"
            break
        readable, _, _ = select.select([sock], [], [], 1.0)
        if i == 1:
            served_meanwhile = healthy(server)
        if readable:
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            outcome = data.split(b"\r\n")[0].decode(errors="replace") or "closed"
            break
        if time.monotonic() - start > READ_TIMEOUT_S + 10:
            break
    elapsed = time.monotonic() - start
    sock.close()
    ok = elapsed < READ_TIMEOUT_S + 3 and served_meanwhile and healthy(server)
    failure = record("protocol", f"slow client, 1 byte/s (--read-timeout {READ_TIMEOUT_S})",
                     f"cut off after ~{READ_TIMEOUT_S} s, others still served",
                     f"{outcome} after {elapsed:.1f} s; others served meanwhile: "
                     f"{served_meanwhile}", ok)
    assert not failure, failure


# --- misbehaving sources ----------------------------------------------------------------------

def test_misbehaving_sources(start_server, hostile_source, tmp_path):
    """The source's host is allowed (127.0.0.1); what it does is not."""
    server = start_server("--deny-source", "localhost", "--deny-source", "198.51.100.0/24",
                          "--max-object-size", str(MAX_OBJECT),
                          "--fetch-first-byte-timeout", "1", "--fetch-stall-timeout", "1",
                          data_dir=tmp_path / "data-b")
    src = hostile_source
    r = server.api("POST", f"{P}/pyfiles", json={"paths": [f"{src}/ok.py"], "group": "keep"})
    assert r.status_code == 200, r.text  # the source itself is reachable
    port = src.rsplit(":", 1)[1].split("/")[0]
    failures = run_requests(server, "source", [
        *source_cases([f"{src}/redirect-to-denied/ok.py", f"{src}/redirect-to-metadata/ok.py"],
                      400, "DLI.0001", "redirect to another host refused"),
        *source_cases([f"http://localhost:{port}/ok.py"], 400, "DLI.0001",
                      "source host 'localhost' is denied"),
        *source_cases(["http://198.51.100.7/ok.py"], 400, "DLI.0001",
                      "address the server's source policy denies"),
        *source_cases([f"{src}/short-body.py"], 400, "DLI.0012", "transfer ended early"),
        *source_cases([f"{src}/huge-length.py", f"{src}/endless.py"], 400, "DLI.0012",
                      f"larger than the limit of {MAX_OBJECT} bytes"),
        *source_cases([f"{src}/no-answer.py"], 400, "DLI.0012", "first-byte timeout"),
        *source_cases([f"{src}/stall.py"], 400, "DLI.0012", "timed out"),
    ])
    assert not failures, "\n".join(failures)
