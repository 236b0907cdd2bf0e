#!/usr/bin/python3
"""Reload (SPEC §9) with the real binary: SIGHUP and `bridgehead reload`,
sessions that began before it, files that are re-read (certificate and key,
users_file, password and CA files), settings that need a restart, and a
restart with a changed config, against aiosmtpd sinks."""
import crypt
import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import BIN, Relay, connector, free_port, make_cert, starttls_session  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402
from test_delivery import make_ca, send, states  # noqa: E402

HEAD = """\
server:
  hostname: relay.example.org
  relay_networks: ["127.0.0.1/32"]
  listen: [ { address: "127.0.0.1:@PORT@" } ]
storage: { path: queue.db }
queue: { retry_initial: 1s, retry_max: 2s }
connectors:
"""


def user_line(name, password):
    return "%s:%s\n" % (name, crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512)))


class Reload(unittest.TestCase):
    def setUp(self):
        self.relays = []

    def tearDown(self):
        for r in self.relays:
            r.cleanup()

    def relay(self, connectors, head=HEAD):
        r = Relay(head + connectors)
        self.relays.append(r)
        return r

    def rewrite(self, r, connectors, head=HEAD):
        with open(r.config_path, "w") as f:
            f.write((head + connectors).replace("@PORT@", str(r.port)).replace("@DIR@", r.dir))

    def hup(self, r):
        """SIGHUP, and wait for the server's verdict on it."""
        before = r.log().count("event=reload status=")
        os.kill(r.proc.pid, signal.SIGHUP)
        wait_for(lambda: r.log().count("event=reload status=") > before, timeout=10)
        return r.log().split("event=reload status=")[-1].split()[0]

    def test_sighup_session_keeps_its_config(self):
        """A session that began before the reload finishes on its config;
        new sessions get the new one; what the old session queued for a
        connector that is gone is routed again at once, and bounces when the
        new config has no route for it."""
        home = start_sink(name="home")
        legacy = start_sink(name="legacy")
        new = start_sink(name="new")
        r = self.relay(connector("home", "example.org", home.port)
                       + connector("legacy", "old.test", legacy.port)).start()
        s1 = smtplib.SMTP("127.0.0.1", r.port, timeout=20)
        self.addCleanup(s1.close)
        s1.ehlo("before.example")
        self.assertEqual(s1.mail("a@example.org")[0], 250)
        self.assertEqual(s1.rcpt("x@old.test")[0], 250)
        self.rewrite(r, connector("home", "example.org", home.port)
                     + connector("fresh", "new.test", new.port))
        self.assertEqual(self.hup(r), "ok")
        # A new session: old.test has no route any more, new.test has.
        s2 = smtplib.SMTP("127.0.0.1", r.port, timeout=20)
        self.addCleanup(s2.close)
        s2.ehlo("after.example")
        self.assertEqual(s2.mail("a@example.org")[0], 250)
        code, msg = s2.rcpt("y@old.test")
        self.assertEqual((code, msg[:5]), (550, b"5.4.4"))
        self.assertEqual(s2.rcpt("y@new.test")[0], 250)
        self.assertEqual(s2.data(b"Subject: after\r\n\r\nafter\r\n")[0], 250)
        new.wait_messages(1)
        # The old session still routes on the config it began with.
        self.assertEqual(s1.rcpt("z@old.test")[0], 250)
        self.assertEqual(s1.data(b"Subject: before\r\n\r\nbefore\r\n")[0], 250)
        s1.quit()
        # Its message is routed again under the new config at once (not
        # after a retry interval): old.test is unroutable now, so it bounces.
        try:
            wait_for(lambda: len(home.messages()) == 1, timeout=10)
        except AssertionError:
            raise AssertionError(r.log())
        dsn = home.messages()[0]
        self.assertIn("Undelivered", dsn["subject"])
        self.assertEqual(dsn["rcpt_tos"], ["a@example.org"])
        self.assertIn("x@old.test", dsn["data"])
        self.assertIn("z@old.test", dsn["data"])
        self.assertEqual(dsn["data"].count("Status: 5.4.4"), 2, dsn["data"])
        self.assertEqual(legacy.messages(), [])
        wait_for(lambda: states(r) == [], timeout=10)
        self.assertIn("event=reroute_wanted", r.log())

    def test_restart_with_changed_config_reroutes(self):
        """A restart is a reload too: queued mail for a connector that is gone
        goes out through the one that now serves its domain, at once."""
        moved = start_sink(name="moved")
        r = self.relay("""\
  - name: hold
    address_spaces: [move.test, keep.test]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
""").start()
        send(r, ["m@move.test", "k@keep.test"])
        self.assertEqual(sorted(x[1] for x in states(r)), [3, 3])
        self.assertEqual(r.stop(), 0)
        self.rewrite(r, """\
  - name: hold
    address_spaces: [keep.test]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
""" + connector("moved", "move.test", moved.port))
        r.start()
        wait_for(lambda: len(moved.messages()) == 1, timeout=10)
        self.assertEqual(moved.messages()[0]["rcpt_tos"], ["m@move.test"])
        wait_for(lambda: [x[0] for x in states(r)] == ["k@keep.test"], timeout=10)

    def test_reload_refusal_bounces_with_5_7_1(self):
        """A recipient whose connector now refuses its sender bounces (5.7.1);
        a down destination stays down across the reload (health is kept)."""
        home = start_sink(name="home")
        mport = free_port()
        head = HEAD.replace("connectors:",
                            'metrics: { listen: "127.0.0.1:%d" }\nconnectors:' % mport)
        conn = connector("home", "example.org", home.port) + """\
  - name: partner
    address_spaces: [partner.test]
    bridgeheads: ["127.0.0.1:9"]
    health: { retry_initial: 1h, retry_max: 1h }
"""
        r = self.relay(conn, head).start()

        def destination_up():
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as f:
                body = f.read().decode()
            m = re.search(r'bridgehead_destination_up\{destination="127\.0\.0\.1:9"\} (\d)', body)
            return m and m.group(1)

        send(r, ["p@partner.test"], sender="a@example.org")
        wait_for(lambda: destination_up() == "0", timeout=20)
        self.rewrite(r, conn + "    senders: { default: accept, reject: [\"a@example.org\"] }\n",
                     head)
        self.assertEqual(self.hup(r), "ok")
        wait_for(lambda: len(home.messages()) == 1, timeout=10)
        self.assertIn("Status: 5.7.1", home.messages()[0]["data"])
        self.assertIn("p@partner.test", home.messages()[0]["data"])
        self.assertEqual(destination_up(), "0")
        # The bounce line names no internal marker as its connector.
        line = [x for x in r.log().splitlines() if "to=<p@partner.test>" in x
                and "status=bounced" in x][0]
        self.assertIn(" connector=none ", line)

    def test_sighup_rereads_certificate_and_users_file(self):
        folder = tempfile.mkdtemp(prefix="bh-reload-")
        self.addCleanup(shutil.rmtree, folder, True)
        old_cert, old_key = make_cert(folder, "old.relay.test", "old")
        new_cert, new_key = make_cert(folder, "new.relay.test", "new")
        head = HEAD.replace("storage:", """\
  tls: { certificate: cert.pem, key: key.pem }
  users_file: users.txt
storage:""")
        sink = start_sink(name="out")
        conn = connector("out", '"*"', sink.port)
        r = self.relay(conn, head)
        shutil.copy(old_cert, os.path.join(r.dir, "cert.pem"))
        shutil.copy(old_key, os.path.join(r.dir, "key.pem"))
        with open(os.path.join(r.dir, "users.txt"), "w") as f:
            f.write(user_line("alice", "a-secret"))
        r.start()

        def session():
            return starttls_session(r.port)

        def pem_der(path):
            with open(path) as f:
                return ssl.PEM_cert_to_DER_cert(f.read())

        s1 = session()
        self.addCleanup(s1.close)
        self.assertEqual(s1.sock.getpeercert(True), pem_der(old_cert))
        s1.login("alice", "a-secret")
        # New files in place; nothing changes until the reload.
        shutil.copy(new_cert, os.path.join(r.dir, "cert.pem"))
        shutil.copy(new_key, os.path.join(r.dir, "key.pem"))
        with open(os.path.join(r.dir, "users.txt"), "w") as f:
            f.write(user_line("bob", "b-secret"))
        s2 = session()
        self.assertEqual(s2.sock.getpeercert(True), pem_der(old_cert))
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            s2.login("bob", "b-secret")
        s2.close()
        self.assertEqual(self.hup(r), "ok")
        s3 = session()
        self.assertEqual(s3.sock.getpeercert(True), pem_der(new_cert))
        s3.login("bob", "b-secret")
        s3.quit()
        s4 = session()
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            s4.login("alice", "a-secret")
        s4.close()
        # The session from before the reload still relays on its own TLS.
        s1.sendmail("a@example.org", ["s1@else.test"], b"Subject: s1\r\n\r\nbody\r\n")
        s1.quit()
        sink.wait_messages(1)
        # A broken key now: the reload is refused, the new certificate stays.
        with open(os.path.join(r.dir, "key.pem"), "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
        self.assertEqual(self.hup(r), "rejected")
        self.assertRegex(r.log(), r"event=reload_error file=\S+bridgehead\.yaml line=\d+ col=\d+")
        s5 = session()
        self.assertEqual(s5.sock.getpeercert(True), pem_der(new_cert))
        s5.quit()
        self.assertIsNone(r.proc.poll())

    def test_reload_rereads_password_and_ca_files(self):
        """Outbound: the password file and the CA file are read again by
        `bridgehead reload`; the deferred message then goes out."""
        ca = make_ca(tempfile.mkdtemp(prefix="bh-reload-ca-"))
        self.addCleanup(shutil.rmtree, ca, True)
        sink = start_sink(name="auth", tls_cert=f"{ca}/good.pem", tls_key=f"{ca}/good.key",
                          auth="relay:right")
        pw = os.path.join(ca, "pw")
        anchors = os.path.join(ca, "anchors.pem")
        with open(pw, "w") as f:
            f.write("right\n")
        shutil.copy(f"{ca}/other.pem", anchors)  # the wrong CA first
        r = self.relay(f"""\
  - name: partner
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{sink.port}"]
    tls: {{ mode: verify, ca_file: {anchors}, names: [mx.partner.test] }}
    auth: {{ username: relay, password_file: {pw} }}
    health: {{ retry_initial: 1s, retry_max: 1s }}
""").start()
        send(r, ["p@partner.test"])
        wait_for(lambda: "status=deferred" in r.log(), timeout=20)
        # The right CA in the file, but a wrong password: still refused.
        shutil.copy(f"{ca}/ca.pem", anchors)
        with open(pw, "w") as f:
            f.write("wrong\n")
        p = subprocess.run([BIN, "reload", "-c", r.config_path], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        def after_reload():
            return r.log().split("event=reload status=ok")[-1]
        wait_for(lambda: "status=deferred" in after_reload(), timeout=20)
        self.assertIn("535", after_reload())  # verified now; the password is refused
        time.sleep(1.5)
        self.assertEqual(sink.messages(), [])
        # The right password: the next reload makes it go.
        with open(pw, "w") as f:
            f.write("right\n")
        p = subprocess.run([BIN, "reload", "-c", r.config_path], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: len(sink.messages()) == 1, timeout=20)
        self.assertTrue(sink.messages()[0]["tls"])
        wait_for(lambda: states(r) == [], timeout=10)

    def test_connection_of_a_changed_connector_is_not_reused(self):
        """A connection opened before the reload carries no more mail once
        its connector's TLS policy changed: the next message gets a new
        connection under the new policy."""
        folder = tempfile.mkdtemp(prefix="bh-reload-")
        self.addCleanup(shutil.rmtree, folder, True)
        cert, key = make_cert(folder, "localhost")
        sink = start_sink(name="slow", tls_cert=cert, tls_key=key, delay_data=2.0)
        conn = f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{sink.port}"]
    max_connections: 1
    tls: {{ mode: @MODE@ }}
"""
        r = self.relay(conn.replace("@MODE@", "none")).start()
        send(r, ["c@else.test"], n=3)
        wait_for(lambda: "event=delivery" in r.log() or "event=connect" in r.log()
                 or len(sink.records()) > 0, timeout=10)
        time.sleep(0.5)  # the first message is in its DATA phase now
        self.rewrite(r, conn.replace("@MODE@", "required"))
        self.assertEqual(self.hup(r), "ok")
        wait_for(lambda: len(sink.messages()) == 3, timeout=30)
        got = [m["tls"] for m in sink.messages()]
        self.assertEqual(got, [False, True, True], got)

    def test_settings_that_need_a_restart(self):
        """listen, storage, node, dns.servers and metrics.listen keep their
        running values; the log says each needs a restart."""
        sink = start_sink(name="out")
        conn = connector("out", '"*"', sink.port)
        r = self.relay(conn).start()
        other = free_port()
        head = (HEAD.replace("127.0.0.1:@PORT@", f"127.0.0.1:{other}")
                .replace("path: queue.db", "path: elsewhere.db")
                .replace("connectors:", 'dns: { servers: ["127.0.0.1:5353"] }\n'
                         'metrics: { listen: "127.0.0.1:%d" }\nconnectors:' % free_port()))
        self.rewrite(r, conn, head)
        self.assertEqual(self.hup(r), "ok")
        log = r.log()
        for setting in ("server.listen", "storage", "dns.servers", "metrics.listen"):
            self.assertIn(f"event=reload_restart_needed setting={setting} ", log)
        self.assertNotIn("setting=server.node", log)
        # Still on the old port and queue: mail flows as before.
        send(r, ["k@else.test"])
        sink.wait_messages(1)
        self.assertFalse(os.path.exists(os.path.join(r.dir, "elsewhere.db")))
        with self.assertRaises(OSError):
            smtplib.SMTP("127.0.0.1", other, timeout=2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
