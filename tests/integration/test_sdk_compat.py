"""Issue 3: code written for DLI runs unchanged, through a client that sends requests exactly as
the official Python SDK does; routing on the raw path; names round-trip."""
import subprocess
import time

import pytest
import requests

from harness import DLIPKG
from sdk_client import DliError, SdkLikeClient

ODD_NAMES = ["a b+c~d.py", "数据.py", "p%41ct.py"]


@pytest.fixture
def client(server):
    return SdkLikeClient(server.url, "sdk1")


@pytest.fixture(scope="module", autouse=True)
def odd_sources(nginx):
    for name in ODD_NAMES:
        (nginx.root / name).write_bytes(name.encode())


def src(nginx, name):
    from urllib.parse import quote
    return f"{nginx.url}/{quote(name, safe='')}"


def test_whole_lifecycle(client, nginx):
    g = client.upload_py_files([src(nginx, "a.py"), src(nginx, "b.py")], "grp")
    assert g["resources"] == ["a.py", "b.py"] and g["module_type"] == "pyFile"
    m = client.create_resources([src(nginx, "lib.jar"), src(nginx, "a.py")], "jar", group="grp",
                                is_async=False)
    assert m["resources"] == ["a.py", "b.py", "lib.jar"]
    assert [d["resource_type"] for d in m["details"]] == ["jar", "pyFile", "jar"]
    u = client.create_resources([src(nginx, "c.py")], "modelFile",
                                tags=[{"key": "stage", "value": "prod"}])
    assert u["resource_names"] == ["c.py"] and "group_name" not in u

    assert client.list_resources()["total"] == 4
    assert client.list_resources(kind="jar")["total"] == 2
    assert client.list_resources(kind="modelFile")["resources"][0]["resource_name"] == "c.py"
    assert client.list_resources(tags="stage=prod")["total"] == 1
    assert client.list_resources(tags="stage")["total"] == 1
    assert client.list_resources(tags="stage=dev")["total"] == 0

    assert client.show_resource_info("b.py", group="grp")["resource_type"] == "pyFile"
    assert client.show_resource_info("c.py")["tags"] == [{"key": "stage", "value": "prod"}]

    assert client.change_resource_owner("bob_1", group_name="grp") == \
        {"is_success": True, "message": ""}
    assert client.show_resource_info("a.py", group="grp")["owner"] == "bob_1"
    client.change_resource_owner("carol", group_name="grp", resource_name="b.py")
    assert client.show_resource_info("b.py", group="grp")["owner"] == "carol"
    client.change_resource_owner("dave_", resource_name="c.py")
    assert client.show_resource_info("c.py")["owner"] == "dave_"

    assert client.delete_resource("c.py") is None
    assert client.delete_resource("lib.jar", group="grp") is None
    with pytest.raises(DliError) as e:
        client.show_resource_info("c.py")
    assert (e.value.status, e.value.code) == (404, "DLI.0002") and e.value.request_id
    with pytest.raises(DliError) as e:
        client.change_resource_owner("erin_", group_name="nope")
    assert (e.value.status, e.value.code) == (404, "DLI.0002")
    with pytest.raises(DliError) as e:
        client.create_resources([src(nginx, "a.py")], "exe")
    assert (e.value.status, e.value.code) == (400, "DLI.0001")
    queued = client.create_resources([src(nginx, "d.py")], "pyFile", group="grp", is_async=True)
    assert queued["is_async"] is True
    assert [d["status"] for d in queued["details"] if d["resource_name"] == "d.py"] == ["UPLOADING"]
    deadline = time.time() + 20
    while client.show_resource_info("d.py", group="grp")["status"] == "UPLOADING":
        assert time.time() < deadline, "async upload did not settle"
        time.sleep(0.05)
    assert client.show_resource_info("d.py", group="grp")["status"] == "READY"
    assert client.list_resources()["total"] == 3


def test_packages_named_like_routes(client, nginx):
    client.create_resources([src(nginx, "owner"), src(nginx, "jars")], "file")
    client.upload_files([src(nginx, "owner"), src(nginx, "jars")], "routes")
    for group in (None, "routes"):
        assert client.show_resource_info("owner", group=group)["resource_name"] == "owner"
        assert client.show_resource_info("jars", group=group)["resource_name"] == "jars"
        client.delete_resource("owner", group=group)
        client.delete_resource("jars", group=group)
        with pytest.raises(DliError):
            client.show_resource_info("owner", group=group)


@pytest.mark.parametrize("name", ODD_NAMES)
def test_encoded_names_round_trip(client, nginx, name):
    body = client.create_resources([src(nginx, name)], "pyFile", group="odd")
    assert name in body["resources"]
    assert client.show_resource_info(name, group="odd")["resource_name"] == name
    client.delete_resource(name, group="odd")
    with pytest.raises(DliError):
        client.show_resource_info(name, group="odd")


def test_encoded_slash_is_an_invalid_name_not_a_route(client, server):
    r = server.api("GET", "/v2.0/sdk1/resources/dir%2Fsub.py")
    assert r.status_code == 400 and r.json()["error_code"] == "DLI.0001"
    r = server.api("DELETE", "/v2.0/sdk1/resources/dir%2Fsub.py?group=g")
    assert r.status_code == 400 and r.json()["error_code"] == "DLI.0001"


def test_wire_details(server, nginx):
    base = server.url + "/v2.0/wire/resources"
    s = requests.Session()
    compact = '{"paths":["%s/a.py"],"group":"w","unknown":{"x":[1,2]}}' % nginx.url
    r = s.post(base + "/pyfiles", data=compact, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    spaced = '{ "paths" : [ "%s/b.py" ] , "kind" : "pyFile" , "group" : "w" , "is_async" : "false" }' % nginx.url
    r = s.post(base, data=spaced, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["resources"] == ["a.py", "b.py"]
    r = s.get(base, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["total"] == 2
    r = s.delete(base + "/a.py?group=w", headers={"Content-Type": "application/json",
                                                 "Content-Length": "0"})
    assert r.status_code == 200 and r.content == b""
    assert r.headers.get("Content-Length") == "0"


def test_configured_modules_are_listed(start_server, tmp_path):
    modules = tmp_path / "modules.json"
    modules.write_text('[{"module_name": "sys.datasource.dws", "module_type": "jar", '
                       '"description": "DWS", "resources": ["dws.jar"]}]')
    server = start_server("--modules", str(modules))
    body = SdkLikeClient(server.url, "m1").list_resources()
    assert body["modules"] == [{"module_name": "sys.datasource.dws", "module_type": "jar",
                                "status": "READY", "description": "DWS",
                                "resources": ["dws.jar"], "create_time": 0, "update_time": 0}]
    assert body["total"] == 0


@pytest.mark.parametrize("flag, content", [
    ("--modules", '[{"module_name": 42}]'),
    ("--object-stores", '{"stores": "not a list"}'),
])
def test_a_bad_configuration_file_stops_the_start_before_any_store_is_touched(tmp_path, flag,
                                                                            content):
    # Both files are read and validated before the data directory is created, the metadata
    # store opened or recovered: a mistake in one changes nothing.
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    data_dir = tmp_path / "never-created"
    done = subprocess.run([str(DLIPKG), "serve", "--listen", "127.0.0.1:0", "--data-dir",
                           str(data_dir), flag, str(bad)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0, done.stderr
    assert flag in done.stdout + done.stderr, done.stdout + done.stderr
    assert not data_dir.exists()
