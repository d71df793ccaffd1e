"""The two clients: :class:`Client` (sync, ``httpx.Client``) and :class:`AsyncClient` (async,
``httpx.AsyncClient``). Both drive the operations of :mod:`conversations_client._core`; neither
holds any logic of the API itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from ._core import (
    DEFAULT_TIMEOUT,
    TRANSPORT_ERRORS,
    Answer,
    Call,
    Config,
    Core,
    Emit,
    Failure,
    ListOp,
    Op,
    Sleep,
    failure_of,
)
from .retry import Retry
from .types import (
    BatchResult,
    Conversation,
    ConversationInput,
    ConversationOrder,
    Message,
    MessageInput,
    MessageOrder,
    MessagePatch,
    Page,
    View,
)

T = TypeVar("T")

Fields = Sequence[str] | str | None
"""``fields``: the top-level fields the answer carries (names, or one comma-separated string)."""
RequestId = str | uuid.UUID | None
"""An idempotency key (a UUID); made once per call when ``None``, and reused by its retries."""

_UNSET: Any = object()


class _Base:
    """What both clients share: the core, the connection pool and its owner."""

    _core: Core
    _owns_http: bool

    def _configure(
        self,
        base_url: str | None,
        token: str | None,
        owner: str | None,
        on_behalf_of: str | None,
        retry: Retry | None,
        timeout: float | None,
    ) -> None:
        self._core = Core(Config.make(base_url, token, owner, on_behalf_of, retry, timeout))

    @property
    def base_url(self) -> str:
        """The API's base URL (without ``/v1``)."""
        return self._core.config.base_url

    @property
    def owner(self) -> str | None:
        """``X-Owner-Id`` (a local stack's caller identity)."""
        return self._core.config.owner

    @property
    def on_behalf_of(self) -> str | None:
        """``X-On-Behalf-Of``: the end user this client acts for."""
        return self._core.config.on_behalf_of

    @property
    def retry(self) -> Retry:
        return self._core.config.retry

    def _derive(self, **changes: Any) -> Self:
        """A client sharing this one's connection pool, with ``changes`` to its configuration."""
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other._core = self._core.replace(**changes)
        other._owns_http = False
        return other

    def acting_for(self, user: str | None) -> Self:
        """The same client acting for another end user (``X-On-Behalf-Of: user``; ``None``: for
        the caller itself), sharing this client's connection pool. The caller's token must grant
        the delegation scope (the local stack allows it always). Closing it leaves the pool
        open: close the client it came from."""
        return self._derive(on_behalf_of=user)

    def with_options(self, *, retry: Retry | None = None, timeout: float | None = _UNSET) -> Self:
        """The same client with another retry policy or timeout, sharing the connection pool."""
        changes: dict[str, Any] = {}
        if retry is not None:
            changes["retry"] = retry
        if timeout is not _UNSET:
            changes["timeout"] = timeout
        return self._derive(**changes)


