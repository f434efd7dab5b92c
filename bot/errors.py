"""The one kind of error a user is shown as it is.

Any layer raises a :class:`UserError` for input it cannot use (a question too long, an
essay file refused, an unknown essay); its message is one line, says why, and nothing was
changed. Front ends show that message and nothing else of any other exception.
"""

from __future__ import annotations


class UserError(ValueError):
    """Input that cannot be used; the message says why, in one line."""
