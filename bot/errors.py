"""The one kind of error a user is shown as it is.

Any layer raises a :class:`UserError` for input it cannot use (a question too long, an
essay file refused, an unknown essay); its message is one line, says why, and nothing was
changed. Front ends show that message and nothing else of any other exception.
"""

from __future__ import annotations

import errno


class UserError(ValueError):
    """Input that cannot be used; the message says why, in one line."""


class StoreUnavailable(UserError):
    """A file the engine writes (the audit log, the index, the community's ratings) cannot
    be used now: damaged, locked, on a full disk or a read-only one. The message names
    which and why, in one line; nothing was changed."""


_DAMAGED = "is damaged"
_FULL = "cannot grow: the disk is full"
_QUOTA = "cannot grow: the disk quota is used up"
#: SQLite's primary result codes, and what each says about a store.
_SQLITE_CAUSES = {
    5: "is locked by another process",  # SQLITE_BUSY
    6: "is locked by another process",  # SQLITE_LOCKED
    8: "is read-only",  # SQLITE_READONLY
    11: _DAMAGED,  # SQLITE_CORRUPT
    13: _FULL,  # SQLITE_FULL
    14: "cannot be opened",  # SQLITE_CANTOPEN
    26: _DAMAGED,  # SQLITE_NOTADB
}
_OS_CAUSES = {
    errno.ENOSPC: _FULL,
    errno.EDQUOT: _QUOTA,
    errno.EROFS: "is on a read-only file system",
    errno.EACCES: "is not writable",
    errno.EPERM: "is not writable",
}


def _cause(exc: BaseException) -> str | None:
    """What a SQLite or OS error says about the store it came from, if it says anything."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return _SQLITE_CAUSES.get(code & 0xFF)
    return _OS_CAUSES.get(getattr(exc, "errno", None) or -1)


def store_problem(exc: BaseException, what: str) -> str:
    """One line naming why `what` (e.g. "the audit log INDEX_DIR/audit.sqlite") cannot be
    used, from the SQLite or OS error that said so: damaged, locked, full, read-only."""
    cause = _cause(exc)
    detail = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    if cause == _DAMAGED:
        return f"{what} is damaged ({detail}); move it aside to continue"
    return f"{what} {cause or f'cannot be used ({detail})'}"


def is_full_disk(exc: BaseException) -> bool:
    """Whether an error says the disk is full (SQLite's SQLITE_FULL, ENOSPC, a quota)."""
    return _cause(exc) in (_FULL, _QUOTA)


def is_damaged(exc: BaseException) -> bool:
    """Whether an error says the file is not a sound database (SQLITE_CORRUPT,
    SQLITE_NOTADB): a lock, a full disk or an I/O error says nothing of its contents."""
    return _cause(exc) == _DAMAGED
