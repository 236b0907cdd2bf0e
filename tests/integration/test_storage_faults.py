#!/usr/bin/python3
"""Storage faults end to end (SPEC §5, §7, §9), with a sink as the next hop:
under a read-only queue file, a queue at its page limit and a really full
disk (a 2 MiB tmpfs in the server's own mount namespace) the server answers
4xx, never 250, and keeps serving; once the fault clears it accepts mail
again and DELIVERS everything it acknowledged with 250, and nothing it
refused. A queue file with damaged pages is refused at start with a clear
error and exit status 1, never a crash.

Each message carries a unique Message-ID; the sink records it."""
import json
import os
import random
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import BIN, Relay  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402

# Prints the queue's recipient rows as JSON (run inside a mount namespace).
ROWS_SCRIPT = """
import json, sqlite3, sys
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(json.dumps(con.execute("SELECT m.qid, e.rcpt, e.state FROM entries e"
                             " JOIN messages m USING (mid)").fetchall()))
"""

CONFIG = """\
server:
  hostname: relay.example.org
  listen: [ { address: "127.0.0.1:@PORT@" } ]
storage:
  path: @QUEUE@
queue: { retry_initial: 1s, retry_max: 2s, delay_warning: 0s }
connectors:
  - name: sink
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:@SINK@"]
    tls: { mode: none }
    health: { retry_initial: 1s, retry_max: 2s }
"""


def body(mid, lines=20):
    return (f"Message-ID: {mid}\r\nSubject: fault test\r\n\r\n".encode()
            + b"a line of body text, seventy-odd characters long, to fill the queue up\r\n"
            * lines)


class Client:
    """One SMTP session that sends one message per transaction and keeps
    score: Message-IDs that got 250 after DATA, and those refused with 4xx."""

    def __init__(self, port):
        self.s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        self.s.ehlo("faults.example")
        self.acked, self.refused = [], []
        self.n = 0

    def send(self, tag, lines=20):
        self.n += 1
        mid = f"<{tag}-{self.n}-{random.randrange(1 << 30)}@faults.test>"
        code, _ = self.s.mail("a@example.org")
        assert code == 250, code
        code, _ = self.s.rcpt(f"{tag}@example.net")
        assert code == 250, code
        code, msg = self.s.data(body(mid, lines))
        if code == 250:
            self.acked.append(mid)
        else:
            assert 400 <= code < 500, (code, msg)  # never a 5xx for a storage fault
            self.refused.append(mid)
        return code, msg

    def close(self):
        try:
            self.s.quit()
        except (OSError, smtplib.SMTPException):
            self.s.close()


