"""The exceptions the client raises."""

from typing import Any, List, Optional

from .models import FieldError


class CollectorError(Exception):
    """Any failure of a call: the server's error answer, or no answer at all.

    ``status`` is the HTTP status (None when no answer came), ``code`` the error code of the
    server's body (``validation_failed``, ``not_found``, ...; ``connection_error`` or ``timeout``
    without an answer), ``message`` its text and ``details`` its per-field problems.
    """

    def __init__(
        self,
        status: Optional[int],
        code: str,
        message: str,
        details: Optional[List[FieldError]] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(f"{status if status is not None else '-'} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: List[FieldError] = list(details or [])
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Worth trying again later (throttled, unavailable, or no answer)."""
        return self.status is None or self.status in (429, 502, 503, 504)


class ApiError(CollectorError):
    """The server answered with an error status (its body's code and message are kept)."""


class TransportError(CollectorError):
    """No usable answer: connection refused or reset, or a timeout (after the retries)."""

    def __init__(self, code: str, message: str, cause: Optional[BaseException] = None) -> None:
        super().__init__(None, code, message)
        self.__cause__ = cause


def api_error(status: int, body: Any, retry_after: Optional[float]) -> ApiError:
    """An ``ApiError`` from an error answer's parsed body (or whatever came instead)."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and isinstance(err.get("code"), str):
        return ApiError(status, err["code"], str(err.get("message", "")), err.get("details") or None, retry_after)
    return ApiError(status, f"http_{status}", "the answer had no error body", None, retry_after)


__all__ = ["CollectorError", "ApiError", "TransportError", "api_error"]
