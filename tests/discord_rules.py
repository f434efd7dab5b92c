"""Discord's documented rules for what a bot may send, for the local test server.

Two independent checks:

- :func:`message_errors` and :func:`choice_errors`: the size limits of
  discord/discord-api-docs (Message Resource, Embed Limits, Components, Autocomplete),
  answered as Discord answers them: 400, code 50035 "Invalid Form Body", and an
  ``errors`` tree naming each offending field.
- :class:`OpenAPISpec`: every request body validated against Discord's own OpenAPI
  description (discord/discord-api-spec), read from ``../shared/discord/openapi.json``
  when it is there (never copied into this repository).
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any

CONTENT = 2000
EMBEDS = 10
EMBED_TOTAL = 6000
EMBED_FIELDS = 25
ACTION_ROWS = 5
ROW_BUTTONS = 5
CUSTOM_ID = 100
CHOICES = 25
CHOICE_TEXT = 100
#: Per-field embed limits, by path inside an embed.
EMBED_LIMITS = {
    ("title",): 256,
    ("description",): 4096,
    ("footer", "text"): 2048,
    ("author", "name"): 256,
}
FIELD_LIMITS = {"name": 256, "value": 1024}
BUTTON_LABEL = 80

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "discord" / "openapi.json"


def _too_long(limit: int) -> dict[str, Any]:
    return {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                         "message": f"Must be {limit} or fewer in length."}]}  # fmt: skip


def _put(tree: dict[str, Any], path: tuple[str, ...], error: dict[str, Any]) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = error


def _embed_errors(embeds: list[dict[str, Any]], errors: dict[str, Any]) -> None:
    total = 0
    for i, embed in enumerate(embeds):
        for path, limit in EMBED_LIMITS.items():
            value: Any = embed
            for key in path:
                value = (value or {}).get(key) if isinstance(value, dict) else None
            total += len(value or "")
            if len(value or "") > limit:
                _put(errors, ("embeds", str(i), *path), _too_long(limit))
        fields = embed.get("fields") or []
        if len(fields) > EMBED_FIELDS:
            _put(errors, ("embeds", str(i), "fields"), _too_long(EMBED_FIELDS))
        for j, f in enumerate(fields):
            for key, limit in FIELD_LIMITS.items():
                total += len(f.get(key) or "")
                if len(f.get(key) or "") > limit:
                    _put(errors, ("embeds", str(i), "fields", str(j), key), _too_long(limit))
    if total > EMBED_TOTAL:
        too_big = {"code": "MAX_EMBED_SIZE_EXCEEDED",
                   "message": f"Embed size exceeds maximum size of {EMBED_TOTAL}"}  # fmt: skip
        _put(errors, ("embeds",), {"_errors": [too_big]})


def _component_errors(rows: list[dict[str, Any]], errors: dict[str, Any]) -> None:
    if len(rows) > ACTION_ROWS:
        _put(errors, ("components",), _too_long(ACTION_ROWS))
    for i, row in enumerate(rows):
        children = row.get("components") or []
        if len(children) > ROW_BUTTONS:
            _put(errors, ("components", str(i), "components"), _too_long(ROW_BUTTONS))
        for j, child in enumerate(children):
            where = ("components", str(i), "components", str(j))
            if len(child.get("custom_id") or "") > CUSTOM_ID:
                _put(errors, (*where, "custom_id"), _too_long(CUSTOM_ID))
            if len(child.get("label") or "") > BUTTON_LABEL:
                _put(errors, (*where, "label"), _too_long(BUTTON_LABEL))


def message_errors(body: dict[str, Any]) -> dict[str, Any]:
    """Discord's ``errors`` tree for a message body over any limit (empty when valid)."""
    errors: dict[str, Any] = {}
    if len(body.get("content") or "") > CONTENT:
        _put(errors, ("content",), _too_long(CONTENT))
    embeds = body.get("embeds") or []
    if len(embeds) > EMBEDS:
        _put(errors, ("embeds",), _too_long(EMBEDS))
    _embed_errors(embeds, errors)
    _component_errors(body.get("components") or [], errors)
    return errors


def choice_errors(body: dict[str, Any]) -> dict[str, Any]:
    """Discord's ``errors`` tree for autocomplete choices over any limit."""
    errors: dict[str, Any] = {}
    choices = body.get("choices") or []
    if len(choices) > CHOICES:
        _put(errors, ("choices",), _too_long(CHOICES))
    for i, c in enumerate(choices):
        for key in ("name", "value"):
            if isinstance(c.get(key), str) and len(c[key]) > CHOICE_TEXT:
                _put(errors, ("choices", str(i), key), _too_long(CHOICE_TEXT))
    return errors


class OpenAPISpec:
    """Request bodies checked against Discord's OpenAPI description.

    Args:
        path: The ``openapi.json`` of discord/discord-api-spec.
    """

    def __init__(self, path: Path = SPEC_PATH) -> None:
        self.path = path

    @property
    def available(self) -> bool:
        return self.path.is_file()

    @cached_property
    def _spec(self) -> dict[str, Any]:
        return dict(json.loads(self.path.read_text(encoding="utf-8")))

    @cached_property
    def _routes(self) -> list[tuple[re.Pattern[str], str]]:
        routes = []
        for template in self._spec["paths"]:
            pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            routes.append((re.compile(f"^{pattern}$"), template, literal))
        # A literal segment ("@original", "@me") wins over a parameter in the same place.
        routes.sort(key=lambda r: -r[2])
        return [(p, t) for p, t, _ in routes]

    @cached_property
    def _registry(self) -> Any:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        spec = json.loads(json.dumps(self._spec))
        # Discord returns snowflakes as strings and accepts them as integers too, as
        # discord.py sends them (a message reference's ids, say).
        snowflake = spec["components"]["schemas"]["SnowflakeType"]
        spec["components"]["schemas"]["SnowflakeType"] = {
            "anyOf": [snowflake, {"type": "integer", "minimum": 0}]
        }
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        return Registry().with_resource("urn:discord", resource)

    def template(self, path: str) -> str | None:
        """The spec's path template for a request path (``/channels/1/messages`` ->
        ``/channels/{channel_id}/messages``)."""
        return next((t for p, t in self._routes if p.match(path)), None)

    def errors(self, method: str, path: str, body: Any) -> list[str]:
        """What is wrong with a request body by the spec (empty when it conforms).

        A request to a path or method the spec does not describe is an error too.
        """
        from jsonschema import Draft202012Validator

        template = self.template(path)
        if template is None:
            return [f"{method} {path}: no such path in Discord's API"]
        operation = self._spec["paths"][template].get(method.lower())
        if operation is None:
            return [f"{method} {template}: no such method in Discord's API"]
        content = (operation.get("requestBody") or {}).get("content") or {}
        if body is None or "application/json" not in content:
            return []
        pointer = "/".join(
            part.replace("~", "~0").replace("/", "~1")
            for part in ("paths", template, method.lower(), "requestBody", "content",
                         "application/json", "schema")
        )  # fmt: skip
        validator = Draft202012Validator({"$ref": f"urn:discord#/{pointer}"},
                                         registry=self._registry)  # fmt: skip
        return [
            f"{method} {template}: {'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}"
            for e in validator.iter_errors(body)
        ]
