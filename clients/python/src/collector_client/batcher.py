"""Background batchers for the hot path: ``log_interaction`` puts the interaction on a bounded
queue and returns at once; a worker sends the queue through ``POST /api/interactions/batch``
(at most 100 per call). Nothing is ever raised into the caller: what cannot be queued or sent
is counted in ``dropped``.

Every interaction gets its UUIDv7 ``interaction_id`` when it is queued, so a batch sent again
after a timeout or a 503 is a replay on the server (200), never a duplicate.
"""

import asyncio
import atexit
import logging
import queue
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from .client import MAX_BATCH, AsyncClient, Client
from .client import _with_id as _with_interaction_id
from .errors import CollectorError

log = logging.getLogger("collector_client.batcher")


@dataclass
class BatcherStats:
    """What a batcher did so far."""

    #: Accepted by the server (201 created, or 200 replayed).
    sent: int = 0
    #: Refused at ``log_interaction`` because the queue was full.
    dropped_queue_full: int = 0
    #: Given up on: refused by the server (a 4xx item or batch), or still failing after the retries.
    dropped_failed: int = 0
    #: Could not even be queued (not a mapping, not JSON-serialisable, ...).
    dropped_invalid: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_failed + self.dropped_invalid


def _retryable_item(status: int) -> bool:
    return status in (429, 500, 502, 503, 504)


class _Core:
    """What the sync and async batchers share: counting and the handling of a batch answer."""

    def __init__(self, max_attempts: int) -> None:
        self.stats = BatcherStats()
        self.max_attempts = max(1, max_attempts)
        self._lock = threading.Lock()

    @property
    def dropped(self) -> int:
        """Interactions lost: queue full, invalid, or failed for good."""
        with self._lock:
            return self.stats.dropped

    @property
    def sent(self) -> int:
        with self._lock:
            return self.stats.sent

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, n in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def _prepare(self, interaction: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
        try:
            if not isinstance(interaction, Mapping):
                raise TypeError("not a mapping")
            body = _with_interaction_id(interaction)
            import json

            json.dumps(body)  # fail now, not in the worker
            return body
        except Exception:  # noqa: BLE001 - the hot path must never raise
            self._count(dropped_invalid=1)
            log.warning("collector batcher: an interaction could not be queued (dropped)")
            return None


    def _settle(self, todo: List[int], attempts: List[int], results: Any) -> List[int]:
        """Count a batch answer for the items ``todo`` (result ``index`` k is item ``todo[k]``);
        return the items worth sending again (a 429/5xx item with attempts left)."""
        status_of: Dict[int, int] = {}
        for r in results if isinstance(results, list) else []:
            if not isinstance(r, dict):
                continue
            try:
                k, status = int(r.get("index", -1)), int(r.get("status", 0))
            except (TypeError, ValueError):
                continue
            if 0 <= k < len(todo):
                status_of[todo[k]] = status
        again: List[int] = []
        sent = failed = 0
        for i in todo:
            status = status_of.get(i, 0)
            if 200 <= status < 300:
                sent += 1
            elif _retryable_item(status) and attempts[i] < self.max_attempts:
                again.append(i)
            else:
                failed += 1
        self._count(sent=sent, dropped_failed=failed)
        if failed:
            log.warning("collector batcher: %d interaction(s) refused or failed for good (dropped)", failed)
        return again


class Batcher(_Core):
    """A thread that sends interactions in batches.

    ``client`` needs a service (or admin) token: the batch route is theirs. The queue holds
    ``max_queue`` interactions; ``log_interaction`` drops (and counts) what does not fit.
    ``flush_interval`` is the longest an interaction waits for others to fill a batch.
    ``max_attempts`` sends per batch (on top of the client's own retries) before its
    interactions count as dropped. ``close()`` (also run at interpreter exit) sends what is
    queued, waiting at most ``close_timeout`` seconds.
    """

    def __init__(
        self,
        client: Client,
        *,
        max_queue: int = 10_000,
        max_batch: int = MAX_BATCH,
        flush_interval: float = 1.0,
        max_attempts: int = 5,
        retry_wait: float = 1.0,
        close_timeout: float = 10.0,
    ) -> None:
        super().__init__(max_attempts)
        self.client = client
        self.max_batch = max(1, min(MAX_BATCH, max_batch))
        self.flush_interval = flush_interval
        self.retry_wait = retry_wait
        self.close_timeout = close_timeout
        self._queue: "queue.Queue[Dict[str, Any]]" = queue.Queue(maxsize=max_queue)
        self._pending = 0  # queued or in flight
        self._idle = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="collector-batcher", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        self._atexit = lambda: (lambda b: b.close() if b is not None else None)(ref())
        atexit.register(self._atexit)

    # -- the caller's side ----------------------------------------------------------------------

    def log_interaction(self, interaction: Mapping[str, Any]) -> Optional[str]:
        """Queue one interaction; never blocks, never raises. Returns its ``interaction_id``, or
        None when it was dropped (queue full, closed, or not serialisable)."""
        try:
            if self._closed:
                self._count(dropped_queue_full=1)
                return None
            body = self._prepare(interaction)
            if body is None:
                return None
            with self._lock:
                self._pending += 1
            try:
                self._queue.put_nowait(body)
            except queue.Full:
                with self._lock:
                    self._pending -= 1
                    self.stats.dropped_queue_full += 1
                    self._idle.notify_all()
                return None
            return str(body["interaction_id"])
        except Exception:  # noqa: BLE001 - never into the caller
            return None

    @property
    def pending(self) -> int:
        """Queued or in flight."""
        with self._lock:
            return self._pending

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until everything queued so far was sent or dropped; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left if left is not None else 0.5)
        return True

    def close(self, timeout: Optional[float] = None) -> None:
        """Send what is queued (waiting at most ``timeout``, default ``close_timeout``), then stop
        the worker. What is left after that counts as dropped."""
        if self._closed:
            return
        self._closed = True
        try:
            atexit.unregister(self._atexit)
        except Exception:  # noqa: BLE001
            pass
        self.flush(self.close_timeout if timeout is None else timeout)
        self._stop.set()
        self._thread.join(timeout=5)
        left = 0
        while True:
            try:
                self._queue.get_nowait()
                left += 1
            except queue.Empty:
                break
        if left:
            with self._lock:
                self._pending -= left
                self.stats.dropped_failed += left
                self._idle.notify_all()

    def __enter__(self) -> "Batcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker -----------------------------------------------------------------------------

    def _take(self) -> List[Dict[str, Any]]:
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.flush_interval
        while len(batch) < self.max_batch:
            if self._closed or self._stop.is_set():
                left = 0.0
            else:
                left = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if not batch:
                continue
            try:
                self._send(batch)
            except Exception:  # noqa: BLE001 - the worker never dies
                self._count(dropped_failed=len(batch))
                log.exception("collector batcher: unexpected failure; batch dropped")
            with self._lock:
                self._pending -= len(batch)
                self._idle.notify_all()

    def _send(self, batch: List[Dict[str, Any]]) -> None:
        attempts = [0] * len(batch)
        todo = list(range(len(batch)))
        while todo:
            items = [batch[i] for i in todo]
            for i in todo:
                attempts[i] += 1
            try:
                answer = self.client.log_batch(items)  # type: ignore[arg-type]
                results = answer.get("results", [])
            except CollectorError as e:
                if e.retryable and max(attempts[i] for i in todo) < self.max_attempts:
                    self._stop.wait(self.retry_wait * attempts[todo[0]])
                    if not self._stop.is_set():
                        continue
                self._count(dropped_failed=len(todo))
                log.warning("collector batcher: batch of %d failed (%s %s); dropped", len(todo), e.status, e.code)
                return
            todo = self._settle(todo, attempts, results)
            if todo:
                self._stop.wait(self.retry_wait)


