"""The client against the Lambda path: the real `log` and `stats` function binaries, run by
`cargo lambda watch` (the Lambda runtime API emulator) over DynamoDB and S3 on the moto
emulator (127.0.0.1:5055, started by infra/emulator.sh when it is not up; never stopped here,
others use it), as tests/lambda.rs runs them.

Between the client and the functions stands what API Gateway does in AWS, in a few lines: it
verifies the bearer JWT (HS256, the session's secret), turns the HTTP request into the HTTP API
(v2) event with the verified claims in `requestContext.authorizer.jwt.claims` (values as API
Gateway gives them: strings, groups as "[a b]"), invokes the function of the route
(template.yaml's routes), and turns the function's answer back into HTTP.

Opt-in: it runs when COLLECTOR_CLIENT_LAMBDA=1. Its cost is the functions' build: the first
invocation waits for `cargo run -p fn-log` / `-p fn-stats` (debug, in $CARGO_TARGET_DIR) to be up
to date. After `cargo test --workspace` (tests/lambda.rs builds these functions in the same
$CARGO_TARGET_DIR) that is nothing and the test takes about 14 s; after a change to the shared
crate, 94 s of rebuild on 2 shared cores; from an empty target folder, minutes. With the variable
set, it needs cargo and cargo-lambda (infra/tools.sh installs it into ~/.cache/collector-venv):
without them it is skipped, except under CI (`CI` set), where it fails.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from collector_client import ApiError, Client, uuid7_str
from conftest import REPO_ROOT, Server, free_port

EMULATOR = "http://127.0.0.1:5055"
FUNCTIONS = ("log", "stats")
#: template.yaml's routes of those two functions.
ROUTES: List[Tuple[str, str, str, bool]] = [  # method, route, function, needs a token
    ("POST", "/api/interactions", "log", True),
    ("POST", "/api/interactions/batch", "log", True),
    ("GET", "/api/interactions", "log", True),
    ("GET", "/api/interactions/{id}", "log", True),
    ("GET", "/api/feedback/stats", "stats", True),
    ("GET", "/api/health", "stats", False),
    ("GET", "/openapi.json", "stats", False),
]


def unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def cargo_lambda_path() -> Optional[str]:
    path = os.environ.get("PATH", "")
    if shutil.which("cargo-lambda", path=path):
        return path
    venv = Path.home() / ".cache" / "collector-venv" / "bin"
    if (venv / "cargo-lambda").is_file():
        return f"{path}:{venv}"
    return None


def emulator_up() -> bool:
    try:
        httpx.get(f"{EMULATOR}/moto-api/", timeout=1)
        return True
    except httpx.HTTPError:
        return False


# --- what API Gateway does --------------------------------------------------------------------


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_jwt(token: str, secret: str) -> Optional[Dict[str, Any]]:
    """The claims of a valid HS256 token, else None (API Gateway's JWT authorizer)."""
    try:
        header, payload, signature = token.split(".")
        if json.loads(b64url_decode(header)).get("alg") != "HS256":
            return None
        want = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(want, b64url_decode(signature)):
            return None
        claims: Dict[str, Any] = json.loads(b64url_decode(payload))
        if "exp" in claims and float(claims["exp"]) < time.time():
            return None
        return claims
    except (ValueError, TypeError):
        return None


def gateway_claims(claims: Dict[str, Any]) -> Dict[str, str]:
    """Claims as an HTTP API passes them on: every value a string, arrays as "[a b]"."""
    out = {}
    for k, v in claims.items():
        out[k] = "[" + " ".join(map(str, v)) + "]" if isinstance(v, list) else str(v)
    return out


def match(method: str, path: str) -> Optional[Tuple[str, str, bool, Dict[str, str]]]:
    for m, route, function, auth in ROUTES:
        if m != method:
            continue
        want, got = route.strip("/").split("/"), path.strip("/").split("/")
        if len(want) != len(got):
            continue
        params: Dict[str, str] = {}
        for w, g in zip(want, got):
            if w.startswith("{"):
                params[w[1:-1]] = g
            elif w != g:
                break
        else:
            return f"{m} {route}", function, auth, params
    return None


class Gateway:
    def __init__(self, secret: str, functions: Dict[str, str]) -> None:
        self.secret = secret
        self.functions = functions  # name -> runtime emulator base URL
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, headers: Dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                found = match(self.command, url.path)
                if found is None:
                    return self._answer(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
                route_key, function, needs_auth, path_params = found
                claims = None
                auth = self.headers.get("authorization", "")
                if auth.lower().startswith("bearer "):
                    claims = verify_jwt(auth[7:].strip(), gw.secret)
                if needs_auth and claims is None:
                    return self._answer(401, {"content-type": "application/json"}, b'{"message":"Unauthorized"}')
                now = time.time()
                ctx: Dict[str, Any] = {
                    "accountId": "123456789012", "apiId": "local", "domainName": "localhost",
                    "domainPrefix": "localhost", "requestId": str(uuid.uuid4()), "routeKey": route_key,
                    "stage": "$default", "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                    "timeEpoch": int(now * 1000),
                    "http": {"method": self.command, "path": url.path, "protocol": "HTTP/1.1",
                             "sourceIp": "127.0.0.1", "userAgent": self.headers.get("user-agent", "")},
                }
                if claims is not None:
                    ctx["authorizer"] = {"jwt": {"claims": gateway_claims(claims), "scopes": None}}
                event: Dict[str, Any] = {
                    "version": "2.0", "routeKey": route_key, "rawPath": url.path, "rawQueryString": url.query,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "requestContext": ctx, "isBase64Encoded": False,
                }
                if url.query:
                    event["queryStringParameters"] = dict(parse_qsl(url.query))
                if path_params:
                    event["pathParameters"] = path_params
                if body:
                    try:
                        event["body"] = body.decode("utf-8")
                    except UnicodeDecodeError:
                        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
                r = httpx.post(f"{gw.functions[function]}/2015-03-31/functions/{function}/invocations",
                               json=event, timeout=600)
                if r.status_code != 200:
                    return self._answer(502, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
                out = r.json()
                raw = out.get("body") or ""
                payload = base64.b64decode(raw) if out.get("isBase64Encoded") else raw.encode()
                self._answer(int(out.get("statusCode", 502)), dict(out.get("headers") or {}), payload)

            do_GET = do_POST = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- the stack -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lambda_gateway(server: Server) -> Iterator[Gateway]:
    if os.environ.get("COLLECTOR_CLIENT_LAMBDA") != "1":
        pytest.skip("the Lambda path test is opt-in: COLLECTOR_CLIENT_LAMBDA=1 (it needs the functions built)")
    path = cargo_lambda_path()
    if path is None or shutil.which("cargo") is None:
        unavailable("cargo and cargo-lambda are needed (infra/tools.sh installs cargo-lambda)")
    assert path is not None
    if not emulator_up():
        r = subprocess.run(["bash", str(REPO_ROOT / "infra" / "emulator.sh"), "start"], capture_output=True,
                           text=True, timeout=600)
        if r.returncode != 0 or not emulator_up():
            unavailable(f"the moto emulator did not start: {r.stderr[-2000:]}")
    tools_bin = subprocess.run(["bash", str(REPO_ROOT / "infra" / "tools.sh")], capture_output=True, text=True,
                               timeout=600, check=True).stdout.strip()
    name = f"pyclient-{uuid.uuid4().hex[:10]}"
    aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1"}
    subprocess.run([f"{tools_bin}/python3", str(REPO_ROOT / "infra" / "provision.py"), "--endpoint", EMULATOR,
                    "--template", str(REPO_ROOT / "template.yaml"), "--table", f"{name}-hot",
                    "--archive-table", f"{name}-archive", "--bucket", name],
                   env=dict(os.environ, **aws), check=True, capture_output=True, timeout=120)

    # The repository's one target folder (never a new ./target): the functions CI's cargo test built.
    target_dir = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache" / "collector-target")
    with tempfile.TemporaryDirectory(prefix="collector-client-lambda-") as tmp:
        env_file = Path(tmp) / "functions.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {
            "COLLECTOR_BACKEND": "aws", "TABLE_NAME": f"{name}-hot", "ARCHIVE_TABLE_NAME": f"{name}-archive",
            "S3_BUCKET_NAME": name, "DYNAMODB_ENDPOINT": EMULATOR, "S3_ENDPOINT": EMULATOR,
            "S3_ACCESS_KEY": "test", "S3_SECRET_KEY": "test", "S3_REGION": "us-east-1", "RUST_LOG": "warn",
            **aws,
        }.items()))
        watchers: List[Tuple[subprocess.Popen, Path]] = []
        bases: Dict[str, str] = {}
        try:
            for function in FUNCTIONS:
                port = free_port()
                log_path = Path(tmp) / f"watch-{function}.log"
                with open(log_path, "wb") as log:
                    proc = subprocess.Popen(
                        ["cargo", "lambda", "watch", "--package", f"fn-{function}", "--ignore-changes", "--quiet",
                         "--invoke-address", "127.0.0.1", "--invoke-port", str(port), "--env-file", str(env_file)],
                        cwd=REPO_ROOT, env=dict(os.environ, PATH=path, CARGO_TARGET_DIR=target_dir),
                        stdin=subprocess.DEVNULL, stdout=log,
                        stderr=subprocess.STDOUT, start_new_session=True)
                watchers.append((proc, log_path))
                bases[function] = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 60
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        if time.monotonic() > deadline or proc.poll() is not None:
                            pytest.fail(f"cargo lambda watch ({function}) did not listen:\n"
                                        f"{log_path.read_text(errors='replace')[-3000:]}")
                        time.sleep(0.2)
            gateway = Gateway(server.secret, bases)
            try:
                # Warm up: the first invocation of each waits for its build (cargo run -p fn-NAME).
                started = time.monotonic()
                with httpx.Client(timeout=600) as h:
                    assert h.get(f"{gateway.url}/api/health").status_code == 200
                    r = h.get(f"{gateway.url}/api/interactions/{uuid.uuid4()}",
                              headers={"authorization": f"Bearer {server.token('ai-backend', 'service')}"})
                    assert r.status_code == 404, r.text
                print(f"lambda functions ready in {time.monotonic() - started:.1f}s")
                yield gateway
            finally:
                gateway.close()
        except BaseException:
            for _, log_path in watchers:
                print(f"== {log_path.name}\n{log_path.read_text(errors='replace')[-3000:]}")
            raise
        finally:
            for proc, _ in watchers:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(proc.pid, sig)
                    except ProcessLookupError:
                        break
                    try:
                        proc.wait(timeout=3)
                        break
                    except subprocess.TimeoutExpired:
                        continue