class Faults(unittest.TestCase):
    def setUp(self):
        self.relay = None
        self.sink = None
        self.immutable = []
        self.flag = tempfile.mktemp(prefix="bh-fail-")

    def tearDown(self):
        for f in self.immutable:
            subprocess.run(["chattr", "-i", f], capture_output=True)
        if self.relay:
            self.relay.cleanup()
        if self.sink:
            self.sink.stop()
        if os.path.exists(self.flag):
            os.unlink(self.flag)

    def start(self, queue="queue.db", env=None, wrapper=None, folder=None, connector="",
              **sink_opts):
        self.sink = start_sink(name="faults", **sink_opts)
        cfg = (CONFIG + connector).replace("@SINK@", str(self.sink.port)).replace("@QUEUE@", queue)
        self.relay = Relay(cfg, env=env, wrapper=wrapper, folder=folder)
        self.relay.start()
        return self.relay

    def assert_delivered(self, acked, refused, timeout=30):
        """Every acknowledged message at the sink (exactly once: no crash
        happened, so there is no excuse for a duplicate), none of the
        refused ones, and the queue empty."""
        acked = set(acked)

        def done():
            got = {m["message_id"] for m in self.sink.messages()}
            return acked <= got and not self.relay.queue_rows()
        try:
            wait_for(done, timeout=timeout, interval=0.2, what="delivery of the acknowledged mail")
        finally:
            ids = [m["message_id"] for m in self.sink.messages()]
            print(f"\n  acknowledged={len(acked)} refused={len(refused)} "
                  f"delivered={len(acked & set(ids))} sink_total={len(ids)} "
                  f"left_in_queue={len(self.relay.queue_rows())}", file=sys.stderr)
        self.assertEqual(sorted(set(ids) & set(refused)), [], "refused mail was delivered")
        self.assertEqual(sorted(set(ids) - acked), [], "the sink got mail nobody acknowledged")
        self.assertEqual(len(ids), len(set(ids)), "duplicates without a crash")

    def assert_still_serving(self, client):
        self.assertEqual(client.s.noop()[0], 250)
        other = smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10)
        self.assertEqual(other.ehlo("other.example")[0], 250)
        other.quit()
        self.assertIsNone(self.relay.proc.poll())

    # -- a read-only queue file (chattr +i) ------------------------------------
    def test_readonly_queue_451_then_delivers(self):
        # One connection to a sink that takes 1.5 s per message. B1 and B2
        # are leased at once; B1 is in DATA and B2 waits for the connection
        # when the file becomes read-only. The sink refuses B1 (451: a
        # deferral) and takes B2 (250: done), both while the fault lasts, so
        # neither settlement can be stored. Once the fault clears both must
        # be settled: B1 retried and delivered, B2 not sent again. (They
        # once stayed "delivering" until a restart: B1 was never delivered.)
        relay = self.start(delay_data=1.5, fail_file=self.flag,
                           connector="    max_connections: 1\n")
        c = Client(relay.port)
        open(self.flag, "w").close()
        t0 = time.monotonic()
        for _ in range(2):
            self.assertEqual(c.send("before")[0], 250)
        time.sleep(0.5)  # both leased, B1 in DATA
        self.immutable = [os.path.join(relay.dir, f) for f in ("queue.db", "queue.db-wal")]
        for f in self.immutable:
            subprocess.run(["chattr", "+i", f], check=True)
        for _ in range(3):
            code, msg = c.send("during")
            self.assertEqual(code, 451, msg)
            self.assertIn(b"4.3.0", msg)
        self.assert_still_serving(c)
        time.sleep(max(0.0, 2.2 - (time.monotonic() - t0)))
        os.unlink(self.flag)  # B1 was refused at 1.5 s; B2 is taken at 3 s
        time.sleep(max(0.0, 3.6 - (time.monotonic() - t0)))
        for f in self.immutable:
            subprocess.run(["chattr", "-i", f], check=True)
        for _ in range(3):
            self.assertEqual(c.send("after")[0], 250)
        c.close()
        self.assertEqual(len(c.refused), 3)
        self.assert_delivered(c.acked, c.refused)
        log = relay.log()
        self.assertIn("event=settle_failed", log)  # the fault path was taken
        self.assertIn("status=deferred", log)
        self.assertEqual(relay.stop(), 0)

    def test_etrn_458_while_read_only(self):
        """ETRN needs to write the queue: while it cannot, 458 4.3.0 (SPEC
        §4); once the fault clears, ETRN starts the delivery."""
        relay = self.start(connector="  - name: trig\n    address_spaces: [trig.test]\n"
                                     "    bridgeheads: [\"127.0.0.1:@SINK@\"]\n"
                                     "    triggered: true\n    tls: { mode: none }\n")
        s = smtplib.SMTP("127.0.0.1", relay.port, timeout=20)
        s.ehlo("etrn.example")
        s.sendmail("a@example.org", ["t@trig.test"], body("<etrn@faults.test>"))
        self.immutable = [os.path.join(relay.dir, f) for f in ("queue.db", "queue.db-wal")]
        for f in self.immutable:
            subprocess.run(["chattr", "+i", f], check=True)
        code, msg = s.docmd("ETRN trig.test")
        self.assertEqual((code, msg[:5]), (458, b"4.3.0"), msg)
        self.assertEqual(s.noop()[0], 250)
        for f in self.immutable:
            subprocess.run(["chattr", "-i", f], check=True)
        code, msg = s.docmd("ETRN trig.test")
        self.assertEqual(code, 250, msg)
        s.quit()
        self.sink.wait_messages(1, timeout=20)

    # -- the queue at its page limit (BRIDGEHEAD_TEST_MAX_PAGES) ---------------
    def test_page_limit_451_then_delivers(self):
        open(self.flag, "w").close()  # the sink refuses: mail piles up in the queue
        relay = self.start(env={"BRIDGEHEAD_TEST_MAX_PAGES": "40"}, fail_file=self.flag)
        c = Client(relay.port)
        codes = [c.send("full", lines=800)[0] for _ in range(12)]
        self.assertIn(250, codes)
        self.assertIn(451, codes)
        self.assert_still_serving(c)
        os.unlink(self.flag)  # deliveries drain the queue and free its pages
        wait_for(lambda: not relay.queue_rows(), timeout=30, what="the queue to drain")
        for _ in range(3):  # room for two at a time: one after the other
            self.assertEqual(c.send("again", lines=800)[0], 250)
            wait_for(lambda: not relay.queue_rows(), timeout=30, what="the queue to drain")
        c.close()
        self.assert_delivered(c.acked, c.refused)
        self.assertEqual(relay.stop(), 0)

    # -- a really full disk: a 2 MiB tmpfs in the server's mount namespace -----
    def test_full_tmpfs_4xx_then_delivers(self):
        probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                               capture_output=True, text=True)
        if probe.returncode != 0:  # not root, or no mount namespaces here
            self.skipTest(f"unshare -m is not permitted: {probe.stderr.strip()}")
        folder = tempfile.mkdtemp(prefix="bh-it-")
        mnt = os.path.join(folder, "q")
        os.mkdir(mnt)
        # unshare(1) and sh exec in place: the PID is the server's.
        wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"', mnt]
        relay = self.start(queue="q/queue.db", wrapper=wrapper, folder=folder, delay_data=0.3)
        pid = relay.proc.pid
        self.assertEqual(os.listdir(mnt), [])  # not mounted out here

        def ns(*cmd):
            return subprocess.run(["nsenter", "-t", str(pid), "-m", "--"] + list(cmd),
                                  capture_output=True, text=True)

        def rows():
            """The queue as seen inside the server's mount namespace."""
            p = ns("/usr/bin/python3", "-c", ROWS_SCRIPT, os.path.join(mnt, "queue.db"))
            self.assertEqual(p.returncode, 0, p.stderr)
            return json.loads(p.stdout)
        relay.queue_rows = rows
        self.assertIn("tmpfs", ns("df", mnt).stdout)
        c = Client(relay.port)
        for _ in range(5):
            self.assertEqual(c.send("before", lines=200)[0], 250)
        # Fill the file system (cat stops at ENOSPC).
        filler = os.path.join(mnt, "filler")
        fill = ns("sh", "-c", f"cat /dev/zero > {filler}")
        self.assertIn("No space left", fill.stderr)
        # Big messages (spooled to a file, then a growing WAL) must be refused
        # with 451; small ones may still fit in the WAL's free pages, and
        # then their 250 is honest. Either way: never 250 without storage.
        codes = [c.send("during", lines=lines)[0] for lines in (20, 200, 1000, 4000)]
        print(f"\n  codes during the full disk: {codes}", file=sys.stderr)
        self.assertEqual(codes[-1], 451)
        self.assertTrue(set(codes) <= {250, 451}, codes)
        # MAIL with SIZE= over the free space: 452 4.3.1 (SPEC §9), once the
        # server has looked at the free space again (every 5 s).
        def size_refused():
            code, msg = c.s.mail("a@example.org", ["SIZE=100000"])
            c.s.rset()
            return code == 452 and b"4.3.1" in msg
        wait_for(size_refused, timeout=12, interval=0.5, what="452 to MAIL SIZE=")
        self.assert_still_serving(c)
        # Free the disk: new mail is accepted, everything acknowledged goes out.
        self.assertEqual(ns("rm", filler).returncode, 0)
        for lines in (20, 4000):
            self.assertEqual(c.send("after", lines=lines)[0], 250)

        def size_accepted():
            code, _ = c.s.mail("a@example.org", ["SIZE=100000"])
            c.s.rset()
            return code == 250
        wait_for(size_accepted, timeout=12, interval=0.5, what="MAIL SIZE= accepted again")
        c.close()
        self.assertTrue(c.refused)
        self.assert_delivered(c.acked, c.refused)
        self.assertEqual(relay.stop(), 0)

    # -- a damaged queue file -------------------------------------------------
    def test_damaged_queue_file_refused(self):
        """A real queue, truncated or with garbage over some pages: serve
        exits 1 naming the file (not a signal, not a hang), and so does
        `queue list`; the intact copy still works."""
        relay = self.start()
        c = Client(relay.port)
        self.sink.stop()  # nothing goes out: the mail stays in the file
        for i in range(30):
            c.send("keep", lines=1500 if i % 3 == 0 else 20)
        c.close()
        self.assertEqual(relay.stop(), 0)
        con = sqlite3.connect(relay.db)  # everything into the main file
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        with open(relay.db, "rb") as f:
            good = f.read()
        n = len(good)
        rnd = random.Random(7)

        def garbage(lo, hi):
            b = bytearray(good)
            for i in range(lo, hi):
                b[i] = rnd.randrange(256)
            return bytes(b)
        variants = {"truncated to half": good[:n // 2], "truncated to 100 bytes": good[:100],
                    "only the first page": good[:4096], "garbage pages 3-4": garbage(8192, 16384),
                    "garbage last two pages": garbage(n - 8192, n),
                    "garbage after page 1": garbage(4096, n)}

        def put(data):
            with open(relay.db, "wb") as f:
                f.write(data)
            for extra in ("-wal", "-shm"):
                if os.path.exists(relay.db + extra):
                    os.unlink(relay.db + extra)
        for name, data in variants.items():
            with self.subTest(name):
                put(data)
                p = subprocess.run([BIN, "serve", "-c", relay.config_path], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn(relay.db, p.stderr)
                self.assertRegex(p.stderr, "corrupt|not a bridgehead queue")
                self.assertNotIn("Sanitizer", p.stderr)
                q = subprocess.run([BIN, "queue", "-c", relay.config_path, "list"],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(q.returncode, 1, q.stderr)
                self.assertIn("corrupt", q.stderr)
        put(good)
        q = subprocess.run([BIN, "queue", "-c", relay.config_path, "list", "--json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(q.stdout.count("keep@example.net"), 30, q.stdout[:3000])


if __name__ == "__main__":
    unittest.main(verbosity=2)