class AsyncBatcher(_Core):
    """The asyncio batcher: ``log_interaction`` is a plain (non-async) call that never blocks or
    raises; a task sends batches. Create it inside a running loop; ``await close()`` before the
    loop ends (atexit cannot run coroutines), e.g. in a FastAPI lifespan."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        max_queue: int = 10_000,
        max_batch: int = MAX_BATCH,
        flush_interval: float = 1.0,
        max_attempts: int = 5,
        retry_wait: float = 1.0,
    ) -> None:
        super().__init__(max_attempts)
        self.client = client
        self.max_batch = max(1, min(MAX_BATCH, max_batch))
        self.flush_interval = flush_interval
        self.retry_wait = retry_wait
        self._queue: "asyncio.Queue[Dict[str, Any]]" = asyncio.Queue(maxsize=max_queue)
        self._closed = False
        self._in_flight = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    def log_interaction(self, interaction: Mapping[str, Any]) -> Optional[str]:
        """Queue one interaction; never blocks, never raises; None when dropped."""
        try:
            if self._closed:
                self._count(dropped_queue_full=1)
                return None
            body = self._prepare(interaction)
            if body is None:
                return None
            try:
                self._queue.put_nowait(body)
            except asyncio.QueueFull:
                self._count(dropped_queue_full=1)
                return None
            return str(body["interaction_id"])
        except Exception:  # noqa: BLE001
            return None

    @property
    def pending(self) -> int:
        return self._queue.qsize() + self._in_flight

    async def flush(self) -> None:
        """Wait until everything queued so far was sent or dropped."""
        await self._queue.join()

    async def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (at most ``timeout`` seconds), then stop."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except asyncio.TimeoutError:
            pass
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        left = self._queue.qsize()
        if left:
            self._count(dropped_failed=left)

    async def __aenter__(self) -> "AsyncBatcher":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            deadline = asyncio.get_running_loop().time() + self.flush_interval
            while len(batch) < self.max_batch:
                left = 0.0 if self._closed else deadline - asyncio.get_running_loop().time()
                try:
                    if left > 0:
                        batch.append(await asyncio.wait_for(self._queue.get(), left))
                    else:
                        batch.append(self._queue.get_nowait())
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
            self._in_flight = len(batch)
            try:
                await self._send(batch)
            except asyncio.CancelledError:
                self._count(dropped_failed=len(batch))
                for _ in batch:
                    self._queue.task_done()
                raise
            except Exception:  # noqa: BLE001
                self._count(dropped_failed=len(batch))
                log.exception("collector batcher: unexpected failure; batch dropped")
            self._in_flight = 0
            for _ in batch:
                self._queue.task_done()

    async def _send(self, batch: List[Dict[str, Any]]) -> None:
        attempts = [0] * len(batch)
        todo = list(range(len(batch)))
        while todo:
            for i in todo:
                attempts[i] += 1
            try:
                answer = await self.client.log_batch([batch[i] for i in todo])  # type: ignore[misc]
                results = answer.get("results", [])
            except CollectorError as e:
                if e.retryable and max(attempts[i] for i in todo) < self.max_attempts:
                    await asyncio.sleep(self.retry_wait * attempts[todo[0]])
                    continue
                self._count(dropped_failed=len(todo))
                log.warning("collector batcher: batch of %d failed (%s %s); dropped", len(todo), e.status, e.code)
                return
            todo = self._settle(todo, attempts, results)
            if todo:
                await asyncio.sleep(self.retry_wait)


__all__ = ["Batcher", "AsyncBatcher", "BatcherStats"]
