"""Fixtures: the stack under test (``CONVERSATIONS_URL``, which ``make test`` sets to the stack it
starts; its identity is the ``X-Owner-Id`` header), a fresh owner per test, and clients of both
kinds.

``api`` runs a test twice, once with :class:`~conversations_client.Client` and once with
:class:`~conversations_client.AsyncClient` (each coroutine run to its end on the fixture's own
event loop, each async iterator collected), so that every method is tested on both clients with
one test body.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

import httpx
import pytest

from api_proxy import ApiProxy, api_proxy
from conversations_client import AsyncClient, Client


def _stack_url() -> str:
    return os.environ.get("CONVERSATIONS_URL", "").strip() or "http://127.0.0.1:9000"


@pytest.fixture(scope="session")
def stack_url() -> str:
    """The API under test; the session fails at once, saying so, when nothing answers there."""
    url = _stack_url()
    try:
        httpx.get(f"{url}/v1/conversations", headers={"x-owner-id": "probe"}, timeout=30)
    except httpx.HTTPError as e:
        pytest.exit(
            f"no Conversations API at {url} ({e!r}): start one (make dev) or set CONVERSATIONS_URL",
            returncode=1,
        )
    return url


@pytest.fixture
def owner() -> str:
    """A caller identity that no other test uses."""
    return f"py-{uuid.uuid4().hex}"


@pytest.fixture
def client(stack_url: str, owner: str) -> Iterator[Client]:
    with Client(stack_url, owner=owner, token="") as c:
        yield c


@pytest.fixture
async def aclient(stack_url: str, owner: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(stack_url, owner=owner, token="") as c:
        yield c


@pytest.fixture
def proxy(stack_url: str) -> Iterator[ApiProxy]:
    """A fault-injecting proxy in front of the stack (``tests/api_proxy.py``)."""
    with api_proxy(stack_url) as p:
        yield p


async def _collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


class Blocking:
    """An :class:`AsyncClient` whose coroutines are run to their end on ``loop``: it reads like a
    :class:`Client`, and every call goes through the async client's own code."""

    def __init__(self, inner: AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name in ("acting_for", "with_options"):
            return lambda *a, **k: Blocking(attribute(*a, **k), self._loop)
        if name in ("list_conversations", "list_messages"):
            return lambda *a, **k: iter(self._loop.run_until_complete(_collect(attribute(*a, **k))))
        if inspect.iscoroutinefunction(attribute):

            def run(*args: Any, **kwargs: Any) -> Any:
                return self._loop.run_until_complete(attribute(*args, **kwargs))

            return run
        return attribute


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, stack_url: str, owner: str) -> Iterator[Client]:
    """A client of each kind, as a test reads it (see the module's docstring)."""
    yield from make_api(request.param, stack_url, owner=owner)


def make_api(kind: str, base_url: str, **options: Any) -> Iterator[Client]:
    """A client of ``kind`` (``sync`` or ``async``, the latter as a :class:`Blocking`)."""
    options.setdefault("token", "")  # no bearer token, whatever CONVERSATIONS_TOKEN holds
    if kind == "sync":
        with Client(base_url, **options) as c:
            yield c
        return
    loop = asyncio.new_event_loop()
    inner = AsyncClient(base_url, **options)
    try:
        yield cast(Client, Blocking(inner, loop))
    finally:
        loop.run_until_complete(inner.aclose())
        loop.close()


@pytest.fixture
def make_client(request: pytest.FixtureRequest) -> Iterator[Callable[..., Client]]:
    """Makes more clients of the kind of the test's ``api`` (sync when it has none), closed after
    the test."""
    kind = getattr(request, "param", None) or _kind_of(request)
    made: list[Iterator[Client]] = []

    def make(base_url: str, **options: Any) -> Client:
        it = make_api(kind, base_url, **options)
        made.append(it)
        return next(it)

    yield make
    for it in made:
        for _ in it:
            pass


def _kind_of(request: pytest.FixtureRequest) -> str:
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "api" in callspec.params:
        return str(callspec.params["api"])
    return "sync"
