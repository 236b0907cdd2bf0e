#!/usr/bin/python3
"""ATRN (RFC 2645 On-Demand Mail Relay, SPEC §5) end to end: mail for a
customer's domain is accepted on the normal listener and held by a
triggered connector; the customer connects to the odmr listener, STARTTLS,
AUTH PLAIN, ATRN, and then acts as the SMTP server on the same TLS socket
(the Recorder below), while bridgehead delivers as the client."""
import base64
import os
import shutil
import smtplib
import sqlite3
import ssl
import sys
import tempfile
import time
import unittest
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # crypt: fine in Debian's 3.11
    import crypt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import Raw, Relay, free_port, make_cert  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402

PASSWORD = "odmr-s3cret"

CONFIG = """\
server:
  hostname: relay.example.org
  listen:
    - {{ address: "127.0.0.1:@PORT@" }}
    - {{ address: "127.0.0.1:{odmr}", odmr: true }}
  relay_networks: ["127.0.0.1/32"]
  tls: {{ certificate: cert.pem, key: key.pem }}
  users_file: users.txt
storage:
  path: queue.db
queue: {{ retry_initial: 1s, retry_max: 2s, delay_warning: 0s }}
connectors:
  - name: odmr
    address_spaces: [customer.test, other.test]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
  - name: home
    address_spaces: [example.org]
    bridgeheads: ["127.0.0.1:{home}"]
    tls: {{ mode: none }}
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:9"]
    tls: {{ mode: none }}
"""

MSG = b"Subject: for the customer\r\n\r\nline one\r\n.leading dot\r\n"


