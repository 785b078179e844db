"""Python client for the collector API (``collector serve`` or the Lambda deployment).

    from collector_client import Client
    with Client("http://127.0.0.1:8080", token=TOKEN) as c:
        c.log_interaction({"platform": "n8n", "user_id": "alice", "user_message": "hi"})
"""

__version__ = "0.1.0"

from ._retry import NO_RETRIES, RetryPolicy  # noqa: E402
from ._uuid7 import uuid7, uuid7_str, uuid7_time_ms  # noqa: E402
from .batcher import AsyncBatcher, Batcher, BatcherStats  # noqa: E402
from .client import MAX_BATCH, AsyncClient, AsyncExportStream, Client, ExportStream  # noqa: E402
from .errors import ApiError, CollectorError, TransportError  # noqa: E402

__all__ = [
    "__version__",
    "Client",
    "AsyncClient",
    "ExportStream",
    "AsyncExportStream",
    "Batcher",
    "AsyncBatcher",
    "BatcherStats",
    "RetryPolicy",
    "NO_RETRIES",
    "CollectorError",
    "ApiError",
    "TransportError",
    "uuid7",
    "uuid7_str",
    "uuid7_time_ms",
    "MAX_BATCH",
]
