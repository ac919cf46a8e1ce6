#!/usr/bin/env python3
"""Plays harness cases against a line-protocol program (annal-bridge), as
the test harness does.

usage: run_cases.py CASES.jsonl -- COMMAND [ARGS...]

CASES.jsonl holds one case a line: {"name", "timeout_ms"?, "input": [line...],
"expected": [body...]}. Each case starts COMMAND anew, sends its input lines
one at a time, waiting for one reply line to each, and compares the reply's
body with the expected one: the same keys, every string of the expected body
a regular expression the reply's string must match whole, any other value
equal (true is not 1). A reply must swap the request's src and dest. The
whole case must finish within timeout_ms (default 5000). Prints a line per
case, then 'N passed, M failed'; exits 1 when any failed. Uses only the
standard library, so it runs wherever python3 does.
"""
import json
import queue
import re
import subprocess
import sys
import threading
import time


def matches(want, got):
    """Whether reply value got is what the case expects (want)."""
    if isinstance(want, dict):
        return (isinstance(got, dict) and want.keys() == got.keys()
                and all(matches(want[k], got[k]) for k in want))
    if isinstance(want, list):
        return (isinstance(got, list) and len(want) == len(got)
                and all(matches(w, g) for w, g in zip(want, got)))
    if isinstance(want, str):
        return isinstance(got, str) and re.fullmatch(want, got) is not None
    if want is None or isinstance(want, bool):
        return got is want
    return not isinstance(got, bool) and want == got


def play(case, command):
    """Runs one case; returns None when it passed, else what went wrong."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            bufsize=1)
    replies = queue.Queue()  # read by a thread: select() cannot see lines readline buffered

    def pump():
        for text in proc.stdout:
            replies.put(text)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + case.get("timeout_ms", 5000) / 1000
    try:
        for msg, want in zip(case["input"], case["expected"]):
            proc.stdin.write(json.dumps(msg) + "\n")
            proc.stdin.flush()
            try:
                text = replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return f"no reply to msg_id {msg['body'].get('msg_id')} in time"
            try:
                got = json.loads(text)
            except ValueError:
                return f"the reply is not JSON: {text!r}"
            if not isinstance(got, dict):
                return f"the reply is not a JSON object: {text.strip()}"
            if got.get("src") != msg["dest"] or got.get("dest") != msg["src"]:
                return f"the reply does not swap src and dest: {text.strip()}"
            if not matches(want, got.get("body")):
                return f"want {json.dumps(want)}\n      got  {json.dumps(got.get('body'))}"
        return None
    finally:
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        cases = [json.loads(text) for text in f if text.strip()]
    command = sys.argv[3:]
    passed = failed = 0
    for case in cases:
        why = play(case, command)
        if why:
            failed += 1
            print(f"FAIL {case['name']}: {why}")
        else:
            passed += 1
            print(f"ok   {case['name']}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
