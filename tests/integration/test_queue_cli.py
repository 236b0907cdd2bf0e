#!/usr/bin/python3
"""bridgehead queue and bridgehead reload (SPEC §6, §9): on the queue file
when no server runs, through the control socket when one does; JSON shapes
and values, hold/release/delete/flush, stats, exit codes (1 unknown ID, 64
usage, 69 reload without a server), reload applied or refused with
positioned errors while the server keeps running."""
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import BIN, Relay  # noqa: E402

CONFIG = """\
server:
  hostname: relay.example.org
  listen: [ { address: "127.0.0.1:@PORT@" } ]
storage:
  path: queue.db
connectors:
  - name: hold
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
"""

KEYS = {"id", "recipient", "sender", "connector", "state", "attempts", "size", "received",
        "next_attempt", "last_reply", "node"}
BUCKETS = ["0-5m", "5-10m", "10-20m", "20-40m", "40-80m", "80-160m", "160-320m",
           "320-640m", "640-1280m", "1280m+"]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UNKNOWN_ID = "AAAAAAAAAAAAAAAA"


def run(*args, timeout=30):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def send(port, sender, rcpts, body=b"Subject: q\r\n\r\nbody\r\n"):
    """Send one message; return its queue ID from the DATA reply."""
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo("cli.example")
    s.mail(sender)
    for r in rcpts:
        code, _ = s.rcpt(r)
        assert code == 250, code
    code, msg = s.data(body)
    s.quit()
    assert code == 250, (code, msg)
    return msg.decode().split()[-1]


