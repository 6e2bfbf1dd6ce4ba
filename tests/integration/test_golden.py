"""Golden request/response files (tests/golden/*.json), run in name order against one server.

Each file: {"request": {method, path, headers?, body?}, "response": {status, body | raw_body}}.
"{src}" in a request is the nginx source URL. In an expected body, "<time>" matches an integer
millisecond timestamp, "<int>" any integer, "<sha256>" 64 lower-case hex, "<string>" any string;
everything else must be equal, with exactly the same keys and JSON types (true is not 1).
"""
import json
import re
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def match(expected, actual, where="$"):
    """Returns a list of mismatches between an expected template and an actual JSON value."""
    if expected == "<time>":
        ok = type(actual) is int and actual > 1_500_000_000_000
        return [] if ok else [f"{where}: want a millisecond time, got {actual!r}"]
    if expected == "<int>":
        return [] if type(actual) is int else [f"{where}: want an integer, got {actual!r}"]
    if expected == "<sha256>":
        ok = isinstance(actual, str) and re.fullmatch(r"[0-9a-f]{64}", actual)
        return [] if ok else [f"{where}: want a sha256, got {actual!r}"]
    if expected == "<string>":
        return [] if isinstance(actual, str) else [f"{where}: want a string, got {actual!r}"]
    if type(expected) is not type(actual):
        return [f"{where}: want {type(expected).__name__} {expected!r}, got {actual!r}"]
    if isinstance(expected, dict):
        problems = [f"{where}: missing key {k!r}" for k in expected.keys() - actual.keys()]
        problems += [f"{where}: unexpected key {k!r}" for k in actual.keys() - expected.keys()]
        for key in expected.keys() & actual.keys():
            problems += match(expected[key], actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return [f"{where}: want {len(expected)} items, got {len(actual)}: {actual!r}"]
        return [p for i, (e, a) in enumerate(zip(expected, actual)) for p in match(e, a, f"{where}[{i}]")]
    return [] if expected == actual else [f"{where}: want {expected!r}, got {actual!r}"]


def test_match_can_fail():
    assert match({"a": "<time>"}, {"a": 1_700_000_000_000}) == []
    assert match({"a": "<time>"}, {"a": "1700000000000"})
    assert match({"a": False}, {"a": 0})
    assert match({"a": 1}, {"a": 1, "b": 2})
    assert match(["x"], [])


def test_golden_files(server, nginx):
    files = sorted(GOLDEN.glob("*.json"))
    assert len(files) >= 15
    problems = []
    for path in files:
        case = json.loads(path.read_text())
        req, want = case["request"], case["response"]
        body = json.dumps(req["body"]).replace("{src}", nginx.url) if "body" in req else None
        headers = {"Content-Type": "application/json", **req.get("headers", {})}
        r = server.api(req["method"], req["path"], data=body, headers=headers)
        found = []
        if r.status_code != want["status"]:
            found.append(f"status {r.status_code}, want {want['status']}: {r.text[:300]}")
        elif "raw_body" in want:
            if r.text != want["raw_body"]:
                found.append(f"body {r.text!r}, want {want['raw_body']!r}")
        else:
            if r.headers.get("Content-Type") != "application/json;charset=UTF-8":
                found.append(f"Content-Type {r.headers.get('Content-Type')}")
            found += match(want["body"], r.json())
        if "X-Request-Id" not in r.headers:
            found.append("no X-Request-Id")
        problems += [f"{path.name}: {p}" for p in found]
    assert not problems, "\n".join(problems)
