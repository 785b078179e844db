"""A real `collector serve` for the whole session: a temp COLLECTOR_DATA_DIR, a random
COLLECTOR_JWT_SECRET, tokens minted by `collector token`. The binary is $COLLECTOR_BIN, else
$CARGO_TARGET_DIR/release/collector (CARGO_TARGET_DIR defaults to ~/.cache/collector-target)."""

import os
import secrets
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import httpx
import pytest

from collector_client import Client

REPO_ROOT = Path(__file__).resolve().parents[3]


def collector_bin() -> str:
    explicit = os.environ.get("COLLECTOR_BIN")
    if explicit:
        return explicit
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "collector-target")
    return os.path.join(target, "release", "collector")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, binary: str, data_dir: str, secret: str, port: int, log_path: str) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.secret = secret
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._tokens: Dict[str, str] = {}

    @property
    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update({"COLLECTOR_DATA_DIR": self.data_dir, "COLLECTOR_JWT_SECRET": self.secret})
        return env

    def token(self, sub: str, group: Optional[str] = None) -> str:
        key = f"{sub}|{group}"
        if key not in self._tokens:
            args: List[str] = [self.binary, "token", "--sub", sub, "--ttl", "1h"]
            if group:
                args += ["--group", group]
            out = subprocess.run(args, env=self.env, check=True, capture_output=True, text=True, timeout=30)
            self._tokens[key] = out.stdout.strip()
        return self._tokens[key]

    def log_tail(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    binary = collector_bin()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"collector binary not found at {binary} (set COLLECTOR_BIN or build collector-cli --release)")
    with tempfile.TemporaryDirectory(prefix="collector-client-tests-") as tmp:
        srv = Server(binary, os.path.join(tmp, "data"), secrets.token_urlsafe(32), free_port(),
                     os.path.join(tmp, "serve.log"))
        with open(srv.log_path, "wb") as log:
            proc = subprocess.Popen([binary, "serve", "--addr", f"127.0.0.1:{srv.port}"], env=srv.env,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{srv.url}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"collector serve did not come up:\n{srv.log_tail()}")
                time.sleep(0.05)
            yield srv
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def user_id() -> str:
    """A fresh user per test, so tests do not see each other's records."""
    return f"u-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def admin(server: Server) -> Iterator[Client]:
    with Client(server.url, server.token("root", "admin")) as c:
        yield c


@pytest.fixture
def service(server: Server) -> Iterator[Client]:
    with Client(server.url, server.token("ai-backend", "service")) as c:
        yield c


@pytest.fixture
def as_user(server: Server) -> Iterator[Callable[[str], Client]]:
    made: List[Client] = []

    def make(sub: str) -> Client:
        c = Client(server.url, server.token(sub))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def total_records(client: Client) -> int:
    return int(client.stats()["overview"]["total_records"])
