"""The annal CLI against a real annald: round trips of every command, exit
statuses, environment variables, export/import, tail across a SIGKILL
and restart of annald, and the consumer group commands (consume printing
and acking, consume --exec acking, retrying and parking by exit status, a
SIGTERM in the middle); with ANNAL_VALGRIND=1 the group commands run in
valgrind too."""
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

from annal_harness import BIN, VALGRIND, Annald, Client, append, check, new_endpoints, run

ANNAL = os.path.join(BIN, "annal")
ADMIN = os.path.join(BIN, "annal-admin")


def cli(d, *args, stdin=None, env_only=False, vg=False):
    """Runs annal (in valgrind when vg and ANNAL_VALGRIND: status 99 on an
    invalid access or a definite leak); (status, stdout, stderr)."""
    env = dict(os.environ)
    if d is not None:
        env.update(ANNAL_COMMANDS=d.commands, ANNAL_EVENTS=d.events)
    p = subprocess.run([*(VALGRIND if vg else []), ANNAL, *args], input=stdin,
                       capture_output=True, text=True, timeout=120, env=env)
    return p.returncode, p.stdout, p.stderr


def gcli(d, *args, vg=True, **kw):
    """A group command, in valgrind under ANNAL_VALGRIND (unless vg is False)."""
    return cli(d, "group", *args, vg=vg, **kw)


