"""UUID version 7 (RFC 9562, section 5.7): 48-bit Unix milliseconds, then random bits.

The 12 bits after the version (``rand_a``) hold a counter seeded at random each millisecond
(RFC 9562 section 6.2, method 1), so ids made in the same process are strictly increasing even
within one millisecond.
"""

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = -1
_counter = 0


def uuid7(now_ms: "int | None" = None) -> uuid.UUID:
    """A new UUIDv7. ``now_ms`` (Unix milliseconds) is for tests."""
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    with _lock:
        if ms > _last_ms:
            _last_ms = ms
            _counter = (rand >> 62) & 0x7FF  # a random start in the lower half leaves room to count
        else:
            # Same millisecond (or the clock went back): keep the last time, count up.
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # counter overflow: borrow the next millisecond
                _last_ms += 1
                ms = _last_ms
                _counter = 0
        counter = _counter
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version 7
    value |= counter << 64  # rand_a: 12 bits
    value |= 0b10 << 62  # variant (RFC 9562)
    value |= rand & ((1 << 62) - 1)  # rand_b: 62 bits
    return uuid.UUID(int=value)


def uuid7_str() -> str:
    """``str(uuid7())``."""
    return str(uuid7())


def uuid7_time_ms(u: "uuid.UUID | str") -> int:
    """The Unix milliseconds a UUIDv7 carries."""
    value = u if isinstance(u, uuid.UUID) else uuid.UUID(u)
    return value.int >> 80
