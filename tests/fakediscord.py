"""A small Discord-compatible gateway + REST server for end-to-end tests (127.0.0.1 only).

It speaks just enough of Discord's API v10 for an unmodified discord.py bot: HELLO,
heartbeats, IDENTIFY -> READY + GUILD_CREATE, dispatching MESSAGE_CREATE and
INTERACTION_CREATE; the REST endpoints the bot calls (users/@me, command sync, messages,
interaction callbacks, webhooks follow-ups and edits) and file downloads for attachments.
Every request is recorded so tests can assert on exactly what the bot sent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

APP_ID = 900000000000000001
BOT_ID = APP_ID
GUILD_ID = 900000000000000100
OTHER_GUILD_ID = 900000000000000150  # a server the bot is in that is not the library's home
CHANNEL_ID = 900000000000000200
DM_CHANNEL_ID = 900000000000000300
ADMIN_ROLE_ID = 900000000000000400
EVERYONE_PERMS = 0x400 | 0x800 | 0x10000 | 0x80000000  # view, send, read history, use apps
MANAGE_GUILD = 0x20

_ids = itertools.count(900000000000100000)


def snowflake() -> str:
    """A new unique id."""
    return str(next(_ids))


def user(uid: int, name: str, bot: bool = False) -> dict[str, Any]:
    """A user object."""
    return {
        "id": str(uid), "username": name, "discriminator": "0", "global_name": name,
        "avatar": None, "bot": bot, "public_flags": 0,
    }  # fmt: skip


BOT_USER = user(BOT_ID, "explainer", bot=True)
ADMIN = user(700000000000000001, "ada_admin")
MEMBER = user(700000000000000002, "mo_member")


def member(u: dict[str, Any], roles: list[str]) -> dict[str, Any]:
    """A guild member object."""
    return {"user": u, "roles": roles, "joined_at": "2025-01-01T00:00:00+00:00",
            "deaf": False, "mute": False, "flags": 0, "nick": None}  # fmt: skip


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py wants the content type exactly "application/json" (no charset)
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


@dataclass
class Call:
    """One REST request the bot made."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: dict[str, bytes] = field(default_factory=dict)


