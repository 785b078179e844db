"""Time from process start to the first event, for each function binary, against a local
Lambda runtime API (this script serves it: the same /2018-06-01/runtime/* routes Lambda has).

For each binary: start the server, spawn the binary with AWS_LAMBDA_RUNTIME_API pointing at it,
and measure the time from spawn to its first `GET .../invocation/next` (init done: tracing,
config, SDK clients built). Then hand it one event, wait for its response, stop it. Repeats each
binary --runs times and prints min/median/max in milliseconds.

    python3 infra/coldstart.py --event events/http/stats/get-health.json target/release/stats ...
    python3 infra/coldstart.py target/release/log=events/http/log/post-interactions.json ...

A binary may carry its own event after `=`; --event is the event for the others.
`infra/lambda-figures.sh` runs it for every function against the emulator.
"""
import argparse
import http.server
import json
import os
import statistics
import subprocess
import threading
import time


class Runtime(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, event):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = event
        self.first_next = None
        self.responded = threading.Event()
        self.served = False


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_error(404)
            return
        if srv.first_next is None:
            srv.first_next = time.perf_counter()
        if srv.served:
            # One event per process: park the second poll until the process is stopped.
            srv.responded.wait(30)
            time.sleep(30)
            return
        srv.served = True
        body = json.dumps(srv.event).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", "coldstart-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:coldstart")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.responded.set()


def one_run(binary, event, env):
    srv = Runtime(event)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{srv.server_address[1]}")
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ok = srv.responded.wait(30)
    finally:
        proc.kill()
        proc.wait()
        srv.shutdown()
    if srv.first_next is None or not ok:
        raise SystemExit(f"{binary}: no event handled (is the environment complete?)")
    return (srv.first_next - start) * 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--event", help="event for binaries given without `=EVENT`")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("binaries", nargs="+", metavar="BINARY[=EVENT]")
    a = ap.parse_args()
    runs = []
    for arg in a.binaries:
        binary, _, event_path = arg.partition("=")
        event_path = event_path or a.event
        if not event_path:
            ap.error(f"{binary}: no event (give --event or {binary}=EVENT)")
        with open(event_path) as f:
            runs.append((binary, json.load(f)))
    env = dict(os.environ)
    env.setdefault("AWS_LAMBDA_FUNCTION_NAME", "coldstart")
    env.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
    env.setdefault("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    print(f"{'function':<16} {'min ms':>8} {'median':>8} {'max':>8}   (process start -> first event, {a.runs} runs)")
    for b, event in runs:
        times = [one_run(b, event, env) for _ in range(a.runs)]
        print(f"{os.path.basename(b):<16} {min(times):>8.2f} {statistics.median(times):>8.2f} {max(times):>8.2f}")


if __name__ == "__main__":
    main()
