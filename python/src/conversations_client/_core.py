"""The one request-building core that :class:`~conversations_client.Client` and
:class:`~conversations_client.AsyncClient` share.

Each method of the API is written once here, as a generator that does no I/O (a "sans-I/O"
operation): it yields a :class:`Call` when it wants a request sent and receives the
:class:`Answer` (or the :class:`Failure` of the connection), yields :class:`Sleep` when it wants
to wait, and :class:`Emit` when a list hands the caller an item; it returns the parsed result or
raises the call's exception. The retry policy, the idempotency keys, the read back that
recognises an etag write, paging and every parse live here; the sync and async clients are thin
drivers that turn those steps into ``httpx.Client``/``time.sleep`` or
``httpx.AsyncClient``/``asyncio.sleep``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from . import _recognise as recognise
from ._version import __version__
from .errors import (
    AlreadyExists,
    APIError,
    ConversationsError,
    DecodeError,
    NotFound,
    StaleEtag,
    TransportError,
    error_from_answer,
)
from .retry import RETRYABLE_STATUSES, Retry, Safety, parse_retry_after
from .types import (
    BatchResult,
    Conversation,
    ConversationInput,
    ConversationOrder,
    JsonObject,
    Message,
    MessageInput,
    MessageOrder,
    MessagePatch,
    Page,
    View,
    _Resource,
)

T = TypeVar("T")
R = TypeVar("R", bound=_Resource)

DEFAULT_BASE_URL = "http://127.0.0.1:9000"
DEFAULT_TIMEOUT = 30.0
USER_AGENT = f"conversations-client-python/{__version__}"

_NO_BODY: Any = object()


@dataclass(frozen=True)
class Call:
    """One request as the client sends it, as often as its retries allow."""

    method: str
    path: tuple[str, ...]
    """The path's segments after ``/v1``, each escaped when the URL is made."""
    safety: Safety
    query: tuple[tuple[str, str], ...] = ()
    body: Any = _NO_BODY
    if_match: str | None = None


@dataclass(frozen=True)
class Sleep:
    """Wait this many seconds, then go on."""

    seconds: float


@dataclass(frozen=True)
class Emit(Generic[T]):
    """An item of a list, for the caller."""

    item: T


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, its body read whole."""

    status: int
    headers: httpx.Headers
    body: bytes


@dataclass(frozen=True)
class Failure:
    """A request that got no answer: ``sent`` is false when the connection never opened (nothing
    reached the service), true when it may have (a timeout, a connection that broke)."""

    error: Exception
    sent: bool


Step = Call | Sleep
Op = Generator[Step, Answer | Failure | None, T]
"""An operation: yields what it needs done, returns its result."""
ListOp = Generator[Step | Emit[T], Answer | Failure | None, None]
"""A list: yields what it needs done and, between them, the items."""


def failure_of(error: Exception) -> Failure:
    """What an ``httpx`` exception says about whether the request reached the service."""
    never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return Failure(error, sent=not never_sent)


TRANSPORT_ERRORS = (httpx.TransportError, httpx.DecodingError)
"""The ``httpx`` exceptions that a driver turns into a :class:`Failure`."""


@dataclass(frozen=True)
class _Sent:
    """What became of a call after its attempts."""

    answer: Answer | None
    error: ConversationsError | None
    unsure: bool
    """An attempt before the last may have applied: its answer was lost (a "try later" answer, a
    timeout, a connection that broke after the request went out)."""


@dataclass(frozen=True)
class _Done(Generic[T]):
    """The read back showed the write: answer ``value``."""

    value: T


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def normalise_base_url(base_url: str) -> str:
    """``http://host:9000``, ``…/prod``, ``…/prod/`` and ``…/v1`` all address the API; the
    client adds ``/v1`` itself."""
    text = base_url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the base URL {base_url!r} is not an http(s) URL")
    if text.endswith("/v1"):
        text = text[: -len("/v1")]
    return text


@dataclass(frozen=True)
class Config:
    """Who the calls are made as, where, and how they are retried."""

    base_url: str
    token: str | None = None
    owner: str | None = None
    on_behalf_of: str | None = None
    retry: Retry = field(default_factory=Retry)
    timeout: float | None = DEFAULT_TIMEOUT

    @classmethod
    def make(
        cls,
        base_url: str | None,
        token: str | None,
        owner: str | None,
        on_behalf_of: str | None,
        retry: Retry | None,
        timeout: float | None,
    ) -> Config:
        """The configuration, with what is not given read from ``CONVERSATIONS_URL``,
        ``CONVERSATIONS_TOKEN`` and ``CONVERSATIONS_OWNER``."""
        return cls(
            base_url=normalise_base_url(base_url or _env("CONVERSATIONS_URL") or DEFAULT_BASE_URL),
            # An empty string given sends none, and reads no variable either.
            token=(token if token is not None else _env("CONVERSATIONS_TOKEN")) or None,
            owner=(owner if owner is not None else _env("CONVERSATIONS_OWNER")) or None,
            on_behalf_of=on_behalf_of,
            retry=retry if retry is not None else Retry(),
            timeout=timeout,
        )


def _field_names(fields: Sequence[str] | str) -> list[str]:
    names = fields.split(",") if isinstance(fields, str) else fields
    return [n.strip() for n in names if n.strip()]


def _fields(fields: Sequence[str] | str | None) -> tuple[tuple[str, str], ...]:
    """The ``fields`` query parameter, when there is one."""
    if fields is None:
        return ()
    return (("fields", ",".join(_field_names(fields))),)


def _mask(mask: Sequence[str] | str | None) -> list[str] | None:
    if mask is None:
        return None
    if isinstance(mask, str):
        return [p for p in (s.strip() for s in mask.split(",")) if p]
    return list(mask)


def _key(request_id: str | uuid.UUID | None) -> str:
    """The call's idempotency key: the one given, else a new UUID, made once per call."""
    return str(request_id) if request_id is not None else str(uuid.uuid4())


