"""annal's blocking client: Client, its consumer groups (Group) and its
catch-up subscriptions (Subscription).

Invariants: every call is one request (or, for iterators, one per page)
through the client's channel, so a Client may be shared by threads; a
Subscription has sockets of its own, and its iterator hands over every
matching event exactly once, in sequence order (see _catchup); a Group's
consume() acks an event only after its handler returned."""
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import zmq

from . import _protocol as P
from ._catchup import Catchup, Stats
from ._channel import Channel, curve_keys, subscriber
from ._protocol import Expected
from .errors import PermanentError, Unavailable
from .records import (Appended, BatchAppended, Deleted, Event, GroupInfo, Page, Replayed,
                      Retention, Snapshot, State, Status)

_NO_STATE = object()


class Client:
    """A connection to annald. `commands` and `events` are ZeroMQ
    endpoints; `timeout` (seconds) bounds every request; `curve` is a
    (public key, secret key, annald's public key) tuple of Z85 text, or a
    dict with public_key, secret_key and server_key. Use it as a context
    manager, or call close()."""

    def __init__(self, commands: str = "tcp://127.0.0.1:5555",
                 events: str = "tcp://127.0.0.1:5556", timeout: float = 5.0,
                 curve: Any = None):
        if timeout <= 0:
            raise ValueError("timeout is a number of seconds > 0")
        self.commands, self.events, self.timeout = commands, events, timeout
        self.curve = curve_keys(curve)
        self._ctx = zmq.Context()
        self._channel = Channel(self._ctx, commands, timeout, self.curve)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the client's sockets (subscriptions it made included)."""
        self._channel.close()
        self._ctx.destroy(linger=0)

    # the commands of section 4

    def append(self, aggregate_id: str, event_type: str, data: Any, *,
               expected_version: Expected = "any", metadata: Optional[Dict[str, Any]] = None,
               event_id: Optional[str] = None) -> Appended:
        """Appends one event. expected_version: the aggregate's version now
        (0: no events yet), "any" or "exists"; a mismatch raises
        ConcurrencyError and writes nothing. Give event_id to make the call
        safe to send again."""
        return self._channel.call(P.append(aggregate_id, event_type, data, expected_version,
                                           metadata, event_id))

    def append_batch(self, aggregate_id: str, events: Iterable[Dict[str, Any]], *,
                     expected_version: Expected = "any") -> BatchAppended:
        """Appends events atomically, at consecutive versions; each is a dict
        with event_type, event_data and optionally metadata and event_id."""
        return self._channel.call(P.append_batch(aggregate_id, events, expected_version))

    def read_page(self, aggregate_id: str, from_version: Optional[int] = None,
                  max_count: int = 1000, direction: str = "forward") -> Page:
        """One read reply: events, the aggregate's version, next_version."""
        return self._channel.call(P.read(aggregate_id, from_version, max_count, direction))

    def read(self, aggregate_id: str, from_version: Optional[int] = None,
             direction: str = "forward", page_size: int = 1000) -> Iterator[Event]:
        """Every event of the aggregate from from_version on, page by page."""
        while True:
            page = self.read_page(aggregate_id, from_version, page_size, direction)
            yield from page.events
            if page.next_version is None:
                return
            from_version = page.next_version

    def read_all_page(self, from_sequence: int = 1, max_count: int = 1000,
                      prefix: Optional[str] = None,
                      event_types: Optional[Sequence[str]] = None) -> Page:
        """One read_all reply: events, next_sequence, head_sequence."""
        return self._channel.call(P.read_all(from_sequence, max_count, prefix, event_types))

    def read_all(self, from_sequence: int = 1, prefix: Optional[str] = None,
                 event_types: Optional[Sequence[str]] = None,
                 page_size: int = 1000) -> Iterator[Event]:
        """The global log from from_sequence to the head (as the last page
        saw it), filtered by aggregate id prefix and event types."""
        while True:
            page = self.read_all_page(from_sequence, page_size, prefix, event_types)
            yield from page.events
            assert page.next_sequence is not None and page.head_sequence is not None
            if page.next_sequence > page.head_sequence:
                return
            from_sequence = page.next_sequence

    def create_snapshot(self, aggregate_id: str, state: Any = _NO_STATE,
                        version: Optional[int] = None) -> Snapshot:
        """A snapshot: of `state` (the caller's) at the current version, or
        of the default fold at `version` (default: current)."""
        return self._channel.call(P.create_snapshot(aggregate_id, None if state is _NO_STATE
                                                    else state, version, state is not _NO_STATE))

    def get_snapshot(self, aggregate_id: str) -> Snapshot:
        """The latest snapshot; NotFound if there is none."""
        return self._channel.call(P.get_snapshot(aggregate_id))

    def replay(self, aggregate_id: str, use_snapshot: bool = False,
               version: Optional[int] = None) -> Replayed:
        """The default fold (JSON merge patch) of the aggregate's events."""
        return self._channel.call(P.replay(aggregate_id, use_snapshot, version))

    def get_state(self, aggregate_id: str, timestamp: str) -> State:
        """The default fold as of an RFC 3339 time."""
        return self._channel.call(P.get_state(aggregate_id, timestamp))

    def status(self) -> Status:
        return self._channel.call(P.status())

    # section 7

    def delete_aggregate(self, aggregate_id: str, *, expected_version: Expected,
                         hard: bool = False, event_id: Optional[str] = None) -> Deleted:
        """Removes every event and snapshot of the aggregate (a $deleted
        event records it). hard: the aggregate takes no more appends."""
        return self._channel.call(P.delete_aggregate(aggregate_id, expected_version, hard,
                                                     event_id))

    def set_retention(self, aggregate_id: str, max_count: Optional[int] = None,
                      max_age_s: Optional[int] = None) -> Retention:
        """Sets the whole policy (a limit left out is none)."""
        return self._channel.call(P.set_retention(aggregate_id, max_count, max_age_s))

    def get_retention(self, aggregate_id: str) -> Retention:
        return self._channel.call(P.get_retention(aggregate_id))

    # section 6, and 3.3

    def group(self, name: str) -> "Group":
        """The consumer group of that name (create() makes it)."""
        return Group(self, name)

    def groups(self) -> List[GroupInfo]:
        return self._channel.call(P.group_list())

    def subscribe(self, prefix: str = "", from_sequence: Union[int, str] = 1,
                  queue: int = 100000) -> "Subscription":
        """A catch-up subscription to the aggregates whose id starts with
        prefix, from from_sequence (or "end": what is appended from now on).
        queue: live events held for it before PUB drops (it then reads
        what was dropped)."""
        return Subscription(self, prefix, from_sequence, queue)


