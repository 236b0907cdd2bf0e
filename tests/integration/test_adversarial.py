#!/usr/bin/python3
"""Adversarial clients against the real binary's SMTP server (SPEC §3 relay
check, §5, §7, §9), with raw sockets: open-relay tricks from an outside
address, SMTP smuggling, pipelining after the final dot and dot-stuffing
edges (checked in the queue and at the sink the mail goes on to), and
STARTTLS command injection. Load attacks (slowloris, slow readers, 10,000
connections) are in test_adversarial_load.py, hostile remote servers
against the client side in test_adversarial_client.py."""
import os
import smtplib
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import Raw, Relay, make_cert  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402

OUTSIDE = "127.0.0.9"  # not in relay_networks (127.0.0.1/32)


PROTOCOL_CONFIG = """\
server:
  hostname: relay.example.org
  listen: [ { address: "127.0.0.1:@PORT@" } ]
  accepted_domains: [accepted.test, "*.accepted.test"]
  relay_networks: ["127.0.0.1/32"]
  tls: { certificate: server.pem, key: server.key }
storage: { path: queue.db }
queue: { retry_initial: 1m }
connectors:
  - name: inside
    address_spaces: ["*.accepted.test"]
    bridgeheads: ["127.0.0.1:@SINK@"]
    tls: { mode: none }
  - name: outside
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
"""

# RCPT paths an outside client may try to relay with. None of them may
# reach a domain that is not accepted: each is refused (5xx), or, when the
# domain after the last '@' is accepted, kept whole and routed inside.
RELAY_TRICKS = [
    "<victim@elsewhere.test>",
    # percent hack and bang paths
    "<victim%elsewhere.test>", "<victim%elsewhere.test@[127.0.0.1]>",
    "<victim%elsewhere.test@accepted.test>", "<elsewhere.test!victim>",
    "<elsewhere.test!victim@accepted.test>", "<victim@elsewhere.test%accepted.test>",
    "<victim@accepted.test%elsewhere.test>",
    # quoted local parts with '@', a second '@'
    '<"victim@elsewhere.test">', '<"victim@elsewhere.test"@accepted.test>',
    '<"victim"@elsewhere.test>', '<"victim@accepted.test"@elsewhere.test>',
    "<victim@elsewhere.test@accepted.test>", "<victim@accepted.test@elsewhere.test>",
    # source routes
    "<@accepted.test:victim@elsewhere.test>", "<@accepted.test,@relay.example.org:victim@elsewhere.test>",
    "<@elsewhere.test:victim@accepted.test>", "<@[127.0.0.1]:victim@elsewhere.test>",
    # address literals and bare IP addresses
    "<victim@[127.0.0.1]>", "<victim@[127.0.0.9]>", "<victim@[IPv6:::1]>", "<victim@127.0.0.1>",
    "<victim@[elsewhere.test]>",
    # trailing dots, case
    "<victim@elsewhere.test.>", "<victim@elsewhere.test..>", "<victim@accepted.test.>",
    "<victim@ACCEPTED.TEST.>", "<victim@accepted.test.elsewhere.test>",
    "<victim@elsewhere.test.accepted.test>", "<VICTIM@Elsewhere.Test>",
    # IDN and unicode: A-label, U-label, homograph, full-width, zero-width
    "<victim@xn--bcher-kva.test>", "<victim@b\u00fccher.test>", "<victim@accepted.t\u0435st>",
    "<victim@\uff41ccepted.test>", "<victim@accepted.test\u200b>",
    # postmaster variants
    "<postmaster@elsewhere.test>", "<Postmaster@Elsewhere.Test>", "<postmaster@[127.0.0.1]>",
    '<"postmaster"@elsewhere.test>', "<Postmaster>", "<POSTMASTER>", "<postmaster@>",
    # framing
    "<victim@elsewhere.test> NOTIFY=NEVER", " <victim@elsewhere.test>", "victim@elsewhere.test",
    "<victim@accepted.test>,<victim@elsewhere.test>", "<victim@accepted.test> <victim@elsewhere.test>",
    "<victim@elsewhere.test:25>",
]


