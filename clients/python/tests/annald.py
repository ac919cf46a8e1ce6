"""A real annald for the package's tests: ANNALD names the program; each
Annald gets a new store and IPC endpoints of its own, and can be killed
and started again on the same store and endpoints."""
import atexit
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

ANNALD = os.environ.get("ANNALD", "")
ROOT = tempfile.mkdtemp(prefix="annal-py-")
atexit.register(shutil.rmtree, ROOT, True)
_names = itertools.count(1)


def need_annald():
    if not (ANNALD and os.access(ANNALD, os.X_OK)):
        raise unittest.SkipTest("set ANNALD to the annald program to run these tests")


class Annald:
    def __init__(self, *args):
        need_annald()
        n = next(_names)
        self.data = os.path.join(ROOT, f"store{n}")
        self.commands = f"ipc://{ROOT}/{n}c"
        self.events = f"ipc://{ROOT}/{n}e"
        self.args = args
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(ROOT, f"{os.path.basename(self.data)}.log"), "a")
        self.proc = subprocess.Popen([ANNALD, "--data", self.data, "--commands", self.commands,
                                      "--events", self.events, *self.args],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if not re.search(r"commands \S+ events \S+", line):
            self.proc.wait(10)
            raise AssertionError(f"annald did not start: {line!r}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.log.close()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            rc = self.proc.wait(30)
            self.proc.stdout.close()
            self.log.close()
            return rc
        return self.proc.returncode

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.kill()
        shutil.rmtree(self.data, ignore_errors=True)


class AnnaldCase(unittest.TestCase):
    """A test case with a new annald (self.d) and a client of it (self.c)
    for each test."""
    timeout = 5.0

    def setUp(self):
        import annal
        self.d = Annald()
        self.c = annal.Client(self.d.commands, self.d.events, timeout=self.timeout)

    def tearDown(self):
        self.c.close()
        self.d.cleanup()