def wait_for(pred, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class QueueCase(unittest.TestCase):
    """A relay with three entries: ID1 (two recipients) and ID2 from <>."""
    keep_running = False

    def setUp(self):
        self.relay = Relay(CONFIG)
        self.relay.start()
        self.sock = os.path.join(self.relay.dir, "queue.db.sock")
        self.assertTrue(wait_for(lambda: os.path.exists(self.sock)))
        self.id1 = send(self.relay.port, "a@example.org", ["x@example.net", "y@example.com"])
        self.id2 = send(self.relay.port, "", ["z@example.net"])
        if not self.keep_running:
            self.assertEqual(self.relay.stop(), 0)

    def tearDown(self):
        self.relay.cleanup()

    def q(self, *args):
        return run("queue", "-c", self.relay.config_path, *args)

    def list_json(self, *args):
        rc, out, err = self.q("list", "--json", *args)
        self.assertEqual(rc, 0, err)
        return [json.loads(line) for line in out.splitlines()]

    def states(self, qid):
        return sorted(e["state"] for e in self.list_json() if e["id"] == qid)

    def tried(self, qid):
        """Every entry of qid has been tried and is no longer being delivered."""
        es = [e for e in self.list_json() if e["id"] == qid]
        return bool(es) and all(e["last_reply"] and e["state"] != "delivering" for e in es)

    # Checks shared by both classes: each runs them with and without a server.

    def check_list_json(self):
        entries = self.list_json()
        self.assertEqual(len(entries), 3)
        for e in entries:
            self.assertEqual(set(e), KEYS)
            self.assertEqual(e["connector"], "hold")
            self.assertEqual(e["state"], "triggered")
            self.assertEqual(e["attempts"], 0)
            self.assertIsInstance(e["size"], int)
            self.assertGreater(e["size"], 0)
            self.assertRegex(e["received"], ISO)
            self.assertIsNone(e["next_attempt"])
            self.assertIsNone(e["last_reply"])
        self.assertEqual([(e["id"], e["recipient"], e["sender"]) for e in entries],
                         [(self.id1, "x@example.net", "a@example.org"),
                          (self.id1, "y@example.com", "a@example.org"),
                          (self.id2, "z@example.net", "<>")])

    def check_list_text_and_filters(self):
        rc, out, err = self.q("list")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("ID "), out)
        self.assertEqual(len(lines), 4, out)
        self.assertIn("<> -> <z@example.net>", out)
        self.assertEqual(len(self.list_json("--state", "triggered")), 3)
        self.assertEqual(self.list_json("--state", "held"), [])
        self.assertEqual(self.list_json("--connector", "other"), [])
        self.assertEqual(len(self.list_json("--connector", "hold")), 3)
        # Options before the sub-verb, and -c after it.
        rc, out, _ = run("queue", "--json", "--state", "triggered", "list",
                         "-c", self.relay.config_path)
        self.assertEqual(rc, 0)
        self.assertEqual(len(out.splitlines()), 3)

    def check_show(self):
        rc, out, err = self.q("show", self.id1)
        self.assertEqual(rc, 0, err)
        for s in (self.id1, "<a@example.org>", "x@example.net", "y@example.com", "triggered"):
            self.assertIn(s, out)
        rc, out, err = self.q("show", "--json", self.id1.lower())
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(len(lines), 1)
        m = json.loads(lines[0])
        self.assertEqual(m["id"], self.id1)
        self.assertEqual(m["sender"], "a@example.org")
        self.assertRegex(m["received"], ISO)
        self.assertGreater(m["size"], 0)
        self.assertEqual([r["recipient"] for r in m["recipients"]],
                         ["x@example.net", "y@example.com"])
        self.assertEqual({r["state"] for r in m["recipients"]}, {"triggered"})
        self.assertEqual({r["node"] for r in m["recipients"]}, {None})  # SQLite: no leases

    def check_hold_release_delete(self):
        rc, out, err = self.q("hold", self.id1)
        self.assertEqual((rc, err), (0, ""))
        self.assertIn(self.id1, out)
        held = self.list_json("--state", "held")
        self.assertEqual([e["id"] for e in held], [self.id1, self.id1])
        self.assertEqual({e["next_attempt"] for e in held}, {None})
        self.assertEqual(self.q("release", self.id1)[0], 0)
        self.assertEqual(self.states(self.id1), ["triggered", "triggered"])
        self.assertEqual(self.q("delete", self.id2)[0], 0)
        self.assertEqual({e["id"] for e in self.list_json()}, {self.id1})
        rc, _, err = self.q("delete", self.id2)
        self.assertEqual(rc, 1)
        self.assertIn("no such message", err)

    def check_unknown_id(self):
        for verb in ("show", "hold", "release", "delete", "flush"):
            rc, out, err = self.q(verb, UNKNOWN_ID)
            self.assertEqual(rc, 1, (verb, out, err))
            self.assertIn(UNKNOWN_ID, err)
        rc, _, err = self.q("hold", "not-an-id")
        self.assertEqual(rc, 1)
        self.assertIn("not a queue ID", err)

    def check_stats(self):
        rc, out, err = self.q("stats")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["CONNECTOR", "STATE", "TOTAL"] + BUCKETS)
        self.assertEqual(lines[1].split()[:4], ["hold", "triggered", "3", "3"])
        self.assertEqual(lines[-1].split()[:3], ["TOTAL", "3", "3"])
        rc, out, err = self.q("stats", "--json")
        self.assertEqual(rc, 0, err)
        rows = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["connector"], "hold")
        self.assertEqual(rows[0]["state"], "triggered")
        self.assertEqual(rows[0]["total"], 3)
        self.assertEqual(list(rows[0]["buckets"]), BUCKETS)
        self.assertEqual(rows[0]["buckets"]["0-5m"], 3)

    def check_usage(self):
        for args in (["list", "--bogus"], ["--bogus", "list"], ["show"], ["frobnicate"],
                     ["list", "--state", "nope"], ["hold", self.id1, "--json"],
                     ["flush", "--connector", "hold", self.id1], ["list", "--connector"], []):
            rc, out, err = self.q(*args)
            self.assertEqual(rc, 64, (args, out, err))
            self.assertIn("usage: bridgehead queue", err)
        rc, out, _ = self.q("--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: bridgehead queue", out)