def domain_accepted(addr):
    d = addr.rsplit("@", 1)[-1].rstrip(">").lower()
    d = d[:-1] if d.endswith(".") else d
    return d == "accepted.test" or d.endswith(".accepted.test")


class Protocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = start_sink(name="inside")
        cls.relay = Relay(PROTOCOL_CONFIG.replace("@SINK@", str(cls.sink.port)))
        make_cert(cls.relay.dir, "relay.example.org")
        cls.relay.start()
        cls.port = cls.relay.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.relay.stop()
        log = cls.relay.log()
        cls.relay.cleanup()
        cls.sink.stop()
        assert rc == 0, f"serve exited {rc}:\n{log[-3000:]}"

    def rcpt_rows(self, pred):
        return [r for r in self.relay.queue_rows() if pred(r[2])]

    def sink_rcpts(self, pred):
        return [a for a in self.sink.recipients() if pred(a)]

    # --- 1. open-relay tricks ------------------------------------------------
    def test_relay_tricks_from_outside(self):
        accepted = []
        # A session closes after 10 malformed commands or 20 refused
        # recipients (SPEC §9): six tricks a session.
        for k in range(0, len(RELAY_TRICKS), 6):
            r = Raw(self.port, source=OUTSIDE)
            self.assertTrue(r.reply().startswith("220"))
            # Claims that must not turn an outsider into a relay client.
            self.assertTrue(r.cmd("EHLO [127.0.0.1]").startswith("250"))
            self.assertTrue(r.cmd("XCLIENT ADDR=127.0.0.1").startswith("500"))
            self.assertTrue(r.cmd("MAIL FROM:<postmaster@accepted.test>").startswith("250"))
            took = []
            for trick in RELAY_TRICKS[k:k + 6]:
                rep = r.cmd("RCPT TO:" + trick)
                if rep.startswith("2"):
                    took.append(trick)
                else:
                    self.assertRegex(rep, r"^5\d\d ", f"{trick!r}: {rep}")
            for trick in took:
                self.assertTrue(domain_accepted(trick.split(">")[0]), f"relayed {trick!r}")
            if took:  # what was taken must arrive inside, and only there
                self.assertTrue(r.cmd("DATA").startswith("354"))
                self.assertTrue(r.cmd("Subject: t\r\n\r\nrelay?\r\n.").startswith("250 2.0.0"))
                accepted += took
            self.assertTrue(r.cmd("QUIT").startswith("221"))
            r.close()
        # Sanity: the tricks that name an accepted domain were taken.
        self.assertIn('<"victim@elsewhere.test"@accepted.test>', accepted)
        self.assertIn("<@elsewhere.test:victim@accepted.test>", accepted)
        off_site = lambda a: not domain_accepted(a)  # noqa: E731
        self.assertEqual(self.rcpt_rows(off_site), [])
        self.assertEqual([r for r in self.relay.queue_rows() if r[3] != "inside"], [])
        wait_for(lambda: len(self.sink_rcpts(lambda a: "victim" in a)) +
                 self.relay.log().count("status=bounced") >= len(accepted),
                 timeout=20, what="the accepted tricks at the sink")
        got = self.sink_rcpts(lambda a: "victim" in a)
        self.assertEqual([a for a in got if not domain_accepted(a)], [])
        # The local part is kept whole: never turned into a new address.
        self.assertIn('"victim@elsewhere.test"@accepted.test', got)
        self.assertIn("victim%elsewhere.test@accepted.test", got)
        # A trailing dot is dropped, not passed on for the next hop to refuse.
        self.assertEqual([a for a in got if a.endswith(".")], [])
        self.assertNotIn("status=bounced", self.relay.log())

    # --- 2. SMTP smuggling -----------------------------------------------------
    def smuggle(self, name, end, split=False):
        """A message whose body holds a fake end of data `end`, a smuggled
        second transaction and the real end, then a pipelined legitimate
        transaction. Returns the reply to the first message's data."""
        r = Raw(self.port)
        r.reply()
        r.cmd("EHLO c.example")
        self.assertTrue(r.cmd("MAIL FROM:<a@accepted.test>").startswith("250"))
        self.assertTrue(r.cmd(f"RCPT TO:<first-{name}@accepted.test>").startswith("250"))
        self.assertTrue(r.cmd("DATA").startswith("354"))
        data = (f"Subject: {name}\r\n\r\nhi".encode() + end +
                f"MAIL FROM:<evil@accepted.test>\r\nRCPT TO:<smug-{name}@accepted.test>\r\n"
                f"DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n"
                f"MAIL FROM:<a@accepted.test>\r\nRCPT TO:<after-{name}@accepted.test>\r\n"
                f"DATA\r\n".encode())
        if split:  # every byte its own segment: framing must not depend on reads
            r.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in data:
                r.send(bytes([b]))
        else:
            r.send(data)
        first = r.reply()
        # The pipelined transaction after the real end is served normally.
        self.assertTrue(r.reply().startswith("250"), name)
        self.assertTrue(r.reply().startswith("250"), name)
        self.assertTrue(r.reply().startswith("354"), name)
        self.assertTrue(r.cmd(f"Subject: after {name}\r\n\r\nclean\r\n.").startswith("250 2.0.0"))
        self.assertTrue(r.cmd("QUIT").startswith("221"))
        r.close()
        return first

    def test_smuggling_variants(self):
        bare = {
            "lf-lf": b"\n.\n", "cr-cr": b"\r.\r", "lf-crlf": b"\n.\r\n", "crlf-lf": b"\r\n.\n",
            "crlf-cr": b"\r\n.\r", "cr-crlf": b"\r.\r\n", "crlf-nul": b"\r\n.\x00\r\n",
            "crlf-crcrlf": b"\r\n.\r\r\n", "nul-inside": b"\r\nx\x00y\r\n.\n",
            "bare-cr-inside": b"\r\na\rb\r\n", "bare-lf-inside": b"\r\na\nb\r\n",
        }
        for name, end in bare.items():
            rep = self.smuggle(name, end)
            self.assertTrue(rep.startswith("554 5.6.0"), f"{name}: {rep}")
        rep = self.smuggle("split-lf", b"\n.\n", split=True)
        self.assertTrue(rep.startswith("554 5.6.0"), rep)
        # A stuffed dot is content: the message is whole, the "second
        # transaction" stays in its body.
        rep = self.smuggle("stuffed", b"\r\n..\r\n")
        self.assertTrue(rep.startswith("250 2.0.0"), rep)
        names = list(bare) + ["split-lf", "stuffed"]
        afters = {f"after-{n}@accepted.test" for n in names}
        wait_for(lambda: afters <= set(self.sink.recipients()), timeout=30,
                 what="every pipelined message after the real end")
        time.sleep(0.5)
        self.assertEqual(self.sink_rcpts(lambda a: a.startswith("smug-")), [])
        self.assertEqual(self.rcpt_rows(lambda a: a.startswith("smug-")), [])
        self.assertEqual(self.sink_rcpts(lambda a: a.startswith("first-")), ["first-stuffed@accepted.test"])
        msgs = {m["rcpt_tos"][0]: m for m in self.sink.messages()}
        for n in names:
            self.assertTrue(msgs[f"after-{n}@accepted.test"]["data"].endswith(
                f"Subject: after {n}\r\n\r\nclean\r\n"), n)
        body = msgs["first-stuffed@accepted.test"]["data"]
        self.assertTrue(body.endswith(
            "Subject: stuffed\r\n\r\nhi\r\n.\r\nMAIL FROM:<evil@accepted.test>\r\n"
            "RCPT TO:<smug-stuffed@accepted.test>\r\nDATA\r\nSubject: smuggled\r\n\r\n"
            "smuggled\r\n"), body)

    def test_pipelined_next_message_after_dot(self):
        """RFC 2920: the next message's MAIL, RCPT and DATA may follow the
        final dot in the same packet. Answering the first message must not
        cost the second its body (it did: the second was queued empty)."""
        r = Raw(self.port)
        r.reply()
        r.cmd("EHLO c.example")
        r.cmd("MAIL FROM:<a@accepted.test>")
        r.cmd("RCPT TO:<pipe1@accepted.test>")
        self.assertTrue(r.cmd("DATA").startswith("354"))
        r.send("Subject: one\r\n\r\nfirst body\r\n.\r\nMAIL FROM:<a@accepted.test>\r\n"
               "RCPT TO:<pipe2@accepted.test>\r\nDATA\r\n")
        for want in ("250 2.0.0", "250 ", "250 ", "354 "):
            rep = r.reply()
            self.assertTrue(rep.startswith(want), rep)
        self.assertTrue(r.cmd("Subject: two\r\n\r\nsecond body\r\n.").startswith("250 2.0.0"))
        r.cmd("QUIT")
        r.close()
        wait_for(lambda: {"pipe1@accepted.test", "pipe2@accepted.test"} <= set(self.sink.recipients()),
                 timeout=20, what="both pipelined messages at the sink")
        msgs = {m["rcpt_tos"][0]: m["data"] for m in self.sink.messages()}
        self.assertTrue(msgs["pipe1@accepted.test"].endswith("Subject: one\r\n\r\nfirst body\r\n"))
        self.assertTrue(msgs["pipe2@accepted.test"].endswith("Subject: two\r\n\r\nsecond body\r\n"),
                        msgs["pipe2@accepted.test"])

    def test_dot_stuffing_edges(self):
        """What the client stuffs is unstuffed once here and stuffed again on
        the way out: the sink gets the original lines."""
        cases = {
            "dotline": (b"..\r\n", "\r\n.\r\n"),
            "twodots": (b"...\r\n", "\r\n..\r\n"),
            "dotspace": (b". \r\n", "\r\n \r\n"),
            "dotx": (b".x\r\n", "\r\nx\r\n"),
            "long998": (b".." + b"y" * 997 + b"\r\n", "\r\n." + "y" * 997 + "\r\n"),
        }
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
        s.ehlo("c.example")
        for name, (wire, _) in cases.items():
            s.mail("a@accepted.test")
            s.rcpt(f"dot-{name}@accepted.test")
            code, msg = s.docmd("DATA")
            self.assertEqual(code, 354)
            s.send(b"Subject: x\r\n\r\nbody" + b"\r\n" + wire + b"end\r\n.\r\n")
            code, msg = s.getreply()
            self.assertEqual(code, 250, f"{name}: {msg}")
        # A body line of 999 octets without the stuffed dot is too long.
        s.mail("a@accepted.test")
        s.rcpt("dot-long999@accepted.test")
        s.docmd("DATA")
        s.send(b"Subject: x\r\n\r\n." + b"z" * 999 + b"\r\n.\r\n")
        code, msg = s.getreply()
        self.assertEqual(code, 554, msg)
        self.assertIn(b"5.6.0", msg)
        # The empty message, and a first body line that is a stuffed dot.
        s.mail("a@accepted.test")
        s.rcpt("dot-empty@accepted.test")
        s.docmd("DATA")
        s.send(b".\r\n")
        self.assertEqual(s.getreply()[0], 250)
        s.mail("a@accepted.test")
        s.rcpt("dot-first@accepted.test")
        s.docmd("DATA")
        s.send(b"..\r\n.\r\n")
        self.assertEqual(s.getreply()[0], 250)
        s.quit()
        wait_for(lambda: len(self.sink_rcpts(lambda a: a.startswith("dot-"))) == len(cases) + 2,
                 timeout=20, what="the dot-stuffing messages at the sink")
        msgs = {m["rcpt_tos"][0]: m["data"] for m in self.sink.messages()}
        for name, (_, want) in cases.items():
            self.assertTrue(msgs[f"dot-{name}@accepted.test"].endswith("body" + want + "end\r\n"),
                            name)
        self.assertTrue(msgs["dot-empty@accepted.test"].startswith("Received: "))
        self.assertTrue(msgs["dot-first@accepted.test"].endswith("\r\n.\r\n"))
        self.assertNotIn("dot-long999@accepted.test", msgs)
        self.assertEqual(self.rcpt_rows(lambda a: a == "dot-long999@accepted.test"), [])

    # --- 3. STARTTLS injection, server side ------------------------------------
    def tls_wrap(self, r):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx.wrap_socket(r.s, server_hostname="relay.example.org")

    @staticmethod
    def tls_reply(t):
        data = b""
        while True:
            chunk = t.recv(4096)
            if not chunk:
                return data.decode("latin-1")
            data += chunk
            lines = data.split(b"\r\n")
            if len(lines) > 1 and (len(lines[-2]) < 4 or lines[-2][3:4] == b" "):
                return data.decode("latin-1")

    def test_starttls_state_reset_and_injection(self):
        r = Raw(self.port)
        r.reply()
        self.assertIn("STARTTLS", r.cmd("EHLO c.example"))
        self.assertTrue(r.cmd("STARTTLS now").startswith("501"))
        self.assertTrue(r.cmd("MAIL FROM:<a@accepted.test>").startswith("250"))
        # STARTTLS behind a command and with a transaction behind it, in
        # one packet, inside a transaction begun in clear.
        r.send("NOOP\r\nSTARTTLS\r\nRSET\r\nMAIL FROM:<inject@accepted.test>\r\n"
               "RCPT TO:<inject@accepted.test>\r\nDATA\r\n")
        self.assertTrue(r.reply().startswith("250"))  # the NOOP
        self.assertTrue(r.reply().startswith("220"))
        t = self.tls_wrap(r)
        # The first reply inside TLS is to our first command there: nothing
        # injected was kept for later.
        t.sendall(b"HELP\r\n")
        self.assertTrue(self.tls_reply(t).startswith("214"))
        # Neither the transaction begun in clear nor the injected one exists.
        t.sendall(b"RCPT TO:<x@accepted.test>\r\n")
        self.assertTrue(self.tls_reply(t).startswith("503 5.5.1"))
        # EHLO is forgotten (RFC 3207 4.2).
        t.sendall(b"MAIL FROM:<a@accepted.test>\r\n")
        self.assertTrue(self.tls_reply(t).startswith("503 5.5.1"))
        t.sendall(b"EHLO c.example\r\n")
        ehlo = self.tls_reply(t)
        self.assertTrue(ehlo.startswith("250"), ehlo)
        self.assertNotIn("STARTTLS", ehlo)
        t.sendall(b"STARTTLS\r\n")
        self.assertTrue(self.tls_reply(t).startswith("503 5.5.1"))
        t.sendall(b"MAIL FROM:<a@accepted.test>\r\n")
        self.assertTrue(self.tls_reply(t).startswith("250"))  # not a nested MAIL
        t.close()
        self.assertEqual(self.rcpt_rows(lambda a: a.startswith("inject")), [])

    def test_starttls_plaintext_after_220_is_not_tls(self):
        """Plaintext commands sent after the 220 (not in the same packet)
        are fed to the handshake, which fails: they never run."""
        r = Raw(self.port)
        r.reply()
        r.cmd("EHLO c.example")
        self.assertTrue(r.cmd("STARTTLS").startswith("220"))
        r.send("MAIL FROM:<inject2@accepted.test>\r\nRCPT TO:<inject2@accepted.test>\r\n"
               "DATA\r\nx\r\n.\r\n")
        self.assertTrue(r.closed())
        r.close()
        self.assertNotIn(b"250", r.buf)
        self.assertEqual(self.rcpt_rows(lambda a: a.startswith("inject2")), [])
        # The server goes on serving.
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
        self.assertEqual(s.noop()[0], 250)
        s.quit()


if __name__ == "__main__":
    unittest.main(verbosity=2)
