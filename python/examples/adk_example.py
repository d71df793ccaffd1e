"""A Google ADK agent whose sessions live in the Conversations API — offline, against `make dev`.

    make dev                                   # the local stack on http://127.0.0.1:9000
    pip install './python[adk]'
    python python/examples/adk_example.py      # CONVERSATIONS_URL to use another stack

The agent's model is scripted (a ``BaseLlm`` that answers from a list, no network): asked for
the weather, it calls the ``get_weather`` tool, then answers with its result. The runner stores
every event through ``ConversationsSessionService``; the example then reads the session back and
prints the command that shows it with the CLI.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.genai import types
from pydantic import Field

from conversations_client import AsyncClient
from conversations_client.adk import ConversationsSessionService

APP = "weather-app"
USER = "alice"
OWNER = os.environ.get("CONVERSATIONS_OWNER") or "adk-example"


class ScriptedModel(BaseLlm):
    """A model that gives its scripted answers in turn (no network, no key)."""

    model: str = "scripted"
    script: list[types.Content] = Field(default_factory=list)
    turn: int = 0

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        content = self.script[self.turn]
        self.turn += 1
        # Token counts too, as a real model reports them (ADK warns when they are missing).
        usage = types.GenerateContentResponseUsageMetadata(
            prompt_token_count=0, candidates_token_count=0, total_token_count=0
        )
        yield LlmResponse(content=content, usage_metadata=usage)


def get_weather(city: str) -> dict[str, Any]:
    """The weather in a city (a fixed answer: the example is offline)."""
    return {"city": city, "sky": "sunny", "celsius": 21}


async def main() -> None:
    model = ScriptedModel(
        script=[
            types.Content(
                role="model",
                parts=[types.Part.from_function_call(name="get_weather", args={"city": "Lisbon"})],
            ),
            types.Content(role="model", parts=[types.Part(text="It is sunny in Lisbon, 21 °C.")]),
        ]
    )
    agent = LlmAgent(
        name="weather_agent",
        model=model,
        instruction="Answer questions about the weather with the get_weather tool.",
        tools=[get_weather],
        output_key="last_answer",
    )
    # One service identity (X-Owner-Id on the local stack, a token on a deployed one) for every
    # end user: each ADK user_id is sent as X-On-Behalf-Of.
    async with AsyncClient(owner=OWNER) as client:
        service = ConversationsSessionService(client=client)
        runner = Runner(app_name=APP, agent=agent, session_service=service)
        session_id = f"trip-{uuid.uuid4().hex[:8]}"
        await service.create_session(
            app_name=APP, user_id=USER, session_id=session_id, state={"user:units": "metric"}
        )
        print(f"created session {session_id} of user {USER} in app {APP}")

        question = types.Content(role="user", parts=[types.Part(text="Weather in Lisbon?")])
        async for event in runner.run_async(
            user_id=USER, session_id=session_id, new_message=question
        ):
            calls = [f"{c.name}({c.args})" for c in event.get_function_calls()]
            answers = [f"{r.name} → {r.response}" for r in event.get_function_responses()]
            text = (
                "".join(p.text or "" for p in (event.content.parts or [])) if event.content else ""
            )
            print(f"  event by {event.author}: {text or '; '.join(calls + answers)}")

        session = await service.get_session(app_name=APP, user_id=USER, session_id=session_id)
        assert session is not None
        print(f"read back: {len(session.events)} events, state {session.state}")

        conversation_id = ConversationsSessionService.conversation_id(APP, session_id)
        print("\nthe same session with the CLI:")
        print(
            f"  conversations --owner {OWNER} --on-behalf-of "
            f"{ConversationsSessionService.on_behalf_of(USER)} messages {conversation_id}"
        )


if __name__ == "__main__":
    asyncio.run(main())
