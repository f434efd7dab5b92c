"""A Discord-compatible gateway + REST server for end-to-end tests (127.0.0.1 only).

It speaks enough of Discord's API v10 for an unmodified discord.py bot, and enforces the
rules of discord/discord-api-docs where a bot can get them wrong:

- **Interactions**: one initial response (a second -> 400, 40060), within 3 seconds (later
  -> 404, 10062 "Unknown interaction"); the token works for 15 minutes (then 401, 50027);
  after a deferred response the first follow-up *becomes* the original response with the
  defer's visibility (its own ``ephemeral`` flag ignored); PATCH edits, never creates.
- **Commands**: registered per scope (global or a server); an interaction is delivered only
  where the command is registered, in a context it allows (``contexts``, guild-only), to a
  member whose permissions meet ``default_member_permissions`` or whom a server admin's
  override (Server Settings -> Integrations) allows.
- **Channels**: the bot's permissions computed from its roles and the channel's overwrites
  (threads need Send Messages in Threads; a reply needs a message that exists).
- **Limits**: 2,000 content, 10 embeds, 6,000 per message's embeds, 4,096 description, 25
  fields, 5 rows of 5 buttons, custom_id 100, 25 choices -> 400, 50035 with Discord's
  error tree. Every body is also validated against Discord's OpenAPI description when
  ``../shared/discord/openapi.json`` is present (:class:`tests.discord_rules.OpenAPISpec`).
- **Gateway**: shards (``shard_count``): each connection identifies as one shard and gets
  READY then GUILD_CREATE for its servers (``(guild_id >> 22) % shards``), and their events;
  member lists only with the GUILD_MEMBERS intent; ``guild_id`` in the data of
  guild-registered commands.

Every request is recorded with the status it got, so tests assert on what the bot sent and
on every refusal.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.discord_rules import OpenAPISpec, choice_errors, message_errors

APP_ID = 900000000000000001
BOT_ID = APP_ID
GUILD_ID = 900000000000000100
OTHER_GUILD_ID = 900000000004194454  # a server the bot is in that is not the home (shard 0 of 2)
CHANNEL_ID = 900000000000000200
THREAD_ID = 900000000000000210  # a public thread of CHANNEL_ID
FORUM_ID = 900000000000000230
FORUM_POST_ID = 900000000000000240  # a post (a thread) in the forum FORUM_ID
LOG_CHANNEL_ID = 900000000000000220
OTHER_CHANNEL_ID = 900000000000000250
DM_CHANNEL_ID = 900000000000000300
ADMIN_ROLE_ID = 900000000000000400
BOT_ROLE_ID = 900000000000000410

VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
READ_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3
EVERYONE_PERMS = VIEW_CHANNEL | SEND_MESSAGES | READ_HISTORY | USE_APPLICATION_COMMANDS
GUILD_MEMBERS_INTENT = 1 << 1
EPHEMERAL = 1 << 6
LOADING = 1 << 7
THREAD_TYPES = {10, 11, 12}
EDITABLE = ("content", "embeds", "components", "allowed_mentions", "attachments")

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


class DiscordError(Exception):
    """A refusal, answered as Discord answers it: a status, a code, a message."""

    def __init__(self, status: int, code: int, message: str, errors: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.errors = status, code, errors

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": str(self), "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return _json(body, self.status)


def _form_errors(errors: dict[str, Any]) -> None:
    if errors:
        raise DiscordError(400, 50035, "Invalid Form Body", errors)


@dataclass
class Call:
    """One REST request the bot made, and the status it got."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: dict[str, bytes] = field(default_factory=dict)
    status: int = 0
    code: int | None = None


@dataclass
class Connection:
    """One shard's gateway connection, with its own event sequence."""

    ws: web.WebSocketResponse
    seq: int = 0


@dataclass
class Pending:
    """An interaction Discord sent: what became of its one initial response and token."""

    payload: dict[str, Any]
    created: float
    response: int | None = None
    original: dict[str, Any] | None = None
    loading: bool = False  # deferred, the original not yet filled
    expired: bool = False


