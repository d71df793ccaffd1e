"""What a call of the client can fail with.

Every exception is a :class:`ConversationsError`. An answer of the service that is not a success
is an :class:`APIError` carrying the problem+json body (RFC 9457, ``shared/API.md`` "Errors"):
``status``, ``code``, ``title``, ``detail``, every broken field in ``errors``, ``request_id`` and
``retry_after``. Its class says what it is, by the canonical ``code`` (and, for 412, the status):

==========================  =========================================  =========================
class                       status and ``code``                        when
==========================  =========================================  =========================
:class:`InvalidArgument`    400, 422 ``INVALID_ARGUMENT``              bad input; a 422 lists
                                                                       every broken field
:class:`FailedPrecondition` 400 ``FAILED_PRECONDITION``                append to a completed
                                                                       conversation
:class:`PreconditionFailed` 412 ``FAILED_PRECONDITION``                stale ``If-Match``
:class:`Aborted`            409 ``ABORTED``                            stale body/query ``etag``
:class:`AlreadyExists`      409 ``ALREADY_EXISTS``                     a taken id; undelete of a
                                                                       live conversation; a
                                                                       reused key whose messages
                                                                       went
:class:`Unauthenticated`    401 ``UNAUTHENTICATED``                    no caller identity
:class:`PermissionDenied`   403 ``PERMISSION_DENIED``                  ``X-On-Behalf-Of`` without
                                                                       the delegation scope
:class:`NotFound`           404 ``NOT_FOUND``                          missing, deleted, or
                                                                       another owner's
:class:`PayloadTooLarge`    413 ``PAYLOAD_TOO_LARGE``                  a body over 256 KiB
:class:`UnsupportedMedia`   415 ``UNSUPPORTED_MEDIA_TYPE``
:class:`ResourceExhausted`  429 ``RESOURCE_EXHAUSTED``                 throttled (retried where
                                                                       safe)
:class:`Unavailable`        503 ``UNAVAILABLE`` (and 502, 504)         retried where safe
:class:`InternalError`      500 ``INTERNAL``
==========================  =========================================  =========================

:class:`StaleEtag` is the base of :class:`Aborted` and :class:`PreconditionFailed`: the
precondition named a version that is no longer the current one — read again and decide. A code
this client does not know is a plain :class:`APIError` with the code as sent.

A failure below HTTP (the service could not be reached, the connection broke, a timeout) after
the retries allowed is a :class:`TransportError`, with the ``httpx`` exception as its cause; a
success answer this client cannot read is a :class:`DecodeError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ConversationsError(Exception):
    """Anything a call of the client can fail with."""


@dataclass(frozen=True)
class FieldError:
    """One field-level problem of a 422 (or 400) answer."""

    field: str
    """The field's path, as ``agents`` or ``messages[3].content``."""
    code: str = ""
    """A short machine-readable reason (``required``, ``too_long``…)."""
    message: str = ""


