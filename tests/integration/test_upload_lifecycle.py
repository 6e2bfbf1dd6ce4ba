"""Issue 2, user steps 1-5: upload, overwrite, failure keeps the old group, shutdown, restart."""
import concurrent.futures
import threading
import time

from conftest import sha256
from harness import wait_for_fetch_in_flight, wait_until

P = "/v2.0/p1/resources"


def upload(server, nginx, names, group="g1", kind="pyfiles", project="p1"):
    paths = [f"{nginx.url}/{n}" for n in names]
    return server.api("POST", f"/v2.0/{project}/resources/{kind}",
                      json={"paths": paths, "group": group})


def listing(server, project="p1", query=""):
    r = server.api("GET", f"/v2.0/{project}/resources{query}")
    assert r.status_code == 200, r.text
    return r.json()


def content(server, name, group="g1", project="p1"):
    return server.api("GET", f"/v2.0/{project}/resources/{name}/content?group={group}")


def test_typed_upload_answers_spec_shape(server, nginx, sources):
    r = upload(server, nginx, ["a.py", "b.py"])
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert len(r.headers["X-Request-Id"]) >= 16
    body = r.json()
    expected = {"group_name": str, "status": str, "resources": list, "details": list,
                "create_time": int, "update_time": int, "is_async": bool, "owner": str,
                "description": str, "module_name": str, "module_type": str}
    for key, kind in expected.items():
        assert isinstance(body[key], kind), (key, body[key])
    assert body["group_name"] == "g1" and body["module_name"] == "g1"
    assert body["status"] == "READY" and body["is_async"] is False
    assert body["resources"] == ["a.py", "b.py"]
    assert body["module_type"] == "pyFile"
    assert body["create_time"] > 1_600_000_000_000  # milliseconds
    for detail, name in zip(body["details"], ["a.py", "b.py"]):
        assert detail["resource_name"] == name
        assert detail["resource_type"] == "pyFile"
        assert detail["status"] == "READY"
        assert detail["is_async"] is False
        assert isinstance(detail["create_time"], int) and isinstance(detail["update_time"], int)
        assert isinstance(detail["underlying_name"], str) and detail["underlying_name"]
        assert detail["owner"] == body["owner"] == "local"
        assert detail["sha256"] == sha256(sources[1][name])
        assert detail["size"] == len(sources[1][name])


def test_list_show_delete(server, nginx, sources):
    assert upload(server, nginx, ["a.py", "b.py"]).status_code == 200
    body = listing(server)
    assert body["resources"] == [] and body["modules"] == [] and body["total"] == 2
    [group] = body["groups"]
    assert group["group_name"] == "g1" and group["resources"] == ["a.py", "b.py"]
    for name in ("a.py", "b.py"):
        r = server.api("GET", f"{P}/{name}?group=g1")
        assert r.status_code == 200, r.text
        assert r.json()["resource_name"] == name
        assert content(server, name).content == sources[1][name]
    r = server.api("DELETE", f"{P}/a.py?group=g1")
    assert r.status_code == 200 and r.content == b""
    assert server.api("GET", f"{P}/a.py?group=g1").status_code == 404
    assert listing(server)["groups"][0]["resources"] == ["b.py"]
    r = server.api("DELETE", f"{P}/a.py?group=g1")
    assert r.status_code == 404 and r.json()["error_code"] == "DLI.0002"


def test_kind_filter(server, nginx):
    assert upload(server, nginx, ["a.py"], group="py").status_code == 200
    assert upload(server, nginx, ["lib.jar"], group="jv", kind="jars").status_code == 200
    jars = listing(server, query="?kind=jar")
    assert [g["group_name"] for g in jars["groups"]] == ["jv"] and jars["total"] == 1
    assert listing(server, query="?kind=")["total"] == 2
    r = server.api("GET", f"{P}?kind=exe")
    assert r.status_code == 400 and r.json()["error_code"] == "DLI.0001"


def test_overwrite_replaces_whole_group_and_keeps_create_time(server, nginx, sources):
    first = upload(server, nginx, ["a.py", "b.py"]).json()
    # The server stamps times in ms from the same clock: wait until that clock has moved on.
    wait_until(lambda: time.time() * 1000 > first["update_time"] + 1, "the clock to move on")
    second = upload(server, nginx, ["c.py"]).json()
    assert second["resources"] == ["c.py"]
    assert second["create_time"] == first["create_time"]
    assert second["update_time"] > first["update_time"]
    [group] = listing(server)["groups"]
    assert group["resources"] == ["c.py"]
    assert server.api("GET", f"{P}/a.py?group=g1").status_code == 404
    assert content(server, "c.py").content == sources[1]["c.py"]


def snapshot(server):
    """Everything a client can see of project p1, bytes included."""
    body = listing(server)
    blobs = {}
    for g in body["groups"]:
        for name in g["resources"]:
            blobs[(g["group_name"], name)] = content(server, name, g["group_name"]).content
    return body, blobs


def test_failed_upload_keeps_previous_group(server, nginx):
    assert upload(server, nginx, ["a.py", "b.py"]).status_code == 200
    before = snapshot(server)
    r = upload(server, nginx, ["c.py", "missing.py"])
    assert r.status_code == 400
    err = r.json()
    assert err["error_code"] == "DLI.0012"
    assert "missing.py" in err["error_msg"] and "404" in err["error_msg"]
    assert snapshot(server) == before


