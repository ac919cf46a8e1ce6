"""Who may connect: CURVE (keys from `annal keygen`, an allow folder read
again when it changes), the client count (--max-clients), and the warning
for a plaintext socket reachable from elsewhere. Over real sockets, with
the annal CLI, annal-bridge and libannal's subscription as clients."""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from annal_harness import BIN, CTX, Annald, broker, check, run

ANNAL = os.path.join(BIN, "annal")
BRIDGE = os.path.join(BIN, "annal-bridge")
QUIET_MS = 1500  # how long "gets nothing" waits


def keygen(folder, name):
    path = os.path.join(folder, name)
    out = subprocess.run([ANNAL, "keygen", path], capture_output=True, text=True, timeout=20)
    check(out.returncode == 0 and len(out.stdout.strip()) == 40, out)
    return path


def keys(path):
    """(public, secret) Z85 keys of a certificate pair written by keygen."""
    with open(path + "_secret") as f:
        text = f.read()
    public = re.search(r'public-key = "(.{40})"', text).group(1).encode()
    secret = re.search(r'secret-key = "(.{40})"', text).group(1).encode()
    return public, secret


def socket(kind, endpoint, me=None, server=None):
    """A socket with a monitor of its handshakes; CURVE when me is given."""
    s = CTX.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    if me:
        s.curve_publickey, s.curve_secretkey = keys(me)
        s.curve_serverkey = keys(server)[0]
    mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                               | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                               | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    if kind == zmq.SUB:
        s.setsockopt(zmq.SUBSCRIBE, b"")
    s.connect(endpoint)
    return s, mon


def handshake(mon, timeout_ms=5000):
    """The first handshake outcome: ("ok", 0) or ("auth", status) or (other, value)."""
    if not mon.poll(timeout_ms):
        return ("none", 0)
    e = recv_monitor_message(mon)
    names = {zmq.EVENT_HANDSHAKE_SUCCEEDED: "ok", zmq.EVENT_HANDSHAKE_FAILED_AUTH: "auth",
             zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol",
             zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "no_detail"}
    return (names.get(e["event"], str(e["event"])), e["value"])


def status_request(n=1):
    return ('{"type":"status","msg_id":%d}' % n).encode()


def try_send(sock, data):
    """Sends unless ZeroMQ has nowhere to send: a refused connection is
    not retried, so a DEALER left without one would block."""
    try:
        sock.send(data, zmq.NOBLOCK)
    except zmq.Again:
        pass


def answered(sock, timeout_ms):
    return sock.poll(timeout_ms) != 0


def cleanup(*socks):
    for s in socks:
        s.close(0)


def t_curve():
    folder = tempfile.mkdtemp(prefix="annal-curve-")
    try:
        server, alice, bob = (keygen(folder, n) for n in ("server", "alice", "bob"))
        allow = os.path.join(folder, "allow")
        os.mkdir(allow)
        shutil.copy(alice, allow)
        with broker("--curve-secret", server + "_secret", "--curve-allow", allow) as d:
            check("warning" not in d.stderr(), d.stderr())
            # alice is admitted on both sockets
            sub, sub_mon = socket(zmq.SUB, d.events, alice, server)
            check(handshake(sub_mon) == ("ok", 0))
            a, a_mon = socket(zmq.DEALER, d.commands, alice, server)
            check(handshake(a_mon) == ("ok", 0))
            time.sleep(0.2)  # the subscription reaches PUB
            a.send(b'{"type":"append","msg_id":1,"aggregate_id":"c-1","event_type":"T",'
                   b'"event_data":1,"version":0}')
            check(answered(a, 5000) and b'"appended"' in a.recv())
            check(sub.poll(5000) and sub.recv_multipart()[0] == b"c-1", "alice got no event")
            # bob's key is unknown, a plaintext client has none: nothing for either
            b, b_mon = socket(zmq.DEALER, d.commands, bob, server)
            check(handshake(b_mon) == ("auth", 400))
            try_send(b, status_request())
            plain, plain_mon = socket(zmq.DEALER, d.commands)
            try_send(plain, status_request())
            check(handshake(plain_mon)[0] != "ok")
            bsub, bsub_mon = socket(zmq.SUB, d.events, bob, server)
            psub, psub_mon = socket(zmq.SUB, d.events)
            check(handshake(bsub_mon) == ("auth", 400) and handshake(psub_mon)[0] != "ok")
            a.send(b'{"type":"append","msg_id":2,"aggregate_id":"c-1","event_type":"T",'
                   b'"event_data":2,"version":1}')
            check(answered(a, 5000) and b'"appended"' in a.recv())
            check(not answered(b, QUIET_MS) and not answered(plain, 0), "a stranger was served")
            check(not bsub.poll(0) and not psub.poll(0), "a stranger was fed events")
            # bob's key added to the folder counts from his next connection, no
            # restart (libzmq does not reconnect after a refused key)
            shutil.copy(bob, allow)
            b2, b2_mon = socket(zmq.DEALER, d.commands, bob, server)
            check(handshake(b2_mon) == ("ok", 0), "bob was not admitted")
            b2.send(status_request())
            check(answered(b2, 5000) and b'"status_ok"' in b2.recv())
            check(not answered(plain, 0))
            # the CLI, annal-bridge and libannal's subscription (annal tail) with keys
            curve = ["--commands", d.commands, "--events", d.events,
                     "--curve-key", alice + "_secret", "--curve-server", server]
            out = subprocess.run([ANNAL, *curve, "append", "c-2", "T", '{"x":1}'],
                                 capture_output=True, text=True, timeout=30)
            check(out.returncode == 0, out)
            out = subprocess.run([ANNAL, "--commands", d.commands, "--timeout", "1000",
                                  "status"], capture_output=True, text=True, timeout=30)
            check(out.returncode == 5, ("plaintext CLI", out))
            tail = subprocess.Popen([ANNAL, *curve, "tail", "--from", "1"],
                                    stdout=subprocess.PIPE, text=True)
            guard = threading.Timer(20, tail.kill)  # a stuck tail fails, not hangs
            guard.start()
            lines = [tail.stdout.readline() for _ in range(3)]
            guard.cancel()
            tail.kill()
            tail.wait()
            check(['"c-2"' in lines[2], '"c-1"' in lines[0]] == [True, True], lines)
            line = ('{"src":"c","dest":"eventstore","body":{"type":"status","msg_id":9}}\n')
            out = subprocess.run([BRIDGE, "--connect", d.commands, "--curve-key", alice + "_secret",
                                  "--curve-server", server], input=line, capture_output=True,
                                 text=True, timeout=30)
            check(out.returncode == 0 and '"status_ok"' in out.stdout, out)
            cleanup(a, b, b2, plain, sub, bsub, psub, a_mon, b_mon, b2_mon, plain_mon, sub_mon,
                    bsub_mon, psub_mon)
    finally:
        shutil.rmtree(folder)


