"""The examples, run for real: the SQLite projections (C and Python) killed
with SIGKILL mid-stream and restarted from their checkpoints, the live
type counter, the Python counter with optimistic concurrency, and pools
of group workers (C and Python) one of which is killed with SIGKILL
mid-run."""
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
PY_EXAMPLES = os.path.join(HERE, "..", "examples", "python")
PY_ENV = {"PYTHONPATH": os.path.join(HERE, "..", "clients", "python", "src")}


def env_for(d):
    return dict(os.environ, ANNAL_COMMANDS=d.commands, ANNAL_EVENTS=d.events)


def sqlite_projection(command, extra_env=None):
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
        start = lambda: subprocess.Popen([*command, db], env=dict(env_for(d), **(extra_env or {})),
                                         stderr=log)
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


def t_sqlite_projection():
    sqlite_projection([os.path.join(BIN, "annal-projection-sqlite")])


def t_python_projection():
    sqlite_projection([sys.executable, os.path.join(PY_EXAMPLES, "projection.py")], PY_ENV)


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


def t_python_counter():
    d = Annald()
    try:
        p = subprocess.run([sys.executable, os.path.join(PY_EXAMPLES, "counter.py"), d.commands,
                            d.events], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, **PY_ENV))
        check(p.returncode == 0, p.stderr)
        out = json.loads(p.stdout)
        check(out["counter"] == {"n": 40} and out["version"] == 40, out)
        check(out["seen"] == list(range(1, 41)), out["seen"])
        check(d.stop() == 0)
    finally:
        d.cleanup()


def t_python_worker():
    """Two examples/python/worker.py processes share the group over 6
    aggregates of 30 events (one a Poison event); one is SIGKILLed mid-run.
    Every event but the Poison one is handled at least once, each aggregate
    in version order, and the group ends 0 behind with the Poison parked."""
    d = Annald()
    workers = {}
    try:
        env = dict(env_for(d), **PY_ENV)
        for name in ("w1", "w2"):  # both consuming before the first event, so both get work
            workers[name] = subprocess.Popen([sys.executable, os.path.join(PY_EXAMPLES,
                                              "worker.py"), name, "--work-ms", "5"], env=env,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                             text=True)
            check(workers[name].stderr.readline() == f"{name}: consuming\n", name)
        lines = {name: [] for name in workers}
        readers = [threading.Thread(target=lambda n=n: lines[n].extend(
            json.loads(l) for l in workers[n].stdout)) for n in workers]
        for t in readers:
            t.start()
        c = Client(d.commands, "msgpack")
        for v in range(30):
            for a in range(6):
                kind = "Poison" if (a, v) == (2, 10) else "Signed"
                r = c.call({"type": "append", "aggregate_id": f"user-{a}", "event_type": kind,
                            "event_data": {}, "version": v})
                check(r["type"] == "appended", r)
        deadline = time.time() + 30
        while len(lines["w2"]) < 20 and time.time() < deadline:
            time.sleep(0.01)
        workers["w2"].send_signal(signal.SIGKILL)
        workers["w2"].wait()
        info = lambda: Client(d.commands).call({"type": "group_info", "group": "mailer"})
        deadline = time.time() + 60
        while info()["lag"] and time.time() < deadline:
            time.sleep(0.1)
        check(info()["lag"] == 0 and info()["parked"] == 1, info())
        workers["w1"].send_signal(signal.SIGTERM)
        check(workers["w1"].wait(10) == 0, "the worker stops cleanly on SIGTERM")
        for t in readers:
            t.join(10)
        handled = lines["w1"] + lines["w2"]
        seqs = {h["sequence_number"] for h in handled}
        check(len(lines["w2"]) >= 20 and len(seqs) == 6 * 30 - 1, (len(lines["w2"]), len(seqs)))
        for a in range(6):
            versions = [h["version"] for h in lines["w1"] if h["aggregate_id"] == f"user-{a}"]
            check(versions == sorted(versions), (a, versions))
        check(d.stop() == 0)
    finally:
        for p in workers.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        d.cleanup()


