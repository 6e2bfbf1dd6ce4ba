"""Issue 2: each bad input gets its exact status and error_code, and changes nothing."""
import json

import pytest

P = "/v2.0/p1/resources"


def bad_cases(src):
    ok = f"{src}/a.py"
    return [
        # (id, method, path, raw body, status, error_code, text expected in error_msg)
        ("malformed-json", "POST", f"{P}/pyfiles", b'{"paths": [', 400, "DLI.0001", "JSON"),
        ("not-an-object", "POST", f"{P}/pyfiles", b'["a"]', 400, "DLI.0001", "object"),
        ("paths-wrong-type", "POST", f"{P}/pyfiles", json.dumps({"paths": ok, "group": "g"}),
         400, "DLI.0001", "paths"),
        ("path-item-wrong-type", "POST", f"{P}/pyfiles", json.dumps({"paths": [ok, 5], "group": "g"}),
         400, "DLI.0001", "paths[1]"),
        ("paths-missing", "POST", f"{P}/pyfiles", json.dumps({"group": "g"}), 400, "DLI.0001",
         "paths"),
        ("paths-empty", "POST", f"{P}/pyfiles", json.dumps({"paths": [], "group": "g"}), 400,
         "DLI.0001", "paths"),
        ("101-paths", "POST", f"{P}/pyfiles",
         json.dumps({"paths": [f"{src}/m{i}.py" for i in range(101)], "group": "g"}), 400,
         "DLI.0001", "100"),
        ("group-missing", "POST", f"{P}/pyfiles", json.dumps({"paths": [ok]}), 400, "DLI.0001",
         "group"),
        ("group-wrong-type", "POST", f"{P}/jars", json.dumps({"paths": [ok], "group": 7}), 400,
         "DLI.0001", "group"),
        ("group-invalid", "POST", f"{P}/files", json.dumps({"paths": [ok], "group": "a/b"}), 400,
         "DLI.0001", "group"),
        ("group-too-long", "POST", f"{P}/files", json.dumps({"paths": [ok], "group": "g" * 65}),
         400, "DLI.0001", "group"),
        ("name-dotdot", "POST", f"{P}/pyfiles", json.dumps({"paths": [f"{src}/x/%2E%2E"], "group": "g"}),
         400, "DLI.0001", "name"),
        ("name-dot-start", "POST", f"{P}/pyfiles", json.dumps({"paths": [f"{src}/.hidden"], "group": "g"}),
         400, "DLI.0001", "name"),
        ("name-empty", "POST", f"{P}/pyfiles", json.dumps({"paths": [f"{src}/dir/"], "group": "g"}),
         400, "DLI.0001", "path"),
        ("duplicate-names", "POST", f"{P}/pyfiles",
         json.dumps({"paths": [ok, f"{src}/sub/../a.py"], "group": "g"}), 400, "DLI.0001",
         "Duplicate"),
        ("unsupported-scheme", "POST", f"{P}/pyfiles",
         json.dumps({"paths": ["ftp://127.0.0.1/a.py"], "group": "g"}), 400, "DLI.0001", "ftp"),
        ("disallowed-host-metadata", "POST", f"{P}/pyfiles",
         json.dumps({"paths": ["http://169.254.169.254/latest/a.py"], "group": "g"}), 400,
         "DLI.0001", "169.254.169.254"),
        ("disallowed-host-ipv6-loopback", "POST", f"{P}/pyfiles",
         json.dumps({"paths": [f"http://[::1]:{src.rsplit(':', 1)[1]}/a.py"], "group": "g"}),
         400, "DLI.0001", "not allowed"),
        ("body-over-limit", "POST", f"{P}/pyfiles",
         json.dumps({"paths": [ok], "group": "g", "pad": "x" * (1 << 20)}), 413, "DLI.0001", ""),
        ("unknown-route", "GET", "/v2.0/p1/nothing", b"", 404, "APIGW.0101", ""),
        ("unknown-method", "PATCH", f"{P}/a.py", b"", 405, "APIGW.0101", "GET, HEAD, DELETE"),
        ("bad-project", "GET", "/v2.0/p-1/resources", b"", 400, "DLI.0001", "project"),
        ("encoded-slash-name", "GET", f"{P}/dir%2Fsub.py", b"", 400, "DLI.0001", "name"),
        ("invalid-utf8", "POST", f"{P}/pyfiles", b'{"paths": ["\xff"], "group": "g"}', 400,
         "DLI.0001", "JSON"),
        ("deep-nesting", "POST", f"{P}/pyfiles", b"[" * 10000 + b"]" * 10000, 400, "DLI.0001",
         "JSON"),
    ]


@pytest.fixture
def seeded(server, nginx):
    r = server.api("POST", f"{P}/pyfiles", json={"paths": [f"{nginx.url}/a.py"], "group": "keep"})
    assert r.status_code == 200, r.text
    return server


def test_bad_inputs_table(seeded, nginx, tmp_path):
    server = seeded
    before = server.api("GET", P).json()
    blobs_before = sorted(p.name for p in (tmp_path / "data" / "blobs").rglob("*") if p.is_file())
    failures = []
    for case_id, method, path, body, status, code, text in bad_cases(nginx.url):
        data = body.encode() if isinstance(body, str) else body
        r = server.api(method, path, data=data, headers={"Content-Type": "application/json"})
        try:
            err = r.json()
        except ValueError:
            failures.append(f"{case_id}: non-JSON answer {r.status_code} {r.text[:100]!r}")
            continue
        if r.status_code != status or err.get("error_code") != code:
            failures.append(f"{case_id}: got {r.status_code} {err}, want {status} {code}")
        elif text not in err.get("error_msg", ""):
            failures.append(f"{case_id}: message {err['error_msg']!r} lacks {text!r}")
        elif set(err) - {"error_code", "error_msg", "request_id"}:
            failures.append(f"{case_id}: extra keys {set(err)}")
        elif str(tmp_path) in err["error_msg"]:
            failures.append(f"{case_id}: message leaks a server path")
    assert not failures, "\n".join(failures)
    assert server.api("GET", P).json() == before
    blobs_after = sorted(p.name for p in (tmp_path / "data" / "blobs").rglob("*") if p.is_file())
    assert blobs_after == blobs_before
    # The server is still healthy after all of it.
    assert server.api("GET", "/healthz").status_code == 200
