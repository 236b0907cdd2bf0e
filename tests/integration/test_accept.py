#!/usr/bin/python3
"""The accept side (SPEC §3 relay check, §5, §9): the real binary, smtplib and
swaks as clients, raw sockets for what they will not send."""
import base64
import crypt
import os
import smtplib
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import Raw, Relay, make_cert  # noqa: E402

CONFIG = """\
server:
  hostname: relay.example.org
  listen: [ { address: "127.0.0.1:@PORT@" } ]
  accepted_domains: [accepted.test, "*.accepted.test"]
  relay_networks: ["127.0.0.1/32"]
  max_message_size: 64KiB
  max_recipients: 5
  tls: { certificate: cert.pem, key: key.pem }
  users_file: users.txt
storage:
  path: queue.db
connectors:
  - name: inside
    address_spaces: ["*.accepted.test"]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
  - name: outside
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
  - name: partner
    address_spaces: [partner.test]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
    senders: { default: reject, accept: ["*@accepted.test"] }
  - name: small
    address_spaces: [small.test]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
    max_message_size: 2KiB
  - name: urgent-only
    address_spaces: [prio.test]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
    content: { priorities: [high] }
"""

OUTSIDE = "127.0.0.2"  # not in relay_networks


class Accept(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.relay = Relay(CONFIG)
        make_cert(cls.relay.dir, "relay.example.org")
        os.rename(os.path.join(cls.relay.dir, "server.pem"), os.path.join(cls.relay.dir, "cert.pem"))
        os.rename(os.path.join(cls.relay.dir, "server.key"), os.path.join(cls.relay.dir, "key.pem"))
        with open(os.path.join(cls.relay.dir, "users.txt"), "w") as f:
            f.write("alice:%s:accepted.test\n" % crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_SHA512)))
        cls.relay.start()
        cls.port = cls.relay.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.relay.stop()
        log = cls.relay.log()
        cls.relay.cleanup()
        assert rc == 0, f"serve exited {rc}:\n{log}"

    def smtp(self, source=None):
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=10,
                         source_address=(source, 0) if source else None)
        s.ehlo("client.example")
        return s

    def rows_for(self, rcpt):
        return [r for r in self.relay.queue_rows() if r[2] == rcpt]

    # --- relay check ---------------------------------------------------
    def test_relay_allowed_from_relay_network(self):
        s = self.smtp()
        s.sendmail("a@accepted.test", ["x@elsewhere.test"], b"Subject: t\r\n\r\nhi\r\n")
        s.quit()
        rows = self.rows_for("x@elsewhere.test")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][3], "outside")

    def test_relay_denied_from_outside(self):
        s = self.smtp(OUTSIDE)
        s.mail("a@outside.test")
        code, msg = s.rcpt("victim@elsewhere.test")
        self.assertEqual(code, 550)
        self.assertIn(b"5.7.1", msg)
        self.assertIn(b"relay", msg.lower())
        s.quit()

    def test_accepted_domain_from_outside(self):
        s = self.smtp(OUTSIDE)
        s.sendmail("a@outside.test", ["bob@accepted.test"], b"Subject: t\r\n\r\nhi\r\n")
        s.quit()
        rows = self.rows_for("bob@accepted.test")
        self.assertEqual(rows[0][3], "inside")

    def test_relay_tricks_never_relay(self):
        r = Raw(self.port, source=OUTSIDE)
        r.reply()
        r.cmd("EHLO evil.example")
        self.assertTrue(r.cmd("MAIL FROM:<a@outside.test>").startswith("250"))
        for rcpt in ("<@accepted.test:victim@elsewhere.test>",
                     "<victim@elsewhere.test>",
                     "<victim%elsewhere.test@evil.test>",
                     "<victim@accepted.test.elsewhere.test>"):
            rep = r.cmd(f"RCPT TO:{rcpt}")
            self.assertTrue(rep.startswith("550 5.7.1"), f"{rcpt}: {rep}")
        for rcpt in ('<"victim@elsewhere.test"@evil.test>', "<victim@elsewhere.test@accepted.test>"):
            rep = r.cmd(f"RCPT TO:{rcpt}")
            self.assertRegex(rep, r"^5(50|01) 5\.", rcpt)
        r.cmd("QUIT")
        r.close()

    def test_tricks_with_accepted_last_domain_keep_local_part(self):
        s = self.smtp(OUTSIDE)
        rcpts = ["victim%elsewhere.test@accepted.test", "victim!elsewhere.test@accepted.test",
                 '"victim@elsewhere.test"@accepted.test']
        s.sendmail("a@outside.test", rcpts, b"Subject: t\r\n\r\nhi\r\n")
        s.quit()
        for rcpt in rcpts:
            rows = self.rows_for(rcpt)
            self.assertEqual(len(rows), 1, rcpt)
            self.assertEqual(rows[0][3], "inside")

    def test_source_route_stripped(self):
        r = Raw(self.port, source=OUTSIDE)
        r.reply()
        r.cmd("EHLO c.example")
        r.cmd("MAIL FROM:<a@outside.test>")
        self.assertTrue(r.cmd("RCPT TO:<@elsewhere.test,@x.test:srt@accepted.test>").startswith("250"))
        self.assertTrue(r.cmd("DATA").startswith("354"))
        self.assertTrue(r.cmd("Subject: s\r\n\r\nbody\r\n.").startswith("250 2.0.0"))
        r.close()
        self.assertEqual(self.rows_for("srt@accepted.test")[0][3], "inside")

    # --- routing at RCPT and after the dot --------------------------------
    def test_sender_restriction_at_rcpt(self):
        s = self.smtp()
        s.mail("a@wrong.test")
        code, msg = s.rcpt("p@partner.test")
        self.assertEqual(code, 550)
        self.assertTrue(msg.startswith(b"5.7.1"), msg)
        self.assertIn(b"partner", msg)  # the connector, and why
        self.assertIn(b"sender", msg)
        s.rset()
        s.mail("a@accepted.test")
        self.assertEqual(s.rcpt("p@partner.test")[0], 250)
        s.quit()

    def test_size_after_dot_partial_and_all(self):
        big = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 50
        s = self.smtp()
        # all refused after the dot: 552 5.3.4
        s.mail("a@accepted.test")
        self.assertEqual(s.rcpt("s@small.test")[0], 250)
        code, msg = s.data(big)
        self.assertEqual(code, 552)
        self.assertIn(b"5.3.4", msg)
        # partly refused: 250, the small one gets a DSN
        s.mail("a@accepted.test")
        s.rcpt("s2@small.test")
        s.rcpt("ok@elsewhere.test")
        code, msg = s.data(big)
        self.assertEqual(code, 250)
        s.quit()
        self.assertEqual(len(self.rows_for("ok@elsewhere.test")), 1)
        self.assertEqual(len(self.rows_for("s2@small.test")), 0)
        dsn = self.rows_for("a@accepted.test")
        self.assertEqual(len(dsn), 1)
        qid = dsn[0][0]
        self.assertEqual(dsn[0][1], "")  # from <>
        body = self.relay.body(qid)
        self.assertIn(b"Status: 5.3.4", body)
        self.assertIn(b"s2@small.test", body)

    def test_size_at_rcpt(self):
        """SIZE= over every candidate's limit: 552 5.3.4 at RCPT (SPEC §3)."""
        s = self.smtp()
        self.assertEqual(s.docmd("MAIL FROM:<a@accepted.test> SIZE=3000")[0], 250)
        code, msg = s.rcpt("s@small.test")
        self.assertEqual(code, 552)
        self.assertTrue(msg.startswith(b"5.3.4"), msg)
        self.assertIn(b"small.test", msg)
        self.assertEqual(s.rcpt("ok@elsewhere.test")[0], 250)
        s.rset()
        self.assertEqual(s.docmd("MAIL FROM:<a@accepted.test> SIZE=1000")[0], 250)
        self.assertEqual(s.rcpt("s@small.test")[0], 250)
        s.quit()

    def test_priority_after_dot_partial_and_all(self):
        """A refusal that only the message shows (its priority): 550 5.7.1
        after the dot when all are refused, else 250 and a 5.7.1 DSN."""
        normal = b"Subject: plain\r\n\r\nbody\r\n"
        s = self.smtp()
        s.mail("prio@accepted.test")
        self.assertEqual(s.rcpt("h@prio.test")[0], 250)  # unknown priority passes
        code, msg = s.data(normal)
        self.assertEqual(code, 550)
        self.assertTrue(msg.startswith(b"5.7.1"), msg)
        self.assertEqual(self.rows_for("h@prio.test"), [])
        s.mail("prio@accepted.test")
        s.rcpt("h2@prio.test")
        s.rcpt("ok2@elsewhere.test")
        self.assertEqual(s.data(normal)[0], 250)
        s.mail("prio@accepted.test")
        s.rcpt("h3@prio.test")
        self.assertEqual(s.data(b"Importance: high\r\nSubject: hi\r\n\r\nbody\r\n")[0], 250)
        s.quit()
        self.assertEqual(len(self.rows_for("ok2@elsewhere.test")), 1)
        self.assertEqual(self.rows_for("h2@prio.test"), [])
        self.assertEqual([r[3] for r in self.rows_for("h3@prio.test")], ["urgent-only"])
        dsn = [r for r in self.rows_for("prio@accepted.test")
               if b"h2@prio.test" in self.relay.body(r[0])]
        self.assertEqual(len(dsn), 1)
        self.assertIn(b"Status: 5.7.1", self.relay.body(dsn[0][0]))

    def test_size_limits(self):
        s = self.smtp()
        code, msg = s.docmd("MAIL FROM:<a@accepted.test> SIZE=100000")
        self.assertEqual(code, 552)
        self.assertIn(b"5.3.4", msg)
        s.mail("a@accepted.test")
        s.rcpt("b@elsewhere.test")
        code, msg = s.data(b"Subject: x\r\n\r\n" + (b"y" * 98 + b"\r\n") * 700)
        self.assertEqual(code, 552)
        self.assertIn(b"5.3.4", msg)
        # The session goes on.
        self.assertEqual(s.noop()[0], 250)
        s.quit()

    def test_unroutable_and_literal(self):
        s = self.smtp()
        s.mail("a@accepted.test")
        code, msg = s.rcpt("a@[192.0.2.1]")
        self.assertEqual(code, 501)
        self.assertIn(b"5.1.3", msg)
        s.quit()

    def test_max_recipients(self):
        s = self.smtp()
        s.mail("a@accepted.test")
        for i in range(5):
            self.assertEqual(s.rcpt(f"r{i}@elsewhere.test")[0], 250)
        code, msg = s.rcpt("r6@elsewhere.test")
        self.assertEqual(code, 452)
        self.assertIn(b"4.5.3", msg)
        s.quit()

    def test_received_header_and_queue_id(self):
        s = self.smtp()
        s.mail("a@accepted.test")
        s.rcpt("rh@elsewhere.test")
        code, msg = s.data(b"Subject: r\r\n\r\nbody\r\n")
        s.quit()
        self.assertEqual(code, 250)
        qid = msg.decode().split()[-1]
        self.assertRegex(qid, r"^[A-Z2-7]{12,}$")
        body = self.relay.body(qid)
        self.assertTrue(body.startswith(b"Received: from client.example ([127.0.0.1])"), body[:200])
        self.assertIn(b"Subject: r\r\n\r\nbody\r\n", body)
        self.assertIn(f"id={qid}", self.relay.log())

    def test_loop_refused(self):
        s = self.smtp()
        s.mail("a@accepted.test")
        s.rcpt("loop@elsewhere.test")
        hdrs = b"".join(b"Received: from x by y; Thu, 1 Jan 2026 00:00:00 +0000\r\n" for _ in range(101))
        code, msg = s.data(hdrs + b"\r\nbody\r\n")
        self.assertEqual(code, 554)
        self.assertIn(b"5.4.6", msg)
        s.quit()

    # --- TLS and AUTH -----------------------------------------------------
    def test_starttls_then_auth(self):
        s = self.smtp(OUTSIDE)
        self.assertTrue(s.has_extn("starttls"))
        self.assertFalse(s.has_extn("auth"))
        code, msg = s.docmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0s3cret").decode())
        self.assertEqual(code, 530)
        ctx = ssl.create_default_context(cafile=os.path.join(self.relay.dir, "cert.pem"))
        ctx.check_hostname = False  # we connect to 127.0.0.1; the chain is still verified
        s.starttls(context=ctx)
        s.ehlo("client.example")
        self.assertTrue(s.has_extn("auth"))
        self.assertFalse(s.has_extn("starttls"))
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            s.login("alice", "wrong")
        s.login("alice", "s3cret")
        s.sendmail("alice@accepted.test", ["far@elsewhere.test"], b"Subject: a\r\n\r\nhi\r\n")
        s.quit()
        self.assertEqual(len(self.rows_for("far@elsewhere.test")), 1)
        body = self.relay.body(self.rows_for("far@elsewhere.test")[0][0])
        self.assertIn(b"ESMTPSA", body[:400])

    def test_swaks_tls(self):
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.port), "--tls",
                            "--from", "a@accepted.test", "--to", "sw@elsewhere.test",
                            "--helo", "swaks.example"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("250 2.0.0", p.stdout)
        self.assertEqual(len(self.rows_for("sw@elsewhere.test")), 1)

    def test_starttls_injection_discarded(self):
        r = Raw(self.port)
        r.reply()
        r.cmd("EHLO c.example")
        r.send("STARTTLS\r\nMAIL FROM:<inject@accepted.test>\r\n")
        self.assertTrue(r.reply().startswith("220"))
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        t = ctx.wrap_socket(r.s, server_hostname="relay.example.org")
        t.sendall(b"RCPT TO:<x@elsewhere.test>\r\n")
        rep = t.recv(1000).decode()
        self.assertTrue(rep.startswith("503"), rep)  # the injected MAIL is gone
        t.close()

    # --- protocol abuse -----------------------------------------------------
    def test_bare_lf_command_closes(self):
        r = Raw(self.port)
        r.reply()
        r.send("EHLO x\n")
        self.assertTrue(r.reply().startswith("500 5.5.2"))
        self.assertTrue(r.closed())

    def test_smuggling_not_accepted(self):
        r = Raw(self.port)
        r.reply()
        r.cmd("EHLO c.example")
        r.cmd("MAIL FROM:<a@accepted.test>")
        r.cmd("RCPT TO:<smug@elsewhere.test>")
        self.assertTrue(r.cmd("DATA").startswith("354"))
        r.send("Subject: s\r\n\r\nhi\n.\nMAIL FROM:<evil@accepted.test>\r\nRCPT TO:<smuggled@elsewhere.test>\r\nDATA\r\nx\r\n.\r\n")
        rep = r.reply()
        self.assertTrue(rep.startswith("554 5.6.0"), rep)
        self.assertTrue(r.cmd("NOOP").startswith("250"))
        r.close()
        self.assertEqual(self.rows_for("smuggled@elsewhere.test"), [])
        self.assertEqual(self.rows_for("smug@elsewhere.test"), [])

    def test_long_line_and_turn(self):
        r = Raw(self.port)
        r.reply()
        self.assertTrue(r.cmd("NOOP " + "x" * 600).startswith("500 5.5.2"))
        self.assertTrue(r.cmd("TURN").startswith("502 5.5.1"))
        self.assertTrue(r.cmd("VRFY bob").startswith("252"))
        r.cmd("EHLO c.example")
        rep = r.cmd("ETRN accepted.test")
        self.assertIn(rep[:3], ("458", "250", "251", "459"), rep)
        r.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
