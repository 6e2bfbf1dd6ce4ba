"""The `dlipkg` client end to end against the real server on loopback with --credentials on:
every subcommand in AK/SK and in token mode, local files (300 MiB with its progress bar on a
pseudo-terminal), URLs, both mixed, --replace all-or-nothing, a corrupted download, an async
upload that fails, spark-args URLs used without headers (Python import, Java class loading),
exit statuses and the profile file. Only 127.0.0.1 is ever connected to.
"""
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import xxhash

from client_util import (ALICE_AK, ALICE_SK, ALICE_TOKEN, USERS, CorruptingProxy, client_env,
                         ok, run, run_in_pty)
from harness import free_port

MODES = ["aksk", "token"]


@pytest.fixture
def server(start_server, tmp_path):
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"users": USERS}))
    credentials.chmod(0o600)
    return start_server("--credentials", str(credentials), "--max-body-size", "1MiB")


@pytest.fixture(params=MODES)
def env(request, server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return client_env(server, request.param, home)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def show(env, name, group=None):
    args = ["show", name, "--json"] + (["--group", group] if group else [])
    return json.loads(ok(env, *args).stdout)


def group_names(env, group):
    listing = json.loads(ok(env, "ls", "--json").stdout)
    for entry in listing["groups"]:
        if entry["group_name"] == group:
            return sorted(entry["resources"])
    return []


# --- every subcommand, both credential modes ------------------------------------------------
def test_push_ls_show_get_chown_rm_wait(env, tmp_path):
    files = {"a.py": b"VALUE = 'a'\n", "lib.jar": os.urandom(50_000),
             "model.bin": os.urandom(2_500_000)}  # larger than --max-body-size: streamed
    paths = [str(write(tmp_path / "src" / n, d)) for n, d in files.items()]
    pushed = ok(env, "push", "--group", "etl", *paths)
    # The summary names each package with its kind (from the extension) and READY.
    for name, kind in [("a.py", "pyFile"), ("lib.jar", "jar"), ("model.bin", "file")]:
        assert re.search(rf"^{re.escape(name)}\s+{kind}\s+etl\s+READY", pushed.stdout, re.M), \
            pushed.stdout
    for name, data in files.items():
        package = show(env, name, "etl")
        assert (package["sha256"], package["size"], package["owner"]) == \
            (sha256(data), len(data), "alice")
    # The direct-upload route takes no tags: refused before anything is sent.
    tagged = run(env, "push", "--group", "etl", "--tag", "team=data", paths[0])
    assert tagged.returncode == 2 and "--tag" in tagged.stderr

    table = ok(env, "ls", "--group", "etl").stdout.splitlines()
    assert table[0].split() == ["GROUP", "NAME", "TYPE", "STATUS", "SIZE", "OWNER", "UPDATED"]
    assert any(line.split()[:4] == ["etl", "lib.jar", "jar", "READY"] for line in table), table
    assert [line.split()[1] for line in ok(env, "ls", "--kind", "jar").stdout.splitlines()[1:]] \
        == ["lib.jar"]
    assert "sha256:" in ok(env, "show", "model.bin", "--group", "etl").stdout

    out = tmp_path / "out"
    ok(env, "get", "model.bin", "--group", "etl", "-o", str(out) + "/")
    assert (out / "model.bin").read_bytes() == files["model.bin"]
    ok(env, "get", "--group", "etl", "-o", str(tmp_path / "all"))
    for name, data in files.items():
        assert (tmp_path / "all" / name).read_bytes() == data

    ok(env, "chown", "bobby", "--group", "etl")
    assert show(env, "a.py", "etl")["owner"] == "bobby"
    ok(env, "chown", "alice", "lib.jar", "--group", "etl")
    assert show(env, "lib.jar", "etl")["owner"] == "alice"

    ok(env, "rm", "a.py", "--group", "etl")
    assert run(env, "show", "a.py", "--group", "etl").returncode == 3
    assert group_names(env, "etl") == ["lib.jar", "model.bin"]
    waited = ok(env, "wait", "--group", "etl", "--timeout", "30")
    assert re.search(r"^model\.bin\s+READY", waited.stdout, re.M)


def test_push_of_urls_and_mixed_with_local_files(env, tmp_path, nginx, sources):
    _, served = sources
    ok(env, "push", "--group", "web", "--tag", "team=data", f"{nginx.url}/a.py",
       f"{nginx.url}/lib.jar")
    assert {"key": "team", "value": "data"} in show(env, "a.py", "web")["tags"]
    assert show(env, "lib.jar", "web")["resource_type"] == "jar"
    assert show(env, "a.py", "web")["sha256"] == sha256(served["a.py"])
    local = write(tmp_path / "local.py", b"print('local')\n")
    done = ok(env, "push", "--group", "web", str(local), f"{nginx.url}/b.py",
              f"{nginx.url}/big.bin")
    assert group_names(env, "web") == ["a.py", "big.bin", "b.py", "lib.jar", "local.py"] or \
        group_names(env, "web") == sorted(["a.py", "big.bin", "b.py", "lib.jar", "local.py"])
    assert show(env, "big.bin", "web")["sha256"] == sha256(served["big.bin"])
    assert show(env, "local.py", "web")["sha256"] == sha256(b"print('local')\n")
    assert "big.bin" in done.stdout and "local.py" in done.stdout
    # Ungrouped, with an explicit kind.
    ok(env, "push", "--kind", "modelFile", f"{nginx.url}/c.py")
    assert show(env, "c.py")["resource_type"] == "modelFile"


def test_wait_reports_a_failed_async_upload(env, nginx):
    ok(env, "push", "--async", "--group", "late", f"{nginx.url}/missing-file.py")
    done = run(env, "wait", "--group", "late", "--timeout", "60")
    assert done.returncode == 1, done.stderr
    assert "missing-file.py FAILED" in done.stderr and "404" in done.stderr


def test_exit_statuses_and_messages(env, tmp_path):
    missing = run(env, "show", "nothing.py")
    assert missing.returncode == 3 and "DLI.0002" in missing.stderr
    assert run(env, "rm", "nothing.py", "--group", "none").returncode == 3
    usage = run(env, "push", str(tmp_path / "no-such-file.py"))
    assert usage.returncode == 2 and "no-such-file.py" in usage.stderr
    assert run(env, "push", "--kind", "wheel", "x.py").returncode == 2
    refused = run(env, "chown", "nobody_at_all", "--group", "none")
    assert refused.returncode in (1, 3) and "DLI." in refused.stderr


@pytest.mark.parametrize("mode", MODES)
def test_wrong_credentials_exit_with_the_auth_status(server, tmp_path, mode):
    wrong = {"aksk": {"DLIPKG_SK": "sk-wrong-0000000000000000000000000000"},
             "token": {"DLIPKG_TOKEN": "tok-wrong-000000000000000000000000000"}}[mode]
    env = client_env(server, mode, tmp_path, **wrong)
    done = run(env, "ls")
    assert done.returncode == 4, done.stderr
    assert "APIGW.0301" in done.stderr
    assert wrong.popitem()[1] not in done.stderr
    other = client_env(server, mode, tmp_path, DLIPKG_PROJECT="p2")
    assert run(other, "ls").returncode == 4  # alice may not use p2


def test_an_unreachable_server_is_retried_then_a_network_status(tmp_path):
    env = client_env(type("S", (), {"url": f"http://127.0.0.1:{free_port()}"}), "token",
                     tmp_path)
    done = run(env, "ls", timeout=60)
    assert done.returncode == 5
    assert "cannot reach" in done.stderr and "4 attempts" in done.stderr


# --- large files and progress ---------------------------------------------------------------
def test_300_mib_push_draws_a_progress_bar_on_a_terminal(server, tmp_path):
    big = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(300):
            chunk = block[:-4] + i.to_bytes(4, "big")
            digest.update(chunk)
            f.write(chunk)
    env = client_env(server, "aksk", tmp_path)
    code, stdout, terminal = run_in_pty(env, "push", "--group", "large", str(big))
    assert code == 0, terminal
    assert "300.0 MiB / 300.0 MiB" in terminal, terminal[-500:]
    assert "ETA" in terminal and "MiB/s" in terminal
    assert terminal.count("\r") >= 2  # drawn and redrawn, not printed once
    assert "[" + "=" * 10 in terminal
    assert re.search(r"^big\.bin\s+file\s+large\s+READY", stdout, re.M), stdout
    assert show(env, "big.bin", "large")["sha256"] == digest.hexdigest()
    # Not a terminal: no bar unless --progress; --quiet prints nothing at all.
    small = write(tmp_path / "s.py", b"x = 1\n")
    assert "ETA" not in ok(env, "push", "--group", "large", str(small)).stderr
    assert "ETA" in ok(env, "push", "--progress", "--group", "large", str(small)).stderr
    quiet = ok(env, "push", "-q", "--group", "large", str(small))
    assert quiet.stdout == "" and quiet.stderr == ""


# --- replace ----------------------------------------------------------------------------------
def test_replace_is_all_or_nothing(env, tmp_path, nginx):
    old = [str(write(tmp_path / "old" / n, f"old {n}\n".encode())) for n in ("a.py", "b.py")]
    ok(env, "push", "--group", "rep", *old)
    before = {n: show(env, n, "rep")["sha256"] for n in ("a.py", "b.py")}
    new = [str(write(tmp_path / "new" / n, f"new {n}\n".encode())) for n in ("b.py", "c.py")]
    # The second local file would succeed, the URL fails: nothing changes.
    failed = run(env, "push", "--replace", "--group", "rep", *new, f"{nginx.url}/no-such.py")
    assert failed.returncode != 0
    assert group_names(env, "rep") == ["a.py", "b.py"]
    assert {n: show(env, n, "rep")["sha256"] for n in ("a.py", "b.py")} == before
    ok(env, "push", "--replace", "--group", "rep", *new, f"{nginx.url}/d.py")
    assert group_names(env, "rep") == ["b.py", "c.py", "d.py"]
    assert show(env, "b.py", "rep")["sha256"] == sha256(b"new b.py\n")


@pytest.mark.parametrize("mode", ["aksk", "token"])
def test_push_of_bytes_altered_on_the_way_fails_and_removes_the_package(server, tmp_path, mode):
    """push reads the file once (UNSIGNED-PAYLOAD) and compares the XXH3-128 of the bytes the
    server received with its own: bytes altered in flight are caught, and the package they made
    is removed."""
    env = client_env(server, mode, tmp_path)
    data = os.urandom(300_000)
    path = write(tmp_path / "src" / "moved.bin", data)
    with CorruptingProxy(server.address, "/resources/moved.bin/content", uploads=True) as proxy:
        bad = client_env(server, mode, tmp_path, DLIPKG_ENDPOINT=proxy.url)
        done = run(bad, "push", "--group", "up", str(path))
    assert done.returncode == 1, done.stderr
    assert xxhash.xxh3_128_hexdigest(data) in done.stderr, done.stderr
    assert "the package was removed" in done.stderr
    gone = run(env, "show", "moved.bin", "--group", "up")
    assert gone.returncode == 3, gone.stderr
    ok(env, "push", "--group", "up", str(path))
    assert show(env, "moved.bin", "up")["sha256"] == sha256(data)


# --- downloads --------------------------------------------------------------------------------
def test_get_refuses_a_corrupted_download(server, tmp_path):
    env = client_env(server, "aksk", tmp_path)
    data = os.urandom(300_000)
    ok(env, "push", "--group", "cg", str(write(tmp_path / "src" / "data.bin", data)))
    out = tmp_path / "out"
    out.mkdir()
    with CorruptingProxy(server.address, "/files/cg/data.bin") as proxy:
        bad = client_env(server, "aksk", tmp_path, DLIPKG_ENDPOINT=proxy.url)
        done = run(bad, "get", "data.bin", "--group", "cg", "-o", str(out))
    assert done.returncode == 1, done.stderr
    assert "do not match" in done.stderr
    assert list(out.iterdir()) == []  # neither the file nor a temporary is left
    ok(env, "get", "data.bin", "--group", "cg", "-o", str(out))
    assert (out / "data.bin").read_bytes() == data


def test_get_of_bytes_altered_on_the_server_leaves_nothing(server, tmp_path):
    env = client_env(server, "token", tmp_path)
    data = os.urandom(200_000)
    ok(env, "push", "--group", "disk", str(write(tmp_path / "src" / "blob.bin", data)))
    blob = next(p for p in (server.data_dir / "blobs").rglob(sha256(data)))
    altered = bytearray(blob.read_bytes())
    altered[-1] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(altered))
    out = tmp_path / "out"
    out.mkdir()
    done = run(env, "get", "blob.bin", "--group", "disk", "-o", str(out))
    assert done.returncode != 0 and "blob.bin" in done.stderr, done.stderr
    assert list(out.iterdir()) == []
    assert show(env, "blob.bin", "disk")["status"] == "FAILED"


