"""The examples, run for real: the SQLite projection killed with SIGKILL
mid-stream and restarted from its checkpoint, the live type counter, and
the Python client's demo."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from annal_harness import BIN, Annald, Client, check, run

HERE = os.path.dirname(os.path.abspath(__file__))


def env_for(d):
    return dict(os.environ, ANNAL_COMMANDS=d.commands, ANNAL_EVENTS=d.events)


def t_sqlite_projection():
    d = Annald()
    tmp = tempfile.mkdtemp(prefix="annal-proj-")
    db = os.path.join(tmp, "balances.db")
    proj = None
    try:
        expected, matching = {}, 0
        plan = []
        for i in range(800):
            acc = f"account-{i % 7}" if i % 9 else f"other-{i}"
            kind = "Withdrawn" if i % 5 == 0 else "Deposited"
            plan.append((acc, kind, i))
            if acc.startswith("account-"):
                matching += 1
                expected[acc] = expected.get(acc, 0) + (-i if kind == "Withdrawn" else i)

        def writer():
            c = Client(d.commands, "msgpack")
            for acc, kind, i in plan:
                c.call({"type": "append", "aggregate_id": acc, "event_type": kind,
                        "event_data": {"amount": i}, "version": "any"})
                if i % 100 == 0:
                    time.sleep(0.05)

        log = open(os.path.join(tmp, "projection.log"), "a")
        start = lambda: subprocess.Popen([os.path.join(BIN, "annal-projection-sqlite"), db],
                                         env=env_for(d), stderr=log)
        proj = start()
        w = threading.Thread(target=writer)
        w.start()
        time.sleep(0.4)
        proj.send_signal(signal.SIGKILL)  # anywhere: inside or between transactions
        proj.wait()
        time.sleep(0.2)
        proj = start()
        w.join()
        head = Client(d.commands).call({"type": "status"})["head_sequence"]
        check(head == 800)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with sqlite3.connect(db) as con:
                    pos = con.execute("SELECT position FROM checkpoint").fetchone()[0]
                    applied = con.execute("SELECT count(*) FROM applied").fetchone()[0]
                if applied == matching:
                    break
            except sqlite3.OperationalError:
                pass
            time.sleep(0.1)
        with sqlite3.connect(db) as con:
            balances = dict(con.execute("SELECT id, balance FROM accounts"))
            applied = con.execute("SELECT count(*) FROM applied").fetchone()[0]
            pos = con.execute("SELECT position FROM checkpoint").fetchone()[0]
        if applied != matching:
            log.flush()
            raise AssertionError((applied, matching, proj.poll(), open(log.name).read()))
        check(balances == expected, (balances, expected))
        check(pos <= head + 1, pos)
        proj.send_signal(signal.SIGTERM)
        check(proj.wait(10) == 0)
        check(d.stop() == 0)
    finally:
        if proj and proj.poll() is None:
            proj.kill()
        d.cleanup()
        subprocess.run(["rm", "-rf", tmp])


def t_type_counter():
    d = Annald()
    counter = None
    try:
        c = Client(d.commands)
        for t in ["A", "B", "A", "C", "A"]:
            c.call({"type": "append", "aggregate_id": "x-1", "event_type": t, "event_data": {},
                    "version": "any"})
        counter = subprocess.Popen([os.path.join(BIN, "annal-type-counter"), "--from", "1",
                                    "--interval", "200"], env=env_for(d), stdout=subprocess.PIPE,
                                   text=True)
        check(json.loads(counter.stdout.readline()) == {"A": 3, "B": 1, "C": 1})
        c.call({"type": "append", "aggregate_id": "x-2", "event_type": "B", "event_data": {},
                "version": "any"})
        check(json.loads(counter.stdout.readline()) == {"A": 3, "B": 2, "C": 1})
        counter.send_signal(signal.SIGTERM)
        check(counter.wait(10) == 0)
        check(d.stop() == 0)
    finally:
        if counter and counter.poll() is None:
            counter.kill()
        d.cleanup()


def t_python_client():
    d = Annald()
    try:
        p = subprocess.run([sys.executable, os.path.join(HERE, "..", "examples", "python",
                                                         "annal_client.py"), "demo", d.commands,
                            d.events], capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, p.stderr)
        out = json.loads(p.stdout)
        check(out["counter"] == {"n": 40} and out["version"] == 40, out)
        check(out["user"] == [{"name": "Jo"}], out)
        check(out["seen"] == list(range(1, 42)), out["seen"])
        check(d.stop() == 0)
    finally:
        d.cleanup()


run([
    ("sqlite_projection", t_sqlite_projection),
    ("type_counter", t_type_counter),
    ("python_client", t_python_client),
])
