"""annal.Client and subscriptions with CURVE: keys from `annal keygen`
files admit the client on both sockets; no keys, or keys annald does not
admit, get no answer."""
import os
import shutil
import subprocess
import tempfile
import unittest

import annal
from annald import ANNALD, Annald, need_annald


def keygen(folder, name):
    path = os.path.join(folder, name)
    subprocess.run([os.path.join(os.path.dirname(ANNALD), "annal"), "keygen", path],
                   check=True, capture_output=True, timeout=20)
    return path


class CurveTest(unittest.TestCase):
    def setUp(self):
        need_annald()
        self.keys = tempfile.mkdtemp(prefix="annal-keys-")
        self.server = keygen(self.keys, "server")
        self.alice = keygen(self.keys, "alice")
        self.mallory = keygen(self.keys, "mallory")
        allowed = os.path.join(self.keys, "allowed")
        os.mkdir(allowed)
        shutil.copy(self.alice, allowed)
        self.d = Annald("--curve-secret", self.server + "_secret", "--curve-allow", allowed)

    def tearDown(self):
        self.d.cleanup()
        shutil.rmtree(self.keys, ignore_errors=True)

    def test_admitted_on_both_sockets(self):
        curve = annal.load_curve(self.alice + "_secret", self.server)
        with annal.Client(self.d.commands, self.d.events, timeout=5, curve=curve) as c:
            c.append("c-1", "T", {"secret": True})
            with c.subscribe() as sub:
                c.append("c-1", "T", {"n": 2})
                got = [e.sequence_number for _, e in zip(range(2), sub.events(idle_timeout=10))]
            self.assertEqual(got, [1, 2])
            self.assertEqual(sub.stats.live + sub.stats.read, 2)

    def test_others_get_nothing(self):
        for curve in (None, annal.load_curve(self.mallory + "_secret", self.server)):
            with annal.Client(self.d.commands, timeout=0.5, curve=curve) as c:
                with self.assertRaises(annal.Unavailable):
                    c.status()
        with self.assertRaises(ValueError):
            annal.load_curve(self.server, self.server)  # a public certificate has no secret


if __name__ == "__main__":
    unittest.main()