# --- spark-args -------------------------------------------------------------------------------
def fetch_as_spark_does(url, into):
    """Downloads without any header, saved under the URL's last path segment."""
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    with urllib.request.urlopen(url, timeout=30) as answer:
        (into / urllib.request.url2pathname(name)).write_bytes(answer.read())
    return into / urllib.request.url2pathname(name)


def make_jar(tmp_path):
    src = tmp_path / "java" / "src" / "demo"
    src.mkdir(parents=True)
    (src / "Hello.java").write_text(
        "package demo; public class Hello { public String toString() { return \"hello from jar\"; } }\n")
    classes = tmp_path / "java" / "classes"
    subprocess.run(["javac", "-d", str(classes), str(src / "Hello.java")], check=True, timeout=120)
    jar = tmp_path / "java" / "demo.jar"
    subprocess.run(["jar", "cf", str(jar), "-C", str(classes), "."], check=True, timeout=120)
    loader = tmp_path / "java" / "Load.java"
    loader.write_text(
        "import java.net.*;\n"
        "public class Load { public static void main(String[] a) throws Exception {\n"
        "  URLClassLoader l = new URLClassLoader(new URL[]{new URL(a[0])});\n"
        "  System.out.println(l.loadClass(\"demo.Hello\").getDeclaredConstructor().newInstance());\n"
        "} }\n")
    return jar, loader


