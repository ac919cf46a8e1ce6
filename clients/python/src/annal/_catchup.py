"""The catch-up subscription of docs/protocol.md section 3.3, with no I/O:
the blocking and the asyncio subscriptions feed it read_all pages and PUB
messages and hand over the events it lets through.

State: `position`, the next sequence to consider. Invariants:
1. Every matching event with a sequence below position has been handed
   over exactly once, in sequence order (deliver() moves position past an
   event as it is handed over, so a caller that stops after any event
   resumes from exactly there).
2. An event is handed over only when its sequence is position (live) or
   when it comes from a read_all that started at or below it (catch-up).
The SUB socket is subscribed before the first read, so nothing committed
after the read can slip between history and live. A live event below
position repeats what a read delivered: dropped. One above position is a
hole: lost messages, events of other aggregates (with a prefix) or
sequences removed by a deletion: one read_all from position settles which,
delivering what exists and moving past what does not (`skipped` counts
those sequences). A $head at or past position means events may have been
lost at the tail; silence means annald is away: both ask for a read. A read
whose head is below position - 1 means annald serves another store:
StoreChanged, rather than skipping events."""
import json
from dataclasses import dataclass
from typing import Any, Dict, Optional, Union

import msgpack

from . import _protocol, records
from .errors import AnnalError

PAGE = 1000          # events per catch-up read
SILENCE_S = 3.0      # no heartbeat for this long: check with a read
BACKOFF_MAX_S = 2.0  # longest wait between reads while annald is away
HEAD = b"$head"


class StoreChanged(AnnalError):
    """annald's store is behind the subscription's position: it serves
    another store, or a restored copy. The subscription stops rather than
    skip or repeat events."""


@dataclass
class Stats:
    live: int = 0     # events handed over from PUB
    read: int = 0     # events handed over from read_all
    reads: int = 0    # read_all requests sent
    skipped: int = 0  # sequences a read moved past: removed, or other aggregates'


def decode_body(body: bytes) -> Optional[Dict[str, Any]]:
    """A published body, in either publish encoding; None if it is neither."""
    try:
        value = json.loads(body) if body[:1] == b"{" else msgpack.unpackb(body, raw=False)
    except (ValueError, msgpack.UnpackException):
        return None
    return value if isinstance(value, dict) else None


class Catchup:
    def __init__(self, prefix: str, from_sequence: Union[int, str]):
        if from_sequence != "end" and (isinstance(from_sequence, bool)
                                       or not isinstance(from_sequence, int)
                                       or from_sequence < 1):
            raise ValueError("from_sequence is an integer >= 1 or 'end'")
        self.prefix = prefix
        self.position: Optional[int] = (None if isinstance(from_sequence, str)
                                        else from_sequence)
        self.catch_up = True
        self.last_beat = 0.0
        self.backoff = 0.0
        self.stats = Stats()

    @property
    def started(self) -> bool:
        return self.position is not None

    def start_call(self) -> "_protocol.Call[records.Page]":
        """For from_sequence 'end': a read that tells the head."""
        return _protocol.read_all(1, 0, None, None)

    def start(self, page: records.Page, now: float) -> None:
        self.position = (page.head_sequence or 0) + 1
        self.last_beat = now

    def wants_read(self, now: float) -> bool:
        if not self.last_beat:
            self.last_beat = now
        if now - self.last_beat > SILENCE_S:
            self.catch_up = True  # annald quiet: restarted, or heartbeats lost
            self.last_beat = now
        return self.catch_up

    def read_call(self) -> "_protocol.Call[records.Page]":
        self.stats.reads += 1
        assert self.position is not None
        return _protocol.read_all(self.position, PAGE, self.prefix, None)

    def away(self) -> float:
        """annald did not answer: how long to wait before the next try."""
        self.backoff = min(BACKOFF_MAX_S, self.backoff * 2 if self.backoff else 0.05)
        return self.backoff

    def check_page(self, page: records.Page, now: float) -> None:
        assert self.position is not None
        self.backoff = 0.0
        self.last_beat = now
        if (page.head_sequence or 0) + 1 < self.position:
            raise StoreChanged(f"annald's store is behind this subscription's position "
                               f"{self.position}: is it another or a restored store?")

    def deliver(self, e: records.Event, live: bool) -> bool:
        """True when e is to be handed over now (and position moves past it)."""
        assert self.position is not None
        if e.sequence_number < self.position:
            return False
        self.stats.skipped += e.sequence_number - self.position
        self.position = e.sequence_number + 1
        if live:
            self.stats.live += 1
        else:
            self.stats.read += 1
        return True

    def finish_page(self, page: records.Page) -> None:
        """After a page's events were handed over: move past its holes, and
        end the catch-up at the head."""
        assert self.position is not None
        nxt = page.next_sequence or self.position
        if nxt > self.position:
            self.stats.skipped += nxt - self.position
            self.position = nxt
        if not page.events and self.position > (page.head_sequence or 0):
            self.catch_up = False

    def on_message(self, topic: bytes, body: bytes, now: float) -> Optional[records.Event]:
        """A PUB message: the event to hand over, if any."""
        msg = decode_body(body)
        if msg is None:
            return None  # not ours to judge: a read settles what matters
        if topic == HEAD:
            self.last_beat = now
            head = msg.get("head_sequence")
            assert self.position is not None
            # at or past position: events may have been lost. Far below: a
            # read tells whether annald now serves another store.
            if isinstance(head, int) and (head >= self.position or head + 1 < self.position):
                self.catch_up = True
            return None
        if self.catch_up:
            return None  # the read under way delivers it
        try:
            e = records.event(msg)
        except TypeError:
            return None
        assert self.position is not None
        if e.sequence_number > self.position:
            self.catch_up = True
            return None
        return e if self.deliver(e, live=True) else None
