"""The background batcher: never blocks or raises into the caller, sends through the batch
route (at most 100 per call), flushes on close and at exit, counts what it drops."""

import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Dict, List

import httpx

from collector_client import NO_RETRIES, AsyncBatcher, AsyncClient, Batcher, Client
from conftest import Server, free_port, total_records
from stub import FaultProxy


class CountingTransport(httpx.HTTPTransport):
    """The real transport, recording each batch call's size (no stubbing)."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_sizes: List[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/interactions/batch":
            import json

            self.batch_sizes.append(len(json.loads(request.content)["interactions"]))
        return super().handle_request(request)


def item(user: str, i: int) -> Dict[str, object]:
    return {"platform": "make", "user_id": user, "user_message": f"batched {i}", "ai_response": "ok"}


def test_sends_everything_in_batches_of_at_most_100(server: Server, service: Client, user_id: str) -> None:
    before = total_records(service)
    transport = CountingTransport()
    with Client(server.url, server.token("ai-backend", "service"), transport=transport) as c:
        with Batcher(c, flush_interval=0.2) as b:
            started = time.monotonic()
            ids = [b.log_interaction(item(user_id, i)) for i in range(250)]
            assert time.monotonic() - started < 2.0, "queuing 250 took too long"
            assert all(ids) and len(set(ids)) == 250
            assert b.flush(timeout=20)
            assert (b.sent, b.dropped, b.pending) == (250, 0, 0)
    assert max(transport.batch_sizes) <= 100 and sum(transport.batch_sizes) == 250
    assert len(transport.batch_sizes) >= 3
    assert total_records(service) == before + 250
    with Client(server.url, server.token("root", "admin")) as admin:
        assert len(list(admin.iter_interactions(user_id=user_id))) == 250


def test_refused_and_invalid_items_are_dropped_and_counted_never_raised(
    server: Server, service: Client, user_id: str
) -> None:
    before = total_records(service)
    with Batcher(service, flush_interval=0.05) as b:
        assert b.log_interaction(item(user_id, 1))
        assert b.log_interaction({"platform": "make", "user_id": user_id, "user_message": ""}) is not None  # 400 later
        assert b.log_interaction({"platform": "not a slug!", "user_id": user_id, "user_message": "x"}) is not None
        assert b.log_interaction("not a mapping") is None  # type: ignore[arg-type]
        assert b.log_interaction({"platform": "make", "user_message": "x", "metadata": {"o": object()}}) is None
        assert b.flush(timeout=10)
        assert b.stats.sent == 1
        assert b.stats.dropped_failed == 2
        assert b.stats.dropped_invalid == 2
        assert b.dropped == 4
    assert total_records(service) == before + 1


def test_a_full_queue_drops_without_blocking(server: Server, service: Client, user_id: str) -> None:
    before = total_records(service)
    release = threading.Event()

    def stall_batches(n: int, m: str, p: str):  # type: ignore[no-untyped-def]
        if p.startswith("/api/interactions/batch"):
            release.wait(10)  # the stub's fault: a slow server; then the request goes on to the real one
        return None

    with FaultProxy(server.url, stall_batches) as proxy, \
            Client(proxy.url, server.token("ai-backend", "service")) as c:
        b = Batcher(c, max_queue=5, flush_interval=0)
        b.log_interaction(item(user_id, 0))
        deadline = time.monotonic() + 5
        while proxy.count("POST", "/api/interactions/batch") == 0:  # the worker is now stuck sending it
            assert time.monotonic() < deadline
            time.sleep(0.01)
        slowest = 0.0
        results = []
        for i in range(1, 9):
            t = time.monotonic()
            results.append(b.log_interaction(item(user_id, i)))
            slowest = max(slowest, time.monotonic() - t)
        assert slowest < 0.25, f"log_interaction blocked for {slowest:.3f}s"
        assert [r is not None for r in results] == [True] * 5 + [False] * 3
        assert b.stats.dropped_queue_full == 3 and b.pending == 6
        release.set()
        b.close()
        assert (b.sent, b.dropped) == (6, 3)
        assert b.log_interaction(item(user_id, 99)) is None, "closed: dropped, not raised"
    assert total_records(service) == before + 6


def test_a_dead_server_means_dropped_after_the_attempts() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", "t", retry=NO_RETRIES) as c:
        b = Batcher(c, flush_interval=0, max_attempts=2, retry_wait=0.01)
        for i in range(3):
            assert b.log_interaction(item("nobody", i))
        assert b.flush(timeout=10)
        assert (b.sent, b.stats.dropped_failed) == (0, 3)
        b.close()


def test_close_sends_what_is_queued_without_waiting_the_interval(
    server: Server, service: Client, user_id: str
) -> None:
    before = total_records(service)
    b = Batcher(service, flush_interval=30)
    b.log_interaction(item(user_id, 1))
    b.log_interaction(item(user_id, 2))
    started = time.monotonic()
    b.close()
    assert time.monotonic() - started < 5
    assert b.sent == 2
    assert total_records(service) == before + 2


def test_the_queue_is_flushed_at_interpreter_exit(server: Server, service: Client, user_id: str) -> None:
    before = total_records(service)
    script = textwrap.dedent(
        """
        import atexit, os, sys
        from collector_client import Batcher, Client
        c = Client(os.environ["URL"], os.environ["TOKEN"])
        atexit.register(lambda: print("sent", b.sent, "dropped", b.dropped))  # runs after the batcher's
        b = Batcher(c, flush_interval=60)
        for i in range(3):
            b.log_interaction({"platform": "n8n", "user_id": os.environ["WHO"], "user_message": f"exit {i}"})
        # no close(): the interpreter exits with the three still queued
        """
    )
    env = dict(os.environ, URL=server.url, TOKEN=server.token("ai-backend", "service"), WHO=user_id)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "sent 3 dropped 0"
    assert total_records(service) == before + 3


async def test_async_batcher(server: Server, user_id: str) -> None:
    async with AsyncClient(server.url, server.token("ai-backend", "service")) as c:
        before = (await c.stats())["overview"]["total_records"]
        b = AsyncBatcher(c, flush_interval=0.05, max_queue=150)
        ids = [b.log_interaction(item(user_id, i)) for i in range(160)]
        assert sum(1 for i in ids if i is None) == 10, "150 fit, 10 dropped (nothing sent yet: no await)"
        assert b.log_interaction({"platform": "make", "user_id": user_id, "user_message": ""}) is None  # full
        await b.flush()
        assert b.sent == 150 and b.stats.dropped_queue_full == 11
        b.log_interaction({"platform": "make", "user_id": user_id, "user_message": ""})  # refused by the server
        await b.close()
        assert b.sent == 150 and b.stats.dropped_failed == 1 and b.dropped == 12
        assert (await c.stats())["overview"]["total_records"] == before + 150