def test_spark_args_urls_work_without_headers(env, tmp_path):
    pkg = tmp_path / "pkg"
    write(pkg / "helper_mod.py", b"def answer():\n    return 42\n")
    jar, loader = make_jar(tmp_path)
    other = write(tmp_path / "conf" / "settings.json", b'{"x": 1}\n')
    ok(env, "push", "--group", "spark", str(pkg / "helper_mod.py"), str(jar))
    ok(env, "push", "--group", "spark-extra", str(other))
    args = ok(env, "spark-args", "--group", "spark", "--group", "spark-extra", "--expires", "10m")
    words = args.stdout.split()
    assert words[0::2] == ["--py-files", "--jars", "--files"], args.stdout
    flags = dict(zip(words[0::2], words[1::2]))
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    py = fetch_as_spark_does(flags["--py-files"], fetched)
    assert py.name == "helper_mod.py"
    imported = subprocess.run([sys.executable, "-c", "import helper_mod; print(helper_mod.answer())"],
                              cwd=fetched, capture_output=True, text=True, timeout=60)
    assert imported.stdout.strip() == "42", imported.stderr
    assert fetch_as_spark_does(flags["--files"], fetched).read_bytes() == b'{"x": 1}\n'
    loaded = subprocess.run(["java", str(loader), flags["--jars"]], capture_output=True,
                            text=True, timeout=120)
    assert loaded.stdout.strip() == "hello from jar", loaded.stderr
    conf = ok(env, "spark-args", "--group", "spark", "--format", "conf").stdout.splitlines()
    assert [line.split("=", 1)[0] for line in conf] == ["spark.submit.pyFiles", "spark.jars"]


