"""Real servers on loopback for the integration tests and the benchmarks.

Nginx serves a directory of source files; dlipkg runs from build/dlipkg on a free port with its
own data directory. Both are started as child processes and stopped by the caller (or the
pytest fixtures in conftest.py). Only 127.0.0.1 is ever used.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
# DLIPKG_BINARY runs the tests or a benchmark against another build (a sanitizer build, an
# older commit for a before/after comparison).
DLIPKG = Path(os.environ.get("DLIPKG_BINARY", ROOT / "build" / "dlipkg"))
# scripts/sanitize.sh sets DLIPKG_TEST_SANITIZED=1 and runs the tests against a server built
# with AddressSanitizer, whose RSS then also holds ASan's own memory: shadow memory, redzones
# and a quarantine of freed blocks (256 MiB by default) that it fills before reusing any. So a
# server whose memory a test measures gets a small quarantine (memory_measured_env) and the test
# bounds the growth of its RSS from idle; the normal suite keeps its absolute ceilings.
SANITIZED = os.environ.get("DLIPKG_TEST_SANITIZED") == "1"
ASAN_QUARANTINE_MIB = 16


def memory_measured_env(env=None):
    """`env` for a server whose memory a test measures: under the sanitizer run, with ASan's
    quarantine cut to ASAN_QUARANTINE_MIB (the other options, where reports go, kept)."""
    if not SANITIZED:
        return env
    options = os.environ.get("ASAN_OPTIONS", "")
    return {**(env or {}), "ASAN_OPTIONS": f"{options}:quarantine_size_mb={ASAN_QUARANTINE_MIB}"}


def wait_until(check, what, timeout=10, interval=0.02):
    """Returns check()'s first true result, looking every `interval` s for at most `timeout` s:
    how tests wait for something to happen (never a fixed sleep). Fails naming `what`."""
    deadline = time.time() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.time() >= deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(interval)


def wait_for_log(server, pattern, count=1, timeout=10):
    """Waits until the server's log matches `pattern` (a regular expression) `count` times."""
    try:
        return wait_until(lambda: len(re.findall(pattern, server.logs())) >= count,
                          f"{count} x '{pattern}' in the log", timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}:\n{server.logs()}") from None


def wait_for_fetch_in_flight(server, timeout=10):
    """Waits until a source is being fetched into a directory blob store: the request passed
    authentication and its temporary file exists (the store buffers, so it may still be
    empty)."""
    temp = server.data_dir / "tmp"

    def receiving():
        try:
            return any(f.is_file() for f in temp.iterdir())
        except FileNotFoundError:  # the directory not made yet
            return False
    wait_until(receiving, f"a fetch in flight into {temp}", timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_nginx():
    for candidate in ("/usr/sbin/nginx", shutil.which("nginx")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("nginx is not installed (scripts/setup.sh --test installs it)")


class Nginx:
    """nginx serving `root` on a free loopback port. /slow/ is rate-limited to 10 KiB/s,
    /throttled/ to 200 MB/s."""

    def __init__(self, root, workdir):
        self.root = Path(root)
        self.workdir = Path(workdir)
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.root / "slow").mkdir(parents=True, exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = self.workdir / "nginx.conf"
        w = self.workdir
        conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {w}/nginx.pid;
error_log {w}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  client_body_temp_path {w}/client_body;
  proxy_temp_path {w}/proxy;
  fastcgi_temp_path {w}/fastcgi;
  uwsgi_temp_path {w}/uwsgi;
  scgi_temp_path {w}/scgi;
  server {{
    listen 127.0.0.1:{self.port};
    root {self.root};
    location /slow/ {{ limit_rate 10k; }}
    location /throttled/ {{ limit_rate 200m; }}
    location = /status/503 {{ return 503; }}
    location = /status/403 {{ return 403; }}
    location = /redirect/other {{ return 302 http://localhost:{self.port}/a.py; }}
  }}
}}
""")
        self.proc = subprocess.Popen([find_nginx(), "-c", str(conf), "-p", str(w)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("nginx failed: " + self.proc.stderr.read().decode())
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Dlipkg:
    """The real server on a free port. Logs go to <data_dir>/../server-N.log."""

    _count = 0

    def __init__(self, data_dir, args=(), env=None, listen="127.0.0.1:0", binary=None):
        self.binary = Path(binary) if binary else DLIPKG  # benchmarks compare another build
        self.data_dir = Path(data_dir)
        self.listen = listen  # whatever it binds, clients only ever use 127.0.0.1
        self.args = list(args)
        self.env = env
        self.proc = None
        self.address = None
        self.log_path = None
        self.session = requests.Session()

    @property
    def url(self):
        return f"http://{self.address}"

    def start(self, timeout=20):
        Dlipkg._count += 1
        self.log_path = self.data_dir.parent / f"server-{Dlipkg._count}.log"
        self.log = open(self.log_path, "w+")
        env = dict(os.environ, **(self.env or {}))
        cmd = [str(self.binary), "serve", "--listen", self.listen, "--data-dir", str(self.data_dir),
               *self.args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(r"listening on (\S+:\d+)", Path(self.log_path).read_text())
            if m:
                # A wildcard bind (0.0.0.0, [::]) is reached over loopback only.
                self.address = re.sub(r"^(0\.0\.0\.0|\[::\]|::):", "127.0.0.1:", m.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"dlipkg exited {self.proc.returncode}: {self.logs()}")
            time.sleep(0.02)
        self.kill()  # never leave a server behind
        raise RuntimeError("dlipkg did not start: " + self.logs())

    def logs(self):
        return Path(self.log_path).read_text() if self.log_path else ""

    def stop(self, timeout=30):
        """SIGTERM, wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # --- API helpers -------------------------------------------------------
    def api(self, method, path, **kw):
        kw.setdefault("timeout", 120)
        return self.session.request(method, self.url + path, **kw)


class RssSampler:
    """Samples a process's VmRSS every `interval` seconds; after the block, .peak_kib and
    .growth_kib (the peak less the RSS when the block began)."""

    def __init__(self, server, interval=0.02):
        self.server, self.interval, self.peak_kib = server, interval, 0
        self.start_kib = self.growth_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, self.server.rss_kib())
            except OSError:
                return
            time.sleep(self.interval)

    def __enter__(self):
        self.start_kib = self.peak_kib = self.server.rss_kib()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.growth_kib = self.peak_kib - self.start_kib