class APIError(ConversationsError):
    """An error answer of the service (problem+json)."""

    status: int
    """The HTTP status."""
    code: str
    """The canonical code (``NOT_FOUND``); from the status when the body has none."""
    title: str
    detail: str
    errors: list[FieldError]
    """The fields that broke their rules (422), every one of them."""
    request_id: str | None
    """The service's request id (``requestId``, also the ``x-request-id`` header): quote it when
    asking about a failure."""
    retry_after: float | None
    """Seconds the service asked to wait (``Retry-After``, on 429 and 503)."""
    body: Any
    """The answer's body, parsed as JSON when it was JSON, else its text."""

    def __init__(
        self,
        status: int,
        code: str,
        *,
        title: str = "",
        detail: str = "",
        errors: list[FieldError] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"{self.status} {self.code}"
        detail = self.detail or self.title
        if detail:
            text += f": {detail}"
        for i, e in enumerate(self.errors):
            text += (" — " if i == 0 else "; ") + f"{e.field} ({e.code}): {e.message}"
        if self.request_id:
            text += f" [request {self.request_id}]"
        return text


class InvalidArgument(APIError):
    """400 or 422 ``INVALID_ARGUMENT``; ``errors`` names every broken field of a 422."""


class FailedPrecondition(APIError):
    """400 ``FAILED_PRECONDITION`` (append to a ``COMPLETED`` conversation), or a 412."""


class StaleEtag(APIError):
    """A precondition that named a version no longer current: :class:`Aborted` (409, an etag in
    the body or query) or :class:`PreconditionFailed` (412, ``If-Match``)."""


class Aborted(StaleEtag):
    """409 ``ABORTED``: a stale ``etag`` in the body or query."""


class PreconditionFailed(StaleEtag, FailedPrecondition):
    """412 ``FAILED_PRECONDITION``: a stale ``If-Match``."""


class AlreadyExists(APIError):
    """409 ``ALREADY_EXISTS``: a taken id, undelete of a live conversation, or a repeated
    idempotency key whose messages were deleted or cleared since."""


class Unauthenticated(APIError):
    """401 ``UNAUTHENTICATED``: no caller identity."""


class PermissionDenied(APIError):
    """403 ``PERMISSION_DENIED``: ``X-On-Behalf-Of`` from a caller without the delegation scope."""


class NotFound(APIError):
    """404 ``NOT_FOUND``: missing, deleted where that counts as missing, or another owner's."""


class PayloadTooLarge(APIError):
    """413 ``PAYLOAD_TOO_LARGE``: a body over 256 KiB."""


class UnsupportedMedia(APIError):
    """415 ``UNSUPPORTED_MEDIA_TYPE``."""


class ResourceExhausted(APIError):
    """429 ``RESOURCE_EXHAUSTED``: throttled; ``retry_after`` says how long to wait."""


class Unavailable(APIError):
    """503 ``UNAVAILABLE`` (or a gateway's 502/504): ``retry_after`` says how long to wait."""


class InternalError(APIError):
    """500 ``INTERNAL``."""


class TransportError(ConversationsError):
    """The service could not be reached, the connection broke, or an attempt timed out (after
    the retries allowed); the ``httpx`` exception is the cause (``__cause__``)."""


class DecodeError(ConversationsError):
    """A success answer this client cannot read (a service of another version)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"unexpected answer (HTTP {status}): {message}")


_BY_CODE: dict[str, type[APIError]] = {
    "INVALID_ARGUMENT": InvalidArgument,
    "FAILED_PRECONDITION": FailedPrecondition,
    "ABORTED": Aborted,
    "ALREADY_EXISTS": AlreadyExists,
    "UNAUTHENTICATED": Unauthenticated,
    "PERMISSION_DENIED": PermissionDenied,
    "NOT_FOUND": NotFound,
    "PAYLOAD_TOO_LARGE": PayloadTooLarge,
    "UNSUPPORTED_MEDIA_TYPE": UnsupportedMedia,
    "RESOURCE_EXHAUSTED": ResourceExhausted,
    "UNAVAILABLE": Unavailable,
    "INTERNAL": InternalError,
}


def _code_of_status(status: int) -> str:
    """The code of an answer without a problem body: what the status means in the API."""
    return {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ABORTED",
        412: "FAILED_PRECONDITION",
        413: "PAYLOAD_TOO_LARGE",
        415: "UNSUPPORTED_MEDIA_TYPE",
        422: "INVALID_ARGUMENT",
        429: "RESOURCE_EXHAUSTED",
        502: "UNAVAILABLE",
        503: "UNAVAILABLE",
        504: "UNAVAILABLE",
    }.get(status, "INTERNAL")


def error_from_answer(
    status: int,
    body: bytes,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> APIError:
    """The exception for an error answer. A body that is not a problem (a proxy's HTML page)
    still gives one: the code from the status, the body's start as the detail."""
    parsed: Any
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, Mapping):
        code = parsed.get("code")
        code = code if isinstance(code, str) and code else _code_of_status(status)
        errors = [
            FieldError(
                field=str(e.get("field", "")),
                code=str(e.get("code", "")),
                message=str(e.get("message", "")),
            )
            for e in parsed.get("errors") or []
            if isinstance(e, Mapping)
        ]
        title, detail = parsed.get("title"), parsed.get("detail")
        rid = parsed.get("requestId")
        fields: dict[str, Any] = {
            "title": title if isinstance(title, str) else "",
            "detail": detail if isinstance(detail, str) else "",
            "errors": errors,
            "request_id": rid if isinstance(rid, str) else request_id,
            "body": dict(parsed),
        }
    else:
        code = _code_of_status(status)
        text = body[:200].decode("utf-8", "replace")
        fields = {"detail": text, "request_id": request_id, "body": body.decode("utf-8", "replace")}
    cls: type[APIError] = PreconditionFailed if status == 412 else _BY_CODE.get(code, APIError)
    return cls(status, code, retry_after=retry_after, **fields)