# --- profiles, help, completion -----------------------------------------------------------------
def test_configure_writes_a_private_profile_and_refuses_a_readable_one(server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    bare = client_env(server, "none", home)
    del bare["DLIPKG_ENDPOINT"], bare["DLIPKG_PROJECT"]
    assert run(bare, "ls").returncode == 2  # no endpoint anywhere
    ok(bare, "configure", "--endpoint", server.url, "--project", "p1", "--ak", ALICE_AK,
       input=ALICE_SK + "\n")
    profile = home / ".config" / "dlipkg" / "client.toml"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    ok(bare, "push", "--group", "prof", str(write(tmp_path / "p.py", b"p = 1\n")))
    ok(bare, "configure", "--profile", "tok", "--endpoint", server.url, "--project", "p1",
       "--token", ALICE_TOKEN)
    assert "p.py" in ok(bare, "ls", "--profile", "tok").stdout
    assert run(bare, "ls", "--profile", "absent").returncode == 2
    profile.chmod(0o644)
    refused = run(bare, "ls")
    assert refused.returncode == 2
    assert "chmod 600" in refused.stderr and "other users" in refused.stderr
    profile.chmod(0o600)
    ok(bare, "ls")


def test_every_subcommand_has_help_with_an_example(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    for command in ["push", "ls", "show", "get", "rm", "chown", "wait", "spark-args",
                    "completion", "configure"]:
        done = run(env, command, "--help")
        assert done.returncode == 0, command
        assert "Example:" in done.stdout and "Exit status" in done.stdout, command
    assert "push" in run(env, "--help").stdout


def test_completion_scripts(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    script = ok(env, "completion", "bash").stdout
    loaded = subprocess.run(["bash", "-c", script + "\ncomplete -p dlipkg"], capture_output=True,
                            text=True, timeout=30)
    assert "_dlipkg" in loaded.stdout, loaded.stderr
    # The function completes subcommands from the words typed.
    words = subprocess.run(
        ["bash", "-c", script + "\nCOMP_WORDS=(dlipkg sp); COMP_CWORD=1; _dlipkg; "
                                "echo ${COMPREPLY[@]}"],
        capture_output=True, text=True, timeout=30)
    assert words.stdout.split() == ["spark-args"], words.stderr
    assert ok(env, "completion", "zsh").stdout.startswith("#compdef dlipkg")
