"""A full disk, for real, two ways: annald's data folder on a small tmpfs
that a filler file nearly fills (needs root, for mount), and a file size
limit (RLIMIT_FSIZE, set on the running annald with prlimit) at the sizes
its files have. Appends must then fail with error 11 and write nothing,
reads must keep working, appends must succeed again once space returns
(the filler deleted, the limit lifted), the checkpoint that could not be
made must be made, and after a SIGKILL every acknowledged event is there."""
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from annal_harness import Annald, Client, check, run

MIB = 1 << 20
PAYLOAD = "x" * 8000


def mount_tmpfs(size_mib):
    folder = tempfile.mkdtemp(prefix="annal-full-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", folder],
                       capture_output=True, text=True)
    if p.returncode != 0:
        os.rmdir(folder)
        return None
    return folder


def free_bytes(folder):
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def fill(folder, leave):
    """Writes a filler file that leaves about leave bytes free."""
    path = os.path.join(folder, "filler")
    with open(path, "wb") as f:
        chunk = b"\xff" * MIB
        while free_bytes(folder) > leave + MIB:
            f.write(chunk)
            f.flush()
        f.write(b"\xff" * max(0, free_bytes(folder) - leave))
    return path


class Tmpfs:
    """Space taken by a filler file on a 24 MiB tmpfs."""

    def __init__(self):
        self.mnt = mount_tmpfs(24)
        self.data = os.path.join(self.mnt, "data") if self.mnt else None

    def fill(self, pid):
        self.filler = fill(self.mnt, 3 * MIB)

    def free(self, pid):
        os.unlink(self.filler)

    def cleanup(self):
        subprocess.run(["umount", self.mnt])
        shutil.rmtree(self.mnt, ignore_errors=True)


class FileSizeLimit:
    """Space taken by a file size limit at the size of annald's largest file."""

    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="annal-fsize-")

    def fill(self, pid):
        largest = max(os.path.getsize(os.path.join(self.data, f)) for f in os.listdir(self.data))
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (largest, resource.RLIM_INFINITY))

    def free(self, pid):
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)

    def cleanup(self):
        shutil.rmtree(self.data, ignore_errors=True)


def append(c, n):
    eid = str(uuid.uuid4())
    r = c.call({"type": "append", "aggregate_id": f"full-{n % 7}", "event_type": "T",
                "event_data": {"n": n, "pad": PAYLOAD}, "version": "any", "event_id": eid})
    return eid, r


def read_everything(c):
    """Every event of the log, through read_all pages: {event_id: (seq, agg, version)}."""
    seen, nxt = {}, 1
    while True:
        r = c.call({"type": "read_all", "from_sequence": nxt, "max_count": 500})
        check(r["type"] == "events", r)
        for e in r["events"]:
            seen[e["event_id"]] = (e["sequence_number"], e["aggregate_id"], e["version"])
        if "next_sequence" not in r or not r["events"]:
            return seen, r["head_sequence"]
        nxt = r["next_sequence"]


def check_log(c, acked):
    """The log holds exactly the acknowledged events {event_id: (seq, agg)},
    with dense sequences and dense versions per aggregate."""
    seen, head = read_everything(c)
    check(set(seen) == set(acked), f"{len(acked)} acknowledged, {len(seen)} stored")
    check(sorted(s for s, _, _ in seen.values()) == list(range(1, head + 1)), "sequence gaps")
    versions = {}
    for eid, (seq, agg) in acked.items():
        check(seen[eid][:2] == (seq, agg), (eid, seen[eid], (seq, agg)))
        versions.setdefault(agg, []).append(seen[eid][2])
    for agg, vs in versions.items():
        check(sorted(vs) == list(range(1, len(vs) + 1)), (agg, "version gaps"))


def journal_generation(data):
    """The generation of the journal's first record (annal_journal.c: magic,
    CRC, then the generation, little-endian): it goes up at each checkpoint."""
    with open(os.path.join(data, "annal.journal"), "rb") as f:
        head = f.read(16)
    check(head[:4] == b"ANJ1", head)
    return int.from_bytes(head[8:16], "little")


