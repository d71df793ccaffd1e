"""The resources of the Conversations API (``shared/API.md``, revision 3) as Python types.

What a request carries is a ``TypedDict`` with the API's own lowerCamelCase keys
(:class:`ConversationInput`, :class:`MessageInput`, :class:`MessagePatch`): a plain ``dict``
that a type checker reads. What the service answers is a dataclass with snake_case attributes
(:class:`Conversation`, :class:`Message`, :class:`Page`, :class:`BatchResult`). Every attribute of
an answer may be ``None`` (``fields`` narrows an answer; an unset field is not rendered), and a
field this client does not know (a newer service) is kept in ``extra``, so ``to_json()`` gives
back what the service sent. Nested objects (``qualityMetadata``, a tool call) stay ``dict``\\ s,
as typed by the ``TypedDict``\\ s below. Timestamps stay the RFC 3339 strings the service sends
(``2026-11-23T08:00:00.123456Z``; ``datetime.fromisoformat`` reads them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, NotRequired, Self, TypedDict, TypeVar

JsonObject = dict[str, Any]
"""A free-form JSON object (``metadata``, a tool call's ``arguments``)."""

ConversationStage = Literal["VIRTUAL_AGENT_STAGE", "HUMAN_ASSIST_STAGE"]
LifecycleState = Literal["IN_PROGRESS", "COMPLETED"]
MessageType = Literal["USER", "AGENT", "SYSTEM", "TOOL"]
View = Literal["BASIC", "FULL"]
"""``view`` of get: ``FULL`` adds the latest messages (at most 50)."""
ConversationOrder = Literal[
    "createTime desc", "createTime asc", "lastUsedTime desc", "lastUsedTime asc"
]
"""``orderBy`` of list conversations (``lastUsedTime desc``: most recently active first)."""
MessageOrder = Literal["order asc", "order desc"]
"""``orderBy`` of list messages (``order desc``: newest first)."""


class AgentInfo(TypedDict, total=False):
    """One entry of ``qualityMetadata.agentInfo``."""

    agentId: str
    displayName: str
    team: str
    dispositionCode: str


class QualityMetadata(TypedDict, total=False):
    """``qualityMetadata`` (CCAI Insights)."""

    customerSatisfactionRating: int
    waitDuration: str
    menuPath: str
    agentInfo: list[AgentInfo]


class CallMetadata(TypedDict, total=False):
    """``callMetadata`` (CCAI Insights): the audio channel of each side."""

    customerChannel: int
    agentChannel: int


class GcsSource(TypedDict, total=False):
    audioUri: str
    transcriptUri: str


class DialogflowSource(TypedDict, total=False):
    dialogflowConversation: str
    audioUri: str


class DataSource(TypedDict, total=False):
    """``dataSource`` (CCAI Insights): exactly one member."""

    gcsSource: GcsSource
    dialogflowSource: DialogflowSource


class Source(TypedDict):
    """One of Looker's ``sources``."""

    model: str
    explore: str


class PhoneNumber(TypedDict, total=False):
    """``phoneNumber`` (Dialogflow); immutable after create."""

    countryCode: int
    phoneNumber: str


class Can(TypedDict, total=False):
    """``can``: what the caller may do now, given the state."""

    update: bool
    delete: bool
    undelete: bool
    complete: bool
    appendMessage: bool


class ToolCall(TypedDict):
    """One of an ``AGENT`` message's ``toolCalls``: the model asked for a tool."""

    id: str
    name: str
    arguments: NotRequired[JsonObject]


class ConversationInput(TypedDict, total=False):
    """The body of create and update (every writable field; ``agents`` is required on create)."""

    displayName: str
    category: str
    agents: list[str]
    conversationProfile: str
    languageCode: str
    labels: dict[str, str]
    metadata: JsonObject
    conversationStage: ConversationStage
    startTime: str
    expireTime: str
    ttl: str
    """Input only: ``expireTime = now + ttl`` (``"86400s"``)."""
    qualityMetadata: QualityMetadata
    callMetadata: CallMetadata
    dataSource: DataSource
    sources: list[Source]
    phoneNumber: PhoneNumber
    etag: str
    """The conversation's etag as the update's precondition (stale: 409 ``ABORTED``)."""


class MessageInput(TypedDict, total=False):
    """The body of append message, and each message of a batch."""

    type: MessageType
    content: str
    toolCalls: list[ToolCall]
    toolCallId: str
    metadata: JsonObject


class MessagePatch(TypedDict, total=False):
    """The body of update message (``type`` and ``toolCallId`` never change)."""

    content: str
    metadata: JsonObject
    toolCalls: list[ToolCall]
    etag: str
    """The message's etag as the edit's precondition (stale: 409 ``ABORTED``)."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class _Resource:
    """An answer's dataclass: known fields as attributes, the rest kept in ``extra``."""

    _names: ClassVar[dict[str, str]]
    """JSON name → attribute name, for every attribute but ``extra``."""

    extra: dict[str, Any]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls._names = {}

    @classmethod
    def _known(cls) -> dict[str, str]:
        if not cls._names:
            cls._names = {
                _camel(f.name): f.name
                for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if f.name != "extra" and f.metadata.get("json", True)
            }
        return cls._names

    @classmethod
    def _convert(cls, name: str, value: Any) -> Any:
        return value

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The resource as the service rendered it (unknown fields go to ``extra``)."""
        known = cls._known()
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            attribute = known.get(key)
            if attribute is None:
                extra[key] = value
            else:
                values[attribute] = cls._convert(attribute, value)
        values["extra"] = extra
        return cls(**values)

    def to_json(self) -> JsonObject:
        """The resource as the service renders it: camelCase keys, unset fields left out."""
        out: JsonObject = {}
        for key, attribute in self._known().items():
            value = getattr(self, attribute)
            if value is None:
                continue
            if isinstance(value, list):
                value = [v.to_json() if isinstance(v, _Resource) else v for v in value]
            out[key] = value
        out.update(self.extra)
        return out


@dataclass(eq=True)
class Message(_Resource):
    """A message as the service answers it (``conversations/{id}/messages/{order}``)."""

    name: str | None = None
    order: int | None = None
    type: MessageType | None = None
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    metadata: JsonObject | None = None
    create_time: str | None = None
    update_time: str | None = None
    etag: str | None = None
    conversation_etag: str | None = field(default=None, metadata={"json": False})
    """The conversation's etag after the append (its ``X-Conversation-ETag`` header): set by
    ``append_message`` only, so that the next write can use it as its precondition without a
    read. Not part of the resource: ``to_json`` leaves it out."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def conversation_id(self) -> str | None:
        """The id of the conversation, from ``name``."""
        if self.name is None:
            return None
        parts = self.name.split("/")
        return parts[1] if len(parts) >= 4 else None


@dataclass(eq=True)
class Conversation(_Resource):
    """A conversation as the service answers it (``conversations/{id}``)."""

    name: str | None = None
    display_name: str | None = None
    category: str | None = None
    agents: list[str] | None = None
    conversation_profile: str | None = None
    language_code: str | None = None
    labels: dict[str, str] | None = None
    metadata: JsonObject | None = None
    conversation_stage: ConversationStage | None = None
    lifecycle_state: LifecycleState | None = None
    start_time: str | None = None
    end_time: str | None = None
    expire_time: str | None = None
    create_time: str | None = None
    update_time: str | None = None
    last_used_time: str | None = None
    deleted: bool | None = None
    delete_time: str | None = None
    purge_time: str | None = None
    message_count: int | None = None
    owner: str | None = None
    etag: str | None = None
    can: Can | None = None
    quality_metadata: QualityMetadata | None = None
    call_metadata: CallMetadata | None = None
    data_source: DataSource | None = None
    sources: list[Source] | None = None
    phone_number: PhoneNumber | None = None
    messages: list[Message] | None = None
    """``view=FULL`` only: the latest messages (at most 50), in ascending order."""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def _convert(cls, name: str, value: Any) -> Any:
        if name == "messages" and isinstance(value, list):
            return [Message.from_json(m) for m in value]
        return value

    @property
    def id(self) -> str | None:
        """The conversation's id, from ``name``."""
        if self.name is None:
            return None
        return self.name.rsplit("/", 1)[-1]

    @property
    def is_completed(self) -> bool:
        return self.lifecycle_state == "COMPLETED"


T = TypeVar("T")


@dataclass(eq=True)
class Page(Generic[T]):
    """One page of a list method: its items and the token of the next page (``None`` on the
    last page)."""

    items: list[T]
    next_page_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=True)
class BatchResult:
    """The answer of batch append: the messages appended (consecutive orders, ascending) and the
    conversation's etag after the batch (``conversationEtag``), to chain the next precondition."""

    messages: list[Message]
    conversation_etag: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
