"""``Client`` (sync) and ``AsyncClient`` (asyncio) over httpx: one method per route of the
contract (``models.ROUTES`` names them)."""

import asyncio
import contextlib
import json as _json
import time
from datetime import datetime
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterator,
    Mapping,
    Optional,
    Sequence,
    Type,
    TypeVar,
    Union,
    cast,
)
from urllib.parse import quote

import httpx

from . import __version__
from ._retry import RETRY_STATUSES, RetryPolicy, parse_retry_after, retryable_exception
from ._uuid7 import uuid7_str
from .errors import TransportError, api_error
from .models import (
    ArchiveInput,
    ArchiveReport,
    BatchAnswer,
    DeleteAnswer,
    ExampleDeleted,
    ExampleInput,
    ExampleList,
    ExampleReceipt,
    ExportFormat,
    ExportManifest,
    ExportPage,
    ExportSplit,
    FeedbackInput,
    FeedbackReceipt,
    FullRecord,
    Health,
    IngestReceipt,
    InteractionInput,
    InteractionPage,
    MetricInput,
    MetricList,
    MetricReceipt,
    NotCollected,
    PlatformAddOutcome,
    PlatformList,
    Readiness,
    Stats,
    ValidateInput,
    ValidationResult,
)

#: What a token may be: the bearer string, or a function that returns a fresh one per request.
TokenSource = Union[str, Callable[[], str], None]
Timeout = Union[float, httpx.Timeout]
#: The most interactions ``POST /api/interactions/batch`` takes in one call (CONTRACT 4).
MAX_BATCH = 100

T = TypeVar("T")


def _seg(value: str) -> str:
    """One path segment, percent-encoded."""
    return quote(str(value), safe="")


def _query(params: Mapping[str, Any]) -> Dict[str, str]:
    """Query parameters as the server reads them: booleans as true/false, datetimes as RFC 3339,
    absent (None) ones left out."""
    out: Dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, datetime):
            out[key] = value.isoformat().replace("+00:00", "Z")
        else:
            out[key] = str(value)
    return out