def test_log_get_and_stats_through_the_lambda_functions(lambda_gateway: Gateway, server: Server) -> None:
    with Client(lambda_gateway.url, server.token("ai-backend", "service"), timeout=60) as c:
        assert c.health()["backend"] == "aws"
        before = c.stats()["overview"]["total_records"]
        body = {"interaction_id": uuid7_str(), "user_id": "alice", "platform": "n8n",
                "kind": "workflow_generation", "user_message": "Post new webhook leads to #sales on Slack",
                "ai_response": "Here is a workflow.", "workflow": {"nodes": [{"name": "Webhook",
                "type": "n8n-nodes-base.webhookTrigger", "parameters": {}}], "connections": {}}}
        first = c.log_interaction(body)  # type: ignore[arg-type]
        again = c.log_interaction(body)  # type: ignore[arg-type]
        assert first == again and first["interaction_id"] == body["interaction_id"]  # type: ignore[typeddict-item]
        rec = c.get_interaction(body["interaction_id"])
        assert (rec["user_id"], rec["user_message"], rec["workflow"]) == ("alice", body["user_message"],
                                                                         body["workflow"])
        assert c.stats()["overview"]["total_records"] == before + 1, "the replay did not duplicate"
        with pytest.raises(ApiError) as e:
            c.log_interaction({"platform": "n8n", "user_id": "alice", "user_message": ""})
        assert (e.value.status, e.value.code) == (400, "validation_failed")
    with Client(lambda_gateway.url, server.token("alice")) as alice:
        assert [r["interaction_id"] for r in alice.list_interactions()["items"]] == [body["interaction_id"]]