class Recorder:
    """The customer's side: an SMTP client up to ATRN, then an SMTP server on
    the same TLS socket that records what it receives."""

    def __init__(self, port, user="cust", password=PASSWORD, tls=True, auth=True):
        self.raw = Raw(port, timeout=20)
        self.commands = []
        self.messages = []
        assert self.raw.reply().startswith("220")
        self.ehlo = self.raw.cmd("EHLO customer.example")
        if tls:
            assert self.raw.cmd("STARTTLS").startswith("220")
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.raw.s = ctx.wrap_socket(self.raw.s, server_hostname="relay.example.org")
            self.raw.buf = b""
            self.ehlo = self.raw.cmd("EHLO customer.example")
        if auth:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            self.auth = self.raw.cmd("AUTH PLAIN " + token)

    def cmd(self, line):
        return self.raw.cmd(line)

    def line(self):
        while b"\r\n" not in self.raw.buf:
            chunk = self.raw.s.recv(65536)
            if not chunk:
                return None
            self.raw.buf += chunk
        line, self.raw.buf = self.raw.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def send(self, text):
        self.raw.send(text + "\r\n")

    def serve(self, rcpt_reply=None, data_reply="250 2.0.0 recorded"):
        """Be the server until QUIT or EOF. rcpt_reply(address) gives the
        RCPT reply (default 250)."""
        self.send("220 customer.example ESMTP recorder")
        msg = None
        while True:
            line = self.line()
            if line is None:
                return
            self.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.send("250-customer.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                          "250-STARTTLS\r\n250 ENHANCEDSTATUSCODES")
            elif verb == "MAIL":
                msg = {"from": line[10:].strip("<>"), "rcpts": [], "data": b""}
                self.send("250 2.1.0 ok")
            elif verb == "RCPT":
                addr = line[8:].split(">")[0].strip("<")
                reply = rcpt_reply(addr) if rcpt_reply else "250 2.1.5 ok"
                if reply.startswith("2"):
                    msg["rcpts"].append(addr)
                self.send(reply)
            elif verb == "DATA":
                if not msg or not msg["rcpts"]:
                    self.send("554 5.5.1 no valid recipients")
                    continue
                self.send("354 go ahead")
                body = []
                while True:
                    d = self.line()
                    if d is None or d == ".":
                        break
                    body.append(d[1:] if d.startswith(".") else d)
                msg["data"] = ("\r\n".join(body) + "\r\n").encode("latin-1")
                self.messages.append(msg)
                msg = None
                self.send(data_reply)
            elif verb == "RSET":
                msg = None
                self.send("250 2.0.0 ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 bye")
                return
            else:
                self.send("502 5.5.1 not here")

    def close(self):
        try:
            self.raw.close()
        except OSError:
            pass


class Atrn(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="bh-atrn-certs-")
        make_cert(cls.certs, "relay.example.org")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def setUp(self):
        self.home = start_sink(name="home")
        self.addCleanup(self.home.stop)  # by PID, also when setUp fails below
        self.odmr_port = free_port()
        self.relay = Relay(CONFIG.format(odmr=self.odmr_port, home=self.home.port))
        for src, dst in (("server.pem", "cert.pem"), ("server.key", "key.pem")):
            shutil.copy(os.path.join(self.certs, src), os.path.join(self.relay.dir, dst))
        h = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))
        with open(os.path.join(self.relay.dir, "users.txt"), "w") as f:
            f.write(f"cust:{h}:customer.test\n")
            f.write(f"mixed:{h}:customer.test,plain.test\n")
            f.write(f"nodomains:{h}\n")
        self.relay.start()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        rc = self.relay.stop()
        log = self.relay.log()
        self.relay.cleanup()
        self.assertEqual(rc, 0, f"serve exited {rc}:\n{log}")

    # --- helpers --------------------------------------------------------------
    def recorder(self, **kw):
        r = Recorder(self.odmr_port, **kw)
        self.clients.append(r)
        return r

    def send(self, rcpts, sender="a@example.org"):
        s = smtplib.SMTP("127.0.0.1", self.relay.port, timeout=20)
        s.ehlo("client.example")
        s.sendmail(sender, rcpts, MSG)
        s.quit()

    def entries(self):
        con = sqlite3.connect(f"file:{self.relay.db}?mode=ro", uri=True)
        try:
            return con.execute("SELECT m.qid, e.rcpt, e.state, e.attempts, e.last_reply "
                               "FROM entries e JOIN messages m USING (mid) "
                               "WHERE e.connector = 'odmr' ORDER BY e.eid").fetchall()
        finally:
            con.close()

    def log_with(self, text):
        """The log once it has text (lines go out through a writer thread)."""
        wait_for(lambda: text in self.relay.log(), timeout=10, what=repr(text))
        return self.relay.log()

    def held(self, n):
        """Wait until n recipients wait, triggered, on the odmr connector."""
        wait_for(lambda: [e[2] for e in self.entries()] == [3] * n, timeout=10,
                 what=f"{n} triggered entries")
        return self.entries()

    # --- the turnaround -------------------------------------------------------
    def test_mail_delivered_over_the_turnaround(self):
        self.send(["a1@customer.test", "a2@customer.test"])
        self.send(["b1@customer.test"], sender="b@example.org")
        self.send(["x@other.test"])  # another domain on the same connector
        queued = self.held(4)
        ids = {e[0] for e in queued if e[1].endswith("@customer.test")}
        r = self.recorder()
        self.assertIn("ATRN", r.ehlo)
        self.assertTrue(r.auth.startswith("235"), r.auth)
        rep = r.cmd("ATRN")
        self.assertTrue(rep.startswith("250 ") and "reversing the connection" in rep, rep)
        r.serve()
        self.assertEqual(r.commands[0], "EHLO relay.example.org")
        self.assertNotIn("STARTTLS", [c.upper() for c in r.commands])  # TLS is already on
        self.assertEqual(r.commands[-1], "QUIT")
        got = sorted((m["from"], tuple(sorted(m["rcpts"]))) for m in r.messages)
        self.assertEqual(got, [("a@example.org", ("a1@customer.test", "a2@customer.test")),
                               ("b@example.org", ("b1@customer.test",))])
        for m in r.messages:
            self.assertIn(b"Subject: for the customer", m["data"])
            self.assertIn(b"\r\n.leading dot\r\n", m["data"])
            self.assertIn(b"Received:", m["data"])
        self.assertTrue(r.raw.closed())  # bridgehead closes after QUIT
        # Delivered: gone from the queue; the other domain still waits.
        wait_for(lambda: [e[1] for e in self.entries()] == ["x@other.test"], timeout=10,
                 what="the delivered entries to leave the queue")
        self.assertEqual(self.entries()[0][2], 3)
        log = self.log_with("outcome=ok messages=2")  # the log has its own thread
        for qid in ids:
            self.assertRegex(log, rf"id={qid} to=<[ab]\d@customer.test> connector=odmr "
                                  rf"relay=127.0.0.1:\d+ tls=TLSv1\.[23] .*status=sent")
        self.assertIn('event=atrn user="cust"', log)

    def test_named_domain(self):
        self.send(["n@customer.test"])
        self.held(1)
        r = self.recorder(user="mixed")
        self.assertTrue(r.cmd("ATRN Customer.TEST").startswith("250"))
        r.serve()
        self.assertEqual([m["rcpts"] for m in r.messages], [["n@customer.test"]])
        wait_for(lambda: self.entries() == [], timeout=10, what="an empty queue")

    def test_no_mail_waiting(self):
        r = self.recorder()
        rep = r.cmd("ATRN")
        self.assertTrue(rep.startswith("453 "), rep)
        self.assertTrue(r.cmd("NOOP").startswith("250"))  # the session goes on
        self.send(["late@customer.test"])
        self.held(1)
        self.assertTrue(r.cmd("ATRN customer.test").startswith("250"))
        r.serve()
        self.assertEqual(len(r.messages), 1)

    # --- refusals -------------------------------------------------------------
    def test_domain_not_allowed(self):
        self.send(["k@customer.test", "o@other.test"])
        self.held(2)
        r = self.recorder()
        # other.test is on the triggered connector but not cust's domain.
        self.assertTrue(r.cmd("ATRN other.test").startswith("450 4.7.1"))
        self.assertTrue(r.cmd("ATRN customer.test,other.test").startswith("450 4.7.1"))
        # plain.test is mixed's, but not served by a triggered connector.
        m = self.recorder(user="mixed")
        self.assertTrue(m.cmd("ATRN plain.test").startswith("450 4.7.1"))
        self.assertTrue(m.cmd("ATRN").startswith("450 4.7.1"))
        n = self.recorder(user="nodomains")
        self.assertTrue(n.cmd("ATRN").startswith("450 4.7.1"))
        self.assertTrue(n.cmd("ATRN customer.test").startswith("450 4.7.1"))
        self.assertTrue(r.cmd("ATRN [127.0.0.1]").startswith("501"))
        self.assertTrue(r.cmd("NOOP").startswith("250"))
        self.assertEqual([e[2] for e in self.entries()], [3, 3])  # nothing moved

    def test_atrn_before_auth(self):
        self.send(["q@customer.test"])
        self.held(1)
        r = self.recorder(auth=False)
        self.assertIn("ATRN", r.ehlo)  # offered with AUTH inside TLS (SPEC §9), ...
        self.assertTrue(r.cmd("ATRN").startswith("530 5.7.0"))
        self.assertTrue(r.cmd("ATRN customer.test").startswith("530 5.7.0"))
        clear = self.recorder(tls=False, auth=False)
        self.assertNotIn("ATRN", clear.ehlo)  # ... never in clear
        self.assertTrue(clear.cmd("ATRN customer.test").startswith("530"))
        bad = self.recorder(password="wrong")
        self.assertTrue(bad.auth.startswith("535"))
        self.assertTrue(bad.cmd("ATRN").startswith("530"))
        self.assertEqual([e[2] for e in self.entries()], [3])

    def test_other_listener_and_turn(self):
        self.send(["p@customer.test"])
        self.held(1)
        r = Recorder(self.relay.port)  # the normal listener: STARTTLS and AUTH, no odmr
        self.clients.append(r)
        self.assertTrue(r.auth.startswith("235"), r.auth)
        self.assertNotIn("ATRN", r.ehlo)
        self.assertTrue(r.cmd("ATRN").startswith("502 5.5.1"))
        self.assertTrue(r.cmd("TURN").startswith("502 5.5.1"))
        o = self.recorder()
        self.assertTrue(o.cmd("TURN").startswith("502 5.5.1"))
        self.assertEqual([e[2] for e in self.entries()], [3])

    # --- outcomes -------------------------------------------------------------
    def test_temporary_failure_waits_for_the_next_atrn(self):
        self.send(["t1@customer.test", "t2@customer.test"])
        self.held(2)
        r = self.recorder()
        self.assertTrue(r.cmd("ATRN").startswith("250"))
        r.serve(rcpt_reply=lambda a: "451 4.3.0 try later" if a == "t1@customer.test"
                else "250 2.1.5 ok")
        self.assertEqual([m["rcpts"] for m in r.messages], [["t2@customer.test"]])
        # t2 delivered; t1 back to triggered (not deferred: it waits for the
        # next ATRN, not for a retry through the connector's bridgeheads).
        wait_for(lambda: [(e[1], e[2]) for e in self.entries()] == [("t1@customer.test", 3)],
                 timeout=10, what="t1 to wait, triggered")
        e = self.entries()[0]
        self.assertEqual(e[3], 1)  # one attempt counted
        self.assertIn("451 4.3.0 try later", e[4])
        time.sleep(2.5)  # longer than retry_max: no retry on its own
        self.assertEqual(self.entries()[0][2], 3)
        self.log_with("status=deferred")
        again = self.recorder()
        self.assertTrue(again.cmd("ATRN customer.test").startswith("250"))
        again.serve()
        self.assertEqual([m["rcpts"] for m in again.messages], [["t1@customer.test"]])
        wait_for(lambda: self.entries() == [], timeout=10, what="an empty queue")

    def test_permanent_failure_bounces(self):
        self.send(["gone@customer.test", "ok@customer.test"], sender="sender@example.org")
        queued = self.held(2)
        r = self.recorder()
        self.assertTrue(r.cmd("ATRN").startswith("250"))
        r.serve(rcpt_reply=lambda a: "550 5.1.1 no such user" if a.startswith("gone")
                else "250 2.1.5 ok")
        wait_for(lambda: self.entries() == [], timeout=10, what="an empty queue")
        dsn = self.home.wait_messages(1, timeout=20)[0]
        self.assertEqual(dsn["rcpt_tos"], ["sender@example.org"])
        self.assertIn("Undelivered", dsn["subject"])
        log = self.log_with("event=dsn_queued")
        self.assertRegex(log, rf"id={queued[0][0]} to=<gone@customer.test> .*status=bounced")
        self.assertRegex(log, rf"id={queued[0][0]} to=<ok@customer.test> .*status=sent")

    def test_peer_gone_after_the_turnaround(self):
        self.send(["g1@customer.test"])
        self.send(["g2@customer.test"])
        self.held(2)
        r = self.recorder()
        self.assertTrue(r.cmd("ATRN").startswith("250"))
        r.close()  # never greets: everything goes back to waiting
        wait_for(lambda: [e[2] for e in self.entries()] == [3, 3], timeout=10,
                 what="the entries back in triggered")
        self.assertEqual([e[3] for e in self.entries()], [0, 0])  # not attempted
        # Gone in the middle of DATA: the message in hand counts an attempt.
        r = self.recorder()
        self.assertTrue(r.cmd("ATRN").startswith("250"))
        r.send("220 customer.example ESMTP")
        self.assertTrue(r.line().startswith("EHLO"))
        r.send("250 customer.example")
        self.assertTrue(r.line().startswith("MAIL FROM:"))
        r.send("250 ok")
        self.assertTrue(r.line().startswith("RCPT TO:"))
        r.send("250 ok")
        self.assertEqual(r.line(), "DATA")
        r.close()
        wait_for(lambda: [e[2] for e in self.entries()] == [3, 3], timeout=10,
                 what="the entries back in triggered")
        self.assertEqual(sorted(e[3] for e in self.entries()), [0, 1])
        self.assertIsNone(self.relay.proc.poll())
        # And a later ATRN takes both.
        ok = self.recorder()
        self.assertTrue(ok.cmd("ATRN").startswith("250"))
        ok.serve()
        self.assertEqual(sorted(m["rcpts"][0] for m in ok.messages),
                         ["g1@customer.test", "g2@customer.test"])

    def test_sigterm_during_the_turnaround(self):
        self.send(["s1@customer.test"])
        self.send(["s2@customer.test"])
        self.held(2)
        r = self.recorder()
        self.assertTrue(r.cmd("ATRN").startswith("250"))
        r.send("220 customer.example ESMTP")
        self.assertTrue(r.line().startswith("EHLO"))
        r.send("250 customer.example")
        for want, reply in (("MAIL", "250 ok"), ("RCPT", "250 ok"), ("DATA", "354 go")):
            self.assertTrue(r.line().startswith(want))
            r.send(reply)
        while r.line() != ".":
            pass
        # The final dot is never answered; the server stops meanwhile.
        t0 = time.time()
        rc = self.relay.stop()
        self.assertEqual(rc, 0, self.relay.log())
        self.assertLess(time.time() - t0, 19)  # the 10 s grace, then the session is closed
        # Nothing lost: both wait, triggered, again; the one in hand counted.
        self.assertEqual([e[2] for e in self.entries()], [3, 3])
        self.assertEqual(sorted(e[3] for e in self.entries()), [0, 1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
