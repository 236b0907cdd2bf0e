#!/usr/bin/python3
"""Scale-out (SPEC §8): bridgehead nodes sharing one queue in PostgreSQL, on a
throwaway cluster (pglib.py). Mail accepted on either node is delivered
exactly once; new mail on one node wakes the other (LISTEN/NOTIFY);
source_nodes keeps a connector's mail on the nodes named; a node killed with
-9 in the middle of deliveries has its leases taken over after the deadline
with nothing lost; a node stalled (SIGSTOP) past its deadline has its entries
taken over and, once it runs again, abandons its sessions instead of
delivering a second copy; a second node with the same name is refused; a
session longer than the lease keeps it by renewal; `queue` commands wake the
other nodes; several nodes starting at once on an empty database migrate it
once.
The lease length is 6 s here (BRIDGEHEAD_TEST_LEASE_SECONDS)."""
import json
import os
import signal
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import BIN, Relay, wait_port  # noqa: E402
from pglib import PgCluster, available  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402

LEASE = 6

CONFIG = """\
server:
  hostname: relay-{node}.test
  node: {node}
  listen: [ {{ address: "127.0.0.1:@PORT@" }} ]
storage:
  backend: postgres
  dsn: "{dsn}"
queue: {{ retry_initial: 1s, retry_max: 2s }}
connectors:
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["{fast}"]
  - name: bonly
    address_spaces: [b.test]
    bridgeheads: ["{fast}"]
    source_nodes: [b]
  - name: slow
    address_spaces: [slow.test]
    bridgeheads: ["{slow}"]
"""

MSG = "Subject: scale-out\r\n\r\nhello\r\n"


def send(relay, rcpt):
    s = smtplib.SMTP("127.0.0.1", relay.port, timeout=20)
    s.sendmail("a@example.org", [rcpt], MSG)
    s.quit()


def by_rcpt(sink):
    """recipient -> list of the HELO names that delivered it."""
    out = {}
    for m in sink.messages():
        for r in m["rcpt_tos"]:
            out.setdefault(r, []).append(m["helo"])
    return out