def _json(answer: Answer) -> Any:
    try:
        return json.loads(answer.body)
    except ValueError as e:
        raise DecodeError(answer.status, f"not JSON: {e}") from e


def _object(answer: Answer) -> Mapping[str, Any]:
    data = _json(answer)
    if not isinstance(data, Mapping):
        raise DecodeError(answer.status, "not a JSON object")
    return data


def _conversation(answer: Answer) -> Conversation:
    return Conversation.from_json(_object(answer))


def _message(answer: Answer) -> Message:
    message = Message.from_json(_object(answer))
    message.conversation_etag = answer.headers.get("x-conversation-etag")
    return message


def _page(answer: Answer, key: str, parse: Callable[[Mapping[str, Any]], T]) -> Page[T]:
    data = dict(_object(answer))
    items = data.pop(key, None) or []
    token = data.pop("nextPageToken", None)
    if not isinstance(items, list):
        raise DecodeError(answer.status, f"{key} is not a list")
    return Page(
        items=[parse(item) for item in items],
        next_page_token=token if isinstance(token, str) and token else None,
        extra=data,
    )


def _batch(answer: Answer) -> BatchResult:
    data = dict(_object(answer))
    messages = data.pop("messages", None) or []
    etag = data.pop("conversationEtag", None)
    return BatchResult(
        messages=[Message.from_json(m) for m in messages],
        conversation_etag=etag if isinstance(etag, str) else None,
        extra=data,
    )


def _narrow(resource: R, fields: Sequence[str] | str | None) -> R:
    """A resource read whole, narrowed to ``fields`` as the service would have answered it."""
    if fields is None:
        return resource
    names = set(_field_names(fields))
    data = {k: v for k, v in resource.to_json().items() if k in names}
    return type(resource).from_json(data)


def _stale(error: APIError) -> bool:
    """A stale etag: 409 ``ABORTED`` (a body or query etag) or 412 (``If-Match``)."""
    return isinstance(error, StaleEtag)


