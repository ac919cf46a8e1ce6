"""The requests of docs/protocol.md and the parsing of their replies,
with no I/O: the blocking and the asyncio clients both send what these
functions build and hand the reply to the parser they return.

Invariants: a Call's request is a complete body but for `msg_id`, which
the channel that sends it sets; every parser first passes the reply
through errors.check, so an error reply always raises."""
from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, Iterable, List, Optional, Sequence, TypeVar, Union

from . import errors, records
from .records import from_reply

R = TypeVar("R")
Expected = Union[int, str]  # an integer >= 0, "any" or "exists"


@dataclass
class Call(Generic[R]):
    request: Dict[str, Any]
    parse: Callable[[Dict[str, Any]], R]
    wait_ms: int = 0  # how long annald may hold the request on purpose (long poll)


def _expected(v: Expected) -> Expected:
    if isinstance(v, bool) or not (isinstance(v, int) and v >= 0 or v in ("any", "exists")):
        raise ValueError(f"expected_version must be an integer >= 0, 'any' or 'exists', not {v!r}")
    return v


def _opt(body: Dict[str, Any], **fields: Any) -> Dict[str, Any]:
    """body with the fields that are not None."""
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def _checked(parse: Callable[[Dict[str, Any]], R]) -> Callable[[Dict[str, Any]], R]:
    return lambda reply: parse(errors.check(reply))


def append(aggregate_id: str, event_type: str, data: Any, expected_version: Expected,
           metadata: Optional[Dict[str, Any]], event_id: Optional[str]) -> Call[records.Appended]:
    body = _opt({"type": "append", "aggregate_id": aggregate_id, "event_type": event_type,
                 "event_data": data, "version": _expected(expected_version)},
                metadata=metadata, event_id=event_id)
    return Call(body, _checked(lambda r: from_reply(records.Appended, r)))


def append_batch(aggregate_id: str, events: Iterable[Dict[str, Any]],
                 expected_version: Expected) -> Call[records.BatchAppended]:
    batch: List[Dict[str, Any]] = []
    for e in events:
        if not isinstance(e, dict) or "event_type" not in e or "event_data" not in e:
            raise ValueError("each event is a dict with 'event_type' and 'event_data' "
                             "(and 'metadata', 'event_id' if wanted)")
        batch.append(e)
    body = {"type": "append", "aggregate_id": aggregate_id,
            "version": _expected(expected_version), "events": batch}
    return Call(body, _checked(lambda r: from_reply(records.BatchAppended, r)))


def read(aggregate_id: str, from_version: Optional[int], max_count: int,
         direction: str) -> Call[records.Page]:
    if direction not in ("forward", "backward"):
        raise ValueError("direction is 'forward' or 'backward'")
    body = _opt({"type": "read", "aggregate_id": aggregate_id, "max_count": max_count,
                 "direction": direction}, from_version=from_version)
    return Call(body, _checked(records.page))


def read_all(from_sequence: int, max_count: int, prefix: Optional[str],
             event_types: Optional[Sequence[str]]) -> Call[records.Page]:
    body = _opt({"type": "read_all", "from_sequence": from_sequence, "max_count": max_count},
                prefix=prefix or None, event_types=list(event_types) if event_types else None)
    return Call(body, _checked(records.page))


def create_snapshot(aggregate_id: str, state: Any, version: Optional[int],
                    has_state: bool) -> Call[records.Snapshot]:
    body = _opt({"type": "create_snapshot", "aggregate_id": aggregate_id}, version=version)
    if has_state:
        body["state"] = state
    return Call(body, _checked(lambda r: from_reply(records.Snapshot, r)))


def get_snapshot(aggregate_id: str) -> Call[records.Snapshot]:
    return Call({"type": "get_snapshot", "aggregate_id": aggregate_id},
                _checked(lambda r: from_reply(records.Snapshot, r)))


def replay(aggregate_id: str, use_snapshot: bool, version: Optional[int]) -> Call[records.Replayed]:
    body = _opt({"type": "replay", "aggregate_id": aggregate_id, "use_snapshot": use_snapshot},
                version=version)
    return Call(body, _checked(lambda r: from_reply(records.Replayed, r)))


