"""LangChain's chat history kept in the Conversations API: a runnable example, offline.

Start the local stack (``make dev``, http://127.0.0.1:9000), install the client with LangChain
(``pip install './python[langchain]'``), then::

    python python/examples/langchain_example.py

It runs two turns of a chat chain wrapped in ``RunnableWithMessageHistory`` (LangChain's scripted
fake chat model: no network, no key), one sync and one async, appends a tool call and its result,
reads the history back, and prints the ``conversations`` command that shows the same history.
``CONVERSATIONS_URL`` and ``CONVERSATIONS_OWNER`` (the local stack's caller) are read as the
client reads them; the owner defaults to ``langchain-example``.
"""

from __future__ import annotations

import asyncio
import os
import warnings

from langchain_core._api import LangChainDeprecationWarning
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.history import RunnableWithMessageHistory

from conversations_client import AsyncClient, Client
from conversations_client.langchain import ConversationsChatMessageHistory

# LangChain 1.x marks RunnableWithMessageHistory deprecated (LangGraph's persistence is its
# successor); it is still how a BaseChatMessageHistory is plugged into a chain.
warnings.filterwarnings("ignore", category=LangChainDeprecationWarning)

SESSION_ID = "user_123_session"
USER = "alice"


def show(title: str, messages: list[BaseMessage]) -> None:
    print(f"\n{title} ({len(messages)} messages):")
    for message in messages:
        calls = getattr(message, "tool_calls", None)
        extra = f" tool_calls={[c['name'] for c in calls]}" if calls else ""
        if isinstance(message, ToolMessage):
            extra = f" tool_call_id={message.tool_call_id}"
        print(f"  {type(message).__name__:<13} {message.content!r}{extra}")


async def main() -> None:
    owner = os.environ.get("CONVERSATIONS_OWNER") or "langchain-example"
    with Client(owner=owner) as client:
        async with AsyncClient(owner=owner) as async_client:
            # One history object per session, as RunnableWithMessageHistory asks for; both
            # clients are shared, and every call acts for the end user (X-On-Behalf-Of).
            def history_for(session_id: str) -> ConversationsChatMessageHistory:
                return ConversationsChatMessageHistory(
                    session_id, client=client, async_client=async_client, user=USER
                )

            history = history_for(SESSION_ID)
            print(f"API: {client.base_url}, owner {owner!r}, acting for {USER!r}")
            print(f"session {SESSION_ID!r} → conversation {history.conversation_id!r}")
            history.clear()  # start the example afresh: every message removed, the id kept
            print("cleared the history (it may not have existed yet: no error either way)")

            model = FakeMessagesListChatModel(
                responses=[
                    AIMessage("Nice to meet you, Ada! How can I help?"),
                    AIMessage("You told me your name is Ada."),
                ]
            )
            prompt = ChatPromptTemplate.from_messages(
                [
                    ("system", "You are a helpful assistant."),
                    MessagesPlaceholder("history"),
                    ("human", "{question}"),
                ]
            )
            chain = RunnableWithMessageHistory(
                prompt | model,
                history_for,
                input_messages_key="question",
                history_messages_key="history",
            )
            config: RunnableConfig = {"configurable": {"session_id": SESSION_ID}}

            # A sync turn (messages, then add_messages: one batch append of the turn)...
            answer = chain.invoke({"question": "Hi, I am Ada."}, config)
            print(f"\nturn 1 (invoke):  Hi, I am Ada. → {answer.content}")
            # ...and an async one (aget_messages, then aadd_messages).
            answer = await chain.ainvoke({"question": "What is my name?"}, config)
            print(f"turn 2 (ainvoke): What is my name? → {answer.content}")

            # A tool call and its result, added as one batch: toolCalls and toolCallId.
            await history.aadd_messages(
                [
                    HumanMessage("And the weather in Paris?"),
                    AIMessage(
                        "",
                        tool_calls=[
                            {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}
                        ],
                    ),
                    ToolMessage("18 °C, sunny", tool_call_id="call_1"),
                    AIMessage("It is 18 °C and sunny in Paris."),
                ]
            )
            print("added a tool call, its result and the answer (one batch append)")

            show("the history, read back", history.messages)
            show("its latest 2 (one request)", await history.aget_messages(limit=2))

            print(
                "\nthe same history from the command line:\n"
                f"  conversations --owner {owner} --on-behalf-of {USER} "
                f"messages {history.conversation_id}"
            )


if __name__ == "__main__":
    asyncio.run(main())
