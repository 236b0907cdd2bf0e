#!/usr/bin/python3
"""Durability (SPEC §5): the final 250 only after the commit is on disk;
kill -9 loses no acknowledged message; a half-received message is not kept;
storage failures answer 451 and the server keeps serving; SIGTERM is
graceful; a second serve on the same queue is refused."""
import os
import smtplib
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import BIN, Raw, Relay  # noqa: E402
from sinklib import wait_for  # noqa: E402

CONFIG = """\
server:
  hostname: relay.example.org
  listen: [ { address: "127.0.0.1:@PORT@" } ]
  timeouts: { command: 3s, data: 4s }
storage:
  path: queue.db
connectors:
  - name: hold
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
"""

MSG = b"Subject: d\r\n\r\n" + b"line of body text\r\n" * 20


class Durability(unittest.TestCase):
    def setUp(self):
        self.relay = Relay(CONFIG)

    def tearDown(self):
        for f in ("queue.db", "queue.db-wal"):
            subprocess.run(["chattr", "-i", os.path.join(self.relay.dir, f)],
                           capture_output=True)
        self.relay.cleanup()

    def send_many(self, n, sessions=4):
        acked = []
        lock = threading.Lock()

        def worker(k):
            s = smtplib.SMTP("127.0.0.1", self.relay.port, timeout=20)
            s.ehlo("load.example")
            for i in range(k, n, sessions):
                s.mail("a@example.org")
                s.rcpt(f"r{i}@example.net")
                code, msg = s.data(MSG)
                if code == 250:
                    with lock:
                        acked.append(msg.decode().split()[-1])
            s.quit()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return acked

    def test_kill9_after_250_keeps_all(self):
        self.relay.start()
        acked = self.send_many(200)
        self.assertEqual(len(acked), 200)
        self.relay.kill9()
        ids = {r[0] for r in self.relay.queue_rows()}
        self.assertEqual(set(acked) - ids, set())
        # And the restarted server comes up on the same queue.
        self.relay.start()
        self.assertIn("recovered=", self.relay.log())

    def test_kill9_mid_data_not_kept(self):
        self.relay.start()
        r = Raw(self.relay.port)
        r.reply()
        r.cmd("EHLO c.example")
        r.cmd("MAIL FROM:<a@example.org>")
        r.cmd("RCPT TO:<half@example.net>")
        self.assertTrue(r.cmd("DATA").startswith("354"))
        r.send(b"Subject: half\r\n\r\n" + b"x" * 500 + b"\r\n" * 1000)
        time.sleep(0.3)
        self.relay.kill9()
        r.close()
        self.assertEqual([x for x in self.relay.queue_rows() if x[2] == "half@example.net"], [])
        # Nothing else left over either: the spool is cleaned at start.
        self.relay.start()
        self.assertEqual([f for f in os.listdir(self.relay.dir) if f.startswith("spool-")], [])

    def test_readonly_db_answers_451_and_recovers(self):
        self.relay.start()
        self.assertEqual(len(self.send_many(5, 1)), 5)
        for f in ("queue.db", "queue.db-wal"):
            subprocess.run(["chattr", "+i", os.path.join(self.relay.dir, f)], check=True)
        s = smtplib.SMTP("127.0.0.1", self.relay.port, timeout=20)
        s.ehlo("c.example")
        s.mail("a@example.org")
        s.rcpt("ro@example.net")
        code, msg = s.data(MSG)
        self.assertEqual(code, 451, msg)
        self.assertIn(b"4.3.0", msg)
        self.assertEqual(s.noop()[0], 250)  # still serving
        for f in ("queue.db", "queue.db-wal"):
            subprocess.run(["chattr", "-i", os.path.join(self.relay.dir, f)], check=True)
        s.mail("a@example.org")
        s.rcpt("ro2@example.net")
        code, msg = s.data(MSG)
        self.assertEqual(code, 250, msg)
        s.quit()
        rows = [x[2] for x in self.relay.queue_rows()]
        self.assertIn("ro2@example.net", rows)
        self.assertNotIn("ro@example.net", rows)

    def test_full_disk_answers_451(self):
        self.relay.env["BRIDGEHEAD_TEST_MAX_PAGES"] = "40"
        self.relay.start()
        big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 60
        codes = []
        s = smtplib.SMTP("127.0.0.1", self.relay.port, timeout=20)
        s.ehlo("c.example")
        for i in range(12):
            s.mail("a@example.org")
            s.rcpt(f"full{i}@example.net")
            codes.append(s.data(big)[0])
        self.assertIn(250, codes)
        self.assertIn(451, codes)
        self.assertEqual(s.noop()[0], 250)
        s.quit()
        stored = {x[2] for x in self.relay.queue_rows()}
        for i, c in enumerate(codes):
            self.assertEqual(c == 250, f"full{i}@example.net" in stored)

    def test_sigterm_graceful(self):
        self.relay.start()
        r = Raw(self.relay.port)
        r.reply()
        r.cmd("EHLO c.example")
        self.relay.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        rep = r.cmd("MAIL FROM:<a@example.org>")
        self.assertEqual(rep.strip(), "421 4.3.2 shutting down")
        self.assertEqual(self.relay.proc.wait(timeout=15), 0)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.relay.port), timeout=1)

    def test_sigterm_grace_then_close(self):
        """A session that says nothing more gets 10 s (SPEC §9), then is
        closed, and serve exits 0 (timeouts longer than that here)."""
        self.relay.cleanup()
        self.relay = Relay(CONFIG.replace("command: 3s, data: 4s", "command: 60s, data: 60s"))
        self.relay.start()
        r = Raw(self.relay.port)
        r.reply()
        r.cmd("EHLO idle.example")
        t0 = time.monotonic()
        self.relay.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.relay.proc.wait(timeout=30), 0)
        took = time.monotonic() - t0
        self.assertGreater(took, 9.0)
        self.assertLess(took, 14.0)
        self.assertTrue(r.closed(timeout=2))

    def test_second_serve_refused(self):
        self.relay.start()
        p = subprocess.run([BIN, "serve", "-c", self.relay.config_path], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertIn("in use", p.stderr)
        self.assertIsNone(self.relay.proc.poll())

    def test_command_timeout(self):
        self.relay.start()
        r = Raw(self.relay.port)
        r.reply()
        r.send("EHLO slow")  # no CRLF: partial bytes do not reset the deadline
        t0 = time.time()
        for _ in range(4):
            time.sleep(0.5)
            r.send("x")
        rep = r.reply()
        self.assertTrue(rep.startswith("421 4.4.2"), rep)
        self.assertLess(time.time() - t0, 6)
        self.assertTrue(r.closed())

    def test_data_timeout(self):
        self.relay.start()
        r = Raw(self.relay.port)
        r.reply()
        r.cmd("EHLO slow")
        r.cmd("MAIL FROM:<a@example.org>")
        r.cmd("RCPT TO:<slow@example.net>")
        self.assertTrue(r.cmd("DATA").startswith("354"))
        t0 = time.time()
        for _ in range(14):  # a line every 0.5 s: the whole DATA phase has 4 s
            try:
                r.send("more body\r\n")
            except OSError:
                break  # the server has closed
            time.sleep(0.5)
        rep = r.reply()
        self.assertTrue(rep.startswith("421 4.4.2"), rep)
        self.assertLess(time.time() - t0, 7)

    def test_foreign_file_refused(self):
        with open(self.relay.db, "w") as f:
            f.write("this is not a queue\n" * 100)
        self.relay.start(wait=False)
        self.assertEqual(self.relay.proc.wait(timeout=20), 1)
        self.assertIn("queue.db", self.relay.log())


class Listeners(unittest.TestCase):
    def test_implicit_tls_and_greet_delay(self):
        import ssl
        from bhtest import make_cert
        relay = Relay("""\
server:
  hostname: relay.example.org
  listen:
    - { address: "127.0.0.1:@PORT@", tls: implicit }
  tls: { certificate: server.pem, key: server.key }
  greet_delay: 1s
storage: { path: queue.db }
connectors:
  - name: hold
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
""")
        try:
            make_cert(relay.dir, "relay.example.org")
            relay.start()
            ctx = ssl.create_default_context(cafile=os.path.join(relay.dir, "server.pem"))
            ctx.check_hostname = False
            t0 = time.time()
            s = smtplib.SMTP_SSL("127.0.0.1", relay.port, timeout=10, context=ctx)
            self.assertGreaterEqual(time.time() - t0, 0.9)  # the 220 waited
            s.ehlo("tls.example")
            self.assertFalse(s.has_extn("starttls"))
            s.sendmail("a@example.org", ["imp@example.net"], MSG)
            s.quit()
            self.assertIn("imp@example.net", [x[2] for x in relay.queue_rows()])
            self.assertIn(b"ESMTPS", relay.body(relay.queue_rows()[0][0])[:300])
            # Talking before the greeting: 554 and close.
            raw = socket.create_connection(("127.0.0.1", relay.port))
            t = ssl.create_default_context()
            t.check_hostname = False
            t.verify_mode = ssl.CERT_NONE
            w = t.wrap_socket(raw, server_hostname="x")
            w.sendall(b"EHLO early\r\n")
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = w.recv(1000)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"554 5.5.1"), data)
            w.close()
        finally:
            relay.cleanup()


