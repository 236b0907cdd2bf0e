#!/usr/bin/python3
"""Hostile remote servers against bridgehead's client side (SPEC §4, §7,
§9 client side): scripted SMTP servers in this process, one per scenario,
each behind its own connector. Whatever they send, bridgehead must not
crash, must not count the message as delivered, and must defer it (state
deferred, last_reply saying why), never sending MAIL in clear when TLS is
required. What test_delivery.py covers already (required + no STARTTLS,
required + 454, certificate failures) is not repeated."""
import json
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import BIN, Relay, make_cert  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402


class Hostile:
    """A scripted server on a loopback port: script(peer) runs in a thread
    for every connection. stop() closes everything, which also ends the
    scripts that stall."""

    def __init__(self, name, script, rcvbuf=None):
        self.name, self.script = name, script
        self.ls = socket.socket()
        if rcvbuf:  # inherited by accepted sockets: no autotuning
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.socks, self.events = [], []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                self.socks.append(s)
            threading.Thread(target=self._run, args=(s,), daemon=True).start()

    def _run(self, s):
        peer = Peer(self, s)
        try:
            self.script(peer)
        except (OSError, EOFError, ssl.SSLError):
            pass
        finally:
            peer.s.close()
            s.close()

    def event(self, what):
        with self.lock:
            self.events.append(what)

    def stop(self):
        self.stopping.set()
        self.ls.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