class Group:
    """A consumer group held by annald: its events are shared among the
    consumers that fetch them, each leased to one at a time until acked."""

    def __init__(self, client: Client, name: str):
        self.client, self.name = client, name
        self._call = client._channel.call

    def create(self, prefix: str = "", event_types: Optional[Sequence[str]] = None,
               from_sequence: Union[int, str] = 1, ordering: str = "aggregate",
               ack_timeout_ms: int = 30000, max_deliveries: int = 5) -> int:
        """Creates the group (or finds it with these settings); its start."""
        return self._call(P.group_create(self.name, prefix, event_types, from_sequence,
                                         ordering, ack_timeout_ms, max_deliveries))

    def fetch(self, consumer: str, max_count: int = 100, wait_ms: int = 0) -> List[Event]:
        """Leases up to max_count ready events to consumer, waiting up to
        wait_ms for some."""
        return self._call(P.group_fetch(self.name, consumer, max_count, wait_ms))

    def ack(self, consumer: str, sequences: Iterable[int]) -> int:
        """Marks the events done; how many counted."""
        return self._call(P.group_ack(self.name, consumer, sequences))

    def nack(self, consumer: str, sequences: Iterable[int], action: str = "retry",
             reason: str = "") -> int:
        """"retry": ready again now; "park": set aside with reason; "skip": as acked."""
        return self._call(P.group_nack(self.name, consumer, sequences, action, reason))

    def info(self) -> GroupInfo:
        return self._call(P.group_info(self.name))

    def delete(self) -> None:
        self._call(P.group_delete(self.name))

    def parked(self, from_sequence: int = 1, page_size: int = 1000) -> Iterator[Event]:
        """The parked events, each with its reason."""
        while True:
            page = self._call(P.group_parked(self.name, from_sequence, page_size))
            yield from page.events
            if page.next_sequence is None:
                return
            from_sequence = page.next_sequence

    def replay_parked(self, sequences: Optional[Iterable[int]] = None) -> int:
        """Makes parked events ready again (all of them when sequences is None)."""
        return self._call(P.group_replay_parked(self.name, sequences))

    def consume(self, consumer: str, handler: Callable[[Event], Any], *, max_count: int = 100,
                wait_ms: int = 5000, stop: Optional[Any] = None,
                max_events: Optional[int] = None) -> int:
        """Runs handler over the group's events until stop (a
        threading.Event) is set or max_events were handled; returns how
        many were. A handler that returns has its event acked; one that
        raises PermanentError parks it (the text is the reason); any other
        Exception asks for it again ("retry"). annald being away is ridden
        out with back-off."""
        done, backoff = 0, 0.0
        while not (stop is not None and stop.is_set()) and (max_events is None
                                                            or done < max_events):
            try:
                want = max_count if max_events is None else min(max_count, max_events - done)
                events = self.fetch(consumer, want, wait_ms)
                backoff = 0.0
                done += consume_batch(self, consumer, events, handler)
            except Unavailable:
                backoff = min(2.0, backoff * 2 if backoff else 0.1)
                time.sleep(backoff)
        return done