class WithoutServer(QueueCase):
    def test_list_json(self):
        self.check_list_json()

    def test_list_text_and_filters(self):
        self.check_list_text_and_filters()

    def test_show(self):
        self.check_show()

    def test_hold_release_delete(self):
        self.check_hold_release_delete()

    def test_unknown_id(self):
        self.check_unknown_id()

    def test_stats(self):
        self.check_stats()

    def test_usage(self):
        self.check_usage()

    def test_flush(self):
        rc, out, err = self.q("flush", self.id2)
        self.assertEqual(rc, 0, err)
        self.assertIn("1 entry", out)
        self.assertEqual(self.states(self.id2), ["queued"])
        due = [e for e in self.list_json() if e["id"] == self.id2][0]["next_attempt"]
        self.assertRegex(due, ISO)
        self.assertEqual(self.q("hold", self.id1)[0], 0)
        rc, out, _ = self.q("flush", "--connector", "hold")
        self.assertEqual(rc, 0)
        self.assertIn("1 entry", out)  # the held ones stay held
        self.assertEqual(self.states(self.id1), ["held", "held"])

    def test_stale_socket_is_ignored_and_replaced(self):
        self.relay.start()
        self.assertTrue(wait_for(lambda: os.path.exists(self.sock)))
        self.relay.kill9()
        self.assertTrue(os.path.exists(self.sock))
        self.assertEqual(len(self.list_json()), 3)  # directly: the socket is stale
        self.assertEqual(self.q("hold", self.id1)[0], 0)
        self.relay.start()
        self.assertTrue(wait_for(lambda: b"end 0" in self.raw(b"stats\n")))
        self.assertEqual(self.states(self.id1), ["held", "held"])

    def raw(self, data):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(self.sock)
                s.sendall(data)
                buf = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        return buf
                    buf += chunk
        except OSError:
            return b""

    def test_no_queue_file(self):
        folder = tempfile.mkdtemp(prefix="bh-q-")
        try:
            cfg = os.path.join(folder, "bridgehead.yaml")
            with open(cfg, "w") as f:
                f.write(CONFIG.replace("@PORT@", "2525"))
            for args in (["list"], ["list", "--json"], ["stats"], ["stats", "--json"]):
                self.assertEqual(run("queue", "-c", cfg, *args), (0, "", ""))
            self.assertEqual(run("queue", "-c", cfg, "show", self.id1)[0], 1)
            self.assertEqual(run("queue", "-c", cfg, "hold", self.id1)[0], 1)
            self.assertFalse(os.path.exists(os.path.join(folder, "queue.db")))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def test_reload_without_server(self):
        rc, out, err = run("reload", "-c", self.relay.config_path)
        self.assertEqual(rc, 69, (out, err))
        self.assertIn("no server", err)

    def test_reload_bad_config_is_not_sent(self):
        with open(self.relay.config_path, "a") as f:
            f.write("bogus: 1\n")
        rc, out, err = run("reload", "-c", self.relay.config_path)
        self.assertEqual(rc, 1, (out, err))
        self.assertRegex(err, r"bridgehead\.yaml:\d+:\d+: ")

    def test_reload_usage(self):
        rc, _, err = run("reload", "-c", self.relay.config_path, "--bogus")
        self.assertEqual(rc, 64)
        self.assertIn("usage: bridgehead reload", err)
        self.assertEqual(run("reload", "extra")[0], 64)