def disk_full(space):
    data = space.data
    d = None
    try:
        d = Annald(data=data)
        c = Client(d.commands, "msgpack")
        acked, n = {}, 0
        for _ in range(20):  # some history first
            eid, r = append(c, n)
            check(r["type"] == "appended", r)
            acked[eid] = (r["sequence_number"], f"full-{n % 7}")
            n += 1
        space.fill(d.proc.pid)
        errors = 0
        while errors < 30 and n < 20000:
            eid, r = append(c, n)
            if r["type"] == "appended":
                acked[eid] = (r["sequence_number"], f"full-{n % 7}")
            else:
                check(r["type"] == "error" and r["code"] == 11 and "space" in r["text"], r)
                errors += 1
            n += 1
        check(errors == 30, f"no error 11 after {n} appends on a full disk")
        check_log(c, acked)
        # reads of every kind keep working while it is full
        r = c.call({"type": "status"})
        check(r["type"] == "status_ok" and r["head_sequence"] == len(acked), r)
        r = c.call({"type": "read", "aggregate_id": "full-3", "max_count": 5})
        check(r["type"] == "events" and r["events"], r)
        r = c.call({"type": "replay", "aggregate_id": "full-3"})
        check(r["type"] == "replayed" and r["events_replayed"] >= 1, r)
        r = c.call({"type": "create_snapshot", "aggregate_id": "full-3"})
        check(r["type"] == "snapshot_created" or r.get("code") == 11, r)
        # reads pipelined behind failing appends (one batch): answered, and
        # without the events that were not written
        failed = []
        for _ in range(5):
            eid = str(uuid.uuid4())
            failed.append(eid)
            c.send({"type": "append", "aggregate_id": "full-1", "event_type": "T",
                    "event_data": {"pad": PAYLOAD}, "version": "any", "event_id": eid})
            c.send({"type": "read", "aggregate_id": "full-1", "direction": "backward",
                    "max_count": 3})
            c.send({"type": "status"})
        for _ in range(5):
            r = c.recv()
            check(r.get("code") == 11, r)
            r = c.recv()
            check(r["type"] == "events" and not {e["event_id"] for e in r["events"]} & set(failed),
                  r["type"])
            r = c.recv()
            check(r["type"] == "status_ok" and r["head_sequence"] == len(acked), r)
        n += 5
        # after the failed checkpoints of the next seconds, still the same
        generation = journal_generation(data)
        time.sleep(2.5)
        eid, r = append(c, n)
        check(r.get("code") == 11, r)
        n += 1
        check_log(c, acked)
        check(journal_generation(data) == generation, "a checkpoint on a full disk")
        # space returns: appends succeed again
        space.free(d.proc.pid)
        deadline = time.time() + 15
        while True:
            eid, r = append(c, n)
            n += 1
            if r["type"] == "appended":
                acked[eid] = (r["sequence_number"], f"full-{(n - 1) % 7}")
                break
            check(r.get("code") == 11 and time.time() < deadline, ("not back", r))
            time.sleep(0.2)
        for _ in range(50):
            eid, r = append(c, n)
            check(r["type"] == "appended", r)
            acked[eid] = (r["sequence_number"], f"full-{n % 7}")
            n += 1
        check_log(c, acked)
        # and the checkpoint that could not be made is made (within about a
        # second): the journal starts a new generation
        time.sleep(2.5)
        eid, r = append(c, n)
        check(r["type"] == "appended", r)
        acked[eid] = (r["sequence_number"], f"full-{n % 7}")
        n += 1
        check(journal_generation(data) > generation, "no checkpoint after space returned")
        # nothing acknowledged is lost across a SIGKILL either
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        d.cleanup()
        d = Annald(data=data)
        c = Client(d.commands, "msgpack")
        check_log(c, acked)
        eid, r = append(c, n)
        check(r["type"] == "appended" and r["sequence_number"] == len(acked) + 1, r)
        check(d.stop() == 0, d.stderr())
    finally:
        if d:
            d.cleanup()
        space.cleanup()


def t_tmpfs():
    space = Tmpfs()
    if not space.mnt:
        print("skipped: cannot mount a tmpfs (not root?); the file size limit case still runs")
        return
    disk_full(space)


def t_file_size_limit():
    disk_full(FileSizeLimit())


def t_restart_full():
    """annald killed on a full disk with journaled events refuses to start
    while the disk is full (the journal must be checkpointed), says why,
    and starts with every acknowledged event once space returns."""
    space = Tmpfs()
    if not space.mnt:
        print("skipped: cannot mount a tmpfs (not root?)")
        return
    d = None
    try:
        d = Annald(data=space.data)
        c = Client(d.commands, "msgpack")
        acked, n, errors = {}, 0, 0
        eid, r = append(c, n)  # the journal takes its first 4 MiB
        acked[eid] = (r["sequence_number"], "full-0")
        n += 1
        space.fill(d.proc.pid)
        while errors < 3:
            eid, r = append(c, n)
            if r["type"] == "appended":
                acked[eid] = (r["sequence_number"], f"full-{n % 7}")
            else:
                errors += 1
            n += 1
        check(len(acked) > 100, len(acked))  # journaled on the full disk
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        d.cleanup()
        d = Annald(data=space.data, ready=False)
        code = d.proc.wait(20)
        check(code == 1 and "No space left" in d.stderr(), (code, d.stderr()))
        d.cleanup()
        space.free(0)
        d = Annald(data=space.data)
        check_log(Client(d.commands, "msgpack"), acked)
        check(d.stop() == 0, d.stderr())
    finally:
        if d:
            d.cleanup()
        space.cleanup()


run([("tmpfs", t_tmpfs), ("file_size_limit", t_file_size_limit), ("restart_full", t_restart_full)])
