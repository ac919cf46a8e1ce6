"""Shared helpers for annal's Python tests: start annald on private endpoints,
talk to it over real ZeroMQ sockets in JSON or MessagePack, run a table of
named cases and print 'N passed, M failed'."""
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import msgpack
import zmq

BIN = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ANNAL_BIN", "build")
ANNALD = os.path.join(BIN, "annald")
CTX = zmq.Context.instance()
# ANNAL_VALGRIND=1: every annald runs under valgrind memcheck; an error (an
# invalid access, a definite leak) makes its exit status 99, which stop()
# returns and the tests check.
VALGRIND = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
            "--track-origins=yes"] if os.environ.get("ANNAL_VALGRIND") else []
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


# With ANNAL_TEST_PG (tests/pg_cluster.sh sets it), stores are PostgreSQL
# databases on that server, one new database per store.
PG = os.environ.get("ANNAL_TEST_PG")


def new_store():
    """A new empty store: a temporary folder, or a new PostgreSQL database."""
    if not PG:
        return tempfile.mkdtemp(prefix="annal-it-")
    name = "annal_" + os.urandom(6).hex()
    subprocess.run(["psql", PG, "-qc", f"CREATE DATABASE {name}"], check=True)
    return PG.replace("/postgres?", f"/{name}?", 1)


# Each annald's endpoints are IPC socket files in a folder of this process,
# never used twice. Not loopback TCP ports: a port freed by a killed annald
# can be bound by another test's annald running at the same time (ctest -j),
# and ZeroMQ's reconnect then carries this test's requests to that one.
SOCKETS = tempfile.mkdtemp(prefix="annal-ipc-")
atexit.register(shutil.rmtree, SOCKETS, True)
_endpoints = iter(range(1, 1 << 30))


def new_endpoints():
    """(commands, events): two IPC endpoints nobody else has used."""
    n = next(_endpoints)
    return f"ipc://{SOCKETS}/{n}c", f"ipc://{SOCKETS}/{n}e"


class Annald:
    """An annald process on a store (a new empty one by default), on new
    IPC endpoints unless args give --commands or --events."""

    def __init__(self, data=None, args=(), ready=True):
        self.own = data is None
        self.data = data or new_store()
        self.log = tempfile.NamedTemporaryFile(prefix="annald-", suffix=".log", delete=False)
        commands, events = new_endpoints()
        cmd = [*VALGRIND, ANNALD, "--data", self.data, "--commands", commands,
               "--events", events, *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.commands = self.events = None
        if ready:
            line = self.proc.stdout.readline()
            m = re.search(r"commands (\S+) events (\S+)", line)
            if not m:
                self.proc.wait(10)
                raise AssertionError(f"annald did not start: {line!r} {self.stderr()}")
            self.commands, self.events = m.group(1), m.group(2)

    def stderr(self):
        with open(self.log.name) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals annald and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.proc.stdout.close()
        return rc

    def cleanup(self):
        if self.proc.poll() is None:
            if VALGRIND:  # a clean exit, so that valgrind reports
                rc = self.stop()
                check(rc != 99, "valgrind: " + self.stderr()[-4000:])
            else:
                self.proc.kill()
                self.proc.wait()
        os.unlink(self.log.name)
        if self.own and not PG:
            shutil.rmtree(self.data, ignore_errors=True)


@contextlib.contextmanager
def broker(*args, data=None):
    """An annald with args for the with block; it must then stop cleanly."""
    d = Annald(data=data, args=args)
    try:
        yield d
        rc = d.stop()
        check(rc == 0, f"annald exit status {rc}: {d.stderr()}")
    finally:
        d.cleanup()


class Client:
    """A DEALER (or REQ) client speaking JSON or MessagePack."""

    def __init__(self, endpoint, encoding="json", kind=zmq.DEALER, timeout=10000):
        self.sock = CTX.socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, timeout)
        self.sock.connect(endpoint)
        self.encoding = encoding
        self.next_id = 1

    def encode(self, body):
        if self.encoding == "json":
            return json.dumps(body).encode()
        return msgpack.packb(body, use_bin_type=True)

    def decode(self, raw):
        if self.encoding == "json":
            assert raw[:1] == b"{", raw[:40]
            return json.loads(raw)
        assert raw[0] in range(0x80, 0x90) or raw[0] in (0xde, 0xdf), raw[:40]
        return msgpack.unpackb(raw, raw=False)

    def send(self, body):
        if "msg_id" not in body:
            body = dict(body, msg_id=self.next_id)
            self.next_id += 1
        self.sock.send(self.encode(body))
        return body["msg_id"]

    def send_raw(self, raw):
        self.sock.send(raw)

    def recv(self):
        return self.decode(self.sock.recv())

    def call(self, body):
        msg_id = self.send(body)
        reply = self.recv()
        assert reply.get("in_reply_to") == msg_id or reply.get("in_reply_to") is None, reply
        return reply

    def close(self):
        self.sock.close(0)


def append(client, agg, version="any", data=None, event_type="Happened", **extra):
    body = {"type": "append", "aggregate_id": agg, "event_type": event_type,
            "event_data": data if data is not None else {"n": 1}, "version": version}
    body.update(extra)
    return client.call(body)


def check(cond, what=""):
    if not cond:
        raise AssertionError(what)


def run(cases):
    """Runs [(name, fn)] (or only the names given after the bin folder)."""
    only = set(sys.argv[2:])
    passed = failed = 0
    for name, fn in cases:
        if only and name not in only:
            continue
        start = time.time()
        try:
            fn()
            passed += 1
            print(f"ok   {name} ({time.time() - start:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def brokers(n, store):
    """n annald on one store (several brokers on one PostgreSQL database), started
    together."""
    procs = [Annald(data=store, ready=False) for _ in range(n)]
    for d in procs:  # read each ready line (the schema is made once, under a lock)
        line = d.proc.stdout.readline()
        m = re.search(r"commands (\S+) events (\S+)", line)
        check(m, (line, d.stderr()))
        d.commands, d.events = m.group(1), m.group(2)
    return procs


def stop_all(procs):
    for d in procs:
        check(d.stop() == 0, d.stderr())
        d.cleanup()
