"""A Strands agent whose session lives in the Conversations API, offline: a scripted model stands
in for a real one, so nothing but the local stack is called.

    make dev                                    # the API on http://127.0.0.1:9000
    pip install './python[strands]'
    python python/examples/strands_example.py   # run it twice: the second run goes on

CONVERSATIONS_URL, CONVERSATIONS_OWNER (default ``strands-example``) and CONVERSATIONS_TOKEN
choose the stack and the caller; ``--session ID`` another session, ``--fresh`` deletes it first.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from strands import Agent, tool
from strands.models import Model
from strands.types.exceptions import SessionException

from conversations_client import Client
from conversations_client.strands import (
    ConversationsSessionManager,
    ConversationsSessionRepository,
    agent_conversation_id,
    session_conversation_id,
)


class ScriptedModel(Model):
    """Answers with the next of its replies, as a model would stream it."""

    def __init__(self, *replies: list[dict[str, Any]]) -> None:
        self.replies = list(replies)

    def update_config(self, **model_config: Any) -> None:
        pass

    def get_config(self) -> Any:
        return {}

    def structured_output(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("this example asks for no structured output")

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        yield {"messageStart": {"role": "assistant"}}
        stop = "end_turn"
        for block in self.replies.pop(0):
            if "text" in block:
                yield {"contentBlockStart": {"start": {}}}
                yield {"contentBlockDelta": {"delta": {"text": block["text"]}}}
            else:
                use, stop = block["toolUse"], "tool_use"
                start = {"toolUse": {"name": use["name"], "toolUseId": use["toolUseId"]}}
                yield {"contentBlockStart": {"start": start}}
                yield {
                    "contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(use["input"])}}}
                }
            yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": stop}}


@tool
def weather(city: str) -> str:
    """Today's weather in a city.

    Args:
        city: The city.
    """
    return f"Sunny, 22 °C in {city}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--session", default="Weather chat (demo)", help="a Strands session id")
    parser.add_argument("--fresh", action="store_true", help="delete the session first")
    args = parser.parse_args()
    owner = os.environ.get("CONVERSATIONS_OWNER") or "strands-example"

    with Client(owner=owner) as client:
        if args.fresh:
            try:
                ConversationsSessionRepository(client=client).delete_session(args.session)
                print(f"deleted session {args.session!r}")
            except SessionException:
                print(f"no session {args.session!r} to delete")

        manager = ConversationsSessionManager(args.session, client=client)
        model = ScriptedModel()
        agent = Agent(model=model, tools=[weather], session_manager=manager, callback_handler=None)
        if agent.messages:
            print(f"restored session {args.session!r}: {len(agent.messages)} messages")
            model.replies = [[{"text": "You asked me about the weather in Lisbon."}]]
            agent("What did I ask you last time?")
        else:
            print(f"new session {args.session!r}")
            model.replies = [
                [
                    {"text": "Let me look that up."},
                    {
                        "toolUse": {
                            "toolUseId": "tooluse_1",
                            "name": "weather",
                            "input": {"city": "Lisbon"},
                        }
                    },
                ],
                [{"text": "It is sunny in Lisbon today, 22 °C."}],
            ]
            agent("What's the weather in Lisbon?")
        visits = (agent.state.get("visits") or 0) + 1
        agent.state.set("visits", visits)
        manager.sync_agent(agent)

        conversation_id = agent_conversation_id(args.session, agent.agent_id)
        print(f"session conversation: {session_conversation_id(args.session)}")
        print(f"agent {agent.agent_id!r} conversation: {conversation_id} (visits: {visits})")
        for stored in manager.list_messages(args.session, agent.agent_id):
            content = json.dumps(stored.message["content"], ensure_ascii=False)
            print(f"  message {stored.message_id} ({stored.message['role']}): {content}")
        print("as other clients see it (view=FULL):")
        for m in client.get_conversation(conversation_id, view="FULL").messages or []:
            calls = "".join(f" [calls {c['name']}#{c['id']}]" for c in m.tool_calls or [])
            answers = f"[answers {m.tool_call_id}] " if m.tool_call_id else ""
            print(f"  {m.order:>3} {m.type:<5} {answers}{m.content}{calls}")
        session = session_conversation_id(args.session)
        print(f"\nsee it with: conversations --owner {owner} messages {conversation_id}")
        print(
            f"the session's conversations: conversations --owner {owner} list"
            f" --filter 'labels.strands-session = \"{session}\"'"
        )


if __name__ == "__main__":
    main()
