"""The local Discord-compatible server answers as Discord documents (discord-api-docs:
Receiving and Responding, Message Resource limits), so a bot that breaks a rule fails in
the end-to-end tests as it would on Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.discord_rules import OpenAPISpec
from tests.fakediscord import APP_ID, FakeDiscord

pytestmark = pytest.mark.e2e


@pytest.fixture
async def server() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def _pending(server: FakeDiscord) -> dict[str, Any]:
    """An interaction Discord has sent (to no one: the REST rules are what is tested)."""
    payload = server.interaction("ask")
    server.register(payload)
    return payload


async def _call(server: FakeDiscord, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.api + path, json=body) as resp:
            data = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, data


def _callback(p: dict[str, Any]) -> str:
    return f"/interactions/{p['id']}/{p['token']}/callback?with_response=1"


async def test_one_initial_response_within_three_seconds(server: FakeDiscord) -> None:
    p = await _pending(server)
    assert (await _call(server, "POST", _callback(p), {"type": 5, "data": {"flags": 64}}))[0] == 200
    status, body = await _call(server, "POST", _callback(p), {"type": 4, "data": {"content": "x"}})
    assert (status, body["code"]) == (400, 40060)
    late = await _pending(server)
    server.pending[late["token"]].created -= 3.5
    status, body = await _call(server, "POST", _callback(late), {"type": 5})
    assert (status, body["code"]) == (404, 10062)


async def test_the_first_followup_after_a_defer_becomes_the_original(server: FakeDiscord) -> None:
    p = await _pending(server)
    await _call(server, "POST", _callback(p), {"type": 5, "data": {"flags": 64}})
    hook = f"/webhooks/{APP_ID}/{p['token']}"
    status, first = await _call(server, "POST", hook, {"content": "answer", "flags": 0})
    original = server.pending[p["token"]].original
    assert status == 200 and original is not None
    assert first["id"] == original["id"] and first["flags"] & 64  # the defer's visibility
    _, second = await _call(server, "POST", hook, {"content": "more", "flags": 0})
    assert second["id"] != first["id"] and not second["flags"] & 64
    status, edited = await _call(server, "PATCH", f"{hook}/messages/@original", {"content": "e"})
    assert status == 200 and edited["id"] == first["id"] and edited["content"] == "e"
    assert (await _call(server, "PATCH", f"{hook}/messages/1", {"content": "x"}))[1][
        "code"
    ] == 10008
    server.expire(p["token"])
    status, body = await _call(server, "POST", hook, {"content": "late"})
    assert (status, body["code"]) == (401, 50027)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": "x" * 2001}, "content"),
        ({"embeds": [{"description": "x" * 4097}]}, "embeds"),
        ({"embeds": [{"title": "t", "description": "x" * 4000}] * 2}, "embeds"),  # 8,002 total
        ({"embeds": [{"title": str(i)} for i in range(11)]}, "embeds"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, "embeds"),
        ({"content": "x", "components": [{"type": 1, "components": []}] * 6}, "components"),
        ({"content": "x", "components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "b", "custom_id": "c" * 101}]}]}, "components"),
    ],
)  # fmt: skip
async def test_limits_are_answered_with_discords_error(
    server: FakeDiscord, body: dict[str, Any], field: str
) -> None:
    p = await _pending(server)
    status, error = await _call(server, "POST", _callback(p), {"type": 4, "data": body})
    assert (status, error["code"], error["message"]) == (400, 50035, "Invalid Form Body")
    assert field in error["errors"]
    assert server.pending[p["token"]].response is None  # nothing was sent


def test_the_openapi_check_reads_discords_own_description() -> None:
    spec = OpenAPISpec()
    if not spec.available:
        pytest.skip(f"Discord's OpenAPI description is not at {spec.path} (it is in CI)")
    path = "/channels/1/messages"
    assert spec.errors("POST", path, {"content": "hi", "allowed_mentions": {"parse": []}}) == []
    assert spec.errors("POST", path, {"content": 5})
    assert spec.errors("POST", "/channels/1/no-such-thing", {})
