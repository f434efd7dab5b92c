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


#: SQLite's primary result codes, and what each says about a store.
_SQLITE_CAUSES = {
    5: "is locked by another process",  # SQLITE_BUSY
    6: "is locked by another process",  # SQLITE_LOCKED
    8: "is read-only",  # SQLITE_READONLY
    11: "is damaged",  # SQLITE_CORRUPT
    13: "cannot grow: the disk is full",  # SQLITE_FULL
    14: "cannot be opened",  # SQLITE_CANTOPEN
    26: "is damaged",  # SQLITE_NOTADB
}
_OS_CAUSES = {
    errno.ENOSPC: "cannot grow: the disk is full",
    errno.EDQUOT: "cannot grow: the disk quota is used up",
    errno.EROFS: "is on a read-only file system",
    errno.EACCES: "is not writable",
    errno.EPERM: "is not writable",
}


def store_problem(exc: BaseException, what: str) -> str:
    """One line naming why `what` (e.g. "the audit log INDEX_DIR/audit.sqlite") cannot be
    used, from the SQLite or OS error that said so: damaged, locked, full, read-only."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        cause = _SQLITE_CAUSES.get(code & 0xFF)
    else:
        cause = _OS_CAUSES.get(getattr(exc, "errno", None) or -1)
    detail = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    if cause == "is damaged":
        return f"{what} is damaged ({detail}); move it aside to continue"
    return f"{what} {cause or f'cannot be used ({detail})'}"


def is_full_disk(exc: BaseException) -> bool:
    """Whether an error says the disk is full (SQLite's SQLITE_FULL, or ENOSPC)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == 13
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
