"""A typed client of the Conversations API (``shared/API.md``, revision 3), sync and async.

.. code-block:: python

    from conversations_client import Client

    with Client(owner="alice") as client:  # CONVERSATIONS_URL, else http://127.0.0.1:9000
        conversation = client.create_conversation({"agents": ["support-bot"]})
        client.append_message(conversation.id, {"type": "USER", "content": "Hello"})
        for message in client.list_messages(conversation.id):
            print(message.order, message.content)

- :class:`Client` and :class:`AsyncClient` have every method of the API, with the same
  parameters; both drive one core (``_core``), which builds every request and parses every answer.
- Answers are dataclasses (:class:`Conversation`, :class:`Message`, :class:`Page`,
  :class:`BatchResult`) that keep unknown fields; request bodies are ``TypedDict``\\ s.
- Errors are :class:`ConversationsError`\\ s: an answer of the service is an :class:`APIError`
  subclass per code (:mod:`conversations_client.errors`).
- Retries (:class:`Retry`) only where sending twice cannot write twice (:class:`Safety`).
- :mod:`conversations_client.ids` maps a framework's session ids to conversation ids.
"""

from ._client import AsyncClient, Client
from ._version import __version__
from .errors import (
    Aborted,
    AlreadyExists,
    APIError,
    ConversationsError,
    DecodeError,
    FailedPrecondition,
    FieldError,
    InternalError,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    PreconditionFailed,
    ResourceExhausted,
    StaleEtag,
    TransportError,
    Unauthenticated,
    Unavailable,
    UnsupportedMedia,
)
from .retry import Retry, Safety
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
    ToolCall,
    View,
)

__all__ = [
    "APIError",
    "Aborted",
    "AlreadyExists",
    "AsyncClient",
    "BatchResult",
    "Client",
    "Conversation",
    "ConversationInput",
    "ConversationOrder",
    "ConversationsError",
    "DecodeError",
    "FailedPrecondition",
    "FieldError",
    "InternalError",
    "InvalidArgument",
    "Message",
    "MessageInput",
    "MessageOrder",
    "MessagePatch",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "PermissionDenied",
    "PreconditionFailed",
    "ResourceExhausted",
    "Retry",
    "Safety",
    "StaleEtag",
    "ToolCall",
    "TransportError",
    "Unauthenticated",
    "Unavailable",
    "UnsupportedMedia",
    "View",
    "__version__",
]