def admin(*args):
    p = subprocess.run([ADMIN, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def lines(out):
    return [json.loads(l) for l in out.splitlines()]


def nobody():
    """An endpoint no annald is bound to."""
    return new_endpoints()[0]


def t_round_trip():
    d = Annald()
    try:
        rc, out, err = cli(d, "append", "user-1", "UserCreated", '{"name":"Jo"}', "--expect", "0")
        check(rc == 0 and json.loads(out)["sequence_number"] == 1, (rc, out, err))
        rc, out, err = cli(d, "append", "user-1", "UserCreated", '{"name":"Jo"}', "--expect", "0")
        check(rc == 3 and "Expected version 0, got 1" in err, (rc, err))
        rc, out, err = cli(d, "append", "order-1", "Placed", '{"total": 2.5}', "--metadata",
                           '{"correlation_id":"c"}', "--event-id", "0b7e6d2a-5c1f-4d3e-9a8b-7c6d5e4f3a2b")
        check(rc == 0 and json.loads(out)["event_id"] == "0b7e6d2a-5c1f-4d3e-9a8b-7c6d5e4f3a2b", out)
        cli(d, "append", "user-1", "UserRenamed", '{"name":"Al"}', "--expect", "exists")
        rc, out, _ = cli(d, "read", "user-1")
        evs = lines(out)
        check(rc == 0 and [e["version"] for e in evs] == [1, 2], out)
        rc, out, _ = cli(d, "read", "user-1", "--backward", "--max", "1")
        check([e["version"] for e in lines(out)] == [2], out)
        rc, out, _ = cli(d, "read-all", "--prefix", "order-")
        check([e["event_data"] for e in lines(out)] == [{"total": 2.5}], out)
        rc, out, _ = cli(d, "read-all", "--types", "UserRenamed,Placed")
        check([e["sequence_number"] for e in lines(out)] == [2, 3], out)
        rc, out, _ = cli(d, "snapshot", "user-1")
        check(rc == 0 and json.loads(out)["version"] == 2, out)
        rc, out, _ = cli(d, "get-snapshot", "user-1")
        check(json.loads(out)["state"] == {"name": "Al"}, out)
        rc, out, err = cli(d, "get-snapshot", "nobody")
        check(rc == 4 and "no snapshot" in err, (rc, err))
        rc, out, _ = cli(d, "replay", "user-1", "--use-snapshot")
        r = json.loads(out)
        check(r["snapshot_version"] == 2 and r["events_replayed"] == 0, r)
        rc, out, _ = cli(d, "state", "user-1", "--at", "2000-01-01T00:00:00Z")
        check(json.loads(out)["version"] == 0, out)
        rc, out, _ = cli(d, "status")
        check(json.loads(out)["head_sequence"] == 3, out)
        # usage and bad input
        check(cli(d, "--help")[0] == 0)
        rc, out, _ = cli(d, "append", "--help")
        check(rc == 0 and "--expect" in out, out)
        check(cli(d, "bogus")[0] == 2)
        check(cli(d, "read")[0] == 2)
        check(cli(d, "append", "a", "T", "{not json")[0] == 2)
        check(cli(d, "append", "$a", "T", "{}")[0] == 2)
        check(cli(d, "read", "user-1", "--from", "x")[0] == 2)
        # a deeply nested event reads back through the client library
        deep = 1
        for _ in range(28):
            deep = [deep]
        check(cli(d, "append", "deep-1", "T", json.dumps(deep))[0] == 0)
        rc, out, _ = cli(d, "read", "deep-1")
        check(rc == 0 and json.loads(out)["event_data"] == deep, (rc, out[:80]))
        # --commands beats the environment; an unreachable annald is status 5
        rc, _, err = cli(d, "--commands", nobody(), "--timeout", "300", "status")
        check(rc == 5, (rc, err))
        rc, _, err = cli(d, "--commands", nobody(), "--timeout", "300",
                         "append", "a-1", "T", "{}")
        check(rc == 5 and "--event-id" in err, (rc, err))
        # an error annald cannot address (body too large: no msg_id read) is still an answer
        big = json.dumps({"aggregate_id": "big-1", "version": 1, "event_type": "T",
                          "event_data": {"x": "y" * 1200000}, "metadata": {},
                          "event_id": "0b7e6d2a-5c1f-4d3e-9a8b-7c6d5e4f3a2c"})
        rc, _, err = cli(d, "import", "-", stdin=big + "\n")
        check(rc == 1 and "exceeds" in err, (rc, err[:300]))
        check(d.stop() == 0)
    finally:
        d.cleanup()


def t_export_import():
    a, b = Annald(), Annald()
    try:
        for i in range(30):
            cli(a, "append", f"acc-{i % 4}", "Deposited", json.dumps({"amount": i, "note": "é\n"}),
                "--metadata", json.dumps({"i": i}))
        rc, exported, _ = cli(a, "export")
        check(rc == 0 and len(exported.splitlines()) == 30, exported[:200])
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write(exported)
        rc, _, err = cli(b, "import", f.name)
        check(rc == 0, err)
        rc, again, _ = cli(b, "export")
        strip = lambda text: [{k: v for k, v in e.items() if k != "recorded_at"} for e in lines(text)]
        check(strip(again) == strip(exported), "same events, ids, versions and sequence numbers")
        # importing the same file again is a retry: nothing is written twice
        rc, _, err = cli(b, "import", "-", stdin=exported)
        check(rc == 0 and json.loads(cli(b, "status")[1])["events"] == 30, (rc, err))
        os.unlink(f.name)
        rc, _, err = cli(b, "import", "-", stdin="not json\n")
        check(rc == 1 and "line 1" in err, err)
        check(a.stop() == 0 and b.stop() == 0)
    finally:
        a.cleanup()
        b.cleanup()


def t_delete_retention():
    """annal delete and annal retention; an export leaves removed events out,
    and importing it deletes again (once, however often it is imported)."""
    a, b = Annald(), Annald()
    try:
        for i in range(6):
            cli(a, "append", "u-1", "Named", json.dumps({"i": i}))
        cli(a, "append", "m-1", "Measured", "1")
        rc, out, err = cli(a, "delete", "u-1", "--expect", "5")
        check(rc == 3 and "Expected version 5, got 6" in err, (rc, out, err))
        rc, out, err = cli(a, "delete", "u-1", "--expect", "6", "--event-id",
                           "01a2a000-0000-7000-8000-000000000001")
        r = json.loads(out)
        check(rc == 0 and r["type"] == "aggregate_deleted" and r["version"] == 7, (rc, out, err))
        rc, out2, _ = cli(a, "delete", "u-1", "--expect", "6", "--event-id",
                          "01a2a000-0000-7000-8000-000000000001")
        check(rc == 0 and json.loads(out2)["sequence_number"] == r["sequence_number"],
              ("sent again: answered as the first", out2))
        cli(a, "append", "u-1", "Named", json.dumps({"i": 7}))
        rc, out, _ = cli(a, "read", "u-1")
        check([e["version"] for e in lines(out)] == [7, 8], out)
        for i in range(4):
            cli(a, "append", "m-1", "Measured", str(i + 2))
        rc, out, _ = cli(a, "retention", "m-1")
        check(rc == 0 and json.loads(out)["max_count"] is None, out)
        rc, out, _ = cli(a, "retention", "m-1", "--max-count", "2")
        check(rc == 0 and json.loads(out)["max_count"] == 2, out)
        rc, out, _ = cli(a, "retention", "m-1", "--max-age", "30d")
        check(json.loads(out)["max_count"] == 2 and json.loads(out)["max_age_s"] == 2592000,
              ("a limit not given stays", out))
        for bad in (["--max-count", "0"], ["--max-age", "3y"], ["--max-age", "-1"]):
            rc, _, err = cli(a, "retention", "m-1", *bad)
            check(rc == 2 and "takes" in err, (bad, rc, err))
        rc, _, err = cli(a, "delete", "u-1", "--expect", "soon")
        check(rc == 2 and "--expect" in err, err)
        rc, exported, _ = cli(a, "export")
        ev = lines(exported)
        check([(e["aggregate_id"], e["version"]) for e in ev]
              == [("u-1", 7), ("u-1", 8), ("m-1", 4), ("m-1", 5)], exported)
        check(ev[0]["event_type"] == "$deleted", ev[0])
        for _ in range(2):
            rc, _, err = cli(b, "import", "-", stdin=exported)
            check(rc == 0, err)
        rc, out, _ = cli(b, "read", "u-1")
        got = lines(out)
        # the removed events are not in the export: the deletion comes first here
        check([(e["version"], e["event_type"]) for e in got] == [(1, "$deleted"), (2, "Named")]
              and got[0]["event_id"] == "01a2a000-0000-7000-8000-000000000001", out)
        st = json.loads(cli(b, "status")[1])
        check(st["events"] == 4, ("imported twice, written once", st))
        cli(a, "delete", "m-1", "--hard")
        rc, _, err = cli(a, "append", "m-1", "Measured", "9")
        check(rc == 1 and "deleted for good" in err, (rc, err))
        check(a.stop() == 0 and b.stop() == 0)
    finally:
        a.cleanup()
        b.cleanup()


def read_lines(proc, want, timeout):
    got, buf, end = [], "", time.time() + timeout
    while len(got) < want and time.time() < end:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536).decode()
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split("\n")
            got += [json.loads(l) for l in done if l]
    return got


def t_tail_holes():
    """annal tail (libannal's catch-up subscription) across holes: history
    with removed sequences, then live events and a deletion while it runs:
    every event still readable comes once, in order, and none removed."""
    d = Annald()
    tail = None
    try:
        for i in range(30):
            cli(d, "append", f"h-{i % 3}", "T", json.dumps({"i": i}))
        check(cli(d, "delete", "h-1")[0] == 0)
        check(cli(d, "retention", "h-2", "--max-count", "2")[0] == 0)
        rc, exported, _ = cli(d, "export")
        want = [e["sequence_number"] for e in lines(exported)]
        check(len(want) == 10 + 1 + 2, want)  # h-0's 10, h-1's $deleted, h-2's last 2
        env = dict(os.environ, ANNAL_COMMANDS=d.commands, ANNAL_EVENTS=d.events)
        tail = subprocess.Popen([ANNAL, "tail", "--from", "1", "--timeout", "500"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        got = read_lines(tail, len(want), 10)
        check([e["sequence_number"] for e in got] == want, [e["sequence_number"] for e in got])
        for i in range(30, 36):
            cli(d, "append", "h-0", "T", json.dumps({"i": i}))
        check(cli(d, "delete", "h-0")[0] == 0)
        live = read_lines(tail, 7, 10)
        check([e["event_type"] for e in live] == ["T"] * 6 + ["$deleted"], live)
        seqs = [e["sequence_number"] for e in got + live]
        check(seqs == sorted(set(seqs)), ("once, in order", seqs))
        tail.send_signal(signal.SIGTERM)
        check(tail.wait(10) == 0, "tail exits 0 when interrupted")
        err = tail.stderr.read().decode()
        check("lost" not in err and "behind" not in err, err)
        check(d.stop() == 0)
    finally:
        if tail and tail.poll() is None:
            tail.kill()
        d.cleanup()


def t_tail_across_restart():
    commands, events = new_endpoints()  # the same two across the restart
    ports = ("--commands", commands, "--events", events)
    d = Annald(args=ports)
    d2 = None
    tail = None
    try:
        for i in range(20):
            cli(d, "append", f"t-{i % 3}", "T", json.dumps({"i": i}))
        env = dict(os.environ, ANNAL_COMMANDS=d.commands, ANNAL_EVENTS=d.events)
        tail = subprocess.Popen([ANNAL, "tail", "--from", "1", "--timeout", "500"],
                                stdout=subprocess.PIPE, env=env)
        got = read_lines(tail, 20, 10)
        for i in range(20, 40):
            cli(d, "append", f"t-{i % 3}", "T", json.dumps({"i": i}))
        got += read_lines(tail, 20, 10)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d2 = Annald(data=d.data, args=ports)
        for i in range(40, 60):
            cli(d2, "append", f"t-{i % 3}", "T", json.dumps({"i": i}))
        got += read_lines(tail, 20, 20)
        check([e["sequence_number"] for e in got] == list(range(1, 61)),
              [e["sequence_number"] for e in got])
        check([e["event_data"]["i"] for e in got] == list(range(60)))
        tail.send_signal(signal.SIGTERM)
        check(tail.wait(10) == 0, "tail exits 0 when interrupted")
        check(d2.stop() == 0)
    finally:
        if tail and tail.poll() is None:
            tail.kill()
        if d2:
            d2.cleanup()
        d.cleanup()


def t_backup_while_appending():
    """annal backup copies a store while writers go on; the copy, served by
    its own annald, has every event up to its head, dense, with the data,
    versions and snapshots of the original, and takes new appends."""
    import threading
    from annal_harness import Client, append
    d = Annald()
    dest = tempfile.mkdtemp(prefix="annal-backup-")
    os.rmdir(dest)
    restored = None
    stop = threading.Event()
    acked = []

    def writer(k):
        c = Client(d.commands, "msgpack" if k else "json")
        v = 0
        while not stop.is_set():
            r = append(c, f"bk-{k}", v, {"v": v + 1, "pad": "p" * 300})
            check(r["type"] == "appended", r)
            v += 1
            acked.append((f"bk-{k}", v, r["sequence_number"]))
            if v % 50 == 0:
                check(c.call({"type": "create_snapshot", "aggregate_id": f"bk-{k}"})["type"]
                      == "snapshot_created")
        c.close()

    try:
        threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        before = len(acked)
        rc, out, err = admin("backup", "--data", d.data, dest)
        check(rc == 0, (rc, err))
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        check(before > 100, before)
        # a store whose annald died (SIGKILL) right after its last append:
        # the latest batches are in its journal only, and the copy has them
        final = len(acked)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        rc, _, err = admin("backup", "--data", d.data, dest + "-last")
        check(rc == 0, (rc, err))
        last = Annald(data=dest + "-last")
        c = Client(last.commands)
        got = c.call({"type": "status"})["head_sequence"]
        c.close()
        last.cleanup()
        shutil.rmtree(dest + "-last", ignore_errors=True)
        check(got == final, f"the copy has {got} events of {final} acknowledged")
        # a second backup into a folder that holds one is refused
        rc, _, err = admin("backup", "--data", d.data, dest)
        check(rc == 1 and "already holds a store" in err, (rc, err))
        rc, _, err = admin("backup", dest)
        check(rc == 2, (rc, err))
        restored = Annald(data=dest)
        c = Client(restored.commands, "msgpack")
        head = c.call({"type": "status"})["head_sequence"]
        check(head >= before, (head, before))
        events, nxt = [], 1
        while True:
            r = c.call({"type": "read_all", "from_sequence": nxt, "max_count": 10000})
            if not r["events"]:
                break
            events += r["events"]
            nxt = r["next_sequence"]
        check([e["sequence_number"] for e in events] == list(range(1, head + 1)))
        by_seq = {e["sequence_number"]: e for e in events}
        for agg, v, seq in acked:
            if seq <= head:
                e = by_seq[seq]
                check((e["aggregate_id"], e["version"], e["event_data"]["v"]) == (agg, v, v), e)
        for k in range(3):
            agg = f"bk-{k}"
            n = sum(1 for e in events if e["aggregate_id"] == agg)
            s = c.call({"type": "get_snapshot", "aggregate_id": agg})
            if n >= 50:
                check(s["type"] == "snapshot" and s["version"] <= n, s)
                full = c.call({"type": "replay", "aggregate_id": agg, "version": s["version"]})
                check(full["state"] == s["state"], (agg, s["version"]))
            r = append(c, agg, n, {"v": n + 1})
            check(r["type"] == "appended" and r["sequence_number"] > head, r)
        c.close()
        check(restored.stop() == 0, restored.stderr())
    finally:
        stop.set()
        if restored:
            restored.cleanup()
        d.cleanup()
        shutil.rmtree(dest, ignore_errors=True)


def t_backup_under_load():
    """annal backup, again and again, while annald is saturated (annal-bench
    W1: 64 clients, 16 in flight each) on a new store, whose map grows
    meanwhile (a batch that meets the map's end is undone by a rebuild from
    the journal): every backup ends, every append succeeds, and each copy
    serves what was acknowledged before its backup began. (LMDB's plain copy
    waited for a writer lock annald kept taking first: backups hung for
    minutes; and a rebuild excluded backups: annald answered error 11 while
    one ran.)"""
    from annal_harness import Client
    d = Annald()
    dest = tempfile.mkdtemp(prefix="annal-backup-")
    load = subprocess.Popen([os.path.join(BIN, "annal-bench"), "W1", "--connect", d.commands,
                             "--duration", "8"], stdout=subprocess.PIPE, text=True)
    try:
        c, k = Client(d.commands), 0
        while load.poll() is None:
            before = c.call({"type": "status"})["head_sequence"]
            copy = os.path.join(dest, str(k))
            rc, _, err = admin("backup", "--data", d.data, copy)
            check(rc == 0, (rc, err))
            restored = Annald(data=copy)
            try:
                head = Client(restored.commands).call({"type": "status"})["head_sequence"]
                check(head >= before, (k, head, before))
                check(restored.stop() == 0, restored.stderr())
            finally:
                restored.cleanup()
            shutil.rmtree(copy)
            k += 1
        out = load.communicate(timeout=60)[0]
        check(load.returncode == 0 and "errors 0 " in out, out)
        check(k >= 3, k)
    finally:
        if load.poll() is None:
            load.kill()
        d.cleanup()
        shutil.rmtree(dest, ignore_errors=True)


def t_old_spellings():
    """`annal backup` and `annal migrate` still work for one release: they run
    annal-admin and say so; the client-side annal links no store library."""
    d = Annald()
    dest = tempfile.mkdtemp(prefix="annal-old-")
    os.rmdir(dest)
    try:
        c = Client(d.commands)
        check(append(c, "old-1", 0, {"a": 1})["sequence_number"] == 1)
        c.close()
        rc, _, err = cli(None, "--timeout", "3000", "backup", "--data", d.data, dest)
        check(rc == 0 and "annal-admin backup" in err, (rc, err))
        check(os.path.exists(os.path.join(dest, "data.mdb")), os.listdir(dest))
        rc, _, err = cli(None, "migrate", "--from", d.data)
        check(rc == 2 and "annal-admin migrate" in err and "usage: annal-admin migrate" in err,
              (rc, err))
        # the old annal took options anywhere: before the command too
        rc, _, err = cli(None, "--data", d.data, "backup", dest + "-2")
        check(rc == 0 and "annal-admin backup" in err, (rc, err))
        check(os.path.exists(os.path.join(dest + "-2", "data.mdb")), err)
        rc, out, err = cli(None, "--help", "backup")
        check(rc == 0 and "usage: annal-admin backup" in out, (rc, out, err))
        rc, _, err = admin("frobnicate")
        check(rc == 2 and "unknown command" in err, (rc, err))
        needed = subprocess.run(["readelf", "-d", ANNAL], capture_output=True, text=True).stdout
        check("liblmdb" not in needed and "libpq" not in needed, needed)
        check(d.stop() == 0, d.stderr())
    finally:
        d.cleanup()
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(dest + "-2", ignore_errors=True)


def t_dead_reader():
    """A process that read the store and died in the middle (a backup or an
    mdb_dump killed mid-copy) leaves its slot in LMDB's reader table, which
    would keep every page freed after its snapshot from reuse: annald clears
    such slots within a few seconds."""
    from annal_harness import Client
    if not shutil.which("mdb_dump"):
        print("mdb_dump is missing (lmdb-utils): skipped")
        return
    d = Annald()
    try:
        c = Client(d.commands, "msgpack")
        for i in range(20):
            r = c.call({"type": "append", "aggregate_id": f"r-{i}", "version": "any",
                        "events": [{"event_type": "T", "event_data": {"pad": "x" * 500}}] * 50})
            check(r["type"] == "appended", r)
        time.sleep(3)  # a checkpoint (a second after the last batch): data.mdb has them
        # mdb_dump writes into a pipe nobody reads: it blocks holding its
        # read transaction, and dies there
        dump = subprocess.Popen(["mdb_dump", "-a", d.data], stdout=subprocess.PIPE)
        time.sleep(0.5)
        check(dump.poll() is None, "mdb_dump ended: make the store bigger")

        def readers():
            out = subprocess.run(["mdb_stat", "-r", d.data], capture_output=True,
                                 text=True).stdout  # (its exit status is 1 even so)
            check(out.startswith("Reader Table Status"), out)
            return {int(line.split()[0]) for line in out.splitlines()[2:]
                    if line.split() and line.split()[0].isdigit()}
        check(dump.pid in readers(), readers())
        dump.kill()
        dump.wait()
        deadline = time.time() + 10
        while dump.pid in readers() and time.time() < deadline:
            time.sleep(0.2)
        check(dump.pid not in readers(), "the dead reader's slot is still there")
        check(c.call({"type": "status"})["head_sequence"] == 1000)
        check(d.stop() == 0, d.stderr())
    finally:
        d.cleanup()


# ---- consumer groups -----------------------------------------------------------------------

def ok_json(result):
    rc, out, err = result
    check(rc == 0, (rc, out, err))
    return json.loads(out)


def t_group_commands():
    """Every group subcommand, its output and exit status, good input and bad."""
    d = Annald()
    try:
        for i in range(6):
            cli(d, "append", f"user-{i % 3}", "UserCreated" if i % 2 == 0 else "Other",
                json.dumps({"i": i}))
        r = ok_json(gcli(d, "create", "mailer", "--prefix", "user-", "--type", "UserCreated",
                         "--type", "Other", "--ack-timeout", "60000", "--max-deliveries", "3"))
        check(r["type"] == "group_created" and r["group"] == "mailer" and r["start_sequence"] == 1, r)
        # the same again is the same answer; other settings are refused (annald's error 12)
        check(ok_json(gcli(d, "create", "mailer", "--prefix", "user-", "--type", "UserCreated",
                           "--type", "Other", "--ack-timeout", "60000", "--max-deliveries",
                           "3"))["start_sequence"] == 1)
        rc, _, err = gcli(d, "create", "mailer", "--prefix", "user-")
        check(rc == 1 and err.startswith("annal: ") and "mailer" in err, (rc, err))
        r = ok_json(gcli(d, "create", "late", "--from", "end", "--ordering", "none"))
        check(r["start_sequence"] == 7, r)
        info = ok_json(gcli(d, "info", "mailer"))
        check(info["type"] == "group" and info["event_types"] == ["UserCreated", "Other"], info)
        check(info["lag"] == 6 and info["acked_through"] == 0 and info["max_deliveries"] == 3, info)
        rc, out, _ = gcli(d, "list")
        groups = lines(out)
        check(rc == 0 and [g["group"] for g in groups] == ["late", "mailer"], out)
        check(groups[0]["ordering"] == "none" and groups[0]["lag"] == 0, groups[0])
        # fetch leases and prints; ack, nack retry, nack park, parked, replay-parked
        rc, out, _ = gcli(d, "fetch", "mailer", "--consumer", "w1", "--max", "2")
        got = lines(out)
        check(rc == 0 and [(e["sequence_number"], e["delivery"]) for e in got] == [(1, 1), (2, 1)],
              out)
        check(ok_json(gcli(d, "ack", "mailer", "1", "--consumer", "w1"))["acked"] == 1)
        check(ok_json(gcli(d, "nack", "mailer", "2", "--consumer", "w1"))["count"] == 1)
        rc, out, _ = gcli(d, "fetch", "mailer", "--consumer", "w2", "--max", "1")
        check([(e["sequence_number"], e["delivery"]) for e in lines(out)] == [(2, 2)], out)
        r = ok_json(gcli(d, "nack", "mailer", "2", "--consumer", "w2", "--action", "park",
                         "--reason", "bad address"))
        check(r == {"type": "group_nacked", "in_reply_to": r["in_reply_to"], "group": "mailer",
                    "count": 1}, r)
        rc, out, _ = gcli(d, "parked", "mailer")
        parked = lines(out)
        check(rc == 0 and [(e["sequence_number"], e["reason"]) for e in parked]
              == [(2, "bad address")], out)
        check(ok_json(gcli(d, "info", "mailer"))["parked"] == 1)
        check(ok_json(gcli(d, "replay-parked", "mailer", "5"))["count"] == 0)
        check(ok_json(gcli(d, "replay-parked", "mailer"))["count"] == 1)
        check(gcli(d, "parked", "mailer")[1] == "")
        check(ok_json(gcli(d, "delete", "late"))["type"] == "group_deleted")
        check([g["group"] for g in lines(gcli(d, "list")[1])] == ["mailer"])

        # an unknown group: a clear error, exit status 4 (not found)
        for args in (("info", "nope"), ("delete", "nope"), ("parked", "nope"),
                     ("replay-parked", "nope"), ("fetch", "nope", "--consumer", "c"),
                     ("ack", "nope", "1", "--consumer", "c"),
                     ("nack", "nope", "1", "--consumer", "c"),
                     ("consume", "nope", "--consumer", "c")):
            rc, out, err = gcli(d, *args)
            check(rc == 4 and out == "" and err.strip() == "annal: no consumer group 'nope'",
                  (args, rc, err))
        # bad input: usage errors (2), said on stderr, nothing sent (valgrind on every
        # fourth: the paths are alike, and valgrind is slow)
        for k, args in enumerate((("create",), ("create", "a", "b"), ("create", "$g"),
                     ("create", "g", "--ack-timeout", "99"),
                     ("create", "g", "--ack-timeout", "x"),
                     ("create", "g", "--max-deliveries", "0"),
                     ("create", "g", "--ordering", "sideways"),
                     ("create", "g", "--from", "0"), ("create", "g", "--from", "start"),
                     ("create", "g", "--type"),
                     ("fetch", "mailer"), ("fetch", "mailer", "--consumer", "c", "--wait", "30001"),
                     ("fetch", "mailer", "--consumer", "c", "--max", "0"),
                     ("fetch", "mailer", "--consumer", "$c"),
                     ("ack", "mailer", "--consumer", "c"), ("ack", "mailer", "x", "--consumer", "c"),
                     ("ack", "mailer", "0", "--consumer", "c"), ("ack", "mailer", "1"),
                     ("nack", "mailer", "1", "--consumer", "c", "--action", "maybe"),
                     ("nack", "mailer", "1", "--consumer", "c", "--reason", "r" * 1025),
                     ("replay-parked", "mailer", "-1"), ("parked", "mailer", "--max", "x"),
                     ("consume", "mailer"), ("consume", "mailer", "--consumer", "c", "--wait", "0"),
                     ("consume", "mailer", "--consumer", "c", "--park-exit", "256"),
                     ("consume", "mailer", "--consumer", "c", "--exec", ""),
                     ("consume", "mailer", "--consumer", "c", "--count", "-2"),
                     ("info",), ("list", "x"), ("frobnicate", "mailer"), ())):
            rc, out, err = gcli(d, *args, vg=k % 4 == 0)
            check(rc == 2 and out == "" and err.startswith(("annal: ", "usage: annal")),
                  (args, rc, out, err))
        check("unknown group subcommand 'frobnicate'" in gcli(d, "frobnicate")[2])
        # help: the group's subcommands, and each one's own
        rc, out, _ = gcli(d, "--help")
        check(rc == 0 and "group consume NAME" in out and "group replay-parked" in out, out)
        for sub, word in (("create", "--ack-timeout"), ("info", "lag"), ("list", "every group"),
                          ("delete", "deletes"), ("parked", "reason"), ("replay-parked", "ready"),
                          ("fetch", "--wait"), ("ack", "acknowledges"), ("nack", "--action"),
                          ("consume", "--park-exit")):
            rc, out, _ = gcli(d, sub, "--help", vg=sub == "consume")
            check(rc == 0 and out.startswith(f"usage: annal group {sub}") and word in out,
                  (sub, out))
        check("group consume" in cli(d, "--help")[1])
        # annald not there: status 5
        rc, _, err = gcli(None, "--commands", nobody(), "--timeout", "300",
                          "info", "mailer")
        check(rc == 5, (rc, err))
        check(d.stop() == 0, d.stderr())
    finally:
        d.cleanup()


def consume(d, *args):
    env = dict(os.environ, ANNAL_COMMANDS=d.commands, ANNAL_EVENTS=d.events)
    return subprocess.Popen([*VALGRIND, ANNAL, "group", "consume", *args], bufsize=0,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def t_group_consume():
    """consume prints each event as a JSON line and acks it once printed; a
    SIGTERM in the middle stops it cleanly: what it printed is acked, the
    rest is given back at once."""
    d = Annald()
    try:
        c = Client(d.commands, "msgpack")
        for i in range(0, 1000, 100):  # 1,000 events, 250 bytes each: more than a pipe holds
            r = c.call({"type": "append", "aggregate_id": f"c-{i // 100}", "version": "any",
                        "events": [{"event_type": "T", "event_data": {"i": j, "pad": "p" * 100}}
                                   for j in range(i, i + 100)]})
            check(r["type"] == "appended", r)
        ok_json(gcli(d, "create", "printer", "--ordering", "none"))
        rc, out, err = gcli(d, "consume", "printer", "--consumer", "w1", "--count", "25",
                            "--max", "10")
        got = lines(out)
        check(rc == 0 and [e["sequence_number"] for e in got] == list(range(1, 26)), (rc, err))
        check(all(e["delivery"] == 1 and e["event_type"] == "T" for e in got), got[0])
        info = ok_json(gcli(d, "info", "printer"))
        check(info["acked_through"] == 25 and info["leased"] == 0, info)
        # the rest, stopped by SIGTERM while stdout is full
        p = consume(d, "printer", "--consumer", "w2", "--max", "50")
        first = p.stdout.readline()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
        printed = [json.loads(first)] + lines(out.decode())
        check(p.returncode == 0, (p.returncode, err))
        seqs = [e["sequence_number"] for e in printed]
        check(seqs == list(range(26, 26 + len(seqs))) and len(seqs) < 975, seqs[-3:])
        info = ok_json(gcli(d, "info", "printer"))
        check(info["acked_through"] == seqs[-1] and info["leased"] == 0, (info, seqs[-1]))
        # what it gave back is ready now, not when a lease ends
        rc, out, _ = gcli(d, "fetch", "printer", "--consumer", "w3", "--max", "1")
        again = lines(out)
        check(again[0]["sequence_number"] == seqs[-1] + 1, again)
        check(d.stop() == 0, d.stderr())
    finally:
        d.cleanup()


EXEC = r"""
ev=$(cat)
printf '%s %s %s %s %s %s %s\n' "$ANNAL_GROUP" "$ANNAL_SEQUENCE" "$ANNAL_AGGREGATE_ID" \
    "$ANNAL_VERSION" "$ANNAL_EVENT_TYPE" "$ANNAL_DELIVERY" "$ANNAL_EVENT_ID" >> "$LOG"
printf '%s\n' "$ev" >> "$LOG.json"
case "$ANNAL_EVENT_TYPE" in
  Ok) exit 0 ;;
  Park) exit "$PARK" ;;
  FailOnce) [ "$ANNAL_DELIVERY" -gt 1 ] ;;
  Killed) kill -9 $$ ;;
  *) exit 3 ;;
esac
"""


def t_group_exec():
    """consume --exec: the event's JSON on the command's stdin and ANNAL_*
    in its environment; exit 0 acks, the park code parks (with the exit
    status as reason), any other exit status or a signal retries, until
    max_deliveries parks it."""
    d = Annald()
    tmp = tempfile.mkdtemp(prefix="annal-exec-")
    log = os.path.join(tmp, "log")
    try:
        kinds = ["Ok", "Park", "FailOnce", "FailAlways", "Ok", "Killed"]
        for i, kind in enumerate(kinds):
            cli(d, "append", f"job-{i}", kind, json.dumps({"i": i, "text": "é \"q\""}))
        ok_json(gcli(d, "create", "jobs", "--max-deliveries", "2"))
        env = dict(os.environ, ANNAL_COMMANDS=d.commands, LOG=log, PARK="42",
                   ANNAL_SEQUENCE="stale")
        # calls: Ok 1, Park 1, FailOnce 2, FailAlways 2, Ok 1, Killed 2
        p = subprocess.run([*VALGRIND, ANNAL, "group", "consume", "jobs", "--consumer", "x",
                            "--count", "9", "--exec", EXEC, "--park-exit", "42"],
                           capture_output=True, text=True, timeout=120, env=env)
        check(p.returncode == 0 and p.stdout == "", (p.returncode, p.stdout, p.stderr))
        with open(log) as f:
            calls = [l.split() for l in f]
        with open(log + ".json") as f:
            stdin = [json.loads(l) for l in f]
        check(len(calls) == 9, calls)
        stored = {e["sequence_number"]: e for e in lines(cli(d, "read-all")[1])}
        for call, ev in zip(calls, stdin):
            group, seq, agg, version, etype, delivery, event_id = call
            e = stored[int(seq)]
            check(group == "jobs" and agg == e["aggregate_id"] and etype == e["event_type"]
                  and int(version) == e["version"] and event_id == e["event_id"], (call, e))
            check(ev == dict(e, delivery=int(delivery)), (ev, e))
        deliveries = sorted((int(c[1]), int(c[5])) for c in calls)
        check(deliveries == [(1, 1), (2, 1), (3, 1), (3, 2), (4, 1), (4, 2), (5, 1), (6, 1), (6, 2)],
              deliveries)
        info = ok_json(gcli(d, "info", "jobs"))
        check(info["acked_through"] == 6 and info["parked"] == 3 and info["leased"] == 0, info)
        reasons = {e["sequence_number"]: e["reason"] for e in lines(gcli(d, "parked", "jobs")[1])}
        check(reasons == {2: "the command exited with status 42", 4: "max deliveries",
                          6: "max deliveries"}, reasons)
        # a command that cannot run at all is a retry, not an ack
        cli(d, "append", "job-9", "Ok", "{}")
        rc, _, err = gcli(d, "consume", "jobs", "--consumer", "x", "--count", "1", "--exec",
                          "exec /nonexistent/command")
        check(rc == 0, (rc, err))
        info = ok_json(gcli(d, "info", "jobs"))
        check(info["acked_through"] == 6 and info["lag"] == 1, info)
        check(d.stop() == 0, d.stderr())
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


run([
    ("round_trip", t_round_trip),
    ("backup_while_appending", t_backup_while_appending),
    ("backup_under_load", t_backup_under_load),
    ("dead_reader", t_dead_reader),
    ("old_spellings", t_old_spellings),
    ("export_import", t_export_import),
    ("delete_retention", t_delete_retention),
    ("tail_across_restart", t_tail_across_restart),
    ("tail_holes", t_tail_holes),
    ("group_commands", t_group_commands),
    ("group_consume", t_group_consume),
    ("group_exec", t_group_exec),
])
