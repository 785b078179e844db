"""UUIDv7 per RFC 9562: layout, time, order within a millisecond, uniqueness."""

import threading
import time
import uuid
from typing import Iterator

import pytest

from collector_client import uuid7, uuid7_str, uuid7_time_ms
from collector_client import _uuid7


@pytest.fixture(autouse=True)
def fresh_clock_state() -> Iterator[None]:
    """Tests that pin a time must not leave the generator in the past or future."""
    saved = (_uuid7._last_ms, _uuid7._counter)
    yield
    _uuid7._last_ms, _uuid7._counter = saved


def test_layout_version_variant_and_time() -> None:
    before = time.time_ns() // 1_000_000
    u = uuid7()
    after = time.time_ns() // 1_000_000
    assert u.version == 7
    assert u.variant == uuid.RFC_4122
    assert before <= uuid7_time_ms(u) <= after
    assert uuid7_time_ms(str(u)) == uuid7_time_ms(u)
    s = uuid7_str()
    assert len(s) == 36 and s[14] == "7" and s[19] in "89ab"


def test_a_known_timestamp_is_in_the_first_48_bits() -> None:
    # RFC 9562 appendix A.6's example time: 2022-02-22 19:22:22 UTC = 0x017F22E279B0 ms.
    _uuid7._last_ms = -1
    u = uuid7(now_ms=0x017F22E279B0)
    assert u.hex[:12] == "017f22e279b0"
    assert u.version == 7 and uuid7_time_ms(u) == 0x017F22E279B0


def test_strictly_increasing_within_one_millisecond_and_across_threads() -> None:
    ms = time.time_ns() // 1_000_000 + 10**10  # a fixed future millisecond
    ids = [uuid7(now_ms=ms) for _ in range(5000)]  # more than the 12-bit counter's room
    assert ids == sorted(ids, key=lambda u: u.int)
    assert len(set(ids)) == len(ids)
    assert uuid7_time_ms(ids[0]) == ms and uuid7_time_ms(ids[-1]) >= ms

    seen: list = []
    lock = threading.Lock()

    def make() -> None:
        local = [uuid7_str() for _ in range(2000)]
        with lock:
            seen.extend(local)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 8000


def test_a_clock_going_back_does_not_go_back() -> None:
    a = uuid7()
    b = uuid7(now_ms=uuid7_time_ms(a) - 5000)
    assert b.int > a.int
    assert _uuid7._last_ms >= uuid7_time_ms(a)