class ScaleOut(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # No skipping: PostgreSQL is one of the test dependencies (.ci/deps.sh).
        assert available(), "PostgreSQL is not installed (sh .ci/deps.sh)"
        cls.pg = PgCluster().start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def setUp(self):
        self.pg.sql("DROP TABLE IF EXISTS entries, bodies, messages, bh_meta CASCADE;"
                    " DROP FUNCTION IF EXISTS bh_remove_entry(bigint, text)")
        self.fast = start_sink(name="fast")
        self.slow = start_sink(name="slow", delay_greeting=4)
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGCONT)
            n.cleanup()
        self.fast.stop()
        self.slow.stop()

    def node(self, name, start=True):
        cfg = CONFIG.format(node=name, dsn=self.pg.dsn, fast=self.fast.address,
                            slow=self.slow.address)
        r = Relay(cfg, env={"BRIDGEHEAD_TEST_LEASE_SECONDS": str(LEASE)})
        self.nodes.append(r)
        return r.start() if start else r

    def entries(self):
        return self.pg.sql("SELECT e.rcpt, e.state, coalesce(e.lease_node, '') FROM entries e"
                           " ORDER BY e.eid")

    def queue_list(self, relay):
        out = subprocess.run([BIN, "queue", "-c", relay.config_path, "list", "--json"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return [json.loads(line) for line in out.stdout.splitlines()]

    def test_exactly_once_and_wake(self):
        a, b = self.node("a"), self.node("b")
        rcpts = []
        for i in range(10):
            for relay, tag in ((a, "a"), (b, "b")):
                rcpt = f"u{i}-{tag}@x.test"
                send(relay, rcpt)
                rcpts.append(rcpt)
        t0 = time.time()
        # source_nodes: [b] — accepted on a, delivered by b only, at once
        # (b learns of it through NOTIFY: it has no timer for it).
        for i in range(3):
            send(a, f"v{i}@b.test")
        wait_for(lambda: len(by_rcpt(self.fast)) == 23, timeout=30, what="23 recipients")
        self.assertLess(time.time() - t0, 10)
        seen = by_rcpt(self.fast)
        for rcpt in rcpts + [f"v{i}@b.test" for i in range(3)]:
            self.assertEqual(len(seen.get(rcpt, [])), 1, f"{rcpt}: {seen.get(rcpt)}")
        for i in range(3):
            self.assertEqual(seen[f"v{i}@b.test"], ["relay-b.test"])
        helos = {h for hs in seen.values() for h in hs}
        self.assertEqual(helos, {"relay-a.test", "relay-b.test"})  # both nodes worked
        wait_for(lambda: self.entries() == [], timeout=10, what="an empty queue")
        self.assertEqual(a.stop(), 0)
        self.assertEqual(b.stop(), 0)

    def test_same_node_refused(self):
        self.node("a")
        twin = self.node("a", start=False)
        twin.start(wait=False)
        self.assertEqual(twin.proc.wait(timeout=30), 1)
        self.assertIn("already running", twin.log())

    def test_list_shows_lease_holder(self):
        a = self.node("a")
        send(a, "w@slow.test")  # the slow sink holds the session 4 s
        wait_for(lambda: [e[1:] for e in self.entries()] == [["5", "a"]], timeout=10,
                 what="a lease by node a")
        rows = self.queue_list(a)
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["state"], "delivering")
        self.assertEqual(rows[0]["node"], "a")
        out = subprocess.run([BIN, "queue", "-c", a.config_path, "show", "--json", rows[0]["id"]],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual([r["node"] for r in json.loads(out.stdout)["recipients"]], ["a"])
        out = subprocess.run([BIN, "queue", "-c", a.config_path, "show", rows[0]["id"]],
                             capture_output=True, text=True, timeout=30)
        self.assertIn("leased by:  a", out.stdout)
        self.slow.wait_messages(1, timeout=20)

    def test_kill9_takeover(self):
        a = self.node("a")
        rcpts = [f"k{i}@slow.test" for i in range(6)]
        for r in rcpts:
            send(a, r)
        wait_for(lambda: sorted(e[1:] for e in self.entries()) == [["5", "a"]] * 6,
                 timeout=15, what="six leases held by a")
        b = self.node("b")
        a.kill9()
        killed = time.time()
        wait_for(lambda: set(by_rcpt(self.slow)) == set(rcpts), timeout=60,
                 what="every recipient delivered after the takeover")
        seen = by_rcpt(self.slow)
        for r in rcpts:  # a never got past the delayed greeting: exactly once
            self.assertEqual(seen[r], ["relay-b.test"], r)
        # b waited for the lease deadline (6 s from a's lease or last renewal).
        self.assertGreater(time.time() - killed, 4 + 1)
        wait_for(lambda: self.entries() == [], timeout=10, what="an empty queue")
        self.assertEqual(b.stop(), 0)

    def test_sigstop_no_double_delivery(self):
        a = self.node("a")
        rcpts = [f"s{i}@slow.test" for i in range(4)]
        for r in rcpts:
            send(a, r)
        wait_for(lambda: sorted(e[1:] for e in self.entries()) == [["5", "a"]] * 4,
                 timeout=15, what="four leases held by a")
        a.proc.send_signal(signal.SIGSTOP)  # a's sessions wait on the 4 s greeting
        b = self.node("b")
        wait_for(lambda: set(by_rcpt(self.slow)) == set(rcpts), timeout=60,
                 what="b delivered a's entries after the lease deadline")
        a.proc.send_signal(signal.SIGCONT)
        # a's sessions get their greeting, then find the lease gone before
        # the body: no second copy; the queue is empty.
        wait_for(lambda: "lease lost" in a.log(), timeout=30, what="a abandoning its sessions")
        time.sleep(2)
        seen = by_rcpt(self.slow)
        for r in rcpts:
            self.assertEqual(seen[r], ["relay-b.test"], r)
        self.assertEqual(self.entries(), [])
        self.assertEqual(a.stop(), 0)
        self.assertEqual(b.stop(), 0)

    def test_long_session_keeps_its_lease(self):
        """A session longer than the lease: the holder renews it (every third
        of the lease) and delivers once; the other node never takes over."""
        self.slow.restart(delay_greeting=None, delay_data=LEASE + 4)
        a, b = self.node("a"), self.node("b")
        send(a, "long@slow.test")
        self.slow.wait_messages(1, timeout=LEASE + 20)
        time.sleep(3)  # a takeover by the other node would deliver a second copy by now
        seen = by_rcpt(self.slow)
        self.assertEqual(list(seen), ["long@slow.test"])
        self.assertEqual(len(seen["long@slow.test"]), 1, seen)  # either node, once
        self.assertNotIn("lease lost", a.log() + b.log())
        wait_for(lambda: self.entries() == [], timeout=10, what="an empty queue")
        self.assertEqual(a.stop(), 0)
        self.assertEqual(b.stop(), 0)

    def test_queue_command_wakes_the_other_node(self):
        """`queue release` on node a wakes node b (NOTIFY) for mail only b may
        deliver (source_nodes); without it b would sleep for minutes."""
        a = self.node("a")
        send(a, "held@b.test")
        rows = self.queue_list(a)
        self.assertEqual([r["state"] for r in rows], ["queued"])
        q = [BIN, "queue", "-c", a.config_path]
        self.assertEqual(subprocess.run(q + ["hold", rows[0]["id"]], capture_output=True,
                                        timeout=30).returncode, 0)
        b = self.node("b")
        time.sleep(1.5)  # b has looked at the queue and found nothing to do
        self.assertEqual(by_rcpt(self.fast), {})
        t0 = time.time()
        self.assertEqual(subprocess.run(q + ["release", rows[0]["id"]], capture_output=True,
                                        timeout=30).returncode, 0)
        wait_for(lambda: by_rcpt(self.fast) == {"held@b.test": ["relay-b.test"]}, timeout=10,
                 what="b delivering after the release")
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(a.stop(), 0)
        self.assertEqual(b.stop(), 0)

    def test_first_start_of_several_nodes_at_once(self):
        """Four nodes start together on an empty database: the migration runs
        once, under the advisory lock, and every node comes up."""
        nodes = [self.node(n, start=False) for n in "abcd"]
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            wait_port(n.port, proc=n.proc, timeout=30)
        self.assertEqual(self.pg.sql("SELECT k FROM bh_meta ORDER BY k"),
                         [["application"], ["version"]])
        for i, n in enumerate(nodes):
            send(n, f"m{i}@x.test")
        wait_for(lambda: len(by_rcpt(self.fast)) == 4, timeout=20, what="four deliveries")
        for n in nodes:
            self.assertEqual(n.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