def _with_id(interaction: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of the interaction with a client-side ``interaction_id`` (UUIDv7) when it has
    none, so that sending it again (a retry) is a replay, never a duplicate."""
    body = dict(interaction)
    if not body.get("interaction_id"):
        body["interaction_id"] = uuid7_str()
    return body


def _export_params(
    format: Optional[ExportFormat],
    split: Optional[ExportSplit],
    validation_fraction: Optional[float],
    success_only: Optional[bool],
    with_feedback_only: Optional[bool],
    include_archived: Optional[bool],
    include_metadata: Optional[bool],
    since: Union[str, datetime, None],
    until: Union[str, datetime, None],
    limit: Optional[int],
) -> Dict[str, str]:
    return _query(
        {
            "format": format,
            "split": split,
            "validation_fraction": validation_fraction,
            "success_only": success_only,
            "with_feedback_only": with_feedback_only,
            "include_archived": include_archived,
            "include_metadata": include_metadata,
            "since": since,
            "until": until,
            "limit": limit,
        }
    )


def _int_header(headers: httpx.Headers, name: str) -> Optional[int]:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class _StreamInfo:
    """The headers of a JSONL answer (export or access export)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        h = response.headers
        self.status: int = response.status_code
        self.headers: httpx.Headers = h
        #: ``X-Export-Id``: the manifest of this export (``get_export``); None when no line was written.
        self.export_id: Optional[str] = h.get("x-export-id")
        #: ``X-Archive-Skipped-Lines``: archived lines that could not be read.
        self.archive_skipped_lines: Optional[int] = _int_header(h, "x-archive-skipped-lines")
        #: ``X-Export-Lines``, ``X-Export-Rejected``, ``X-Export-Duplicates`` (exports only).
        self.lines: Optional[int] = _int_header(h, "x-export-lines")
        self.rejected: Optional[int] = _int_header(h, "x-export-rejected")
        self.duplicates: Optional[int] = _int_header(h, "x-export-duplicates")
        self.content_type: Optional[str] = h.get("content-type")
        self.content_disposition: Optional[str] = h.get("content-disposition")

    @property
    def filename(self) -> Optional[str]:
        """The file name of ``Content-Disposition``."""
        cd = self.content_disposition or ""
        marker = 'filename="'
        if marker in cd:
            return cd.split(marker, 1)[1].split('"', 1)[0]
        return None


class ExportStream(_StreamInfo):
    """A streamed JSONL answer: read it with ``iter_records``, ``iter_lines`` or ``iter_bytes``
    inside the ``with`` block; memory does not grow with its size.

    The count headers (``X-Export-Lines``, ...) may be sent before the body and so describe
    what the server planned; count what you read when it matters."""

    def iter_bytes(self, chunk_size: Optional[int] = None) -> Iterator[bytes]:
        return self.response.iter_bytes(chunk_size)

    def iter_lines(self) -> Iterator[str]:
        for line in self.response.iter_lines():
            if line.strip():
                yield line

    def iter_records(self) -> Iterator[Dict[str, Any]]:
        for line in self.iter_lines():
            yield cast(Dict[str, Any], _json.loads(line))

    def write_to(self, path: str) -> int:
        """Write the body to ``path``; returns the bytes written."""
        n = 0
        with open(path, "wb") as f:
            for chunk in self.iter_bytes():
                f.write(chunk)
                n += len(chunk)
        return n


class AsyncExportStream(_StreamInfo):
    """``ExportStream`` for ``AsyncClient``."""

    def aiter_bytes(self, chunk_size: Optional[int] = None) -> AsyncIterator[bytes]:
        return self.response.aiter_bytes(chunk_size)

    async def aiter_lines(self) -> AsyncIterator[str]:
        async for line in self.response.aiter_lines():
            if line.strip():
                yield line

    async def aiter_records(self) -> AsyncIterator[Dict[str, Any]]:
        async for line in self.aiter_lines():
            yield cast(Dict[str, Any], _json.loads(line))


class _Base:
    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        timeout: Timeout,
        retry: Optional[RetryPolicy],
        headers: Optional[Mapping[str, str]],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.retry = retry if retry is not None else RetryPolicy()
        self.timeout = timeout
        self._headers = {"user-agent": f"collector-client-python/{__version__}", "accept": "application/json"}
        self._headers.update(headers or {})

    def _auth(self) -> Dict[str, str]:
        token = self._token() if callable(self._token) else self._token
        return {"authorization": f"Bearer {token}"} if token else {}

    @staticmethod
    def _error_from(resp: httpx.Response) -> Exception:
        try:
            body: Any = resp.json()
        except ValueError:
            body = None
        return api_error(resp.status_code, body, parse_retry_after(resp.headers.get("retry-after")))

    @staticmethod
    def _transport_error(exc: BaseException) -> TransportError:
        code = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
        return TransportError(code, f"{type(exc).__name__}: no answer from the server", exc)


class Client(_Base):
    """The sync client.

    >>> c = Client("http://127.0.0.1:8080", token="eyJ...")      # doctest: +SKIP
    >>> receipt = c.log_interaction({"platform": "n8n", "user_id": "alice", "user_message": "hi"})  # doctest: +SKIP

    Every call raises ``CollectorError`` (``ApiError`` with the server's status, code and message,
    or ``TransportError`` when no answer came) after the retries of ``retry``: 429/502/503/504
    and connection failures, waiting with exponential backoff and jitter, or ``Retry-After``.
    """

    def __init__(
        self,
        base_url: str,
        token: TokenSource = None,
        *,
        timeout: Timeout = 10.0,
        retry: Optional[RetryPolicy] = None,
        headers: Optional[Mapping[str, str]] = None,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        super().__init__(base_url, token, timeout, retry, headers)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport, headers=self._headers)

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self, et: Optional[Type[BaseException]], ev: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, str]] = None,
        json: Any = None,
        idempotent: bool,
        stream: bool = False,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        attempt = 0
        while True:
            request = self._http.build_request(
                method, path, params=params, json=json, headers=self._auth()
            )
            try:
                resp = self._http.send(request, stream=stream, follow_redirects=follow_redirects)
            except httpx.HTTPError as exc:
                if attempt < self.retry.max_retries and retryable_exception(exc, idempotent):
                    time.sleep(self.retry.delay(attempt, None))
                    attempt += 1
                    continue
                raise self._transport_error(exc) from exc
            if resp.status_code in RETRY_STATUSES and attempt < self.retry.max_retries:
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                resp.close()
                time.sleep(self.retry.delay(attempt, retry_after))
                attempt += 1
                continue
            if resp.status_code >= 400:
                try:
                    if stream:
                        resp.read()
                    raise self._error_from(resp)
                finally:
                    resp.close()
            return resp

    def _call(self, method: str, path: str, *, params: Optional[Mapping[str, Any]] = None, json: Any = None,
              idempotent: bool) -> Any:
        resp = self._send(method, path, params=_query(params or {}), json=json, idempotent=idempotent)
        return resp.json()

    # -- interactions ----------------------------------------------------------------------------

    def log_interaction(self, interaction: InteractionInput) -> Union[IngestReceipt, NotCollected]:
        """``POST /api/interactions``. Gives the interaction a UUIDv7 ``interaction_id`` when it has
        none, so retries are replays: 201 the first time, 200 with the same receipt after."""
        return cast(Union[IngestReceipt, NotCollected],
                    self._call("POST", "/api/interactions", json=_with_id(interaction), idempotent=True))

    def log_batch(self, interactions: Sequence[InteractionInput]) -> BatchAnswer:
        """``POST /api/interactions/batch`` (service, admin): 1..100 interactions, each given an id
        when it has none; one bad item fails alone (its ``status`` and ``error`` in ``results``)."""
        if not 1 <= len(interactions) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1..{MAX_BATCH} interactions, not {len(interactions)}")
        body = {"interactions": [_with_id(i) for i in interactions]}
        return cast(BatchAnswer, self._call("POST", "/api/interactions/batch", json=body, idempotent=True))

    def get_interaction(self, interaction_id: str) -> FullRecord:
        """``GET /api/interactions/{id}``: the whole record with its feedback and validations."""
        return cast(FullRecord, self._call("GET", f"/api/interactions/{_seg(interaction_id)}", idempotent=True))

    def list_interactions(
        self,
        *,
        platform: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        user_id: Optional[str] = None,
    ) -> InteractionPage:
        """``GET /api/interactions``: one page, newest first (``next_cursor`` for the next)."""
        params = {"platform": platform, "limit": limit, "cursor": cursor, "user_id": user_id}
        return cast(InteractionPage, self._call("GET", "/api/interactions", params=params, idempotent=True))

    def iter_interactions(
        self, *, platform: Optional[str] = None, user_id: Optional[str] = None, page_size: int = 100
    ) -> Iterator[FullRecord]:
        """Every interaction, page after page."""
        cursor: Optional[str] = None
        while True:
            page = self.list_interactions(platform=platform, limit=page_size, cursor=cursor, user_id=user_id)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # -- feedback, validation ---------------------------------------------------------------------

    def submit_feedback(self, feedback: FeedbackInput) -> FeedbackReceipt:
        """``POST /api/feedback/submit``."""
        return cast(FeedbackReceipt, self._call("POST", "/api/feedback/submit", json=dict(feedback), idempotent=False))

    def validate_workflow(self, request: ValidateInput) -> ValidationResult:
        """``POST /api/workflow/validate``: validates and logs the result."""
        return cast(ValidationResult, self._call("POST", "/api/workflow/validate", json=dict(request), idempotent=False))

    # -- statistics, readiness, archive -------------------------------------------------------------

    def stats(self) -> Stats:
        """``GET /api/feedback/stats``."""
        return cast(Stats, self._call("GET", "/api/feedback/stats", idempotent=True))

    def readiness(self, platform: str) -> Readiness:
        """``GET /api/feedback/readiness/{platform}``."""
        return cast(Readiness, self._call("GET", f"/api/feedback/readiness/{_seg(platform)}", idempotent=True))

    def archive(self, request: Optional[ArchiveInput] = None) -> ArchiveReport:
        """``POST /api/feedback/archive`` (admin); ``{"dry_run": True}`` changes nothing."""
        return cast(ArchiveReport, self._call("POST", "/api/feedback/archive", json=dict(request or {}),
                                              idempotent=False))

    # -- exports ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def export(
        self,
        platform: str,
        *,
        format: Optional[ExportFormat] = None,
        split: Optional[ExportSplit] = None,
        validation_fraction: Optional[float] = None,
        success_only: Optional[bool] = None,
        with_feedback_only: Optional[bool] = None,
        include_archived: Optional[bool] = None,
        include_metadata: Optional[bool] = None,
        since: Union[str, datetime, None] = None,
        until: Union[str, datetime, None] = None,
        limit: Optional[int] = None,
    ) -> Iterator[ExportStream]:
        """``GET /api/feedback/export/{platform}`` (admin), streamed::

            with client.export("n8n", include_archived=True) as ex:
                for line in ex.iter_records(): ...
                print(ex.export_id)

        A 303 (Lambda, exports over 5 MiB) is followed to the presigned URL (without the token)."""
        params = _export_params(format, split, validation_fraction, success_only, with_feedback_only,
                                include_archived, include_metadata, since, until, limit)
        resp = self._send("GET", f"/api/feedback/export/{_seg(platform)}", params=params, idempotent=True,
                          stream=True, follow_redirects=True)
        try:
            yield ExportStream(resp)
        finally:
            resp.close()

    def list_exports(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> ExportPage:
        """``GET /api/exports`` (admin): export manifests, newest first."""
        return cast(ExportPage, self._call("GET", "/api/exports", params={"limit": limit, "cursor": cursor},
                                           idempotent=True))

    def get_export(self, export_id: str) -> ExportManifest:
        """``GET /api/exports/{export_id}`` (admin)."""
        return cast(ExportManifest, self._call("GET", f"/api/exports/{_seg(export_id)}", idempotent=True))

    # -- personal data --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def my_data(self) -> Iterator[ExportStream]:
        """``GET /api/me/data`` (user): all of the caller's records as JSONL, streamed."""
        resp = self._send("GET", "/api/me/data", idempotent=True, stream=True, follow_redirects=True)
        try:
            yield ExportStream(resp)
        finally:
            resp.close()

    def delete_interaction(self, interaction_id: str) -> DeleteAnswer:
        """``DELETE /api/feedback/data/{interaction_id}`` (owner, admin)."""
        return cast(DeleteAnswer, self._call("DELETE", f"/api/feedback/data/{_seg(interaction_id)}", idempotent=True))

    def delete_user_data(self, user_id: str) -> DeleteAnswer:
        """``DELETE /api/feedback/data?user_id=`` (admin): all of a user's data."""
        return cast(DeleteAnswer, self._call("DELETE", "/api/feedback/data", params={"user_id": user_id},
                                             idempotent=True))

    def delete_my_data(self) -> DeleteAnswer:
        """``DELETE /api/me/data`` (user): all of the caller's data."""
        return cast(DeleteAnswer, self._call("DELETE", "/api/me/data", idempotent=True))

    # -- curation (admin) -------------------------------------------------------------------------------

    def add_example(self, example: ExampleInput) -> ExampleReceipt:
        """``POST /api/examples``."""
        return cast(ExampleReceipt, self._call("POST", "/api/examples", json=dict(example), idempotent=False))

    def list_examples(self, *, platform: Optional[str] = None) -> ExampleList:
        """``GET /api/examples``."""
        return cast(ExampleList, self._call("GET", "/api/examples", params={"platform": platform}, idempotent=True))

    def delete_example(self, example_id: str) -> ExampleDeleted:
        """``DELETE /api/examples/{id}``."""
        return cast(ExampleDeleted, self._call("DELETE", f"/api/examples/{_seg(example_id)}", idempotent=True))

    def add_training_metric(self, metric: MetricInput) -> MetricReceipt:
        """``POST /api/training-metrics``."""
        return cast(MetricReceipt, self._call("POST", "/api/training-metrics", json=dict(metric), idempotent=False))

    def list_training_metrics(self, *, platform: Optional[str] = None) -> MetricList:
        """``GET /api/training-metrics``: newest first."""
        return cast(MetricList, self._call("GET", "/api/training-metrics", params={"platform": platform},
                                           idempotent=True))

    def add_platform(self, platform: str) -> PlatformAddOutcome:
        """``POST /api/platforms`` (admin): ``added`` is False when it was already known."""
        return cast(PlatformAddOutcome, self._call("POST", "/api/platforms", json={"platform": platform},
                                                   idempotent=True))

    def list_platforms(self) -> PlatformList:
        """``GET /api/platforms``."""
        return cast(PlatformList, self._call("GET", "/api/platforms", idempotent=True))

    # -- anonymous --------------------------------------------------------------------------------------

    def health(self) -> Health:
        """``GET /api/health``."""
        return cast(Health, self._call("GET", "/api/health", idempotent=True))

    def openapi(self) -> Dict[str, Any]:
        """``GET /openapi.json``."""
        return cast(Dict[str, Any], self._call("GET", "/openapi.json", idempotent=True))


class AsyncClient(_Base):
    """The asyncio client: the same methods as ``Client``, awaited; ``export`` and ``my_data`` are
    ``async with`` blocks."""

    def __init__(
        self,
        base_url: str,
        token: TokenSource = None,
        *,
        timeout: Timeout = 10.0,
        retry: Optional[RetryPolicy] = None,
        headers: Optional[Mapping[str, str]] = None,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        super().__init__(base_url, token, timeout, retry, headers)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport,
                                       headers=self._headers)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(
        self, et: Optional[Type[BaseException]], ev: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, str]] = None,
        json: Any = None,
        idempotent: bool,
        stream: bool = False,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        attempt = 0
        while True:
            request = self._http.build_request(method, path, params=params, json=json, headers=self._auth())
            try:
                resp = await self._http.send(request, stream=stream, follow_redirects=follow_redirects)
            except httpx.HTTPError as exc:
                if attempt < self.retry.max_retries and retryable_exception(exc, idempotent):
                    await asyncio.sleep(self.retry.delay(attempt, None))
                    attempt += 1
                    continue
                raise self._transport_error(exc) from exc
            if resp.status_code in RETRY_STATUSES and attempt < self.retry.max_retries:
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                await resp.aclose()
                await asyncio.sleep(self.retry.delay(attempt, retry_after))
                attempt += 1
                continue
            if resp.status_code >= 400:
                try:
                    if stream:
                        await resp.aread()
                    raise self._error_from(resp)
                finally:
                    await resp.aclose()
            return resp

    async def _call(self, method: str, path: str, *, params: Optional[Mapping[str, Any]] = None,
                    json: Any = None, idempotent: bool) -> Any:
        resp = await self._send(method, path, params=_query(params or {}), json=json, idempotent=idempotent)
        return resp.json()

    async def log_interaction(self, interaction: InteractionInput) -> Union[IngestReceipt, NotCollected]:
        return cast(Union[IngestReceipt, NotCollected],
                    await self._call("POST", "/api/interactions", json=_with_id(interaction), idempotent=True))

    async def log_batch(self, interactions: Sequence[InteractionInput]) -> BatchAnswer:
        if not 1 <= len(interactions) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1..{MAX_BATCH} interactions, not {len(interactions)}")
        body = {"interactions": [_with_id(i) for i in interactions]}
        return cast(BatchAnswer, await self._call("POST", "/api/interactions/batch", json=body, idempotent=True))

    async def get_interaction(self, interaction_id: str) -> FullRecord:
        return cast(FullRecord, await self._call("GET", f"/api/interactions/{_seg(interaction_id)}", idempotent=True))

    async def list_interactions(
        self,
        *,
        platform: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        user_id: Optional[str] = None,
    ) -> InteractionPage:
        params = {"platform": platform, "limit": limit, "cursor": cursor, "user_id": user_id}
        return cast(InteractionPage, await self._call("GET", "/api/interactions", params=params, idempotent=True))

    async def iter_interactions(
        self, *, platform: Optional[str] = None, user_id: Optional[str] = None, page_size: int = 100
    ) -> AsyncIterator[FullRecord]:
        cursor: Optional[str] = None
        while True:
            page = await self.list_interactions(platform=platform, limit=page_size, cursor=cursor, user_id=user_id)
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def submit_feedback(self, feedback: FeedbackInput) -> FeedbackReceipt:
        return cast(FeedbackReceipt, await self._call("POST", "/api/feedback/submit", json=dict(feedback),
                                                      idempotent=False))

    async def validate_workflow(self, request: ValidateInput) -> ValidationResult:
        return cast(ValidationResult, await self._call("POST", "/api/workflow/validate", json=dict(request),
                                                       idempotent=False))

    async def stats(self) -> Stats:
        return cast(Stats, await self._call("GET", "/api/feedback/stats", idempotent=True))

    async def readiness(self, platform: str) -> Readiness:
        return cast(Readiness, await self._call("GET", f"/api/feedback/readiness/{_seg(platform)}", idempotent=True))

    async def archive(self, request: Optional[ArchiveInput] = None) -> ArchiveReport:
        return cast(ArchiveReport, await self._call("POST", "/api/feedback/archive", json=dict(request or {}),
                                                    idempotent=False))

    @contextlib.asynccontextmanager
    async def export(
        self,
        platform: str,
        *,
        format: Optional[ExportFormat] = None,
        split: Optional[ExportSplit] = None,
        validation_fraction: Optional[float] = None,
        success_only: Optional[bool] = None,
        with_feedback_only: Optional[bool] = None,
        include_archived: Optional[bool] = None,
        include_metadata: Optional[bool] = None,
        since: Union[str, datetime, None] = None,
        until: Union[str, datetime, None] = None,
        limit: Optional[int] = None,
    ) -> AsyncIterator[AsyncExportStream]:
        params = _export_params(format, split, validation_fraction, success_only, with_feedback_only,
                                include_archived, include_metadata, since, until, limit)
        resp = await self._send("GET", f"/api/feedback/export/{_seg(platform)}", params=params, idempotent=True,
                                stream=True, follow_redirects=True)
        try:
            yield AsyncExportStream(resp)
        finally:
            await resp.aclose()

    async def list_exports(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> ExportPage:
        return cast(ExportPage, await self._call("GET", "/api/exports", params={"limit": limit, "cursor": cursor},
                                                 idempotent=True))

    async def get_export(self, export_id: str) -> ExportManifest:
        return cast(ExportManifest, await self._call("GET", f"/api/exports/{_seg(export_id)}", idempotent=True))

    @contextlib.asynccontextmanager
    async def my_data(self) -> AsyncIterator[AsyncExportStream]:
        resp = await self._send("GET", "/api/me/data", idempotent=True, stream=True, follow_redirects=True)
        try:
            yield AsyncExportStream(resp)
        finally:
            await resp.aclose()

    async def delete_interaction(self, interaction_id: str) -> DeleteAnswer:
        return cast(DeleteAnswer, await self._call("DELETE", f"/api/feedback/data/{_seg(interaction_id)}",
                                                   idempotent=True))

    async def delete_user_data(self, user_id: str) -> DeleteAnswer:
        return cast(DeleteAnswer, await self._call("DELETE", "/api/feedback/data", params={"user_id": user_id},
                                                   idempotent=True))

    async def delete_my_data(self) -> DeleteAnswer:
        return cast(DeleteAnswer, await self._call("DELETE", "/api/me/data", idempotent=True))

    async def add_example(self, example: ExampleInput) -> ExampleReceipt:
        return cast(ExampleReceipt, await self._call("POST", "/api/examples", json=dict(example), idempotent=False))

    async def list_examples(self, *, platform: Optional[str] = None) -> ExampleList:
        return cast(ExampleList, await self._call("GET", "/api/examples", params={"platform": platform},
                                                  idempotent=True))

    async def delete_example(self, example_id: str) -> ExampleDeleted:
        return cast(ExampleDeleted, await self._call("DELETE", f"/api/examples/{_seg(example_id)}", idempotent=True))

    async def add_training_metric(self, metric: MetricInput) -> MetricReceipt:
        return cast(MetricReceipt, await self._call("POST", "/api/training-metrics", json=dict(metric),
                                                    idempotent=False))

    async def list_training_metrics(self, *, platform: Optional[str] = None) -> MetricList:
        return cast(MetricList, await self._call("GET", "/api/training-metrics", params={"platform": platform},
                                                 idempotent=True))

    async def add_platform(self, platform: str) -> PlatformAddOutcome:
        return cast(PlatformAddOutcome, await self._call("POST", "/api/platforms", json={"platform": platform},
                                                         idempotent=True))

    async def list_platforms(self) -> PlatformList:
        return cast(PlatformList, await self._call("GET", "/api/platforms", idempotent=True))

    async def health(self) -> Health:
        return cast(Health, await self._call("GET", "/api/health", idempotent=True))

    async def openapi(self) -> Dict[str, Any]:
        return cast(Dict[str, Any], await self._call("GET", "/openapi.json", idempotent=True))


__all__ = ["Client", "AsyncClient", "ExportStream", "AsyncExportStream", "TokenSource", "MAX_BATCH"]