def t_max_clients():
    """At the limit every client is served; one more is held at its handshake
    (ZAP status 300, temporary), retries, and is served once a connection
    closes."""
    with broker("--max-clients", "2") as d:
        first = [socket(zmq.DEALER, d.commands) for _ in range(2)]
        for s, mon in first:
            check(handshake(mon) == ("ok", 0))
            s.send(status_request())
            check(answered(s, 5000) and b'"status_ok"' in s.recv())
        third, third_mon = socket(zmq.DEALER, d.commands)
        third.send(status_request(7))
        check(not answered(third, 5000), "a client past --max-clients was served")
        check(handshake(third_mon, 0)[0] != "ok")
        for s, mon in first:  # the ones in keep being served
            s.send(status_request())
            check(answered(s, 5000) and b'"status_ok"' in s.recv())
        first[0][0].close(0)
        check(answered(third, 10000) and b'"in_reply_to":7' in third.recv(),
              "the held client was not served after a slot freed")
        cleanup(third, third_mon, first[0][1], *first[1])


def t_warning():
    """A plaintext socket reachable from elsewhere is warned about; loopback
    and CURVE ones are not."""
    d = Annald(args=("--commands", "tcp://0.0.0.0:*"))
    try:
        check(d.stop() == 0)
        check(re.search(r"warning: commands at tcp://0\.0\.0\.0:\d+", d.stderr()), d.stderr())
        check("events at" not in d.stderr(), d.stderr())
    finally:
        d.cleanup()
    folder = tempfile.mkdtemp(prefix="annal-curve-")
    try:
        server = keygen(folder, "server")
        d = Annald(args=("--commands", "tcp://0.0.0.0:*", "--curve-secret", server + "_secret",
                         "--curve-allow", folder))
        check(d.stop() == 0 and "warning" not in d.stderr(), d.stderr())
        d.cleanup()
    finally:
        shutil.rmtree(folder)


def t_bad_keys():
    folder = tempfile.mkdtemp(prefix="annal-curve-")
    try:
        server = keygen(folder, "server")
        public_only = os.path.join(folder, "public-only")  # no public-only_secret beside it
        shutil.copy(server, public_only)
        for args, words in ((["--curve-secret", server + "_secret"], "both"),
                            (["--curve-allow", folder], "both"),
                            (["--curve-secret", public_only, "--curve-allow", folder],
                             "secret key"),
                            (["--curve-secret", server + "_secret", "--curve-allow",
                              os.path.join(folder, "nope")], "not a folder")):
            d = Annald(args=args, ready=False)
            code = d.proc.wait(20)
            check(code == 1 and words in d.stderr(), (args, code, d.stderr()))
            d.cleanup()
        out = subprocess.run([ANNAL, "--curve-key", public_only, "--curve-server", server, "status"],
                             capture_output=True, text=True, timeout=20)
        check(out.returncode == 2 and "CURVE" in out.stderr, out)
    finally:
        shutil.rmtree(folder)


run([
    ("curve", t_curve),
    ("max_clients", t_max_clients),
    ("warning", t_warning),
    ("bad_keys", t_bad_keys),
])