def consume_batch(group: Group, consumer: str, events: List[Event],
                  handler: Callable[[Event], Any]) -> int:
    """Hands events to handler in order; acks the successes in one request
    (also when the handler raised something that is not an Exception);
    returns how many were handled."""
    acks: List[int] = []
    try:
        for e in events:
            try:
                handler(e)
                acks.append(e.sequence_number)
            except PermanentError as err:
                group.nack(consumer, [e.sequence_number], "park", str(err) or type(err).__name__)
            except Exception as err:  # noqa: BLE001: the handler's failure is retried
                group.nack(consumer, [e.sequence_number], "retry",
                           str(err) or type(err).__name__)
    finally:
        if acks:
            group.ack(consumer, acks)
    return len(events)


class Subscription:
    """Every event of the aggregates matching a prefix, exactly once and in
    sequence order: history, then live, across PUB drops and annald
    restarts. Iterate it; `position` is the next sequence it will consider
    (store it with your projection and resume from it); `stats` counts.
    Close it (or use it as a context manager) when done."""

    def __init__(self, client: Client, prefix: str, from_sequence: Union[int, str],
                 queue: int = 100000):
        self._state = Catchup(prefix, from_sequence)
        self._channel = Channel(client._ctx, client.commands, client.timeout, client.curve)
        self._sub = subscriber(client._ctx, client.events, prefix, queue, client.curve)
        self.closed = False

    @property
    def position(self) -> Optional[int]:
        return self._state.position

    @property
    def stats(self) -> Stats:
        return self._state.stats

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._sub.close(0)
            self._channel.close()

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def events(self, idle_timeout: Optional[float] = None) -> Iterator[Event]:
        """The events; with idle_timeout (seconds), the iterator ends when
        none came for that long."""
        st = self._state
        idle_since = time.monotonic()
        while not self.closed:
            now = time.monotonic()
            if idle_timeout is not None and now - idle_since > idle_timeout:
                return
            try:
                if not st.started:
                    st.start(self._channel.call(st.start_call()), now)
                while st.wants_read(time.monotonic()) and not self.closed:
                    page = self._channel.call(st.read_call())
                    st.check_page(page, time.monotonic())
                    for e in page.events:
                        if st.deliver(e, live=False):
                            idle_since = time.monotonic()
                            yield e
                    st.finish_page(page)
            except Unavailable:
                time.sleep(st.away())
                continue
            if self._sub.poll(200, zmq.POLLIN):
                for _ in range(10000):
                    try:
                        frames = self._sub.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(frames) != 2:
                        continue
                    live = st.on_message(frames[0], frames[1], time.monotonic())
                    if live is not None:
                        idle_since = time.monotonic()
                        yield live
                    if st.catch_up:
                        break
