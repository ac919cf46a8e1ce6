"""annal's client for asyncio: the same calls as annal.Client, awaited, and
the same subscription and group worker, as async iterators and coroutines.

    async with annal.aio.Client(commands, events) as c:
        await c.append("user-1", "UserCreated", {"name": "Ada"})
        async for event in c.subscribe(prefix="user-"):
            ...

Invariants: those of annal.client, with one difference: a Client's
requests are serialised by an asyncio lock (one in flight per Client;
make several Clients to have several in flight); requests and parsing are
annal._protocol's, the subscription's state machine annal._catchup's."""
import asyncio
import itertools
import time
from typing import (Any, AsyncIterator, Awaitable, Callable, Dict, Iterable, List, Optional,
                    Sequence, Union, cast)

import zmq
import zmq.asyncio

from . import _protocol as P
from ._catchup import Catchup, Stats
from ._channel import curve_keys, dealer, decode, encode, subscriber, timeout_error
from ._protocol import Call, Expected, R
from .errors import PermanentError, Unavailable
from .records import (Appended, BatchAppended, Deleted, Event, GroupInfo, Page, Replayed,
                      Retention, Snapshot, State, Status)

_NO_STATE = object()


class _Channel:
    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, timeout: float, curve: Any):
        self.ctx, self.endpoint, self.timeout, self.curve = ctx, endpoint, timeout, curve
        self.ids = itertools.count(1)
        self.lock = asyncio.Lock()
        self.sock: Optional[zmq.asyncio.Socket] = None

    def reset(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    async def call(self, call: "Call[R]") -> R:
        async with self.lock:
            if self.sock is None:
                self.sock = dealer(self.ctx, self.endpoint, self.curve)
            sock = self.sock
            msg_id = next(self.ids)
            budget = self.timeout + call.wait_ms / 1000.0
            try:
                await asyncio.wait_for(sock.send(encode(dict(call.request, msg_id=msg_id))),
                                       budget)
                deadline = time.monotonic() + budget
                while True:
                    frame = await asyncio.wait_for(sock.recv(),
                                                   max(0.0, deadline - time.monotonic()))
                    reply = decode(cast(bytes, frame))
                    if reply.get("in_reply_to") == msg_id or (reply.get("in_reply_to") is None
                                                              and reply.get("type") == "error"):
                        return call.parse(reply)
            except asyncio.TimeoutError:
                self.reset()
                raise timeout_error(self.endpoint, budget) from None
            except asyncio.CancelledError:
                self.reset()  # the reply may still come: not on this socket
                raise


class Client:
    """annal.Client for asyncio; `async with` it, or await close()."""

    def __init__(self, commands: str = "tcp://127.0.0.1:5555",
                 events: str = "tcp://127.0.0.1:5556", timeout: float = 5.0,
                 curve: Any = None):
        if timeout <= 0:
            raise ValueError("timeout is a number of seconds > 0")
        self.commands, self.events, self.timeout = commands, events, timeout
        self.curve = curve_keys(curve)
        self._ctx = zmq.asyncio.Context()
        self._channel = _Channel(self._ctx, commands, timeout, self.curve)

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        self._channel.reset()
        self._ctx.destroy(linger=0)

    async def append(self, aggregate_id: str, event_type: str, data: Any, *,
                     expected_version: Expected = "any",
                     metadata: Optional[Dict[str, Any]] = None,
                     event_id: Optional[str] = None) -> Appended:
        return await self._channel.call(P.append(aggregate_id, event_type, data,
                                                 expected_version, metadata, event_id))

    async def append_batch(self, aggregate_id: str, events: Iterable[Dict[str, Any]], *,
                           expected_version: Expected = "any") -> BatchAppended:
        return await self._channel.call(P.append_batch(aggregate_id, events, expected_version))

    async def read_page(self, aggregate_id: str, from_version: Optional[int] = None,
                        max_count: int = 1000, direction: str = "forward") -> Page:
        return await self._channel.call(P.read(aggregate_id, from_version, max_count, direction))

    async def read(self, aggregate_id: str, from_version: Optional[int] = None,
                   direction: str = "forward", page_size: int = 1000) -> AsyncIterator[Event]:
        while True:
            page = await self.read_page(aggregate_id, from_version, page_size, direction)
            for e in page.events:
                yield e
            if page.next_version is None:
                return
            from_version = page.next_version

    async def read_all_page(self, from_sequence: int = 1, max_count: int = 1000,
                            prefix: Optional[str] = None,
                            event_types: Optional[Sequence[str]] = None) -> Page:
        return await self._channel.call(P.read_all(from_sequence, max_count, prefix,
                                                   event_types))

    async def read_all(self, from_sequence: int = 1, prefix: Optional[str] = None,
                       event_types: Optional[Sequence[str]] = None,
                       page_size: int = 1000) -> AsyncIterator[Event]:
        while True:
            page = await self.read_all_page(from_sequence, page_size, prefix, event_types)
            for e in page.events:
                yield e
            assert page.next_sequence is not None and page.head_sequence is not None
            if page.next_sequence > page.head_sequence:
                return
            from_sequence = page.next_sequence

    async def create_snapshot(self, aggregate_id: str, state: Any = _NO_STATE,
                              version: Optional[int] = None) -> Snapshot:
        return await self._channel.call(P.create_snapshot(
            aggregate_id, None if state is _NO_STATE else state, version,
            state is not _NO_STATE))

    async def get_snapshot(self, aggregate_id: str) -> Snapshot:
        return await self._channel.call(P.get_snapshot(aggregate_id))

    async def replay(self, aggregate_id: str, use_snapshot: bool = False,
                     version: Optional[int] = None) -> Replayed:
        return await self._channel.call(P.replay(aggregate_id, use_snapshot, version))

    async def get_state(self, aggregate_id: str, timestamp: str) -> State:
        return await self._channel.call(P.get_state(aggregate_id, timestamp))

    async def status(self) -> Status:
        return await self._channel.call(P.status())

    async def delete_aggregate(self, aggregate_id: str, *, expected_version: Expected,
                               hard: bool = False, event_id: Optional[str] = None) -> Deleted:
        return await self._channel.call(P.delete_aggregate(aggregate_id, expected_version,
                                                           hard, event_id))

    async def set_retention(self, aggregate_id: str, max_count: Optional[int] = None,
                            max_age_s: Optional[int] = None) -> Retention:
        return await self._channel.call(P.set_retention(aggregate_id, max_count, max_age_s))

    async def get_retention(self, aggregate_id: str) -> Retention:
        return await self._channel.call(P.get_retention(aggregate_id))

    def group(self, name: str) -> "Group":
        return Group(self, name)

    async def groups(self) -> List[GroupInfo]:
        return await self._channel.call(P.group_list())

    def subscribe(self, prefix: str = "", from_sequence: Union[int, str] = 1,
                  queue: int = 100000) -> "Subscription":
        return Subscription(self, prefix, from_sequence, queue)


class Group:
    """annal.Group for asyncio."""

    def __init__(self, client: Client, name: str):
        self.client, self.name = client, name
        self._call = client._channel.call

    async def create(self, prefix: str = "", event_types: Optional[Sequence[str]] = None,
                     from_sequence: Union[int, str] = 1, ordering: str = "aggregate",
                     ack_timeout_ms: int = 30000, max_deliveries: int = 5) -> int:
        return await self._call(P.group_create(self.name, prefix, event_types, from_sequence,
                                               ordering, ack_timeout_ms, max_deliveries))

    async def fetch(self, consumer: str, max_count: int = 100, wait_ms: int = 0) -> List[Event]:
        return await self._call(P.group_fetch(self.name, consumer, max_count, wait_ms))

    async def ack(self, consumer: str, sequences: Iterable[int]) -> int:
        return await self._call(P.group_ack(self.name, consumer, sequences))

    async def nack(self, consumer: str, sequences: Iterable[int], action: str = "retry",
                   reason: str = "") -> int:
        return await self._call(P.group_nack(self.name, consumer, sequences, action, reason))

    async def info(self) -> GroupInfo:
        return await self._call(P.group_info(self.name))

    async def delete(self) -> None:
        await self._call(P.group_delete(self.name))

    async def parked(self, from_sequence: int = 1, page_size: int = 1000) -> AsyncIterator[Event]:
        while True:
            page = await self._call(P.group_parked(self.name, from_sequence, page_size))
            for e in page.events:
                yield e
            if page.next_sequence is None:
                return
            from_sequence = page.next_sequence

    async def replay_parked(self, sequences: Optional[Iterable[int]] = None) -> int:
        return await self._call(P.group_replay_parked(self.name, sequences))

    async def consume(self, consumer: str, handler: Callable[[Event], Awaitable[Any]], *,
                      max_count: int = 100, wait_ms: int = 5000,
                      stop: Optional[asyncio.Event] = None,
                      max_events: Optional[int] = None) -> int:
        """annal.Group.consume with an async handler; stop is an asyncio.Event
        (or cancel the task: what was handled is acked first)."""
        done, backoff = 0, 0.0
        while not (stop is not None and stop.is_set()) and (max_events is None
                                                            or done < max_events):
            try:
                want = max_count if max_events is None else min(max_count, max_events - done)
                events = await self.fetch(consumer, want, wait_ms)
                backoff = 0.0
                acks: List[int] = []
                try:
                    for e in events:
                        try:
                            await handler(e)
                            acks.append(e.sequence_number)
                        except PermanentError as err:
                            await self.nack(consumer, [e.sequence_number], "park",
                                            str(err) or type(err).__name__)
                        except Exception as err:  # noqa: BLE001: retried
                            await self.nack(consumer, [e.sequence_number], "retry",
                                            str(err) or type(err).__name__)
                finally:
                    if acks:
                        await asyncio.shield(self.ack(consumer, acks))
                done += len(events)
            except Unavailable:
                backoff = min(2.0, backoff * 2 if backoff else 0.1)
                await asyncio.sleep(backoff)
        return done


class Subscription:
    """annal.Subscription for asyncio: `async for event in subscription`."""

    def __init__(self, client: Client, prefix: str, from_sequence: Union[int, str],
                 queue: int = 100000):
        self._state = Catchup(prefix, from_sequence)
        self._channel = _Channel(client._ctx, client.commands, client.timeout, client.curve)
        self._sub = subscriber(client._ctx, client.events, prefix, queue, client.curve)
        self.closed = False

    @property
    def position(self) -> Optional[int]:
        return self._state.position

    @property
    def stats(self) -> Stats:
        return self._state.stats

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._sub.close(0)
            self._channel.reset()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def events(self, idle_timeout: Optional[float] = None) -> AsyncIterator[Event]:
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
                    st.start(await self._channel.call(st.start_call()), now)
                while st.wants_read(time.monotonic()) and not self.closed:
                    page = await self._channel.call(st.read_call())
                    st.check_page(page, time.monotonic())
                    for e in page.events:
                        if st.deliver(e, live=False):
                            idle_since = time.monotonic()
                            yield e
                    st.finish_page(page)
            except Unavailable:
                await asyncio.sleep(st.away())
                continue
            if await self._sub.poll(200, zmq.POLLIN):
                for _ in range(10000):
                    try:
                        frames = await self._sub.recv_multipart(zmq.NOBLOCK)
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
