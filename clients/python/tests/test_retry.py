"""Retries with backoff on 503/429 and connection errors, honouring Retry-After; timeouts.

The faults (503, 429, a stall) come from tests/stub.py's local proxy, ONLY because the real
server cannot be made to answer them on demand; every request it does not fault goes on to the
real `collector serve`."""

import json
import threading
import time
from email.utils import formatdate

import pytest

from collector_client import NO_RETRIES, ApiError, AsyncClient, Client, RetryPolicy, TransportError, uuid7_str
from collector_client._retry import parse_retry_after
from conftest import Server, free_port, total_records
from stub import UNAVAILABLE, FaultProxy

FAST = RetryPolicy(max_retries=3, backoff=0.01, max_backoff=0.05)


def test_503_with_retry_after_is_retried_and_logs_exactly_once(server: Server, service: Client) -> None:
    before = total_records(service)
    # The first two POSTs answer 503 with Retry-After: 1 (the stub's fault); the third reaches the server.
    fault = lambda n, m, p: (503, [("retry-after", "1"), ("content-type", "application/json")], UNAVAILABLE) \
        if m == "POST" and n < 2 else None  # noqa: E731
    with FaultProxy(server.url, fault) as proxy, \
            Client(proxy.url, server.token("ai-backend", "service"), retry=FAST) as c:
        started = time.monotonic()
        receipt = c.log_interaction({"platform": "n8n", "user_id": "retry-user", "user_message": "retried"})
        waited = time.monotonic() - started
    assert proxy.count("POST", "/api/interactions") == 3
    assert waited >= 2.0, f"Retry-After: 1 twice was not honoured (waited {waited:.2f}s)"
    # All three attempts carried the same client-side id: one record.
    ids = {json.loads(body)["interaction_id"] for m, _, body in proxy.requests if m == "POST"}
    assert ids == {receipt["interaction_id"]}  # type: ignore[typeddict-item]
    assert total_records(service) == before + 1


def test_a_replayed_post_after_a_lost_answer_is_not_a_duplicate(server: Server, service: Client) -> None:
    """The first POST reaches the server, but its answer is replaced by a 503 (as if a gateway
    lost it): the retry is a replay (200), and stats count one record."""
    before = total_records(service)
    state = {"n": 0}

    with FaultProxy(server.url, lambda n, m, p: None) as proxy:
        def lose_first_answer(n: int, m: str, p: str):  # type: ignore[no-untyped-def]
            if m == "POST" and state["n"] == 0:
                state["n"] += 1
                # Forward to the real server, then answer 503 instead of its 201.
                _, _, body = proxy.requests[n]
                import httpx
                r = httpx.post(server.url + p, content=body, headers={
                    "authorization": f"Bearer {server.token('ai-backend', 'service')}",
                    "content-type": "application/json"})
                assert r.status_code == 201
                return (503, [("content-type", "application/json")], UNAVAILABLE)
            return None

        proxy.fault = lose_first_answer
        with Client(proxy.url, server.token("ai-backend", "service"), retry=FAST) as c:
            receipt = c.log_interaction({"platform": "n8n", "user_id": "lost-answer", "user_message": "once"})
    assert "created_at" in receipt
    assert total_records(service) == before + 1


def test_429_is_retried_and_503_gives_up_with_a_typed_error(server: Server) -> None:
    fault429 = lambda n, m, p: (429, [("retry-after", "0")], b"") if n == 0 else None  # noqa: E731
    with FaultProxy(server.url, fault429) as proxy, Client(proxy.url, retry=FAST) as c:
        assert c.health()["status"] == "ok"
        assert len(proxy.requests) == 2
    always = lambda n, m, p: (503, [("retry-after", "0"), ("content-type", "application/json")], UNAVAILABLE)  # noqa: E731
    with FaultProxy(None, always) as proxy, Client(proxy.url, retry=FAST) as c:
        with pytest.raises(ApiError) as e:
            c.health()
        assert len(proxy.requests) == 4, "1 try + 3 retries"
    assert (e.value.status, e.value.code, e.value.retry_after) == (503, "unavailable", 0.0)
    assert e.value.retryable


def test_client_errors_are_not_retried(server: Server) -> None:
    with FaultProxy(server.url, lambda n, m, p: None) as proxy, Client(proxy.url, "bad", retry=FAST) as c:
        with pytest.raises(ApiError) as e:
            c.stats()
    assert e.value.status == 401 and len(proxy.requests) == 1


def test_connection_refused_is_retried_then_raised() -> None:
    port = free_port()  # nothing listens there
    policy = RetryPolicy(max_retries=2, backoff=0.05, max_backoff=0.05)
    with Client(f"http://127.0.0.1:{port}", retry=policy) as c:
        started = time.monotonic()
        with pytest.raises(TransportError) as e:
            c.health()
        assert time.monotonic() - started >= 0.05  # two waits of 25..50 ms
    assert e.value.status is None and e.value.code == "connection_error" and e.value.retryable


def test_timeouts_raise_and_non_idempotent_posts_are_not_resent(server: Server) -> None:
    release = threading.Event()

    def stall(n: int, m: str, p: str):  # type: ignore[no-untyped-def]
        release.wait(5)
        return (201, [("content-type", "application/json")], b'{"feedback_id":"x","interaction_id":"y"}')

    with FaultProxy(None, stall) as proxy, Client(proxy.url, timeout=0.3, retry=FAST) as c:
        with pytest.raises(TransportError) as e:
            c.submit_feedback({"interaction_id": uuid7_str(), "feedback_type": "thumbs_up"})
        release.set()
        time.sleep(0.1)
        assert len(proxy.requests) == 1, "feedback is not idempotent: a read timeout is not resent"
    assert e.value.code == "timeout"
    release.clear()
    with FaultProxy(None, stall) as proxy, Client(proxy.url, timeout=0.3, retry=FAST) as c:
        with pytest.raises(TransportError):
            c.log_interaction({"platform": "n8n", "user_message": "x"})
        release.set()
        assert len(proxy.requests) == 4, "logging carries its id: a timeout is resent"


async def test_async_client_retries_503(server: Server) -> None:
    fault = lambda n, m, p: (503, [("retry-after", "0")], UNAVAILABLE) if n == 0 else None  # noqa: E731
    with FaultProxy(server.url, fault) as proxy:
        async with AsyncClient(proxy.url, retry=FAST) as c:
            assert (await c.health())["status"] == "ok"
        assert len(proxy.requests) == 2
        async with AsyncClient(proxy.url, retry=NO_RETRIES) as c:
            proxy.fault = lambda n, m, p: (503, [], UNAVAILABLE)
            with pytest.raises(ApiError):
                await c.health()


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    in_5s = parse_retry_after(formatdate(time.time() + 5, usegmt=True))
    assert in_5s is not None and 3.5 <= in_5s <= 5.0
    assert parse_retry_after(formatdate(time.time() - 60, usegmt=True)) == 0.0
    p = RetryPolicy(backoff=0.1, max_backoff=1.0, max_retry_after=2.0)
    assert all(0.05 <= p.delay(0, None) <= 0.1 for _ in range(50))  # jitter within [d/2, d]
    assert all(0.5 <= p.delay(5, None) <= 1.0 for _ in range(50))  # capped
    assert p.delay(0, 1.5) >= 1.5 and p.delay(0, 30) == 2.0  # Retry-After, capped
    assert len({p.delay(3, None) for _ in range(20)}) > 1, "jittered"