def get_state(aggregate_id: str, timestamp: str) -> Call[records.State]:
    return Call({"type": "get_state", "aggregate_id": aggregate_id, "timestamp": timestamp},
                _checked(lambda r: from_reply(records.State, r)))


def status() -> Call[records.Status]:
    return Call({"type": "status"}, _checked(lambda r: from_reply(records.Status, r)))


def delete_aggregate(aggregate_id: str, expected_version: Expected, hard: bool,
                     event_id: Optional[str]) -> Call[records.Deleted]:
    body = _opt({"type": "delete_aggregate", "aggregate_id": aggregate_id,
                 "version": _expected(expected_version), "hard": bool(hard)}, event_id=event_id)
    return Call(body, _checked(lambda r: from_reply(records.Deleted, r)))


def set_retention(aggregate_id: str, max_count: Optional[int],
                  max_age_s: Optional[int]) -> Call[records.Retention]:
    body = {"type": "set_retention", "aggregate_id": aggregate_id, "max_count": max_count,
            "max_age_s": max_age_s}
    return Call(body, _checked(lambda r: from_reply(records.Retention, r)))


def get_retention(aggregate_id: str) -> Call[records.Retention]:
    return Call({"type": "get_retention", "aggregate_id": aggregate_id},
                _checked(lambda r: from_reply(records.Retention, r)))


# consumer groups (section 6)

def group_create(group: str, prefix: str, event_types: Optional[Sequence[str]],
                 from_sequence: Union[int, str], ordering: str, ack_timeout_ms: int,
                 max_deliveries: int) -> Call[int]:
    body = _opt({"type": "group_create", "group": group, "prefix": prefix,
                 "from_sequence": from_sequence, "ordering": ordering,
                 "ack_timeout_ms": ack_timeout_ms, "max_deliveries": max_deliveries},
                event_types=list(event_types) if event_types is not None else None)
    return Call(body, _checked(lambda r: int(r["start_sequence"])))


def group_fetch(group: str, consumer: str, max_count: int, wait_ms: int) -> Call[List[records.Event]]:
    body = {"type": "group_fetch", "group": group, "consumer": consumer, "max_count": max_count,
            "wait_ms": wait_ms}
    return Call(body, _checked(lambda r: [records.event(e) for e in r.get("events", [])]),
                wait_ms=wait_ms)


def group_ack(group: str, consumer: str, sequences: Iterable[int]) -> Call[int]:
    body = {"type": "group_ack", "group": group, "consumer": consumer,
            "sequences": list(sequences)}
    return Call(body, _checked(lambda r: int(r["acked"])))


def group_nack(group: str, consumer: str, sequences: Iterable[int], action: str,
               reason: str) -> Call[int]:
    if action not in ("retry", "park", "skip"):
        raise ValueError("action is 'retry', 'park' or 'skip'")
    body = {"type": "group_nack", "group": group, "consumer": consumer,
            "sequences": list(sequences), "action": action, "reason": reason}
    return Call(body, _checked(lambda r: int(r["count"])))


def group_info(group: str) -> Call[records.GroupInfo]:
    return Call({"type": "group_info", "group": group},
                _checked(lambda r: from_reply(records.GroupInfo, r)))


def group_list() -> Call[List[records.GroupInfo]]:
    return Call({"type": "group_list"},
                _checked(lambda r: [from_reply(records.GroupInfo, g) for g in r["groups"]]))


def group_delete(group: str) -> Call[None]:
    return Call({"type": "group_delete", "group": group}, _checked(lambda r: None))


def group_parked(group: str, from_sequence: int, max_count: int) -> Call[records.Page]:
    body = {"type": "group_parked", "group": group, "from_sequence": from_sequence,
            "max_count": max_count}
    return Call(body, _checked(records.page))


def group_replay_parked(group: str, sequences: Optional[Iterable[int]]) -> Call[int]:
    body = _opt({"type": "group_replay_parked", "group": group},
                sequences=list(sequences) if sequences is not None else None)
    return Call(body, _checked(lambda r: int(r["count"])))
