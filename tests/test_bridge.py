"""annal-bridge as the harness runs it: a throwaway store removed at exit,
--data kept across runs, --connect to a running annald, bad lines skipped,
several bridges side by side."""
import json
import os
import shutil
import subprocess
import tempfile

from annal_harness import BIN, Annald, check, run

BRIDGE = os.path.join(BIN, "annal-bridge")


def bridge(lines, *args, env=None):
    text = "".join(json.dumps(l) + "\n" if not isinstance(l, str) else l for l in lines)
    p = subprocess.run([BRIDGE, *args], input=text, capture_output=True, text=True, timeout=30,
                       env=env)
    check(p.returncode == 0, (p.returncode, p.stderr))
    return [json.loads(l) for l in p.stdout.splitlines()], p.stderr


def line(body):
    return {"src": "c1", "dest": "n1", "body": body}


APPEND = {"type": "append", "msg_id": 1, "aggregate_id": "b-1", "event_type": "T",
          "event_data": {}, "version": "any"}


def t_temp_store_removed():
    tmp = tempfile.mkdtemp(prefix="annal-tmp-")
    try:
        out, _ = bridge([line(APPEND)], env=dict(os.environ, TMPDIR=tmp))
        check(out[0]["body"]["sequence_number"] == 1, out)
        check(os.listdir(tmp) == [], os.listdir(tmp))
    finally:
        shutil.rmtree(tmp)


def t_data_kept():
    d = tempfile.mkdtemp(prefix="annal-keep-")
    try:
        bridge([line(APPEND)], "--data", d)
        out, _ = bridge([line(APPEND)], "--data", d)
        check(out[0]["body"]["sequence_number"] == 2, out)
    finally:
        shutil.rmtree(d)


def t_bad_lines():
    out, err = bridge(["not json\n", "\n", "[1, 2]\n", line({"type": "status", "msg_id": 9}),
                       {"src": "x", "dest": "y"}])
    check(len(out) == 2, out)
    check(out[0] == {"src": "n1", "dest": "c1", "body": out[0]["body"]}, out)
    check(out[0]["body"]["type"] == "status_ok", out)
    check(out[1]["src"] == "y" and out[1]["body"]["code"] == 12, out)
    check(err.count("not a JSON object") == 2, err)


def t_connect():
    d = Annald()
    try:
        out, _ = bridge([line(APPEND), line(dict(APPEND, msg_id=2))], "--connect", d.commands)
        check([o["body"]["sequence_number"] for o in out] == [1, 2], out)
        out, _ = bridge([line({"type": "status", "msg_id": 3})], "--connect", d.commands)
        check(out[0]["body"]["head_sequence"] == 2, out)
        check(d.stop() == 0)
    finally:
        d.cleanup()


def t_side_by_side():
    procs = [subprocess.Popen([BRIDGE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    for p in procs:
        p.stdin.write(json.dumps(line(APPEND)) + "\n")
        p.stdin.flush()
    for p in procs:
        reply = json.loads(p.stdout.readline())
        check(reply["body"]["sequence_number"] == 1, reply)
        p.stdin.close()
        check(p.wait(10) == 0)
        p.stdout.close()


def t_exact_text():
    p = subprocess.run([BRIDGE], input=json.dumps(line({"type": "init", "msg_id": 1})) + "\n",
                       capture_output=True, text=True, timeout=30)
    check(p.stdout == '{"src": "n1", "dest": "c1", "body": {"type": "init_ok", "in_reply_to": 1}}\n',
          p.stdout)


def t_python_style():
    """Floats keep their shortest text, non-ASCII and DEL are escaped."""
    body = {"type": "append", "msg_id": 1, "aggregate_id": "f-1", "event_type": "T",
            "event_data": {"x": 0.1, "y": 1e100, "z": 2.0, "s": "\u00e9\u007f\U0001F600\n"},
            "version": 0}
    lines = [json.dumps(line(body)), json.dumps(line({"type": "replay", "msg_id": 2,
                                                       "aggregate_id": "f-1"}))]
    p = subprocess.run([BRIDGE], input="\n".join(lines) + "\n", capture_output=True, text=True,
                       timeout=30)
    out = p.stdout.splitlines()[1]
    want = json.dumps({"src": "n1", "dest": "c1", "body": {
        "type": "replayed", "in_reply_to": 2, "aggregate_id": "f-1", "events_replayed": 1,
        "state": body["event_data"], "version": 1}})
    check(out == want, (out, want))


run([
    ("temp_store_removed", t_temp_store_removed),
    ("data_kept", t_data_kept),
    ("bad_lines", t_bad_lines),
    ("connect", t_connect),
    ("side_by_side", t_side_by_side),
    ("exact_text", t_exact_text),
    ("python_style", t_python_style),
])