class Core:
    """Builds the requests of one caller and parses the answers; every operation of the API."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def replace(self, **changes: Any) -> Core:
        return Core(replace(self.config, **changes))

    # The request of a call, for a driver: httpx's build_request(**request_args(call)).

    def request_args(self, call: Call) -> dict[str, Any]:
        """The arguments of ``httpx.Client.build_request`` (and the async one) for ``call``."""
        path = "/".join(quote(segment, safe="") for segment in call.path)
        headers = {"accept": "application/json", "user-agent": USER_AGENT}
        config = self.config
        if config.token is not None:
            headers["authorization"] = f"Bearer {config.token}"
        if config.owner is not None:
            headers["x-owner-id"] = config.owner
        if config.on_behalf_of is not None:
            headers["x-on-behalf-of"] = config.on_behalf_of
        if call.if_match is not None:
            headers["if-match"] = call.if_match
        args: dict[str, Any] = {
            "method": call.method,
            "url": f"{config.base_url}/v1/{path}",
            "params": list(call.query),
            "headers": headers,
            "timeout": config.timeout,
        }
        if call.body is not _NO_BODY:
            headers["content-type"] = "application/json"
            args["content"] = json.dumps(call.body, ensure_ascii=False, separators=(",", ":"))
        return args

    # Sending: the retry loop, and the read back of an etag write.

    def _send(self, call: Call) -> Generator[Step, Answer | Failure | None, _Sent]:
        """Sends ``call``, again after a "try later" answer or a failed connection where its
        safety allows, and gives the success answer or the error, with whether an attempt before
        the last may have applied."""
        retry = self.config.retry
        retries = call.safety is not Safety.ONCE
        attempt = 0
        unsure = False
        while True:
            more = attempt + 1 < retry.attempts
            got = yield call
            if isinstance(got, Failure):
                # A connection that never opened sent nothing: any call may go again. A timeout
                # or a connection that broke after the request went out may have applied.
                if more and (retries or not got.sent):
                    unsure = unsure or got.sent
                    yield Sleep(retry.delay(attempt, None))
                    attempt += 1
                    continue
                error = TransportError(f"cannot reach the service: {got.error!r}")
                error.__cause__ = got.error
                return _Sent(None, error, unsure)
            assert isinstance(got, Answer)
            if 200 <= got.status < 300:
                return _Sent(got, None, unsure)
            retry_after = parse_retry_after(got.headers.get("retry-after"))
            if more and retries and got.status in RETRYABLE_STATUSES:
                unsure = True
                yield Sleep(retry.delay(attempt, retry_after))
                attempt += 1
                continue
            problem = error_from_answer(
                got.status,
                got.body,
                request_id=got.headers.get("x-request-id"),
                retry_after=retry_after,
            )
            return _Sent(None, problem, unsure)

    def _call(self, call: Call, parse: Callable[[Answer], T]) -> Op[T]:
        sent = yield from self._send(call)
        if sent.error is not None:
            raise sent.error
        assert sent.answer is not None
        return parse(sent.answer)

    def _recognised(
        self,
        call: Call,
        parse: Callable[[Answer], T],
        refused: Callable[[APIError], bool],
        confirm: Callable[[], Op[_Done[T] | None]],
    ) -> Op[T]:
        """Sends an etag write (:attr:`Safety.RECOGNISED`). When it is refused as ``refused``
        says after an attempt whose outcome is unknown, reads back with ``confirm``, which gives
        the call's answer when the state shows this call's write; otherwise the refusal."""
        sent = yield from self._send(call)
        if sent.answer is not None:
            return parse(sent.answer)
        error = sent.error
        assert error is not None
        if (
            call.safety is Safety.RECOGNISED
            and sent.unsure
            and isinstance(error, APIError)
            and refused(error)
        ):
            try:
                done = yield from confirm()
            except ConversationsError:
                raise error from None
            if done is not None:
                return done.value
        raise error

    # Conversations.

    def create_conversation(
        self,
        conversation: ConversationInput,
        *,
        conversation_id: str | None = None,
        request_id: str | uuid.UUID | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Conversation]:
        query: list[tuple[str, str]] = []
        if conversation_id is not None:
            query.append(("conversationId", conversation_id))
        query.append(("requestId", _key(request_id)))
        call = Call(
            "POST",
            ("conversations",),
            Safety.RETRYABLE,
            query=(*query, *_fields(fields)),
            body=dict(conversation),
        )
        return (yield from self._call(call, _conversation))

    def get_conversation(
        self,
        conversation_id: str,
        *,
        view: View | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Conversation]:
        query = (("view", view),) if view is not None else ()
        call = Call(
            "GET",
            ("conversations", conversation_id),
            Safety.RETRYABLE,
            query=(*query, *_fields(fields)),
        )
        return (yield from self._call(call, _conversation))

    def list_conversations_page(
        self,
        *,
        filter: str | None = None,
        order_by: ConversationOrder | None = None,
        show_deleted: bool = False,
        page_size: int | None = None,
        page_token: str | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Page[Conversation]]:
        query: list[tuple[str, str]] = []
        if filter is not None:
            query.append(("filter", filter))
        if order_by is not None:
            query.append(("orderBy", order_by))
        if show_deleted:
            query.append(("showDeleted", "true"))
        if page_size is not None:
            query.append(("pageSize", str(page_size)))
        if page_token is not None:
            query.append(("pageToken", page_token))
        call = Call("GET", ("conversations",), Safety.RETRYABLE, query=(*query, *_fields(fields)))
        return (
            yield from self._call(call, lambda a: _page(a, "conversations", Conversation.from_json))
        )

    def list_conversations(
        self,
        *,
        filter: str | None = None,
        order_by: ConversationOrder | None = None,
        show_deleted: bool = False,
        page_size: int | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> ListOp[Conversation]:
        def page(token: str | None) -> Op[Page[Conversation]]:
            return self.list_conversations_page(
                filter=filter,
                order_by=order_by,
                show_deleted=show_deleted,
                page_size=page_size,
                page_token=token,
                fields=fields,
            )

        return _pages(page)

    def update_conversation(
        self,
        conversation_id: str,
        conversation: ConversationInput,
        *,
        update_mask: Sequence[str] | str | None = None,
        allow_missing: bool = False,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Conversation]:
        body: JsonObject = dict(conversation)
        if etag is not None:
            body["etag"] = etag
        sent = recognise.etags(if_match, body.get("etag"))
        mask = _mask(update_mask)
        query: list[tuple[str, str]] = []
        if mask is not None:
            query.append(("updateMask", ",".join(mask)))
        if allow_missing:
            query.append(("allowMissing", "true"))
        call = Call(
            "PATCH",
            ("conversations", conversation_id),
            Safety.RECOGNISED if sent else Safety.ONCE,
            query=(*query, *_fields(fields)),
            body=body,
            if_match=if_match,
        )
        paths = recognise.conversation_paths(mask, body)

        def applied(now: Conversation) -> bool:
            return (
                now.deleted is not True
                and recognise.moved(now.etag, sent or [])
                and paths is not None
                and recognise.holds(now.to_json(), body, paths, recognise.CONVERSATION_DEFAULTS)
            )

        return (
            yield from self._recognised(
                call,
                _conversation,
                _stale,
                lambda: self._confirm_conversation(conversation_id, applied, fields),
            )
        )

    def delete_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        allow_missing: bool = False,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Conversation]:
        sent = recognise.etags(if_match, etag)
        if sent:
            safety = Safety.RECOGNISED
        elif allow_missing:
            safety = Safety.RETRYABLE  # a repeat of a delete that landed answers 200
        else:
            safety = Safety.ONCE
        query: list[tuple[str, str]] = []
        if etag is not None:
            query.append(("etag", etag))
        if allow_missing:
            query.append(("allowMissing", "true"))
        call = Call(
            "DELETE",
            ("conversations", conversation_id),
            safety,
            query=(*query, *_fields(fields)),
            if_match=if_match,
        )

        def applied(now: Conversation) -> bool:
            return now.deleted is True and recognise.moved(now.etag, sent or [])

        return (
            yield from self._recognised(
                call,
                _conversation,
                # The conversation that this call deleted answers a repeat 404.
                lambda e: _stale(e) or isinstance(e, NotFound),
                lambda: self._confirm_conversation(conversation_id, applied, fields),
            )
        )

    def undelete_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Conversation]:
        sent = recognise.etags(if_match, etag)
        call = Call(
            "POST",
            ("conversations", conversation_id, "undelete"),
            Safety.RECOGNISED if sent else Safety.ONCE,
            query=_fields(fields),
            body={"etag": etag} if etag is not None else {},
            if_match=if_match,
        )

        def applied(now: Conversation) -> bool:
            return now.deleted is not True and recognise.moved(now.etag, sent or [])

        return (
            yield from self._recognised(
                call,
                _conversation,
                # The conversation that this call undeleted answers a repeat "not deleted".
                lambda e: _stale(e) or isinstance(e, AlreadyExists),
                lambda: self._confirm_conversation(conversation_id, applied, fields),
            )
        )

    def complete_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Conversation]:
        sent = recognise.etags(if_match, etag)
        call = Call(
            "POST",
            ("conversations", conversation_id, "complete"),
            # Without an etag, completing a completed conversation answers it unchanged.
            Safety.RECOGNISED if sent else Safety.RETRYABLE,
            query=_fields(fields),
            body={"etag": etag} if etag is not None else {},
            if_match=if_match,
        )

        def applied(now: Conversation) -> bool:
            return (
                now.is_completed
                and now.deleted is not True
                and recognise.moved(now.etag, sent or [])
            )

        return (
            yield from self._recognised(
                call,
                _conversation,
                _stale,
                lambda: self._confirm_conversation(conversation_id, applied, fields),
            )
        )

    def purge_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        allow_missing: bool = False,
    ) -> Op[None]:
        sent = recognise.etags(if_match, etag)
        if allow_missing:
            # A conversation already gone answers 200 {} whatever the etag: a repeat is harmless.
            safety = Safety.RETRYABLE
        elif sent:
            safety = Safety.RECOGNISED
        else:
            safety = Safety.ONCE
        query = (("allowMissing", "true"),) if allow_missing else ()
        call = Call(
            "POST",
            ("conversations", conversation_id, "purge"),
            safety,
            query=query,
            body={"etag": etag} if etag is not None else {},
            if_match=if_match,
        )

        def gone() -> Op[_Done[None] | None]:
            try:
                yield from self.get_conversation(conversation_id, fields="name")
            except NotFound:
                return _Done(None)
            return None

        return (
            yield from self._recognised(
                call,
                lambda _answer: None,
                # A purged conversation answers a repeat with an etag 409/412 (an etag
                # precondition on a missing conversation fails), without one 404.
                lambda e: _stale(e) or isinstance(e, NotFound),
                gone,
            )
        )

    def _confirm_conversation(
        self,
        conversation_id: str,
        applied: Callable[[Conversation], bool],
        fields: Sequence[str] | str | None,
    ) -> Op[_Done[Conversation] | None]:
        now = yield from self.get_conversation(conversation_id)
        return _Done(_narrow(now, fields)) if applied(now) else None

    # Messages.

    def append_message(
        self,
        conversation_id: str,
        message: MessageInput,
        *,
        request_id: str | uuid.UUID | None = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Message]:
        body: JsonObject = dict(message)
        if etag is not None:
            body["etag"] = etag
        call = Call(
            "POST",
            ("conversations", conversation_id, "messages"),
            Safety.RETRYABLE,
            query=(("requestId", _key(request_id)), *_fields(fields)),
            body=body,
            if_match=if_match,
        )
        return (yield from self._call(call, _message))

    def batch_append_messages(
        self,
        conversation_id: str,
        messages: Sequence[MessageInput],
        *,
        conversation_metadata: Mapping[str, Any] | None = None,
        request_id: str | uuid.UUID | None = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[BatchResult]:
        body: JsonObject = {"messages": [dict(m) for m in messages]}
        if etag is not None:
            body["etag"] = etag
        if conversation_metadata is not None:
            body["conversationMetadata"] = dict(conversation_metadata)
        call = Call(
            "POST",
            ("conversations", conversation_id, "messages", "batch"),
            Safety.RETRYABLE,
            query=(("requestId", _key(request_id)), *_fields(fields)),
            body=body,
            if_match=if_match,
        )
        return (yield from self._call(call, _batch))

    def get_message(
        self,
        conversation_id: str,
        order: int,
        *,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Message]:
        call = Call(
            "GET",
            ("conversations", conversation_id, "messages", str(order)),
            Safety.RETRYABLE,
            query=_fields(fields),
        )
        return (yield from self._call(call, _message))

    def update_message(
        self,
        conversation_id: str,
        order: int,
        message: MessagePatch,
        *,
        update_mask: Sequence[str] | str | None = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Message]:
        body: JsonObject = dict(message)
        if etag is not None:
            body["etag"] = etag
        sent = recognise.etags(if_match, body.get("etag"))
        mask = _mask(update_mask)
        query = (("updateMask", ",".join(mask)),) if mask is not None else ()
        call = Call(
            "PATCH",
            ("conversations", conversation_id, "messages", str(order)),
            Safety.RECOGNISED if sent else Safety.ONCE,
            query=(*query, *_fields(fields)),
            body=body,
            if_match=if_match,
        )
        paths = recognise.message_paths(mask, body)

        def confirm() -> Op[_Done[Message] | None]:
            now = yield from self.get_message(conversation_id, order)
            if (
                recognise.moved(now.etag, sent or [])
                and paths is not None
                and recognise.holds(now.to_json(), body, paths)
            ):
                return _Done(_narrow(now, fields))
            return None

        return (yield from self._recognised(call, _message, _stale, confirm))

    def list_messages_page(
        self,
        conversation_id: str,
        *,
        order_by: MessageOrder | None = None,
        filter: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Page[Message]]:
        query: list[tuple[str, str]] = []
        if order_by is not None:
            query.append(("orderBy", order_by))
        if filter is not None:
            query.append(("filter", filter))
        if page_size is not None:
            query.append(("pageSize", str(page_size)))
        if page_token is not None:
            query.append(("pageToken", page_token))
        call = Call(
            "GET",
            ("conversations", conversation_id, "messages"),
            Safety.RETRYABLE,
            query=(*query, *_fields(fields)),
        )
        return (yield from self._call(call, lambda a: _page(a, "messages", Message.from_json)))

    def list_messages(
        self,
        conversation_id: str,
        *,
        order_by: MessageOrder | None = None,
        filter: str | None = None,
        page_size: int | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> ListOp[Message]:
        def page(token: str | None) -> Op[Page[Message]]:
            return self.list_messages_page(
                conversation_id,
                order_by=order_by,
                filter=filter,
                page_size=page_size,
                page_token=token,
                fields=fields,
            )

        return _pages(page)

    def delete_message(
        self,
        conversation_id: str,
        order: int,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Message]:
        # Sent once, with or without an etag: its answer is the message as it was, and a repeat
        # of an attempt that applied answers 404 — neither a retry nor a read back can give it.
        query = (("etag", etag),) if etag is not None else ()
        call = Call(
            "DELETE",
            ("conversations", conversation_id, "messages", str(order)),
            Safety.ONCE,
            query=(*query, *_fields(fields)),
            if_match=if_match,
        )
        return (yield from self._call(call, _message))

    def clear_messages(
        self,
        conversation_id: str,
        *,
        through_order: int | None = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Sequence[str] | str | None = None,
    ) -> Op[Conversation]:
        sent = recognise.etags(if_match, etag)
        if sent:
            safety = Safety.RECOGNISED
        elif through_order is not None:
            # Clearing through an order already cleared changes nothing but the etag.
            safety = Safety.RETRYABLE
        else:
            # A repeat would also clear what was appended between the two attempts.
            safety = Safety.ONCE
        body: JsonObject = {}
        if through_order is not None:
            body["throughOrder"] = through_order
        if etag is not None:
            body["etag"] = etag
        call = Call(
            "POST",
            ("conversations", conversation_id, "messages", "clear"),
            safety,
            query=_fields(fields),
            body=body,
            if_match=if_match,
        )

        def confirm() -> Op[_Done[Conversation] | None]:
            now = yield from self.get_conversation(conversation_id)
            if now.deleted is True or not recognise.moved(now.etag, sent or []):
                return None
            if through_order is None:
                cleared = now.message_count == 0
            else:
                left = yield from self.list_messages_page(
                    conversation_id, filter=f"order <= {through_order}", page_size=1
                )
                cleared = not left.items
            return _Done(_narrow(now, fields)) if cleared else None

        return (yield from self._recognised(call, _conversation, _stale, confirm))


def _pages(page: Callable[[str | None], Op[Page[T]]]) -> ListOp[T]:
    """The items of every page, following ``nextPageToken`` until there is none (absent or
    empty); the next page is fetched only once the items before it were taken."""
    token: str | None = None
    while True:
        current = yield from page(token)
        for item in current.items:
            yield Emit(item)
        if current.next_page_token is None:
            return
        token = current.next_page_token
