"""annal: the Python client of the annal event store.

    import annal
    with annal.Client("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556") as c:
        c.append("user-1", "UserCreated", {"name": "Ada"}, expected_version=0)
        for event in c.subscribe(prefix="user-"):
            print(event.sequence_number, event.event_type, event.event_data)

annal.aio has the same client for asyncio."""
from ._catchup import Stats, StoreChanged
from ._channel import load_curve
from .client import Client, Group, Subscription
from .errors import (AnnalError, ConcurrencyError, Gone, InvalidRequest, NotFound,
                     PermanentError, Unavailable, Unsupported)
from .records import (Appended, BatchAppended, Deleted, Event, GroupInfo, Page, Replayed,
                      Retention, Snapshot, State, Status)

__version__ = "0.1.0"
__all__ = ["Client", "load_curve", "Group", "Subscription", "Stats", "StoreChanged", "AnnalError",
           "ConcurrencyError", "Gone", "InvalidRequest", "NotFound", "PermanentError",
           "Unavailable", "Unsupported", "Appended", "BatchAppended", "Deleted", "Event",
           "GroupInfo", "Page", "Replayed", "Retention", "Snapshot", "State", "Status"]