def test_failed_upload_by_timeout_and_size_keeps_previous_group(start_server, nginx):
    server = start_server("--fetch-timeout", "2", "--max-object-size", "1MiB")
    assert upload(server, nginx, ["a.py"]).status_code == 200
    before = snapshot(server)
    started = time.time()
    r = upload(server, nginx, ["b.py", "slow/big.bin"])
    assert r.status_code == 400 and r.json()["error_code"] == "DLI.0012", r.text
    assert "slow/big.bin" in r.json()["error_msg"]
    assert time.time() - started < 15
    r = upload(server, nginx, ["big.bin"])
    assert r.status_code == 400 and r.json()["error_code"] == "DLI.0012", r.text
    assert "big.bin" in r.json()["error_msg"]
    assert snapshot(server) == before


def test_sigterm_finishes_in_flight_requests_then_exits_zero(start_server, nginx, sources,
                                                              tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    results = {}

    def slow_upload():
        # 30 KiB at 10 KiB/s: in flight for about 3 s.
        results["r"] = upload(server, nginx, ["slow/small.bin", "a.py"], group="slow")

    (nginx.root / "slow" / "small.bin").write_bytes(b"x" * 30_000)
    t = threading.Thread(target=slow_upload)
    t.start()
    wait_for_fetch_in_flight(server)
    assert server.stop() == 0
    t.join()
    assert results["r"].status_code == 200, results["r"].text
    # A restart on the same data directory sees everything, with verified bytes.
    again = start_server(data_dir=tmp_path / "d")
    body = listing(again)
    assert body["groups"][0]["resources"] == ["small.bin", "a.py"]
    for detail in body["groups"][0]["details"]:
        data = content(again, detail["resource_name"], "slow").content
        assert sha256(data) == detail["sha256"]
    assert content(again, "a.py", "slow").content == sources[1]["a.py"]


def test_restart_keeps_everything(start_server, nginx, sources, tmp_path):
    first = start_server(data_dir=tmp_path / "d")
    upload(first, nginx, ["a.py", "lib.jar", "big.bin"], kind="files")
    before = listing(first)
    assert first.stop() == 0
    second = start_server(data_dir=tmp_path / "d")
    assert listing(second) == before
    for name in ("a.py", "lib.jar", "big.bin"):
        assert content(second, name).content == sources[1][name]


def test_concurrent_uploads_to_one_group_never_interleave(start_server, nginx):
    # 20 synchronous uploads at once: more than the default --max-sync-uploads (half the 32
    # handler threads) would admit, so the server is told to admit them all.
    server = start_server("--max-sync-uploads", "24")
    sets = [[f"m{i:02d}.py", f"m{(i + 1) % 30:02d}.py", f"m{(i + 7) % 30:02d}.py"]
            for i in range(20)]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda s: upload(server, nginx, s, group="race").status_code, sets))
    assert codes == [200] * 20
    [group] = listing(server)["groups"]
    assert group["resources"] in sets
    assert len(group["details"]) == 3


def test_projects_are_isolated(server, nginx):
    assert upload(server, nginx, ["a.py"], project="p1").status_code == 200
    other = listing(server, project="p2")
    assert other["groups"] == [] and other["total"] == 0
    r = server.api("GET", "/v2.0/p2/resources/a.py?group=g1")
    assert r.status_code == 404 and r.json()["error_code"] == "DLI.0002"
    assert server.api("DELETE", "/v2.0/p2/resources/a.py?group=g1").status_code == 404
    assert listing(server)["total"] == 1


def test_percent_encoded_name_shown_and_deleted(server, nginx, sources):
    r = server.api("POST", f"{P}/pyfiles",
                   json={"paths": [f"{nginx.url}/a%20b.py"], "group": "sp"})
    assert r.status_code == 200, r.text
    assert r.json()["resources"] == ["a b.py"]
    r = server.api("GET", f"{P}/a%20b.py?group=sp")
    assert r.status_code == 200 and r.json()["resource_name"] == "a b.py"
    assert content(server, "a%20b.py", "sp").content == sources[1]["a b.py"]
    assert server.api("DELETE", f"{P}/a%20b.py?group=sp").status_code == 200
    assert server.api("GET", f"{P}/a%20b.py?group=sp").status_code == 404


def test_file_urls_below_an_allowed_root(start_server, sources):
    root, files = sources
    server = start_server("--allow-file-root", str(root))
    r = server.api("POST", f"{P}/files", json={"paths": [f"file://{root}/lib.jar"], "group": "f"})
    assert r.status_code == 200, r.text
    assert content(server, "lib.jar", "f").content == files["lib.jar"]
    r = server.api("POST", f"{P}/files", json={"paths": ["file:///etc/passwd"], "group": "f"})
    assert r.status_code == 400 and r.json()["error_code"] == "DLI.0001"
    assert "/etc" not in r.json()["error_msg"] or "file:///etc/passwd" in r.json()["error_msg"]
    assert listing(server)["groups"][0]["resources"] == ["lib.jar"]


def test_listening_line_survives_a_quiet_log_level(start_server):
    server = start_server("--log-level", "warn")  # start() needs the line to find the port
    assert "listening on " + server.address in server.logs()
    assert "access id=" not in server.logs()
    assert server.api("GET", "/healthz").status_code == 200
