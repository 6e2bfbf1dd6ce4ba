"""pytest fixtures: nginx serving source files, and dlipkg servers started per test."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import DLIPKG, ROOT, Dlipkg, Nginx  # noqa: E402
from s3_util import S3Client  # noqa: E402


@pytest.fixture(scope="session")
def sources(tmp_path_factory):
    """Source files served by nginx: name -> bytes."""
    root = tmp_path_factory.mktemp("sources")
    files = {
        "a.py": b"print('a')\n",
        "b.py": b"print('b')\n",
        "c.py": b"print('c')\n",
        "d.py": b"print('d')\n",
        "a b.py": b"print('space')\n",
        "lib.jar": os.urandom(200_000),
        "big.bin": os.urandom(3 * 1024 * 1024),
        "slow/big.bin": os.urandom(1024 * 1024),
        "owner": b"a package named owner\n",
        "jars": b"a package named jars\n",
    }
    for i in range(30):
        files[f"m{i:02d}.py"] = f"print({i})\n".encode()
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root, files


@pytest.fixture(scope="session")
def nginx(sources, tmp_path_factory):
    root, _ = sources
    server = Nginx(root, tmp_path_factory.mktemp("nginx")).start()
    yield server
    server.stop()


@pytest.fixture
def start_server(tmp_path):
    """start_server(*args, data_dir=None, env=None, allow_loopback=True) -> a running Dlipkg;
    all are stopped after the test. allow_loopback=False leaves out the default --allow-source
    127.0.0.1, so the source policy itself is what loopback sources meet."""
    assert DLIPKG.exists(), "build/dlipkg is missing: run scripts/build.sh"
    started = []

    def start(*args, data_dir=None, env=None, allow_loopback=True):
        allow = ["--allow-source", "127.0.0.1"] if allow_loopback else []
        server = Dlipkg(data_dir or tmp_path / "data", [*allow, *args], env=env)
        started.append(server.start())
        return server

    yield start
    for server in started:
        code = server.stop()
        assert code in (0, None, -9), f"dlipkg exited {code}:\n{server.logs()}"


@pytest.fixture
def server(start_server):
    return start_server()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def swift(tmp_path_factory):
    """Swift with s3api on loopback (scripts/swift_s3.sh), once per run: an S3Client for it,
    signed with the test account (test:tester / testing, region us-east-1)."""
    workdir = tmp_path_factory.mktemp("swift")
    script = ROOT / "scripts" / "swift_s3.sh"
    started = subprocess.run([str(script), "start", str(workdir)], capture_output=True,
                             text=True, timeout=900)
    if started.returncode != 0:
        subprocess.run([str(script), "stop", str(workdir)], timeout=120)
        raise RuntimeError(f"swift_s3.sh start failed:\n{started.stdout}\n{started.stderr}")
    client = S3Client(started.stdout.strip().splitlines()[-1])
    client.workdir = workdir  # for scripts/swift_s3.sh proxy-down|proxy-up DIR
    yield client
    subprocess.run([str(script), "stop", str(workdir)], timeout=120)
