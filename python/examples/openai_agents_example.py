"""An OpenAI Agents SDK agent whose session lives in the Conversations API — offline.

    make dev                                   # the API on http://127.0.0.1:9000
    pip install './python[openai-agents]'
    python python/examples/openai_agents_example.py [SESSION_ID]
    conversations --owner demo messages openai-agents-demo

The model is the SDK's ScriptedModel (no network, no API key): it asks for the weather tool, then
answers, then answers a thank-you. The agent, the tool call and the session are real: the
Runner reads the history from the session and stores each turn in it, and the CLI shows the
transcript. Run it again and the session holds both runs. CONVERSATIONS_URL and
CONVERSATIONS_OWNER (default: demo) choose the stack and the caller.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

from conversations_client import AsyncClient
from conversations_client.openai_agents import ConversationsSession


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny, 21 °C in {city}"


def scripted_model() -> ScriptedModel:
    """What a real model would answer, written down: a tool call, an answer, a reply."""
    return ScriptedModel(
        [
            [function_call("get_weather", {"city": "Paris"}, call_id="call_weather_1")],
            [assistant_message("It is sunny in Paris, 21 °C.")],
            [assistant_message("You're welcome!")],
        ]
    )


async def main(session_id: str) -> None:
    set_tracing_disabled(True)  # traces would go to OpenAI: keep everything local
    owner = os.environ.get("CONVERSATIONS_OWNER") or "demo"
    async with AsyncClient(owner=owner) as client:
        session = ConversationsSession(session_id, client=client)
        print(f"API {client.base_url}, owner {owner}")
        print(f"session {session_id!r} is conversation {session.conversation_id!r}")
        before = await session.get_items()
        print(f"the session holds {len(before)} items before this run")

        agent = Agent(
            name="weather",
            instructions="Answer questions about the weather.",
            model=scripted_model(),
            tools=[get_weather],
        )
        for text in ("What is the weather in Paris?", "Thanks!"):
            print(f"\nuser:  {text}")
            result = await Runner.run(agent, text, session=session)
            print(f"agent: {result.final_output}")

        items = await session.get_items()
        print(f"\nthe session now holds {len(items)} items; the last four:")
        for item in await session.get_items(limit=4):
            print("  ", json.dumps(item, ensure_ascii=False)[:110])

        print("\nthe same transcript as other clients read it (list messages):")
        recent = await client.list_messages_page(
            session.conversation_id, order_by="order desc", page_size=6
        )
        for message in reversed(recent.items):
            text = message.content or ""
            for call in message.tool_calls or []:
                text += f" [calls {call['name']}({json.dumps(call.get('arguments', {}))})]"
            if message.tool_call_id:
                text = f"[answers {message.tool_call_id}] {text}"
            print(f"  {message.order:>4}  {message.type:<6} {text.strip()[:80]}")

        print(f"\nsee it with: conversations --owner {owner} messages {session.conversation_id}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "openai-agents-demo"))