class Limits(unittest.TestCase):
    def test_connection_limits(self):
        relay = Relay(CONFIG.replace("  timeouts:", "  max_connections: 6\n"
                                     "  max_connections_per_ip: 3\n  timeouts:"))
        try:
            relay.start()
            time.sleep(0.5)  # the start-up probe connection must be gone first
            held = []
            for _ in range(3):
                r = Raw(relay.port)
                self.assertTrue(r.reply().startswith("220"))
                held.append(r)
            r = Raw(relay.port)
            self.assertTrue(r.reply().startswith("421 4.7.0"))
            self.assertTrue(r.closed())
            time.sleep(0.3)  # the refused session must be gone before the next count
            for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
                x = Raw(relay.port, source=src)
                self.assertTrue(x.reply().startswith("220"))
                held.append(x)
            x = Raw(relay.port, source="127.0.0.5")
            self.assertTrue(x.reply().startswith("421 4.7.0"))
            self.assertTrue(x.closed())
            held[0].close()
            time.sleep(0.3)
            y = Raw(relay.port)
            self.assertTrue(y.reply().startswith("220"))
        finally:
            relay.cleanup()

    def test_ipv6_listener(self):
        relay = Relay(CONFIG.replace('"127.0.0.1:@PORT@"', '"127.0.0.1:@PORT@" }, { address: "[::1]:@PORT@"'))
        try:
            relay.start()
            s = smtplib.SMTP("::1", relay.port, timeout=10)
            s.ehlo("v6.example")
            code, _ = s.mail("a@example.org")
            self.assertEqual(code, 250)
            self.assertEqual(s.rcpt("v6@example.net")[0], 250)
            self.assertEqual(s.data(MSG)[0], 250)
            s.quit()
            self.assertIn("client=::1", relay.log())
        finally:
            relay.cleanup()

    def test_wildcard_v4_and_v6_on_one_port(self):
        """[::] is IPv6 only (SPEC §2), so 0.0.0.0 and [::] on the same port
        both bind, and each family reaches the server as itself. In a network
        namespace of the test's own, whose only interface is loopback."""
        wrapper = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
        relay = Relay(CONFIG.replace('"127.0.0.1:@PORT@"',
                                     '"0.0.0.0:@PORT@" }, { address: "[::]:@PORT@"'),
                      wrapper=wrapper)
        try:
            relay.start(wait=False)
            # Enter its namespace only once it listens: before unshare(2)
            # has run, nsenter would join the test's own namespace.
            wait_for(lambda: "event=listening address=[::]" in relay.log()
                     or relay.proc.poll() is not None, timeout=30)
            self.assertIsNone(relay.proc.poll(), relay.log())
            probe = ("import smtplib, sys, time\n"
                     "for i in range(100):\n"
                     "    try:\n"
                     "        s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=10)\n"
                     "        break\n"
                     "    except OSError:\n"
                     "        time.sleep(0.1)\n"
                     "else:\n"
                     "    sys.exit('nothing answers on ' + sys.argv[1])\n"
                     "print(s.ehlo('both.example')[0]); s.quit()\n")
            for host in ("127.0.0.1", "::1"):
                p = subprocess.run(["nsenter", "-t", str(relay.proc.pid), "-n", "/usr/bin/python3",
                                    "-c", probe, host, str(relay.port)],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual((p.returncode, p.stdout.strip()), (0, "250"), p.stderr)
            log = relay.log()
            self.assertIn("event=listening address=0.0.0.0:", log)
            self.assertIn("event=listening address=[::]:", log)
            self.assertIsNone(relay.proc.poll())
        finally:
            relay.cleanup()

    def test_max_connections_beyond_the_fd_limit(self):
        """A max_connections the file descriptor limit cannot hold is refused
        at start (exit 1, with the numbers), not found out under load."""
        relay = Relay(CONFIG.replace("server:\n", "server:\n  max_connections: 5000\n", 1))
        try:
            p = subprocess.run(["prlimit", "--nofile=256:256", BIN, "serve", "-c",
                                relay.config_path], capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("max_connections 5000 needs", p.stderr)
            self.assertIn("is 256", p.stderr)
        finally:
            relay.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