class WithServer(QueueCase):
    keep_running = True

    def test_socket_mode(self):
        st = os.lstat(self.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)

    def test_list_json(self):
        self.check_list_json()

    def test_list_text_and_filters(self):
        self.check_list_text_and_filters()

    def test_show(self):
        self.check_show()

    def test_hold_release_delete(self):
        self.check_hold_release_delete()
        self.assertIn(f"id={self.id1} event=control request=hold status=ok", self.relay.log())

    def test_unknown_id(self):
        self.check_unknown_id()

    def test_stats(self):
        self.check_stats()

    def test_usage(self):
        self.check_usage()

    def test_takes_effect_within_a_second(self):
        t0 = time.time()
        self.assertEqual(self.q("hold", self.id1)[0], 0)
        self.assertEqual(self.states(self.id1), ["held", "held"])
        self.assertLess(time.time() - t0, 1.0)
        rows = [r for r in self.relay.queue_rows() if r[0] == self.id1]
        self.assertEqual(len(rows), 2)

    def test_flush_wakes_the_scheduler(self):
        rc, out, err = self.q("flush", self.id2)
        self.assertEqual(rc, 0, err)
        self.assertIn("1 entry", out)
        # The triggered entry goes out (to a closed port), fails temporarily
        # and, on a triggered connector, waits for the next trigger (SPEC §4).
        self.assertTrue(wait_for(lambda: self.tried(self.id2), 10), self.list_json())
        self.assertEqual(self.states(self.id2), ["triggered"])
        self.assertEqual(self.states(self.id1), ["triggered", "triggered"])

    def test_delete_while_waiting_then_flush(self):
        self.assertEqual(self.q("flush", "--connector", "hold", "--now")[0], 0)
        self.assertEqual(self.q("delete", self.id1)[0], 0)
        self.assertTrue(wait_for(lambda: self.tried(self.id2), 10), self.list_json())
        self.assertEqual(self.states(self.id2), ["triggered"])
        self.assertEqual(self.states(self.id1), [])
        self.assertIsNone(self.relay.proc.poll())

    def test_reload_ok(self):
        rc, out, err = run("reload", "-c", self.relay.config_path)
        self.assertEqual(rc, 0, (out, err))
        self.assertIn("event=reload status=ok", self.relay.log())
        self.assertIsNone(self.relay.proc.poll())

    def test_reload_twice(self):
        for _ in range(2):
            rc, out, err = run("reload", "-c", self.relay.config_path)
            self.assertEqual(rc, 0, (out, err))
        self.assertEqual(self.relay.log().count("event=reload status=ok"), 2)
        self.assertEqual(len(self.list_json()), 3)

    def test_reload_refused_by_server(self):
        # The command checks its own copy (same queue), the server reads a
        # broken file: the server's positioned errors come back.
        client = os.path.join(self.relay.dir, "client.yaml")
        shutil.copy(self.relay.config_path, client)
        with open(self.relay.config_path, "a") as f:
            f.write("  - name: broken\n    address_spaces: [\"a*b.com\"]\n")
        rc, out, err = run("reload", "-c", client)
        self.assertEqual(rc, 1, (out, err))
        self.assertRegex(err, r"bridgehead\.yaml:\d+:\d+: ")
        self.assertIn("old one stays", err)
        self.assertIn("event=reload status=rejected", self.relay.log())
        # Still running, on the old config.
        self.assertIsNone(self.relay.proc.poll())
        rc, out, _ = run("queue", "-c", client, "list", "--json")
        self.assertEqual((rc, len(out.splitlines())), (0, 3))
        send(self.relay.port, "b@example.org", ["w@example.net"])

    def test_reload_bad_config_is_not_sent(self):
        with open(self.relay.config_path, "a") as f:
            f.write("bogus: 1\n")
        rc, out, err = run("reload", "-c", self.relay.config_path)
        self.assertEqual(rc, 1, (out, err))
        self.assertRegex(err, r"bridgehead\.yaml:\d+:\d+: ")
        self.assertNotIn("event=reload", self.relay.log())

    def test_bad_requests_on_the_socket(self):
        def raw(data):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(self.sock)
                s.sendall(data)
                buf = b""
                while True:
                    try:
                        chunk = s.recv(65536)
                    except ConnectionResetError:  # it closed with our input unread
                        chunk = b""
                    if not chunk:
                        return buf.decode()
                    buf += chunk
        for data in (b"frobnicate\n", b"list state=nope\n", b"hold\n", b"\x00\xff\n",
                     b"x" * 5000, b"list connector=a\x01b\n"):
            answer = raw(data)
            self.assertRegex(answer, r"end -\d+\n$", data)
        self.assertIn("end 0\n", raw(b"stats json\n"))
        self.assertEqual(raw(b"list json\n").count("out {"), 3)
        self.assertIsNone(self.relay.proc.poll())

    def test_sigterm_removes_the_socket(self):
        self.assertEqual(self.q("hold", self.id1)[0], 0)
        idle = socket.socket(socket.AF_UNIX)  # connected, never asks: closed at stop
        idle.connect(self.sock)
        try:
            self.assertEqual(self.relay.stop(signal.SIGTERM), 0)
        finally:
            idle.close()
        self.assertFalse(os.path.exists(self.sock))
        self.assertNotIn("ERROR: AddressSanitizer", self.relay.log())


if __name__ == "__main__":
    unittest.main()