Handler = Callable[[Call, dict[str, str]], Awaitable[web.Response]]


def _channel(cid: int, guild: int, name: str, kind: int = 0, **extra: Any) -> dict[str, Any]:
    return {"id": str(cid), "type": kind, "name": name, "position": 0, "guild_id": str(guild),
            "permission_overwrites": [], **extra}  # fmt: skip


def _thread(cid: int, parent: int, name: str) -> dict[str, Any]:
    """A public thread (or a forum post, when `parent` is a forum) of server GUILD_ID."""
    metadata = {"archived": False, "auto_archive_duration": 1440, "locked": False,
                "archive_timestamp": "2025-01-01T00:00:00+00:00"}  # fmt: skip
    return _channel(cid, GUILD_ID, name, 11, parent_id=str(parent), owner_id=MEMBER["id"],
                    member_count=2, message_count=0, thread_metadata=metadata)  # fmt: skip


class FakeDiscord:
    """The server. Start with :meth:`start`; point discord.py at :attr:`api` and
    :attr:`gateway_url`.

    Args:
        bot_permissions: What the bot's role may do in each server (the invite's
            permissions integer).
    """

    def __init__(
        self, bot_permissions: int = EVERYONE_PERMS | EMBED_LINKS, shard_count: int = 1
    ) -> None:
        self.calls: list[Call] = []
        self.shard_count = shard_count
        #: The gateway connection of each shard that identified.
        self.shards: dict[int, Connection] = {}
        self.identified: list[int] = []  # shard ids, in the order they identified
        self.ready = asyncio.Event()  # every shard identified
        self.files: dict[str, bytes] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        #: Registered commands by scope: "global" or a guild id.
        self.commands: dict[str, list[dict[str, Any]]] = {}
        #: Server admins' overrides: (guild id, command name) -> role or user ids allowed.
        self.overrides: dict[tuple[str, str], set[str]] = {}
        self.pending: dict[str, Pending] = {}
        self.dm_channels: dict[str, str] = {MEMBER["id"]: str(DM_CHANNEL_ID)}
        self.bot_permissions = bot_permissions
        self.intents = 0
        self.initial_deadline = 3.0  # seconds to the initial response
        self.token_lifetime = 15 * 60.0
        self.spec = OpenAPISpec()
        self.spec_errors: list[str] = []
        self.new_call = asyncio.Condition()
        self.port = 0
        self.reject_token = False
        #: Guild ids whose command registration is refused (403, as for a wrong id).
        self.refuse_guilds: set[str] = set()
        self.channels = {
            str(CHANNEL_ID): _channel(CHANNEL_ID, GUILD_ID, "general"),
            str(LOG_CHANNEL_ID): _channel(LOG_CHANNEL_ID, GUILD_ID, "library-log"),
            str(THREAD_ID): _thread(THREAD_ID, CHANNEL_ID, "a thread"),
            str(FORUM_ID): _channel(FORUM_ID, GUILD_ID, "questions", 15, available_tags=[]),
            str(FORUM_POST_ID): _thread(FORUM_POST_ID, FORUM_ID, "a forum post"),
            str(OTHER_CHANNEL_ID): _channel(OTHER_CHANNEL_ID, OTHER_GUILD_ID, "elsewhere"),
        }
        self._routes = self._route_table()
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
        for conn in self.shards.values():
            await conn.ws.close()
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

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # --- servers, channels, permissions ----------------------------------------------

    def _roles(self, guild: int) -> list[dict[str, Any]]:
        def role(rid: int, name: str, perms: int, position: int, managed: bool = False) -> Any:
            return {"id": str(rid), "name": name, "permissions": str(perms),
                    "position": position, "color": 0, "hoist": False, "managed": managed,
                    "mentionable": False, "flags": 0}  # fmt: skip

        roles = [role(guild, "@everyone", EVERYONE_PERMS, 0),
                 role(BOT_ROLE_ID, "explainer", self.bot_permissions, 2, managed=True)]  # fmt: skip
        if guild == GUILD_ID:
            roles.append(role(ADMIN_ROLE_ID, "Librarian", EVERYONE_PERMS | MANAGE_GUILD, 1))
        return roles

    def guild(self, guild: int = GUILD_ID) -> dict[str, Any]:
        """The GUILD_CREATE payload of a server, as Discord sends it for these intents."""
        members = [member(BOT_USER, [str(BOT_ROLE_ID)])]
        if self.intents & GUILD_MEMBERS_INTENT:
            members += [member(ADMIN, [str(ADMIN_ROLE_ID)]), member(MEMBER, [])]
        channels = [c for c in self.channels.values() if c["guild_id"] == str(guild)]
        return {
            "id": str(guild), "name": "Test Guild" if guild == GUILD_ID else "Elsewhere",
            "owner_id": ADMIN["id"], "icon": None, "unavailable": False, "member_count": 3,
            "large": False, "features": [], "roles": self._roles(guild),
            "channels": [c for c in channels if c["type"] not in THREAD_TYPES],
            "threads": [c for c in channels if c["type"] in THREAD_TYPES],
            "members": members, "emojis": [], "stickers": [], "voice_states": [],
            "presences": [], "stage_instances": [], "guild_scheduled_events": [],
            "soundboard_sounds": [], "joined_at": "2025-01-01T00:00:00+00:00",
            "premium_tier": 0, "mfa_level": 0, "verification_level": 0,
            "explicit_content_filter": 0, "nsfw_level": 0, "default_message_notifications": 0,
            "system_channel_flags": 0, "preferred_locale": "en-US", "afk_timeout": 300,
            "max_members": 1000,
        }  # fmt: skip

    def bot_permissions_in(self, channel: dict[str, Any]) -> int:
        """The bot's permissions in a channel: its roles, then the channel's overwrites
        (a thread takes its parent's), as Discord computes them."""
        guild = int(channel["guild_id"])
        roles = {r["id"]: int(r["permissions"]) for r in self._roles(guild)}
        perms = roles[str(guild)] | roles[str(BOT_ROLE_ID)]
        if perms & ADMINISTRATOR:
            return -1
        source = self.channels.get(channel.get("parent_id") or "", channel)
        overwrites = {o["id"]: o for o in source.get("permission_overwrites", [])}
        for oid in (str(guild), str(BOT_ROLE_ID), str(BOT_ID)):
            if oid in overwrites:
                perms = (perms & ~int(overwrites[oid]["deny"])) | int(overwrites[oid]["allow"])
        return perms

    # --- gateway --------------------------------------------------------------------

    async def _send(self, op: int, d: Any, t: str | None = None, shard: int = 0) -> None:
        conn = self.shards[shard]
        payload: dict[str, Any] = {"op": op, "d": d}
        if op == 0:
            conn.seq += 1
            payload.update(s=conn.seq, t=t)
        await conn.ws.send_str(json.dumps(payload))

    def shard_of(self, guild_id: str | int | None) -> int:
        """The shard a server's events go to (Discord: ``(guild_id >> 22) % shards``);
        DMs go to shard 0."""
        return 0 if guild_id is None else (int(guild_id) >> 22) % self.shard_count

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data["op"] == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None}))
            elif data["op"] == 2:
                await self._identify(ws, data["d"])
        return ws

    async def _identify(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> None:
        """READY and a GUILD_CREATE for each server of the shard that identified."""
        shard, count = d.get("shard") or [0, 1]
        if count != self.shard_count:
            await ws.close(code=4010, message=b"Invalid shard")
            return
        self.intents = int(d.get("intents", 0))
        self.shards[shard] = Connection(ws)
        self.identified.append(shard)
        guilds = [g for g in (GUILD_ID, OTHER_GUILD_ID) if self.shard_of(g) == shard]
        await self._send(0, {
            "v": 10, "user": BOT_USER,
            "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
            "session_id": f"session-{shard}", "resume_gateway_url": self.gateway_url,
            "application": {"id": str(APP_ID), "flags": 0}, "shard": [shard, count],
            "private_channels": [], "relationships": [],
        }, "READY", shard)  # fmt: skip
        for g in guilds:
            await self._send(0, self.guild(g), "GUILD_CREATE", shard)
        if len(self.shards) == self.shard_count:
            self.ready.set()

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway event as is, on the shard of its server (see :meth:`interact`
        for interactions)."""
        await self.ready.wait()
        if event == "INTERACTION_CREATE":
            self.register(data)
        elif event == "MESSAGE_CREATE":
            self.messages[data["id"]] = data
        await self._send(0, data, event, self.shard_of(data.get("guild_id")))

    def register(self, payload: dict[str, Any]) -> None:
        """Start an interaction's clocks: 3 seconds to respond, 15 minutes of token."""
        self.pending[payload["token"]] = Pending(payload, self._now())

    async def interact(self, payload: dict[str, Any]) -> str | None:
        """Deliver an interaction as Discord would: only a command registered where it is
        used, in a context it allows, by a member it is allowed to (else Discord's client
        never sends it). Returns why it was not delivered, or None."""
        refusal = self.refusal(payload)
        if refusal is None:
            await self.dispatch("INTERACTION_CREATE", payload)
        return refusal

    def _command(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        name = payload["data"]["name"]
        scopes = ["global"] if "guild_id" not in payload else [payload["guild_id"], "global"]
        return next((c for s in scopes for c in self.commands.get(s, []) if c["name"] == name),
                    None)  # fmt: skip

    def refusal(self, payload: dict[str, Any]) -> str | None:
        """Why Discord would not deliver this interaction (None: it would)."""
        if payload["type"] not in (2, 4):
            return None
        command = self._command(payload)
        if command is None:
            return "no such command here"
        contexts = command.get("contexts")
        if command.get("dm_permission") is False:
            contexts = [0]
        if contexts is not None and payload["context"] not in contexts:
            return "not in this context"
        if "member" not in payload:
            return None
        roles = set(payload["member"]["roles"]) | {payload["member"]["user"]["id"]}
        if roles & self.overrides.get((payload["guild_id"], command["name"]), set()):
            return None
        required = command.get("default_member_permissions")
        perms = int(payload["member"]["permissions"])
        if required is None or perms & ADMINISTRATOR:
            return None
        if int(required) and perms & int(required) == int(required):
            return None
        return "missing default_member_permissions"

    def expire(self, token: str) -> None:
        """Let an interaction's token run out (as 15 minutes would)."""
        self.pending[token].expired = True

    # --- REST -----------------------------------------------------------------------

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        table: list[tuple[str, str, Handler]] = [
            ("GET", r"/users/@me", self._me),
            ("GET", r"/gateway/bot", self._gateway_bot),
            ("GET", r"/oauth2/applications/@me", self._application),
            ("GET|PUT", r"/applications/\d+/commands", self._commands),
            ("GET|PUT", r"/applications/\d+/guilds/(?P<guild>\d+)/commands", self._commands),
            ("POST", r"/channels/(?P<channel>\d+)/messages", self._create_message),
            ("POST", r"/channels/(?P<channel>\d+)/typing", self._typing),
            ("GET", r"/channels/(?P<channel>\d+)", self._get_channel),
            ("POST", r"/users/@me/channels", self._open_dm),
            ("POST", r"/interactions/(?P<id>\d+)/(?P<token>[^/]+)/callback", self._callback),
            ("POST", r"/webhooks/\d+/(?P<token>[^/]+)", self._followup),
            ("GET|PATCH|DELETE", r"/webhooks/\d+/(?P<token>[^/]+)/messages/(?P<message>[^/]+)",
             self._webhook_message),
        ]  # fmt: skip
        return [(m, re.compile(f"^{p}$"), h) for m, p, h in table]

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files[request.match_info["name"]])

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
        response = await self._respond(call)
        call.status = response.status
        if response.status >= 400 and isinstance(response.body, bytes):
            call.code = json.loads(response.body).get("code")
        async with self.new_call:
            self.calls.append(call)
            self.new_call.notify_all()
        return response

    async def _respond(self, call: Call) -> web.Response:
        if self.spec.available:  # recorded for the tests to fail on; the rules answer
            self.spec_errors += [
                p[:300] for p in self.spec.errors(call.method, call.path, call.json)
            ]
        for methods, pattern, handler in self._routes:
            match = pattern.match(call.path)
            if match and call.method in methods.split("|"):
                try:
                    return await handler(call, match.groupdict())
                except DiscordError as exc:
                    return exc.response()
        return DiscordError(404, 0, f"fake discord: no route {call.method} {call.path}").response()

    async def _me(self, call: Call, _: dict[str, str]) -> web.Response:
        if self.reject_token:
            raise DiscordError(401, 0, "401: Unauthorized")
        return _json(BOT_USER)

    async def _gateway_bot(self, call: Call, _: dict[str, str]) -> web.Response:
        return _json({"url": self.gateway_url, "shards": self.shard_count,
                      "session_start_limit": {"total": 1000, "remaining": 999,
                                              "reset_after": 0, "max_concurrency": 1}})  # fmt: skip

    async def _application(self, call: Call, _: dict[str, str]) -> web.Response:
        return _json({"id": str(APP_ID), "name": "explainer", "description": "",
                      "bot_public": False, "bot_require_code_grant": False, "owner": ADMIN,
                      "verify_key": "k", "icon": None, "flags": 0})  # fmt: skip

    async def _commands(self, call: Call, match: dict[str, str]) -> web.Response:
        scope = match.get("guild") or "global"
        if scope in self.refuse_guilds:
            raise DiscordError(403, 50001, "Missing Access")
        if call.method == "PUT":
            self.commands[scope] = [
                {"type": 1, "description": "", **c, "id": snowflake(),
                 "application_id": str(APP_ID), "version": "1",
                 "default_member_permissions": c.get("default_member_permissions")}
                for c in call.json
            ]  # fmt: skip
        return _json(self.commands.get(scope, []))

    def message(self, channel_id: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Store and return a new message the bot (or a webhook) posted."""
        msg = {
            "id": snowflake(), "channel_id": channel_id, "author": BOT_USER,
            "content": payload.get("content") or "", "timestamp": "2025-01-01T00:00:00+00:00",
            "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
            "mention_roles": [], "attachments": [], "embeds": payload.get("embeds") or [],
            "pinned": False, "type": 0, "flags": payload.get("flags") or 0,
            "components": payload.get("components") or [],
        }  # fmt: skip
        msg.update(extra)
        self.messages[msg["id"]] = msg
        return msg

    def _check_new_message(self, body: dict[str, Any]) -> None:
        _form_errors(message_errors(body))
        if not any(body.get(k) for k in ("content", "embeds", "components", "sticker_ids")):
            raise DiscordError(400, 50006, "Cannot send an empty message")

    async def _create_message(self, call: Call, match: dict[str, str]) -> web.Response:
        cid, body = match["channel"], call.json or {}
        channel = self.channels.get(cid)
        if channel is None and cid not in self.dm_channels.values():
            raise DiscordError(404, 10003, "Unknown Channel")
        if channel is not None:
            perms = self.bot_permissions_in(channel)
            send = SEND_MESSAGES_IN_THREADS if channel["type"] in THREAD_TYPES else SEND_MESSAGES
            if perms & (VIEW_CHANNEL | send) != VIEW_CHANNEL | send:
                raise DiscordError(403, 50013, "Missing Permissions")
        self._check_new_message(body)
        ref = (body.get("message_reference") or {}).get("message_id")
        if ref is not None and self.messages.get(str(ref), {}).get("channel_id") != cid:
            raise DiscordError(400, 50035, "Invalid Form Body", {"message_reference": {
                "_errors": [{"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                             "message": "Unknown message"}]}})  # fmt: skip
        return _json(self.message(cid, body))

    async def _typing(self, call: Call, match: dict[str, str]) -> web.Response:
        return web.Response(status=204)

    async def _get_channel(self, call: Call, match: dict[str, str]) -> web.Response:
        if match["channel"] not in self.channels:
            raise DiscordError(404, 10003, "Unknown Channel")
        return _json(self.channels[match["channel"]])

    async def _open_dm(self, call: Call, _: dict[str, str]) -> web.Response:
        recipient = str(call.json["recipient_id"])
        cid = self.dm_channels.setdefault(recipient, snowflake())
        who = next((u for u in (ADMIN, MEMBER) if u["id"] == recipient), None)
        who = who or user(int(recipient), f"user{recipient[-4:]}")
        return _json({"id": cid, "type": 1, "last_message_id": None, "recipients": [who]})

    # --- interactions -----------------------------------------------------------------

    async def _callback(self, call: Call, match: dict[str, str]) -> web.Response:
        p = self.pending.get(match["token"])
        if p is None or p.payload["id"] != match["id"] or p.expired:
            raise DiscordError(404, 10062, "Unknown interaction")
        if self._now() - p.created > self.initial_deadline:
            raise DiscordError(404, 10062, "Unknown interaction")
        if p.response is not None:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        kind, data = call.json["type"], call.json.get("data") or {}
        _form_errors(choice_errors(data) if kind == 8 else message_errors(data))
        channel = p.payload["channel_id"]
        if kind == 4:
            self._check_new_message(data)
            p.original = self.message(channel, data, webhook_id=str(APP_ID))
        elif kind == 5:
            flags = (data.get("flags") or 0) & EPHEMERAL | LOADING
            p.original = self.message(channel, {"flags": flags}, webhook_id=str(APP_ID))
            p.loading = True
        elif kind in (6, 7):
            p.original = self.messages[p.payload["message"]["id"]]
            if kind == 7:
                p.original.update({k: data[k] for k in EDITABLE if k in data})
        p.response = kind
        if call.query.get("with_response") not in ("1", "true"):
            return web.Response(status=204)
        resource: dict[str, Any] = {"type": kind}
        if p.original is not None and kind in (4, 5, 7):
            resource["message"] = p.original
        return _json({"interaction": {
            "id": p.payload["id"], "type": p.payload["type"],
            "response_message_id": p.original and p.original["id"],
            "response_message_loading": p.loading,
            "response_message_ephemeral": bool(p.original and p.original["flags"] & EPHEMERAL),
        }, "resource": resource})  # fmt: skip

    def _live(self, token: str) -> Pending:
        """The interaction a webhook token belongs to, while the token works."""
        p = self.pending.get(token)
        if p is None or p.response is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if p.expired or self._now() - p.created > self.token_lifetime:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        return p

    def _fill(self, p: Pending, body: dict[str, Any]) -> dict[str, Any]:
        """The first message after a defer becomes the original, keeping its visibility."""
        assert p.original is not None
        p.original.update({k: body[k] for k in EDITABLE if k in body})
        p.original["flags"] &= ~LOADING
        p.loading = False
        return p.original

    async def _followup(self, call: Call, match: dict[str, str]) -> web.Response:
        p, body = self._live(match["token"]), call.json or {}
        self._check_new_message(body)
        if p.loading:
            return _json(self._fill(p, body))
        flags = (body.get("flags") or 0) & EPHEMERAL
        token = p.payload["token"]
        return _json(self.message(p.payload["channel_id"], {**body, "flags": flags},
                                  webhook_id=str(APP_ID), interaction_token=token))  # fmt: skip

    async def _webhook_message(self, call: Call, match: dict[str, str]) -> web.Response:
        p, body = self._live(match["token"]), call.json or {}
        if match["message"] == "@original":
            msg = p.original
        else:
            msg = self.messages.get(match["message"])
            token = p.payload["token"]
            mine = msg is p.original or (msg or {}).get("interaction_token") == token
            msg = msg if mine else None
        if msg is None:
            raise DiscordError(404, 10008, "Unknown Message")
        if call.method == "DELETE":
            self.messages.pop(msg["id"], None)
            return web.Response(status=204)
        if call.method == "PATCH":
            _form_errors(message_errors(body))
            if msg is p.original and p.loading:
                return _json(self._fill(p, body))
            msg.update({k: body[k] for k in EDITABLE if k in body})
            msg["edited_timestamp"] = "2025-01-01T00:00:01+00:00"
        return _json(msg)

    async def wait_for(self, predicate: Any, timeout: float = 60.0) -> Call:
        """The first recorded call (past or future) that satisfies `predicate`."""
        async with self.new_call:
            await asyncio.wait_for(
                self.new_call.wait_for(lambda: any(predicate(c) for c in self.calls)), timeout
            )
        return next(c for c in self.calls if predicate(c))

    def refused(self) -> list[Call]:
        """Every request Discord would have refused."""
        return [c for c in self.calls if c.status >= 400]

    def add_channel(self, name: str) -> int:
        """A new text channel of server GUILD_ID (before the bot connects: it learns the
        server's channels when it does); returns its id."""
        cid = int(snowflake())
        self.channels[str(cid)] = _channel(cid, GUILD_ID, name)
        return cid

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
        channel: int | None = None,
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for a slash command (kind 2) or autocomplete (4)
        from a member of `guild` (with Manage Server when `admin`) or in a DM."""
        perms = EVERYONE_PERMS | (MANAGE_GUILD if admin else 0)
        data: dict[str, Any] = {"id": snowflake(), "name": name, "type": 1,
                                "options": options or []}  # fmt: skip
        if resolved:
            data["resolved"] = resolved
        # As Discord does: a command registered to a guild names that guild in its data.
        if not dm and any(c["name"] == name for c in self.commands.get(str(guild), [])):
            data["guild_id"] = str(guild)
        if channel is None:
            channel = (
                DM_CHANNEL_ID if dm else (CHANNEL_ID if guild == GUILD_ID else OTHER_CHANNEL_ID)
            )
        payload: dict[str, Any] = {
            "id": snowflake(), "application_id": str(APP_ID), "type": kind,
            "token": f"tok-{snowflake()}", "version": 1, "data": data,
            "channel_id": str(channel), "locale": "en-US",
            "app_permissions": str(self.bot_permissions), "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild)}, "context": 1 if dm else 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }  # fmt: skip
        if dm:
            payload["user"] = who
            payload["channel"] = {"id": str(channel), "type": 1}
        else:
            payload["guild_id"] = str(guild)
            payload["guild_locale"] = "en-US"
            if roles is None:
                roles = [str(ADMIN_ROLE_ID)] if admin else []
            payload["member"] = {**member(who, roles), "permissions": str(perms)}
            payload["channel"] = self.channels[str(channel)]
        payload.update(extra or {})
        return payload

    def message_command(
        self, name: str, target: dict[str, Any], who: dict[str, Any] = MEMBER
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for a message command (Apps menu) on `target`."""
        payload = self.interaction(name, who=who, channel=int(target["channel_id"]))
        payload["data"].update(type=3, target_id=target["id"],
                               resolved={"messages": {target["id"]: target}})  # fmt: skip
        payload["data"].pop("options")
        return payload

    def component(
        self, message: dict[str, Any], custom_id: str, who: dict[str, Any] = MEMBER
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for pressing a button on a message."""
        base = self.interaction("unused", who=who, channel=int(message["channel_id"]))
        base.update(type=3, message=message,
                    data={"custom_id": custom_id, "component_type": 2})  # fmt: skip
        return base

    def user_message(
        self, content: str, who: dict[str, Any] = MEMBER, dm: bool = False,
        mentions: list[dict[str, Any]] | None = None, channel: int = CHANNEL_ID,
    ) -> dict[str, Any]:  # fmt: skip
        """A MESSAGE_CREATE payload from a user (in `channel`, or a DM)."""
        msg = {
            "id": snowflake(), "channel_id": str(DM_CHANNEL_ID if dm else channel),
            "author": who, "content": content, "timestamp": "2025-01-01T00:00:00+00:00",
            "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": mentions or [], "mention_roles": [], "attachments": [], "embeds": [],
            "pinned": False, "type": 0, "flags": 0, "components": [],
        }  # fmt: skip
        if not dm:
            msg["guild_id"] = self.channels[str(channel)]["guild_id"]
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
