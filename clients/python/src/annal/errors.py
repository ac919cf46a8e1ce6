"""The exceptions of annal: one base, AnnalError, with the protocol's error
code, and one class per kind of failure a caller handles differently.

Invariant: every failure the server reports, and every request it did not
answer in time, reaches the caller as an AnnalError; nothing else is
raised for them."""
from typing import Any, Dict, Optional

UNSUPPORTED = 10
UNAVAILABLE = 11
INVALID = 12
INTERNAL = 13
NOT_FOUND = 20
GONE = 21


class AnnalError(Exception):
    """A request failed. `code` is the protocol's error code (section 5 of
    docs/protocol.md), None for a concurrency error, which is not one;
    `text` is annald's text, for a person."""

    def __init__(self, text: str, code: Optional[int] = None):
        super().__init__(text)
        self.code = code
        self.text = text


class ConcurrencyError(AnnalError):
    """The aggregate was not at the expected version; nothing was written.
    `actual_version` is the version annald found (None from an annald that
    does not send it)."""

    def __init__(self, text: str, actual_version: Optional[int] = None):
        super().__init__(text, None)
        self.actual_version = actual_version


class Unavailable(AnnalError):
    """Error 11, or no answer in time. `may_be_written` is False when annald
    said that nothing was written (safe to send again as is); True when the
    outcome is unknown (send appends again with the same event ids)."""

    def __init__(self, text: str, may_be_written: bool = True):
        super().__init__(text, UNAVAILABLE)
        self.may_be_written = may_be_written


class InvalidRequest(AnnalError):
    """Error 12: the request broke a rule of the protocol (or of a limit)."""


class NotFound(AnnalError):
    """Error 20: no such snapshot, version or consumer group."""


class Gone(AnnalError):
    """Error 21: the aggregate was deleted for good (hard delete)."""


class Unsupported(AnnalError):
    """Error 10: this annald does not know the command."""


class PermanentError(Exception):
    """Raised by a group handler for an event that will never succeed: the
    worker parks it (with the exception's text as the reason) instead of
    asking for it again."""


_BY_CODE = {UNSUPPORTED: Unsupported, INVALID: InvalidRequest, NOT_FOUND: NotFound, GONE: Gone}


def check(reply: Dict[str, Any]) -> Dict[str, Any]:
    """Returns a reply that is not an error; raises the AnnalError it is."""
    kind = reply.get("type")
    if kind == "concurrency_error":
        raise ConcurrencyError(str(reply.get("error", "concurrency error")),
                               reply.get("actual_version"))
    if kind != "error":
        return reply
    code = reply.get("code")
    text = str(reply.get("text", ""))
    if code == UNAVAILABLE:
        raise Unavailable(text, may_be_written="nothing was written" not in text)
    cls = _BY_CODE.get(code, AnnalError) if isinstance(code, int) else AnnalError
    if cls is AnnalError:
        raise AnnalError(text, code if isinstance(code, int) else None)
    raise cls(text, code)
