"""What annal's calls return: plain, immutable records whose fields carry
the protocol's names (docs/protocol.md), so that the protocol's document is
also this package's reference.

Invariant: a record is built from a reply by from_reply(), which takes the
fields it knows and ignores the others, so a newer annald that adds reply
fields does not break an older client."""
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Type, TypeVar

T = TypeVar("T")


def from_reply(cls: Type[T], reply: Dict[str, Any]) -> T:
    """The record of class cls holding the reply's fields of its names."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in reply.items() if k in names})


@dataclass(frozen=True)
class Event:
    """One event, as reads, subscriptions and groups hand it over.
    `delivery` is set by group fetches (1 the first time), `reason` by
    group_parked."""
    sequence_number: int
    event_id: str
    aggregate_id: str
    version: int
    event_type: str
    event_data: Any
    metadata: Dict[str, Any] = field(default_factory=dict)
    recorded_at: str = ""
    delivery: Optional[int] = None
    reason: Optional[str] = None


@dataclass(frozen=True)
class Appended:
    """A single append: its event's id and global sequence number."""
    event_id: str
    sequence_number: int


@dataclass(frozen=True)
class BatchAppended:
    """A batch append: the ids in order, the sequences they took, and the
    aggregate's version after the last."""
    event_ids: List[str]
    first_sequence_number: int
    last_sequence_number: int
    version: int


@dataclass(frozen=True)
class Deleted:
    """delete_aggregate: the version and sequence of its $deleted event."""
    aggregate_id: str
    version: int
    sequence_number: int


@dataclass(frozen=True)
class Snapshot:
    aggregate_id: str
    version: int
    state: Any = None


@dataclass(frozen=True)
class Replayed:
    """replay: the default fold as of `version`; `snapshot_version` only
    when a snapshot was asked for."""
    aggregate_id: str
    events_replayed: int
    state: Any
    version: int
    snapshot_version: Optional[int] = None


@dataclass(frozen=True)
class State:
    """get_state: the default fold of the events recorded at or before
    `timestamp`."""
    aggregate_id: str
    timestamp: str
    state: Any
    version: int


@dataclass(frozen=True)
class Status:
    head_sequence: int
    aggregates: int = 0
    events: int = 0
    snapshots: int = 0
    store: str = ""
    version: str = ""
    uptime_s: int = 0


@dataclass(frozen=True)
class Retention:
    """An aggregate's retention policy; None is no limit."""
    aggregate_id: str
    max_count: Optional[int] = None
    max_age_s: Optional[int] = None


@dataclass(frozen=True)
class Page:
    """One reply of read or read_all. read: `version` (the aggregate's) and
    `next_version` (None at the end). read_all: `next_sequence` and
    `head_sequence`."""
    events: List[Event]
    version: Optional[int] = None
    next_version: Optional[int] = None
    next_sequence: Optional[int] = None
    head_sequence: Optional[int] = None


@dataclass(frozen=True)
class GroupInfo:
    """group_info: a consumer group's settings and progress. `lag` is the
    number of sequences the group is behind the head (exact)."""
    group: str
    prefix: str = ""
    event_types: Optional[List[str]] = None
    ordering: str = "aggregate"
    ack_timeout_ms: int = 30000
    max_deliveries: int = 5
    start_sequence: int = 1
    acked_through: int = 0
    leased: int = 0
    parked: int = 0
    head_sequence: int = 0
    lag: Optional[int] = None


def event(raw: Dict[str, Any]) -> Event:
    return from_reply(Event, raw)


def page(reply: Dict[str, Any]) -> Page:
    return Page(events=[event(e) for e in reply.get("events", [])],
                version=reply.get("version"), next_version=reply.get("next_version"),
                next_sequence=reply.get("next_sequence"),
                head_sequence=reply.get("head_sequence"))
