"""The request channel of the blocking client: one ZeroMQ DEALER to
annald's command socket, MessagePack bodies, replies matched by msg_id.

Invariants: a reply is returned only to the request whose msg_id it
answers; a request that is not answered in time closes the socket and
opens a new one, so a late reply can never answer a later request; one
request is in flight at a time (a lock makes a channel safe to share
between threads)."""
from __future__ import annotations

import itertools
import re
import threading
import time
from typing import Any, Dict, Optional, Tuple

import msgpack
import zmq

from ._protocol import Call, R
from .errors import AnnalError, Unavailable

Curve = Tuple[str, str, str]  # (public key, secret key, annald's public key), Z85 text


def curve_keys(curve: Any) -> Optional[Curve]:
    """The three keys of a curve argument: None, a (public, secret, server)
    tuple, or a dict with public_key, secret_key and server_key."""
    if curve is None:
        return None
    if isinstance(curve, dict):
        curve = (curve["public_key"], curve["secret_key"], curve["server_key"])
    public, secret, server = curve
    return (_key(public), _key(secret), _key(server))


def load_curve(key_file: str, server_file: str) -> Curve:
    """The curve argument from certificate files as `annal keygen` writes
    them (CZMQ's format): the client's secret certificate (NAME_secret) and
    annald's public one."""
    def field(path: str, name: str) -> str:
        with open(path) as f:
            m = re.search(name + r'\s*=\s*"([^"]{40})"', f.read())
        if not m:
            raise ValueError(f"{path} has no {name}")
        return m.group(1)
    return (field(key_file, "public-key"), field(key_file, "secret-key"),
            field(server_file, "public-key"))


def _key(k: Any) -> str:
    text: str = k.decode() if isinstance(k, bytes) else str(k)
    if len(text) != 40:
        raise ValueError("a CURVE key is 40 characters of Z85 text")
    return text


def apply_curve(sock: zmq.Socket[Any], curve: Optional[Curve]) -> None:
    if curve:
        sock.curve_publickey = curve[0].encode()
        sock.curve_secretkey = curve[1].encode()
        sock.curve_serverkey = curve[2].encode()


def dealer(ctx: zmq.Context[Any], endpoint: str, curve: Optional[Curve]) -> Any:
    """A command socket to endpoint (of ctx's kind: blocking or asyncio)."""
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    apply_curve(s, curve)
    s.connect(endpoint)
    return s


def subscriber(ctx: zmq.Context[Any], endpoint: str, prefix: str, queue: int,
               curve: Optional[Curve]) -> Any:
    """A SUB socket to endpoint, subscribed to prefix and the $head beat,
    holding up to queue messages before PUB drops."""
    s = ctx.socket(zmq.SUB)
    s.linger = 0
    s.rcvhwm = queue
    apply_curve(s, curve)
    s.setsockopt(zmq.SUBSCRIBE, prefix.encode())
    if prefix:
        s.setsockopt(zmq.SUBSCRIBE, b"$head")
    s.connect(endpoint)
    return s


def encode(request: Dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(request, use_bin_type=True)
    return packed


def decode(frame: bytes) -> Dict[str, Any]:
    reply = msgpack.unpackb(frame, raw=False)
    if not isinstance(reply, dict):
        raise AnnalError("annald's reply is not a map")
    return reply


def timeout_error(endpoint: str, seconds: float) -> Unavailable:
    return Unavailable(f"annald at {endpoint} did not answer within {seconds:g} s; "
                       "a write may or may not be stored: send it again with the same event ids")


class Channel:
    def __init__(self, ctx: zmq.Context[Any], endpoint: str, timeout: float, curve: Optional[Curve]):
        self.ctx, self.endpoint, self.timeout, self.curve = ctx, endpoint, timeout, curve
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.sock: Optional[zmq.Socket[bytes]] = None

    def _socket(self) -> zmq.Socket[bytes]:
        if self.sock is None:
            self.sock = dealer(self.ctx, self.endpoint, self.curve)
        return self.sock

    def reset(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    def call(self, call: "Call[R]") -> R:
        with self.lock:
            msg_id = next(self.ids)
            body = dict(call.request, msg_id=msg_id)
            sock = self._socket()
            budget = self.timeout + call.wait_ms / 1000.0
            if not sock.poll(int(budget * 1000), zmq.POLLOUT):
                self.reset()
                raise timeout_error(self.endpoint, budget)
            sock.send(encode(body))
            deadline = time.monotonic() + budget
            while True:
                left_ms = max(0, int((deadline - time.monotonic()) * 1000))
                if not sock.poll(left_ms, zmq.POLLIN):
                    self.reset()
                    raise timeout_error(self.endpoint, budget)
                frame = sock.recv()
                reply = decode(frame)
                if reply.get("in_reply_to") == msg_id or (reply.get("in_reply_to") is None
                                                          and reply.get("type") == "error"):
                    return call.parse(reply)
                # a reply to an earlier request that timed out on this socket
                # cannot happen (the socket was replaced); anything else is
                # not ours: wait on

    def close(self) -> None:
        with self.lock:
            self.reset()