class Peer:
    def __init__(self, srv, sock):
        self.srv, self.s, self.buf, self.tls = srv, sock, b"", False
        sock.settimeout(30)

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        verb = line[:4].upper()
        if verb == b"MAIL":
            self.srv.event("mail_tls" if self.tls else "mail_in_clear")
        return line.rstrip(b"\r")

    def data(self):
        while True:
            if self.line() == b".":
                self.srv.event("dot")
                return

    def starttls(self, ctx):
        assert self.buf == b""
        self.s = ctx.wrap_socket(self.s, server_side=True)
        self.tls = True
        with self.srv.lock:
            self.srv.socks.append(self.s)

    def stall(self):
        self.srv.stopping.wait(60)

    def serve(self):
        """Behave like a plain sink from here on (a client that wrongly goes
        on would deliver)."""
        while True:
            verb = self.line()[:4].upper()
            if verb == b"DATA":
                self.send("354 go\r\n")
                self.data()
                self.send("250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                self.send("221 bye\r\n")
                return
            else:
                self.send("250 ok\r\n")


def hello(p, *ext):
    p.send("220 hostile.test ESMTP\r\n")
    p.line()
    kws = ["hostile.test"] + list(ext)
    p.send("".join(f"250{'-' if i + 1 < len(kws) else ' '}{k}\r\n" for i, k in enumerate(kws)))


def to_data(p):
    """EHLO, MAIL, RCPT accepted; returns at the DATA command."""
    hello(p)
    p.line()
    p.send("250 ok\r\n")
    p.line()
    p.send("250 ok\r\n")
    p.line()


# --- the scripts: (name, tls mode, expected in last_reply, script) -----------

def endless_multiline(p):
    p.send("220 hostile.test\r\n")
    p.line()
    for _ in range(100000):
        if p.srv.stopping.is_set():
            return
        p.send(b"250-and more\r\n" * 100)


def long_line(p):
    hello(p)
    p.line()
    p.send(b"250 " + b"x" * 600 + b"\r\n")
    p.serve()


def long_reply(p):
    hello(p)
    p.line()
    p.send(b"".join(b"250-" + b"y" * 496 + b"\r\n" for _ in range(150)) + b"250 ok\r\n")
    p.serve()


def garbage_greeting(p):
    p.send(b"\x00\xff\xfe hello \x1b[31m\r\n")
    p.serve()


def non_numeric(p):
    p.send("220 hostile.test\r\n")
    p.line()
    p.send("2x0 sure\r\n")
    p.serve()


def data_2xx(p):
    to_data(p)
    p.send("250 2.0.0 no need for a body, queued\r\n")  # not 354
    p.serve()


def dot_3xx(p):
    to_data(p)
    p.send("354 go\r\n")
    p.data()
    p.send("354 more please\r\n")
    p.serve()


def dot_mixed_codes(p):
    to_data(p)
    p.send("354 go\r\n")
    p.data()
    p.send("250-2.0.0 ok\r\n550 5.0.0 or not\r\n")
    p.serve()


def stall_mid_reply(p):
    hello(p)
    p.line()
    p.send("250-partial\r\n")
    p.stall()


def trickle(p):
    """A reply that never ends, one byte at a time: each byte comes well
    inside the command timeout, the whole reply never does."""
    hello(p)
    p.line()
    p.send("250-")
    while not p.srv.stopping.wait(0.4):
        p.send("x")


def stall_greeting(p):
    p.stall()


def stall_after_dot(p):
    to_data(p)
    p.send("354 go\r\n")
    p.data()
    p.stall()


def never_reads_body(p):
    """354, then a zero window: the body never gets through."""
    to_data(p)
    p.send("354 go\r\n")
    p.stall()


def close_mid_data(p):
    to_data(p)
    p.send("354 go\r\n")
    p.line()
    p.s.close()


def close_after_dot(p):
    to_data(p)
    p.send("354 go\r\n")
    p.data()
    p.s.close()


def starttls_injection(p):
    """CVE-2011-0411 the other way round: replies injected after the 220,
    in the same packet, must be thrown away; the genuine server says 451."""
    hello(p, "STARTTLS")
    p.line()
    p.send("220 2.0.0 Go ahead\r\n250 fake ehlo\r\n250 fake mail\r\n250 fake rcpt\r\n"
           "354 fake data\r\n250 2.0.0 fake queued\r\n")
    p.starttls(p.srv.ctx)
    p.line()
    p.send("250 hostile.test\r\n")
    p.line()
    p.send("451 4.3.0 genuine reply inside TLS\r\n")
    p.serve()


def starttls_then_plaintext(p):
    """220 to STARTTLS, then no TLS at all: a plaintext reply instead."""
    hello(p, "STARTTLS")
    p.line()
    p.send("220 2.0.0 Go ahead\r\n")
    p.s.recv(4096)  # the ClientHello
    p.send("250 ok, let us stay in clear\r\n")
    p.serve()


def starttls_454(p):
    hello(p, "STARTTLS")
    p.line()
    p.send("454 4.7.0 TLS not available\r\n")
    p.serve()


def starttls_stripped(p):
    hello(p, "PIPELINING")
    p.serve()


def starttls_wrong_code(p):
    hello(p, "STARTTLS")
    p.line()
    p.send("250 2.0.0 sure, go ahead\r\n")
    p.serve()


SCENARIOS = [
    ("endless-multiline", "none", "too many lines", endless_multiline),
    ("long-line", "none", "reply line too long", long_line),
    ("long-reply", "none", "too many lines", long_reply),
    ("garbage-greeting", "none", "malformed reply line", garbage_greeting),
    ("non-numeric", "none", "malformed reply line", non_numeric),
    ("data-2xx", "none", "unexpected 2xx reply to DATA", data_2xx),
    ("dot-3xx", "none", "unexpected 3xx reply to the final dot", dot_3xx),
    ("dot-mixed-codes", "none", "another code", dot_mixed_codes),
    ("stall-mid-reply", "none", "timeout waiting for a reply", stall_mid_reply),
    ("trickle", "none", "timeout waiting for a reply", trickle),
    ("stall-greeting", "none", "timeout waiting for the greeting", stall_greeting),
    ("stall-after-dot", "none", "timeout waiting for the reply to the final dot", stall_after_dot),
    ("never-reads-body", "none", "timeout", never_reads_body),
    ("close-mid-data", "none", "connection lost", close_mid_data),
    ("close-after-dot", "none", "connection lost", close_after_dot),
    ("inject-required", "required", "genuine reply inside TLS", starttls_injection),
    ("inject-opportunistic", "opportunistic", "genuine reply inside TLS", starttls_injection),
    ("tls-then-plaintext", "required", "TLS handshake", starttls_then_plaintext),
    ("verify-454", "verify", "TLS required but refused", starttls_454),
    ("verify-stripped", "verify", "TLS required but not offered", starttls_stripped),
    ("tls-wrong-code", "required", "unexpected reply to STARTTLS", starttls_wrong_code),
]
TIMEOUT = 2  # every client timeout of the hostile connectors, in seconds


class HostileServers(unittest.TestCase):
    def setUp(self):
        self.servers, self.relay, self.sink = [], None, None

    def tearDown(self):
        for h in self.servers:
            h.stop()
        if self.sink:
            self.sink.stop()
        if self.relay:
            rc = self.relay.stop()
            log = self.relay.log()
            self.relay.cleanup()
            self.assertEqual(rc, 0, f"serve exited {rc}:\n{log[-3000:]}")

    def queue(self):
        p = subprocess.run([BIN, "queue", "list", "--json", "-c", self.relay.config_path],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return {json.loads(x)["recipient"]: json.loads(x) for x in p.stdout.splitlines()}

    def test_hostile_servers(self):
        self.sink = start_sink(name="good")
        self.relay = Relay("")
        cert, key = make_cert(self.relay.dir, "hostile.test")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        t = f"{TIMEOUT}s"
        conns = ""
        for name, mode, _, script in SCENARIOS:
            h = Hostile(name, script, rcvbuf=65536 if script is never_reads_body else None)
            h.ctx = ctx
            self.servers.append(h)
            names = ", names: [hostile.test]" if mode == "verify" else ""
            conns += (f"  - name: {name}\n    address_spaces: [{name}.test]\n"
                      f"    bridgeheads: [\"127.0.0.1:{h.port}\"]\n"
                      f"    tls: {{ mode: {mode}{names} }}\n"
                      f"    timeouts: {{ connect: {t}, greeting: {t}, command: {t}, "
                      f"data_block: {t}, data_end: {t} }}\n"
                      f"    health: {{ retry_initial: 5m, retry_max: 10m }}\n")
        with open(self.relay.config_path, "w") as f:
            f.write(f"""\
server:
  hostname: relay.example.org
  listen: [ {{ address: "127.0.0.1:{self.relay.port}" }} ]
storage: {{ path: queue.db }}
queue: {{ retry_initial: 5m, retry_max: 10m, delay_warning: 0s }}
connectors:
  - name: good
    address_spaces: [good.test]
    bridgeheads: ["127.0.0.1:{self.sink.port}"]
    tls: {{ mode: none }}
{conns}""")
        self.relay.start()
        rcpts = [f"victim@{name}.test" for name, *_ in SCENARIOS]
        s = smtplib.SMTP("127.0.0.1", self.relay.port, timeout=20)
        s.sendmail("a@example.org", [r for r in rcpts if "never-reads" not in r],
                   b"Subject: hostile\r\n\r\nbody\r\n.\r\nline\r\n")
        # More than the kernel buffers on both sides hold.
        s.sendmail("a@example.org", [r for r in rcpts if "never-reads" in r],
                   b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 8000)
        s.quit()
        t0 = time.monotonic()

        def settled():
            q = self.queue()
            return all(q.get(r, {}).get("state") == "deferred" for r in rcpts) and q

        try:
            q = wait_for(settled, timeout=6 * TIMEOUT + 6, interval=0.3,
                         what="every hostile destination deferred")
        except AssertionError:
            q = self.queue()
            stuck = {r: (q.get(r, {}).get("state"), q.get(r, {}).get("last_reply"))
                     for r in rcpts if q.get(r, {}).get("state") != "deferred"}
            raise AssertionError(f"not deferred: {stuck}")
        took = time.monotonic() - t0
        for (name, mode, why, _), h in zip(SCENARIOS, self.servers):
            e = q[f"victim@{name}.test"]
            print(f"  {name}: {e['state']} {e['last_reply']!r}", file=sys.stderr)
            self.assertIn(why, e["last_reply"] or "", name)
            if mode in ("required", "verify"):
                self.assertNotIn("mail_in_clear", h.events, name)
        # The injected replies were not taken: the client went on in TLS and
        # got to MAIL there, where the genuine 451 came.
        for h in self.servers:
            if h.name.startswith("inject"):
                self.assertIn("mail_tls", h.events, h.name)
        self.assertNotIn("status=sent", self.relay.log())
        # The timeouts fired about on time, not after the whole reply.
        self.assertLess(took, 4 * TIMEOUT + 4)
        # Still serving, and delivering.
        self.assertIsNone(self.relay.proc.poll())
        s = smtplib.SMTP("127.0.0.1", self.relay.port, timeout=20)
        self.assertEqual(s.noop()[0], 250)
        s.sendmail("a@example.org", ["ok@good.test"], b"Subject: after\r\n\r\nfine\r\n")
        s.quit()
        self.sink.wait_messages(1)
        self.assertEqual(self.sink.recipients(), ["ok@good.test"])
        self.assertTrue(all(r in self.queue() for r in rcpts))
        print(f"hostile servers: {len(SCENARIOS)} deferred in {took:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
