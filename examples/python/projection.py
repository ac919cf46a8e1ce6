#!/usr/bin/env python3
"""A read model of account balances in SQLite, fed by a catch-up
subscription of the annal package to `account-*` aggregates (`Deposited`
and `Withdrawn` events with {"amount": N}): the Python twin of
examples/sqlite_projection.

Each event is applied in one SQLite transaction with the checkpoint, so
after a crash (kill -9 anywhere) the read model and its position agree: the
projection starts again at the first event it had not committed; none is
lost, none applied twice (the `applied` table's primary key would make a
double application an error).

    ANNAL_COMMANDS=tcp://127.0.0.1:5555 ANNAL_EVENTS=tcp://127.0.0.1:5556 \\
        python3 projection.py balances.db
"""
import os
import signal
import sqlite3
import sys

import annal

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS applied (sequence INTEGER PRIMARY KEY);
"""


def apply(db, e):
    """One event and the checkpoint past it, in one transaction."""
    sign = {"Deposited": 1, "Withdrawn": -1}.get(e.event_type)
    with db:
        if sign is not None:
            db.execute("INSERT INTO accounts VALUES (?, ?) ON CONFLICT (id) "
                       "DO UPDATE SET balance = balance + excluded.balance",
                       (e.aggregate_id, sign * int(e.event_data["amount"])))
            db.execute("INSERT INTO applied VALUES (?)", (e.sequence_number,))
        db.execute("UPDATE checkpoint SET position = ?", (e.sequence_number + 1,))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: projection.py DATABASE")
    db = sqlite3.connect(sys.argv[1])
    db.execute("PRAGMA journal_mode = WAL")
    with db:
        db.executescript(SCHEMA)
        if db.execute("SELECT count(*) FROM checkpoint").fetchone()[0] == 0:
            db.execute("INSERT INTO checkpoint VALUES (1)")
    position = db.execute("SELECT position FROM checkpoint").fetchone()[0]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds: the open transaction rolls back
    with annal.Client(os.environ.get("ANNAL_COMMANDS", "tcp://127.0.0.1:5555"),
                      os.environ.get("ANNAL_EVENTS", "tcp://127.0.0.1:5556")) as c:
        with c.subscribe(prefix="account-", from_sequence=position) as sub:
            for e in sub:
                apply(db, e)


if __name__ == "__main__":
    main()