class Client(_Base):
    """A client of the Conversations API, as one caller (sync).

    ``base_url`` defaults to ``CONVERSATIONS_URL`` (else ``http://127.0.0.1:9000``), ``token``
    (sent as ``Authorization: Bearer``) to ``CONVERSATIONS_TOKEN``, ``owner`` (``X-Owner-Id``, the
    local stack's identity) to ``CONVERSATIONS_OWNER``; ``on_behalf_of`` is sent as
    ``X-On-Behalf-Of``. ``retry`` is the retry policy (:class:`~conversations_client.Retry`;
    ``Retry.none()`` turns retries off), ``timeout`` each attempt's timeout in seconds
    (``None``: none). ``http_client`` replaces the ``httpx.Client`` the client makes (and then
    is not closed by it).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        owner: str | None = None,
        on_behalf_of: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._configure(base_url, token, owner, on_behalf_of, retry, timeout)
        self._http = http_client if http_client is not None else httpx.Client()
        self._owns_http = http_client is None

    def close(self) -> None:
        """Closes the connection pool (when this client made it)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # The driver.

    def _send_one(self, call: Call) -> Answer | Failure:
        request = self._http.build_request(**self._core.request_args(call))
        try:
            response = self._http.send(request)
            try:
                body = response.read()
            finally:
                response.close()
        except TRANSPORT_ERRORS as error:
            return failure_of(error)
        return Answer(response.status_code, response.headers, body)

    def _run(self, op: Op[T]) -> T:
        try:
            step = next(op)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = op.send(None)
                else:
                    step = op.send(self._send_one(step))
        except StopIteration as done:
            result: T = done.value
            return result

    def _iterate(self, op: ListOp[T]) -> Iterator[T]:
        try:
            step = next(op)
            while True:
                if isinstance(step, Emit):
                    yield step.item
                    step = op.send(None)
                elif isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = op.send(None)
                else:
                    step = op.send(self._send_one(step))
        except StopIteration:
            return

    # Conversations.

    def create_conversation(
        self,
        conversation: ConversationInput,
        *,
        conversation_id: str | None = None,
        request_id: RequestId = None,
        fields: Fields = None,
    ) -> Conversation:
        """Creates a conversation (201); ``conversation_id`` chooses its id (a taken one:
        :class:`~conversations_client.AlreadyExists`). Retried safely: the call's ``requestId``
        is made once (or given) and sent with every attempt."""
        return self._run(
            self._core.create_conversation(
                conversation, conversation_id=conversation_id, request_id=request_id, fields=fields
            )
        )

    def get_conversation(
        self, conversation_id: str, *, view: View | None = None, fields: Fields = None
    ) -> Conversation:
        """Reads a conversation (a soft-deleted one too, with ``deleted``); ``view="FULL"`` adds
        its latest messages (at most 50)."""
        return self._run(self._core.get_conversation(conversation_id, view=view, fields=fields))

    def list_conversations_page(
        self,
        *,
        filter: str | None = None,
        order_by: ConversationOrder | None = None,
        show_deleted: bool = False,
        page_size: int | None = None,
        page_token: str | None = None,
        fields: Fields = None,
    ) -> Page[Conversation]:
        """One page of the caller's conversations, with the next page's token."""
        return self._run(
            self._core.list_conversations_page(
                filter=filter,
                order_by=order_by,
                show_deleted=show_deleted,
                page_size=page_size,
                page_token=page_token,
                fields=fields,
            )
        )

    def list_conversations(
        self,
        *,
        filter: str | None = None,
        order_by: ConversationOrder | None = None,
        show_deleted: bool = False,
        page_size: int | None = None,
        fields: Fields = None,
    ) -> Iterator[Conversation]:
        """Every conversation of the caller that the parameters select, page after page (a page
        is fetched when the items before it were taken)."""
        return self._iterate(
            self._core.list_conversations(
                filter=filter,
                order_by=order_by,
                show_deleted=show_deleted,
                page_size=page_size,
                fields=fields,
            )
        )

    def update_conversation(
        self,
        conversation_id: str,
        conversation: ConversationInput,
        *,
        update_mask: Sequence[str] | str | None = None,
        allow_missing: bool = False,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Conversation:
        """Updates a conversation (``update_mask``: the paths to write; ``None``: the fields
        present), or creates it with ``allow_missing``. ``etag`` (in the body; stale:
        :class:`~conversations_client.Aborted`) or ``if_match`` (stale:
        :class:`~conversations_client.PreconditionFailed`) makes it conditional. Sent once
        without an etag; with one it is retried, and a retry refused because its first attempt
        had applied answers the conversation read back when every path it set holds the value
        sent."""
        return self._run(
            self._core.update_conversation(
                conversation_id,
                conversation,
                update_mask=update_mask,
                allow_missing=allow_missing,
                etag=etag,
                if_match=if_match,
                fields=fields,
            )
        )

    def delete_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        allow_missing: bool = False,
        fields: Fields = None,
    ) -> Conversation:
        """Soft-deletes a conversation and answers it. Retried with an etag (a refused retry
        whose first attempt applied answers the conversation read back, deleted) or with
        ``allow_missing``; otherwise sent once."""
        return self._run(
            self._core.delete_conversation(
                conversation_id,
                etag=etag,
                if_match=if_match,
                allow_missing=allow_missing,
                fields=fields,
            )
        )

    def undelete_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Conversation:
        """Undeletes a soft-deleted conversation (a live one:
        :class:`~conversations_client.AlreadyExists`). Sent once without an etag."""
        return self._run(
            self._core.undelete_conversation(
                conversation_id, etag=etag, if_match=if_match, fields=fields
            )
        )

    def complete_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Conversation:
        """Completes a conversation (a completed one answers unchanged). Retried."""
        return self._run(
            self._core.complete_conversation(
                conversation_id, etag=etag, if_match=if_match, fields=fields
            )
        )

    def purge_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        allow_missing: bool = False,
    ) -> None:
        """Removes a conversation (live or soft-deleted) and its messages for good; its id is
        free at once. ``allow_missing``: a missing one is no error, and the call is retried."""
        self._run(
            self._core.purge_conversation(
                conversation_id, etag=etag, if_match=if_match, allow_missing=allow_missing
            )
        )

    # Messages.

    def append_message(
        self,
        conversation_id: str,
        message: MessageInput,
        *,
        request_id: RequestId = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Message:
        """Appends a message (201); the answer's ``conversation_etag`` is the conversation's etag
        after it. Retried safely with one idempotency key."""
        return self._run(
            self._core.append_message(
                conversation_id,
                message,
                request_id=request_id,
                etag=etag,
                if_match=if_match,
                fields=fields,
            )
        )

    def batch_append_messages(
        self,
        conversation_id: str,
        messages: Sequence[MessageInput],
        *,
        conversation_metadata: Mapping[str, Any] | None = None,
        request_id: RequestId = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> BatchResult:
        """Appends 1–50 messages, all or none, and sets the top-level keys of the conversation's
        ``metadata`` that ``conversation_metadata`` names (``None`` removes a key) in the same
        transaction. Retried safely with one idempotency key."""
        return self._run(
            self._core.batch_append_messages(
                conversation_id,
                messages,
                conversation_metadata=conversation_metadata,
                request_id=request_id,
                etag=etag,
                if_match=if_match,
                fields=fields,
            )
        )

    def get_message(self, conversation_id: str, order: int, *, fields: Fields = None) -> Message:
        """Reads one message."""
        return self._run(self._core.get_message(conversation_id, order, fields=fields))

    def update_message(
        self,
        conversation_id: str,
        order: int,
        message: MessagePatch,
        *,
        update_mask: Sequence[str] | str | None = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Message:
        """Edits a message (``content``, ``metadata``, ``metadata.<key>``, ``toolCalls``). Sent
        once without the message's etag; with it, retried and recognised."""
        return self._run(
            self._core.update_message(
                conversation_id,
                order,
                message,
                update_mask=update_mask,
                etag=etag,
                if_match=if_match,
                fields=fields,
            )
        )

    def list_messages_page(
        self,
        conversation_id: str,
        *,
        order_by: MessageOrder | None = None,
        filter: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        fields: Fields = None,
    ) -> Page[Message]:
        """One page of a conversation's messages (``order_by="order desc", page_size=n``: the
        last ``n``, newest first, in one request)."""
        return self._run(
            self._core.list_messages_page(
                conversation_id,
                order_by=order_by,
                filter=filter,
                page_size=page_size,
                page_token=page_token,
                fields=fields,
            )
        )

    def list_messages(
        self,
        conversation_id: str,
        *,
        order_by: MessageOrder | None = None,
        filter: str | None = None,
        page_size: int | None = None,
        fields: Fields = None,
    ) -> Iterator[Message]:
        """Every message that the parameters select, page after page."""
        return self._iterate(
            self._core.list_messages(
                conversation_id,
                order_by=order_by,
                filter=filter,
                page_size=page_size,
                fields=fields,
            )
        )

    def delete_message(
        self,
        conversation_id: str,
        order: int,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Message:
        """Removes a message for good and answers it as it was. Sent once (a repeat of an
        attempt that applied answers 404, and the message cannot be read back)."""
        return self._run(
            self._core.delete_message(
                conversation_id, order, etag=etag, if_match=if_match, fields=fields
            )
        )

    def clear_messages(
        self,
        conversation_id: str,
        *,
        through_order: int | None = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Conversation:
        """Removes every message whose order is at most ``through_order`` (``None``: every
        message) and answers the conversation. Retried with ``through_order`` or an etag; a
        clear of everything without an etag is sent once."""
        return self._run(
            self._core.clear_messages(
                conversation_id,
                through_order=through_order,
                etag=etag,
                if_match=if_match,
                fields=fields,
            )
        )


class AsyncClient(_Base):
    """A client of the Conversations API, as one caller (async): the methods of :class:`Client`,
    each a coroutine, with the same parameters, answers and exceptions; the list methods are
    async iterators. ``http_client`` replaces the ``httpx.AsyncClient`` it makes.

    Use it as an async context manager, or await :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        owner: str | None = None,
        on_behalf_of: str | None = None,
        retry: Retry | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._configure(base_url, token, owner, on_behalf_of, retry, timeout)
        self._http = http_client if http_client is not None else httpx.AsyncClient()
        self._owns_http = http_client is None

    async def aclose(self) -> None:
        """Closes the connection pool (when this client made it)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # The driver.

    async def _send_one(self, call: Call) -> Answer | Failure:
        request = self._http.build_request(**self._core.request_args(call))
        try:
            response = await self._http.send(request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
        except TRANSPORT_ERRORS as error:
            return failure_of(error)
        return Answer(response.status_code, response.headers, body)

    async def _run(self, op: Op[T]) -> T:
        try:
            step = next(op)
            while True:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    step = op.send(None)
                else:
                    step = op.send(await self._send_one(step))
        except StopIteration as done:
            result: T = done.value
            return result

    async def _iterate(self, op: ListOp[T]) -> AsyncIterator[T]:
        try:
            step = next(op)
            while True:
                if isinstance(step, Emit):
                    yield step.item
                    step = op.send(None)
                elif isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    step = op.send(None)
                else:
                    step = op.send(await self._send_one(step))
        except StopIteration:
            return

    # Conversations.

    async def create_conversation(
        self,
        conversation: ConversationInput,
        *,
        conversation_id: str | None = None,
        request_id: RequestId = None,
        fields: Fields = None,
    ) -> Conversation:
        """As :meth:`Client.create_conversation`."""
        return await self._run(
            self._core.create_conversation(
                conversation, conversation_id=conversation_id, request_id=request_id, fields=fields
            )
        )

    async def get_conversation(
        self, conversation_id: str, *, view: View | None = None, fields: Fields = None
    ) -> Conversation:
        """As :meth:`Client.get_conversation`."""
        return await self._run(
            self._core.get_conversation(conversation_id, view=view, fields=fields)
        )

    async def list_conversations_page(
        self,
        *,
        filter: str | None = None,
        order_by: ConversationOrder | None = None,
        show_deleted: bool = False,
        page_size: int | None = None,
        page_token: str | None = None,
        fields: Fields = None,
    ) -> Page[Conversation]:
        """As :meth:`Client.list_conversations_page`."""
        return await self._run(
            self._core.list_conversations_page(
                filter=filter,
                order_by=order_by,
                show_deleted=show_deleted,
                page_size=page_size,
                page_token=page_token,
                fields=fields,
            )
        )

    def list_conversations(
        self,
        *,
        filter: str | None = None,
        order_by: ConversationOrder | None = None,
        show_deleted: bool = False,
        page_size: int | None = None,
        fields: Fields = None,
    ) -> AsyncIterator[Conversation]:
        """As :meth:`Client.list_conversations`, an async iterator (``async for``)."""
        return self._iterate(
            self._core.list_conversations(
                filter=filter,
                order_by=order_by,
                show_deleted=show_deleted,
                page_size=page_size,
                fields=fields,
            )
        )

    async def update_conversation(
        self,
        conversation_id: str,
        conversation: ConversationInput,
        *,
        update_mask: Sequence[str] | str | None = None,
        allow_missing: bool = False,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Conversation:
        """As :meth:`Client.update_conversation`."""
        return await self._run(
            self._core.update_conversation(
                conversation_id,
                conversation,
                update_mask=update_mask,
                allow_missing=allow_missing,
                etag=etag,
                if_match=if_match,
                fields=fields,
            )
        )

    async def delete_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        allow_missing: bool = False,
        fields: Fields = None,
    ) -> Conversation:
        """As :meth:`Client.delete_conversation`."""
        return await self._run(
            self._core.delete_conversation(
                conversation_id,
                etag=etag,
                if_match=if_match,
                allow_missing=allow_missing,
                fields=fields,
            )
        )

    async def undelete_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Conversation:
        """As :meth:`Client.undelete_conversation`."""
        return await self._run(
            self._core.undelete_conversation(
                conversation_id, etag=etag, if_match=if_match, fields=fields
            )
        )

    async def complete_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Conversation:
        """As :meth:`Client.complete_conversation`."""
        return await self._run(
            self._core.complete_conversation(
                conversation_id, etag=etag, if_match=if_match, fields=fields
            )
        )

    async def purge_conversation(
        self,
        conversation_id: str,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        allow_missing: bool = False,
    ) -> None:
        """As :meth:`Client.purge_conversation`."""
        await self._run(
            self._core.purge_conversation(
                conversation_id, etag=etag, if_match=if_match, allow_missing=allow_missing
            )
        )

    # Messages.

    async def append_message(
        self,
        conversation_id: str,
        message: MessageInput,
        *,
        request_id: RequestId = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Message:
        """As :meth:`Client.append_message`."""
        return await self._run(
            self._core.append_message(
                conversation_id,
                message,
                request_id=request_id,
                etag=etag,
                if_match=if_match,
                fields=fields,
            )
        )

    async def batch_append_messages(
        self,
        conversation_id: str,
        messages: Sequence[MessageInput],
        *,
        conversation_metadata: Mapping[str, Any] | None = None,
        request_id: RequestId = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> BatchResult:
        """As :meth:`Client.batch_append_messages`."""
        return await self._run(
            self._core.batch_append_messages(
                conversation_id,
                messages,
                conversation_metadata=conversation_metadata,
                request_id=request_id,
                etag=etag,
                if_match=if_match,
                fields=fields,
            )
        )

    async def get_message(
        self, conversation_id: str, order: int, *, fields: Fields = None
    ) -> Message:
        """As :meth:`Client.get_message`."""
        return await self._run(self._core.get_message(conversation_id, order, fields=fields))

    async def update_message(
        self,
        conversation_id: str,
        order: int,
        message: MessagePatch,
        *,
        update_mask: Sequence[str] | str | None = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Message:
        """As :meth:`Client.update_message`."""
        return await self._run(
            self._core.update_message(
                conversation_id,
                order,
                message,
                update_mask=update_mask,
                etag=etag,
                if_match=if_match,
                fields=fields,
            )
        )

    async def list_messages_page(
        self,
        conversation_id: str,
        *,
        order_by: MessageOrder | None = None,
        filter: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        fields: Fields = None,
    ) -> Page[Message]:
        """As :meth:`Client.list_messages_page`."""
        return await self._run(
            self._core.list_messages_page(
                conversation_id,
                order_by=order_by,
                filter=filter,
                page_size=page_size,
                page_token=page_token,
                fields=fields,
            )
        )

    def list_messages(
        self,
        conversation_id: str,
        *,
        order_by: MessageOrder | None = None,
        filter: str | None = None,
        page_size: int | None = None,
        fields: Fields = None,
    ) -> AsyncIterator[Message]:
        """As :meth:`Client.list_messages`, an async iterator (``async for``)."""
        return self._iterate(
            self._core.list_messages(
                conversation_id,
                order_by=order_by,
                filter=filter,
                page_size=page_size,
                fields=fields,
            )
        )

    async def delete_message(
        self,
        conversation_id: str,
        order: int,
        *,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Message:
        """As :meth:`Client.delete_message`."""
        return await self._run(
            self._core.delete_message(
                conversation_id, order, etag=etag, if_match=if_match, fields=fields
            )
        )

    async def clear_messages(
        self,
        conversation_id: str,
        *,
        through_order: int | None = None,
        etag: str | None = None,
        if_match: str | None = None,
        fields: Fields = None,
    ) -> Conversation:
        """As :meth:`Client.clear_messages`."""
        return await self._run(
            self._core.clear_messages(
                conversation_id,
                through_order=through_order,
                etag=etag,
                if_match=if_match,
                fields=fields,
            )
        )