class FakeDiscord:
    """The server. Start with :meth:`start`; point discord.py at :attr:`api` and :attr:`gateway`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.ws: web.WebSocketResponse | None = None
        self.seq = 0
        self.ready = asyncio.Event()
        self.files: dict[str, bytes] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        #: Registered commands by scope: "global" or a guild id.
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.new_call = asyncio.Condition()
        self.port = 0
        self.reject_token = False
        #: Guild ids whose command registration is refused (403, as for a wrong id).
        self.refuse_guilds: set[str] = set()
        self._runner: web.AppRunner | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/files/{name}", self._file)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.base}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- gateway --------------------------------------------------------------------

    async def _send(self, op: int, d: Any, t: str | None = None) -> None:
        assert self.ws is not None
        payload: dict[str, Any] = {"op": op, "d": d}
        if op == 0:
            self.seq += 1
            payload.update(s=self.seq, t=t)
        await self.ws.send_str(json.dumps(payload))

    def guild(self) -> dict[str, Any]:
        return {
            "id": str(GUILD_ID), "name": "Test Guild", "owner_id": ADMIN["id"], "icon": None,
            "unavailable": False, "member_count": 3, "large": False, "features": [],
            "roles": [
                {"id": str(GUILD_ID), "name": "@everyone", "permissions": str(EVERYONE_PERMS),
                 "position": 0, "color": 0, "hoist": False, "managed": False,
                 "mentionable": False, "flags": 0},
                {"id": str(ADMIN_ROLE_ID), "name": "Librarian",
                 "permissions": str(EVERYONE_PERMS | MANAGE_GUILD), "position": 1, "color": 0,
                 "hoist": False, "managed": False, "mentionable": False, "flags": 0},
            ],
            "channels": [{"id": str(CHANNEL_ID), "type": 0, "name": "general", "position": 0,
                          "permission_overwrites": [], "guild_id": str(GUILD_ID)}],
            "members": [member(BOT_USER, []), member(ADMIN, [str(ADMIN_ROLE_ID)]),
                        member(MEMBER, [])],
            "threads": [], "emojis": [], "stickers": [], "voice_states": [], "presences": [],
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
            "joined_at": "2025-01-01T00:00:00+00:00", "premium_tier": 0, "mfa_level": 0,
            "verification_level": 0, "explicit_content_filter": 0, "nsfw_level": 0,
            "default_message_notifications": 0, "system_channel_flags": 0,
            "preferred_locale": "en-US", "afk_timeout": 300, "max_members": 1000,
        }  # fmt: skip

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.ws = ws
        await self._send(10, {"heartbeat_interval": 41250})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data["op"] == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None}))
            elif data["op"] == 2:
                await self._send(0, {
                    "v": 10, "user": BOT_USER,
                    "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
                    "session_id": "session-1", "resume_gateway_url": self.gateway_url,
                    "application": {"id": str(APP_ID), "flags": 0}, "shard": [0, 1],
                    "private_channels": [], "relationships": [],
                }, "READY")  # fmt: skip
                await self._send(0, self.guild(), "GUILD_CREATE")
                self.ready.set()
        return ws

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway event to the bot."""
        await self.ready.wait()
        await self._send(0, data, event)

    # --- REST -----------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files[request.match_info["name"]])

    def message(self, channel_id: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
        msg = {
            "id": snowflake(), "channel_id": channel_id, "author": BOT_USER,
            "content": payload.get("content") or "", "timestamp": "2025-01-01T00:00:00+00:00",
            "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
            "mention_roles": [], "attachments": [], "embeds": payload.get("embeds") or [],
            "pinned": False, "type": 0, "flags": payload.get("flags", 0),
            "components": payload.get("components") or [],
        }  # fmt: skip
        msg.update(extra)
        self.messages[msg["id"]] = msg
        return msg

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        body: Any = None
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            body = await request.json()
        elif request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    body = json.loads(await part.text())  # type: ignore[union-attr]
                else:
                    files[part.name or ""] = await part.read()  # type: ignore[union-attr]
        call = Call(request.method, path, dict(request.query), body, files)
        async with self.new_call:
            self.calls.append(call)
            self.new_call.notify_all()
        return self._route(call)

    def _route(self, call: Call) -> web.Response:
        m, p, body = call.method, call.path, call.json or {}
        parts = p.strip("/").split("/")
        if p == "/users/@me":
            if self.reject_token:
                return _json({"message": "401: Unauthorized", "code": 0}, 401)
            return _json(BOT_USER)
        if p == "/oauth2/applications/@me":
            return _json(
                {
                    "id": str(APP_ID),
                    "name": "explainer",
                    "description": "",
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": ADMIN,
                    "verify_key": "k",
                    "icon": None,
                    "flags": 0,
                }
            )
        if parts[0] == "applications" and parts[-1] == "commands":
            scope = parts[3] if len(parts) == 5 and parts[2] == "guilds" else "global"
            if scope != "global" and scope in self.refuse_guilds:
                return _json({"message": "Missing Access", "code": 50001}, 403)
            if m == "PUT":
                self.commands[scope] = [
                    {**c, "id": snowflake(), "application_id": str(APP_ID), "version": "1",
                     "default_member_permissions": c.get("default_member_permissions")}
                    for c in body
                ]  # fmt: skip
            return _json(self.commands.get(scope, []))
        if parts[0] == "channels" and parts[-1] == "messages" and m == "POST":
            return _json(self.message(parts[1], body))
        if parts[0] == "channels" and parts[-1] == "typing":
            return web.Response(status=204)
        if parts[0] == "interactions" and parts[-1] == "callback":
            kind = body.get("type")
            data = body.get("data") or {}
            msg = self.message(str(CHANNEL_ID), data) if kind in (4, 5, 7) else None
            resource = {"type": kind, "message": msg} if msg else {"type": kind}
            return _json({"interaction": {"id": parts[1], "type": 2, "response_message_id":
                          msg and msg["id"], "response_message_loading": kind == 5,
                          "response_message_ephemeral": bool(data.get("flags", 0) & 64)},
                          "resource": resource})  # fmt: skip
        if parts[0] == "webhooks":
            if m == "POST":
                return _json(self.message(str(CHANNEL_ID), body, webhook_id=str(APP_ID)))
            if m == "PATCH":
                return _json(self.message(str(CHANNEL_ID), body, webhook_id=str(APP_ID)))
            if m == "DELETE":
                return web.Response(status=204)
            if m == "GET":
                return _json(self.message(str(CHANNEL_ID), {}))
        return _json({"message": f"fake discord: no route {m} {p}", "code": 0}, 404)

    async def wait_for(self, predicate: Any, timeout: float = 60.0) -> Call:
        """The first recorded call (past or future) that satisfies `predicate`."""
        async with self.new_call:
            await asyncio.wait_for(
                self.new_call.wait_for(lambda: any(predicate(c) for c in self.calls)), timeout
            )
        return next(c for c in self.calls if predicate(c))

    # --- what users do ----------------------------------------------------------------

    def interaction(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        who: dict[str, Any] = MEMBER,
        *,
        kind: int = 2,
        admin: bool = False,
        resolved: dict[str, Any] | None = None,
        dm: bool = False,
        extra: dict[str, Any] | None = None,
        guild: int = GUILD_ID,
        roles: list[str] | None = None,
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for a slash command (kind 2) or autocomplete (4)
        from a member of `guild` (with Manage Server when `admin`) or in a DM."""
        perms = EVERYONE_PERMS | (MANAGE_GUILD if admin else 0)
        data: dict[str, Any] = {
            "id": snowflake(),
            "name": name,
            "type": 1,
            "options": options or [],
        }
        if resolved:
            data["resolved"] = resolved
        # As Discord does: a command registered to a guild names that guild in its data.
        if not dm and any(c["name"] == name for c in self.commands.get(str(guild), [])):
            data["guild_id"] = str(guild)
        payload: dict[str, Any] = {
            "id": snowflake(), "application_id": str(APP_ID), "type": kind,
            "token": f"tok-{snowflake()}", "version": 1, "data": data,
            "channel_id": str(DM_CHANNEL_ID if dm else CHANNEL_ID), "locale": "en-US",
            "app_permissions": str(EVERYONE_PERMS), "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)}, "context": 1 if dm else 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }  # fmt: skip
        if dm:
            payload["user"] = who
            payload["channel"] = {"id": str(DM_CHANNEL_ID), "type": 1}
        else:
            payload["guild_id"] = str(guild)
            payload["guild_locale"] = "en-US"
            if roles is None:
                roles = [str(ADMIN_ROLE_ID)] if admin else []
            payload["member"] = {**member(who, roles), "permissions": str(perms)}
            payload["channel"] = {
                "id": str(CHANNEL_ID),
                "type": 0,
                "guild_id": str(guild),
                "name": "general",
                "position": 0,
                "permission_overwrites": [],
            }
        payload.update(extra or {})
        return payload

    def component(
        self, message: dict[str, Any], custom_id: str, who: dict[str, Any] = MEMBER
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for pressing a button on a message."""
        base = self.interaction("unused", who=who)
        base.update(type=3, message=message,
                    data={"custom_id": custom_id, "component_type": 2})  # fmt: skip
        return base

    def user_message(
        self, content: str, who: dict[str, Any] = MEMBER, dm: bool = False,
        mentions: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """A MESSAGE_CREATE payload from a user."""
        msg = {
            "id": snowflake(), "channel_id": str(DM_CHANNEL_ID if dm else CHANNEL_ID),
            "author": who, "content": content, "timestamp": "2025-01-01T00:00:00+00:00",
            "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": mentions or [], "mention_roles": [], "attachments": [], "embeds": [],
            "pinned": False, "type": 0, "flags": 0, "components": [],
        }  # fmt: skip
        if not dm:
            msg["guild_id"] = str(GUILD_ID)
            msg["member"] = member(who, [])
        return msg

    def attachment(self, name: str, data: bytes, size: int | None = None) -> dict[str, Any]:
        """An attachment object whose URL this server serves."""
        self.files[name] = data
        url = f"{self.base}/files/{name}"
        return {
            "id": snowflake(), "filename": name, "size": len(data) if size is None else size,
            "url": url, "proxy_url": url, "content_type": "application/octet-stream",
        }  # fmt: skip