def t_worker_pool():
    """Three annal-worker-pool processes share a group over 12 aggregates of
    50 events (one of them a Poison event); one is SIGKILLed mid-run. Every
    event is handled at least once, each aggregate's events in version
    order, and the only events handled twice are ones the killed worker had
    handled without annald confirming its ack (leased, not acked); the
    Poison event is parked once."""
    d = Annald()
    tmp = tempfile.mkdtemp(prefix="annal-pool-")
    workers = {}
    try:
        c = Client(d.commands, "msgpack")
        aggs, per = 12, 50
        for v in range(per):  # interleaved: version v of every aggregate, then v + 1
            for a in range(aggs):
                kind = "Poison" if (a, v) == (3, 20) else "Booked"
                r = c.call({"type": "append", "aggregate_id": f"acc-{a}", "event_type": kind,
                            "event_data": {"v": v + 1}, "version": v})
                check(r["type"] == "appended", r)
        total = aggs * per

        def start(name):
            log = os.path.join(tmp, name + ".log")
            p = subprocess.Popen([os.path.join(BIN, "annal-worker-pool"), "--group", "pool",
                                  "--consumer", name, "--log", log, "--prefix", "acc-",
                                  "--ack-timeout", "1500", "--work-ms", "3", "--max", "8"],
                                 env=env_for(d), stderr=subprocess.PIPE, text=True)
            workers[name] = (p, log)

        def records(name):
            try:
                with open(workers[name][1]) as f:
                    return [l.split() for l in f if l.endswith("\n")]
            except FileNotFoundError:
                return []

        for name in ("w1", "w2", "w3"):
            start(name)
        deadline = time.time() + 30
        while sum(r[0] == "handled" for r in records("w2")) < 43 and time.time() < deadline:
            time.sleep(0.01)
        victim = workers["w2"][0]
        victim.send_signal(signal.SIGKILL)  # wherever it is: in a handler, holding leases
        victim.wait()
        done = lambda: Client(d.commands).call({"type": "group_info", "group": "pool"})
        deadline = time.time() + 60
        while done()["lag"] and time.time() < deadline:
            time.sleep(0.1)
        info = done()
        check(info["lag"] == 0 and info["parked"] == 1 and info["leased"] == 0, info)
        for name in ("w1", "w3"):
            p = workers[name][0]
            p.send_signal(signal.SIGTERM)
            check(p.wait(10) == 0, (name, p.stderr.read()))

        handled = [(int(r[6]), int(r[1]), r[2], int(r[3]), int(r[4]), r[5])
                   for name in workers for r in records(name) if r[0] == "handled"]
        acked = {name: {int(r[1]) for r in records(name) if r[0] == "acked"} for name in workers}
        by_seq = {}
        for t, seq, agg, version, delivery, who in handled:
            by_seq.setdefault(seq, []).append((t, who, delivery))
        check(sorted(by_seq) == list(range(1, total + 1)), "every event handled at least once")
        victim_seqs = {seq for _, seq, _, _, _, who in handled if who == "w2"}
        check(len(victim_seqs) >= 40, len(victim_seqs))
        twice = {seq: hs for seq, hs in by_seq.items() if len(hs) > 1}
        for seq, hs in twice.items():
            who = sorted(h[1] for h in hs)
            check(len(hs) == 2 and who.count("w2") == 1 and seq not in acked["w2"],
                  ("handled twice, not as a lease of the killed worker", seq, hs))
            check(max(h[2] for h in hs) >= 2, ("the second time is a new delivery", seq, hs))
        # each aggregate's events in version order (across workers, by the time they ran)
        last = {}
        for t, seq, agg, version, delivery, who in sorted(handled):
            prev = last.get(agg, 0)
            check(version in (prev, prev + 1), (agg, version, "after", prev))
            last[agg] = version
        check(last == {f"acc-{a}": per for a in range(aggs)}, last)
        r = Client(d.commands).call({"type": "group_parked", "group": "pool"})
        check([(e["aggregate_id"], e["version"], e["reason"]) for e in r["events"]]
              == [("acc-3", 21, "cannot process a Poison event")], r)
        print(f"  {len(victim_seqs)} handled by the killed worker, {len(twice)} of them again "
              f"by the others", flush=True)
        check(d.stop() == 0)
    finally:
        for p, _ in workers.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        d.cleanup()
        subprocess.run(["rm", "-rf", tmp])


run([
    ("worker_pool", t_worker_pool),
    ("sqlite_projection", t_sqlite_projection),
    ("type_counter", t_type_counter),
    ("python_projection", t_python_projection),
    ("python_counter", t_python_counter),
    ("python_worker", t_python_worker),
])
