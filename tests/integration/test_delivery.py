#!/usr/bin/python3
"""The delivery engine (SPEC §4) against real peers: aiosmtpd sinks that
record what they get, a throwaway CA made with openssl, dnsmasq for MX."""
import os
import re
import shutil
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import Relay, free_port  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402

MSG = b"Subject: hello\r\n\r\nbody line\r\n"


def send(relay, rcpts, sender="a@example.org", n=1, body=MSG):
    s = smtplib.SMTP("127.0.0.1", relay.port, timeout=20)
    s.ehlo("client.example")
    for _ in range(n):
        s.sendmail(sender, rcpts, body)
    s.quit()


def states(relay):
    con = sqlite3.connect(f"file:{relay.db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT e.rcpt, e.state, e.next_attempt, e.last_reply FROM entries e "
                           "ORDER BY e.eid").fetchall()
    finally:
        con.close()


def make_ca(folder):
    """A CA, a good server certificate for mx.partner.test, an expired one,
    and one from another CA — all with openssl at test time."""
    def run(*args):
        subprocess.run(args, check=True, capture_output=True, cwd=folder)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=Test CA", "-keyout", "ca.key", "-out", "ca.pem")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=Other CA", "-keyout", "other.key", "-out", "other.pem")
    for name, ca, days in (("good", "ca", "2"), ("wrong", "other", "2"), ("expired", "ca", "-1")):
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=mx.partner.test",
            "-keyout", f"{name}.key", "-out", f"{name}.csr")
        with open(os.path.join(folder, "san.ext"), "w") as f:
            f.write("subjectAltName=DNS:mx.partner.test\n")
        args = ["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
                f"{ca}.key", "-CAcreateserial", "-out", f"{name}.pem", "-extfile", "san.ext"]
        # openssl x509 cannot back-date; -days 0 ends validity at once.
        args += ["-days", "0" if days == "-1" else days]
        run(*args)
    return folder


class Delivery(unittest.TestCase):
    def setUp(self):
        self.relays = []

    def tearDown(self):
        for r in self.relays:
            r.cleanup()

    def relay(self, connectors, extra=""):
        cfg = ("server:\n  hostname: relay.example.org\n"
               '  relay_networks: ["127.0.0.1/32"]\n'
               '  listen: [ { address: "127.0.0.1:@PORT@" } ]\n'
               "storage:\n  path: queue.db\n"
               "queue: { retry_initial: 1s, retry_max: 2s, delay_warning: 0s }\n"
               + extra + "connectors:\n" + connectors)
        r = Relay(cfg)
        self.relays.append(r)
        return r

    def test_routes_to_the_right_connector(self):
        a, b = start_sink(name="a"), start_sink(name="b")
        r = self.relay(f"""\
  - name: partner
    address_spaces: ["*.partner.test"]
    bridgeheads: ["127.0.0.1:{a.port}"]
    tls: {{ mode: none }}
  - name: rest
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{b.port}"]
    tls: {{ mode: none }}
""").start()
        send(r, ["x@partner.test", "y@sub.partner.test", "z@else.test"])
        wait_for(lambda: len(a.messages()) >= 1 and len(b.messages()) >= 1)
        self.assertEqual(sorted(a.messages()[0]["rcpt_tos"]), ["x@partner.test", "y@sub.partner.test"])
        self.assertEqual(b.messages()[0]["rcpt_tos"], ["z@else.test"])
        wait_for(lambda: states(r) == [])
        # The log has its own writer thread: the line may follow the commit.
        wait_for(lambda: r.log().count("status=sent") == 3, timeout=5)

    def weighted(self, balance, n=200):
        a, b = start_sink(name="a"), start_sink(name="b")
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads:
      - {{ host: 127.0.0.1, port: {a.port}, weight: 3 }}
      - {{ host: 127.0.0.1, port: {b.port}, weight: 1 }}
    balance: {balance}
    max_messages_per_connection: 1
    tls: {{ mode: none }}
""").start()
        send(r, ["w@else.test"], n=n)
        wait_for(lambda: len(a.messages()) + len(b.messages()) >= n, timeout=60)
        time.sleep(0.5)
        return len(a.messages()), len(b.messages())

    def test_round_robin_exact(self):
        self.assertEqual(self.weighted("round_robin"), (150, 50))

    def test_named_bridgehead_down_is_left_out(self):
        """A bridgehead given by name ("localhost", /etc/hosts) that is down
        leaves the balancing (SPEC §4: over the bridgeheads that are up): the
        others share the mail by their own weights, 3:1."""
        a, b = start_sink(name="a"), start_sink(name="b")
        dead = free_port()
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads:
      - {{ host: localhost, port: {dead}, weight: 2 }}
      - {{ host: 127.0.0.1, port: {a.port}, weight: 3 }}
      - {{ host: 127.0.0.1, port: {b.port}, weight: 1 }}
    max_messages_per_connection: 1
    health: {{ retry_initial: 1h, retry_max: 1h }}
    tls: {{ mode: none }}
""").start()
        send(r, ["w@else.test"], n=120)
        wait_for(lambda: len(a.messages()) + len(b.messages()) >= 120, timeout=60)
        na, nb = len(a.messages()), len(b.messages())
        self.assertEqual(na + nb, 120)
        # Only the first job or two can meet the name before it is down.
        self.assertLessEqual(abs(na - 90), 4, (na, nb))

    def test_random_weighted(self):
        na, nb = self.weighted("random")
        self.assertEqual(na + nb, 200)
        self.assertLessEqual(abs(na - 150), 20, (na, nb))

    def test_max_connections_per_bridgehead(self):
        import threading
        a = start_sink(name="a", delay_data=0.5)
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{a.port}"]
    max_connections: 2
    max_messages_per_connection: 1
    tls: {{ mode: none }}
""").start()
        threads = [threading.Thread(target=send, args=(r, [f"m{i}@else.test"])) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_for(lambda: len(a.messages()) == 8, timeout=30)
        times = sorted(float(m["received_at"]) for m in a.messages())
        # Two connections, 0.5 s a message: four rounds, so the last arrives
        # at least 1.4 s after the first (eight at once would take 0.5 s).
        self.assertGreaterEqual(times[-1] - times[0], 1.4, times)

    def test_failover_and_down_bridgehead(self):
        a, b = start_sink(name="a"), start_sink(name="b")
        dead = free_port()
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{dead}", "127.0.0.1:{a.port}", "127.0.0.1:{b.port}"]
    balance: failover
    health: {{ retry_initial: 1s, retry_max: 2s }}
    tls: {{ mode: none }}
""").start()
        send(r, ["f@else.test"], n=5)
        wait_for(lambda: len(a.messages()) == 5)
        self.assertEqual(len(b.messages()), 0)
        a.stop()
        send(r, ["g@else.test"], n=5)
        wait_for(lambda: len(b.messages()) == 5, timeout=30)
        wait_for(lambda: states(r) == [])

    def test_4xx_deferred_then_delivered(self):
        flag = os.path.join(tempfile.mkdtemp(prefix="bh-fail-"), "fail")
        open(flag, "w").close()
        a = start_sink(name="a", fail_file=flag)
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{a.port}"]
    tls: {{ mode: none }}
""").start()
        send(r, ["d@else.test"])
        wait_for(lambda: "status=deferred" in r.log())
        st = states(r)
        self.assertEqual(len(st), 1)
        self.assertIn("451", st[0][3] or "")
        os.unlink(flag)
        wait_for(lambda: len(a.messages()) == 1, timeout=30)
        wait_for(lambda: states(r) == [])

    def test_5xx_bounces_with_dsn_to_sender_route(self):
        bad = start_sink(name="bad", rcpt_reply="550 5.1.1 no such user")
        home = start_sink(name="home")
        r = self.relay(f"""\
  - name: home
    address_spaces: [example.org]
    bridgeheads: ["127.0.0.1:{home.port}"]
    tls: {{ mode: none }}
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{bad.port}"]
    tls: {{ mode: none }}
""").start()
        send(r, ["nobody@else.test"], sender="a@example.org")
        wait_for(lambda: len(home.messages()) == 1, timeout=30)
        dsn = home.messages()[0]
        self.assertIn(dsn["mail_from"], ("", "<>"))
        self.assertEqual(dsn["rcpt_tos"], ["a@example.org"])
        self.assertIn("Undelivered", dsn["subject"])
        self.assertIn("status=bounced", r.log())
        # A bounce of a bounce never happens: mail from <> gets no DSN.
        send(r, ["nobody2@else.test"], sender="")
        time.sleep(2)
        self.assertEqual(len(home.messages()), 1)

    def test_bad_greeting_marks_down_and_fails_over(self):
        bad = start_sink(name="bad", greeting_reply="554 5.3.2 go away")
        good = start_sink(name="good")
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{bad.port}", "127.0.0.1:{good.port}"]
    balance: failover
    health: {{ retry_initial: 30s, retry_max: 60s }}
    tls: {{ mode: none }}
""").start()
        send(r, ["g1@else.test"])
        wait_for(lambda: len(good.messages()) == 1)
        send(r, ["g2@else.test"])
        wait_for(lambda: len(good.messages()) == 2)
        self.assertEqual(bad.messages(), [])
        # Down: the second message did not even try the bad one.
        self.assertEqual(r.log().count(f"127.0.0.1:{bad.port}"), 0)

    def test_expired_and_delay_warning(self):
        home = start_sink(name="home")
        slow = start_sink(name="slow", data_reply="451 4.3.0 try later")
        r = self.relay(f"""\
  - name: home
    address_spaces: [example.org]
    bridgeheads: ["127.0.0.1:{home.port}"]
    tls: {{ mode: none }}
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{slow.port}"]
    tls: {{ mode: none }}
""", extra="").start()
        r.stop()
        r.edit_config("delay_warning: 0s", "delay_warning: 1s, lifetime: 4s")
        r.start()
        send(r, ["late@else.test"], sender="a@example.org")
        wait_for(lambda: len(home.messages()) == 2, timeout=30)
        subjects = sorted(m["subject"] for m in home.messages())
        self.assertIn("Delayed Mail", subjects[0])
        self.assertIn("Undelivered", subjects[1])
        bounce = [m for m in home.messages() if "Undelivered" in m["subject"]][0]["data"]
        self.assertIn("Action: failed", bounce)
        self.assertIn("Status: 4.4.7", bounce)
        self.assertIn("451 4.3.0 try later", bounce)
        wait_for(lambda: "status=expired" in r.log(), timeout=5)
        wait_for(lambda: states(r) == [], timeout=10)  # the home delivery settles

    def test_lifetime_while_waiting_and_no_attempt_past_it(self):
        """lifetime runs whatever the state (SPEC §4, §9): a triggered and a
        never-open scheduled recipient bounce (4.4.7) without ever being
        tried, and a deferred one whose retry falls after its lifetime
        bounces at that time without another attempt."""
        home = start_sink(name="home")
        # One minute, twelve hours from now: not open during this test.
        t = time.gmtime(time.time() + 43200)
        day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][t.tm_wday]
        end = t.tm_hour * 60 + t.tm_min + 1
        window = (f'{{ days: {day}, from: "{t.tm_hour:02}:{t.tm_min:02}", '
                  f'to: "{end // 60:02}:{end % 60:02}" }}')
        held = start_sink(name="held", log_connections=True)
        slow = start_sink(name="slow", data_reply="451 4.3.0 try later", log_connections=True)
        r = self.relay(f"""\
  - name: home
    address_spaces: [example.org]
    bridgeheads: ["127.0.0.1:{home.port}"]
    tls: {{ mode: none }}
  - name: trig
    address_spaces: [trig.test]
    bridgeheads: ["127.0.0.1:{held.port}"]
    triggered: true
  - name: never
    address_spaces: [never.test]
    bridgeheads: ["127.0.0.1:{held.port}"]
    schedule: {{ windows: [ {window} ] }}
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{slow.port}"]
    tls: {{ mode: none }}
""", extra="")
        r.edit_config("queue: { retry_initial: 1s, retry_max: 2s, delay_warning: 0s }",
                                   "queue: { retry_initial: 8s, retry_max: 8s, lifetime: 4s }")
        r.start()
        send(r, ["t@trig.test"], sender="a@example.org")
        send(r, ["n@never.test"], sender="b@example.org")
        send(r, ["d@else.test"], sender="c@example.org")
        wait_for(lambda: len(home.messages()) == 3, timeout=30)
        for m in home.messages():
            self.assertIn("Undelivered", m["subject"])
            self.assertIn("Status: 4.4.7", m["data"])
        self.assertEqual(sorted(m["rcpt_tos"][0] for m in home.messages()),
                         ["a@example.org", "b@example.org", "c@example.org"])
        self.assertEqual(held.events("connect"), [])  # never tried
        self.assertEqual(len(slow.events("connect")), 1)  # one attempt, not two
        wait_for(lambda: states(r) == [], timeout=10)

    def test_notify_decides_which_dsns(self):
        """NOTIFY=NEVER: no DSN; NOTIFY without FAILURE: no bounce; without
        DELAY: no delay warning (SPEC §4)."""
        home = start_sink(name="home")
        bad = start_sink(name="bad", rcpt_reply="550 5.1.1 no such user")
        slow = start_sink(name="slow", data_reply="451 4.3.0 later")
        r = self.relay(f"""\
  - name: home
    address_spaces: [example.org]
    bridgeheads: ["127.0.0.1:{home.port}"]
    tls: {{ mode: none }}
  - name: slow
    address_spaces: [slow.test]
    bridgeheads: ["127.0.0.1:{slow.port}"]
    tls: {{ mode: none }}
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{bad.port}"]
    tls: {{ mode: none }}
""", extra="")
        r.edit_config("delay_warning: 0s", "delay_warning: 1s")
        r.start()
        s = smtplib.SMTP("127.0.0.1", r.port, timeout=20)
        s.ehlo("client.example")
        for rcpt, notify in (("never@else.test", "NEVER"), ("delay@else.test", "DELAY"),
                             ("fail@else.test", "FAILURE"), ("nodelay@slow.test", "FAILURE"),
                             ("never2@slow.test", "NEVER")):
            s.sendmail(f"{rcpt.split('@')[0]}@example.org", [rcpt], MSG,
                       rcpt_options=[f"NOTIFY={notify}"])
        s.sendmail("warn@example.org", ["warn@slow.test"], MSG, rcpt_options=["NOTIFY=DELAY"])
        s.quit()
        wait_for(lambda: "status=bounced" in r.log() and r.log().count("status=bounced") == 3,
                 timeout=20)
        wait_for(lambda: any("Delayed" in m["subject"] for m in home.messages()), timeout=20)
        time.sleep(3)  # more deferrals; no other DSN may come
        got = sorted((m["rcpt_tos"][0], m["subject"].split()[0]) for m in home.messages())
        self.assertEqual(got, [("fail@example.org", "Undelivered"), ("warn@example.org", "Delayed")])

    def test_retry_backoff_doubles_to_retry_max(self):
        """4xx: deferred with retry_initial doubling up to retry_max (SPEC
        §4): the gaps between attempts are about 1, 2, 4, 4 s here."""
        import datetime
        slow = start_sink(name="slow", data_reply="451 4.3.0 later")
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{slow.port}"]
    tls: {{ mode: none }}
""")
        r.edit_config("retry_initial: 1s, retry_max: 2s", "retry_initial: 1s, retry_max: 4s")
        r.start()
        send(r, ["b@else.test"])

        def times():
            out = []
            for line in r.log().splitlines():
                if "status=deferred" in line and "attempts=" in line:
                    ts = re.search(r"ts=(\S+)Z", line).group(1)
                    out.append(datetime.datetime.fromisoformat(ts).timestamp())
            return out
        wait_for(lambda: len(times()) >= 5, timeout=40)
        t = times()
        gaps = [b - a for a, b in zip(t, t[1:5])]
        for gap, want in zip(gaps, (1, 2, 4, 4)):
            self.assertGreaterEqual(gap, want - 1.05, gaps)
            self.assertLessEqual(gap, want + 1.2, gaps)
        self.assertGreater(gaps[2], gaps[0] + 1.5, gaps)  # it grew

    def test_no_destination_up_does_not_count(self):
        """No destination up: deferred to the destination's retry, and the
        attempt does not count (SPEC §4)."""
        dead = free_port()
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{dead}"]
    tls: {{ mode: none }}
    health: {{ retry_initial: 30s, retry_max: 30s }}
""").start()
        t0 = int(time.time())
        send(r, ["n@else.test"])
        wait_for(lambda: "status=deferred" in r.log(), timeout=20)
        time.sleep(0.5)
        con = sqlite3.connect(f"file:{r.db}?mode=ro", uri=True)
        try:
            attempts, nxt = con.execute("SELECT attempts, next_attempt FROM entries").fetchone()
        finally:
            con.close()
        self.assertEqual(attempts, 0)
        self.assertGreaterEqual(nxt, t0 + 29)  # the health retry, not retry_initial (1s)
        self.assertLessEqual(nxt, t0 + 32)

    def test_undeliverable_dsn_dropped_and_copied_to_postmaster(self):
        """Mail from <> that bounces gets no DSN; it is logged as dropped,
        counted, and a copy of the report goes to server.postmaster. When
        that copy bounces too, it is only dropped: no loop."""
        home = start_sink(name="home")
        bad = start_sink(name="bad", rcpt_reply="550 5.1.1 no such user")
        conns = f"""\
  - name: home
    address_spaces: [example.org]
    bridgeheads: ["127.0.0.1:{home.port}"]
    tls: {{ mode: none }}
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{bad.port}"]
    tls: {{ mode: none }}
"""
        r = self.relay(conns, extra="")
        r.edit_config("hostname: relay.example.org",
                                   "hostname: relay.example.org\n  postmaster: pm@example.org")
        r.start()
        send(r, ["gone@else.test"], sender="",
             body=b"Subject: Undelivered Mail Returned to Sender\r\n\r\nthe report\r\n")
        wait_for(lambda: len(home.messages()) == 1, timeout=20)
        copy = home.messages()[0]
        self.assertEqual(copy["rcpt_tos"], ["pm@example.org"])
        self.assertEqual(copy["mail_from"], "<>")
        self.assertIn("gone@else.test", copy["data"])
        self.assertIn("Status: 5.1.1", copy["data"])
        self.assertIn("the report", copy["data"])  # the dropped report itself
        self.assertRegex(r.log(), r"event=dsn status=dropped to=<gone@else.test> .*copy=postmaster")
        wait_for(lambda: states(r) == [], timeout=10)
        # The postmaster unreachable too: the copy bounces and is dropped.
        r.stop()
        r.edit_config("postmaster: pm@example.org", "postmaster: pm@else.test")
        r.start()
        send(r, ["gone2@else.test"], sender="")
        wait_for(lambda: "to=<pm@else.test> reason=" in r.log(), timeout=20)
        wait_for(lambda: states(r) == [], timeout=10)
        time.sleep(1)
        self.assertEqual(r.log().count("event=dsn status=dropped"), 3)
        self.assertIn("to=<pm@else.test> reason=\"550 5.1.1 no such user\" copy=none", r.log())
        self.assertEqual(len(home.messages()), 1)

    def test_one_delay_warning_per_message_listing_all_pending(self):
        """Two recipients on two connectors, both deferring: one delay
        warning for the message, sent once, listing both (SPEC §4)."""
        home = start_sink(name="home")
        s1 = start_sink(name="s1", data_reply="451 4.3.0 later one")
        s2 = start_sink(name="s2", data_reply="451 4.3.0 later two")
        r = self.relay(f"""\
  - name: home
    address_spaces: [example.org]
    bridgeheads: ["127.0.0.1:{home.port}"]
    tls: {{ mode: none }}
  - name: one
    address_spaces: [one.test]
    bridgeheads: ["127.0.0.1:{s1.port}"]
    tls: {{ mode: none }}
  - name: two
    address_spaces: [two.test]
    bridgeheads: ["127.0.0.1:{s2.port}"]
    tls: {{ mode: none }}
""", extra="")
        r.edit_config("delay_warning: 0s", "delay_warning: 2s")
        r.start()
        send(r, ["x@one.test", "y@two.test"], sender="a@example.org")
        try:
            wait_for(lambda: len(home.messages()) >= 1, timeout=30)
        except AssertionError:
            raise AssertionError(r.log()[-3000:])
        time.sleep(4)  # several more deferrals of each connector
        warnings = [m for m in home.messages() if "Delayed" in m["subject"]]
        self.assertEqual(len(warnings), 1, [m["subject"] for m in home.messages()])
        body = warnings[0]["data"]
        self.assertIn("Final-Recipient: rfc822; x@one.test", body)
        self.assertIn("Final-Recipient: rfc822; y@two.test", body)
        self.assertEqual(body.count("Action: delayed"), 2)

    def test_lifetime_of_a_lone_triggered_recipient(self):
        """Nothing else in the queue to wake the scheduler: the lifetime
        pass still runs and bounces a triggered recipient."""
        home = start_sink(name="home")
        r = self.relay(f"""\
  - name: home
    address_spaces: [example.org]
    bridgeheads: ["127.0.0.1:{home.port}"]
    tls: {{ mode: none }}
  - name: trig
    address_spaces: [trig.test]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
""", extra="")
        r.edit_config("queue: { retry_initial: 1s, retry_max: 2s, delay_warning: 0s }",
                      "queue: { lifetime: 3s }")
        r.start()
        send(r, ["t@trig.test"], sender="a@example.org")
        wait_for(lambda: len(home.messages()) == 1, timeout=20)
        self.assertIn("Status: 4.4.7", home.messages()[0]["data"])
        wait_for(lambda: states(r) == [], timeout=10)

    def test_expired_quotes_the_last_remote_reply(self):
        """The last attempt finds the destination gone: the 4.4.7 DSN still
        quotes the remote's last reply, not the refused connection."""
        home = start_sink(name="home")
        slow = start_sink(name="slow", data_reply="451 4.3.0 come back later")
        r = self.relay(f"""\
  - name: home
    address_spaces: [example.org]
    bridgeheads: ["127.0.0.1:{home.port}"]
    tls: {{ mode: none }}
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{slow.port}"]
    tls: {{ mode: none }}
    health: {{ retry_initial: 1s, retry_max: 1s }}
""", extra="")
        r.edit_config("delay_warning: 0s", "lifetime: 5s")
        r.start()
        send(r, ["gone@else.test"], sender="a@example.org")
        wait_for(lambda: "status=deferred" in r.log(), timeout=20)
        slow.stop()
        wait_for(lambda: len(home.messages()) == 1, timeout=30)
        bounce = home.messages()[0]["data"]
        self.assertIn("Status: 4.4.7", bounce)
        self.assertIn("451 4.3.0 come back later", bounce)
        self.assertNotIn("refused", bounce)

    def test_outbound_auth_failure_defers(self):
        ca = tempfile.mkdtemp(prefix="bh-auth-")
        from bhtest import make_cert
        cert, key = make_cert(ca, "localhost")
        sink = start_sink(name="auth", tls_cert=cert, tls_key=key, auth="relay:right")
        pw = os.path.join(ca, "pw")
        with open(pw, "w") as f:
            f.write("wrong\n")
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{sink.port}"]
    tls: {{ mode: required }}
    auth: {{ username: relay, password_file: {pw} }}
    health: {{ retry_initial: 1s, retry_max: 2s }}
""").start()
        send(r, ["au@else.test"])
        wait_for(lambda: "status=deferred" in r.log(), timeout=20)
        time.sleep(1)
        self.assertEqual(sink.messages(), [])
        self.assertNotIn("status=bounced", r.log())
        self.assertEqual(len(states(r)), 1)
        with open(pw, "w") as f:
            f.write("right\n")
        r.stop()
        r.start()
        wait_for(lambda: len(sink.messages()) == 1, timeout=30)
        self.assertTrue(sink.messages()[0]["tls"])
        shutil.rmtree(ca, ignore_errors=True)

    def test_dsn_parameters_passed_on_or_relayed_dsn(self):
        home = start_sink(name="home")
        plain = start_sink(name="plain")
        dsn = start_sink(name="dsn", dsn=True)
        r = self.relay(f"""\
  - name: home
    address_spaces: [example.org]
    bridgeheads: ["127.0.0.1:{home.port}"]
    tls: {{ mode: none }}
  - name: withdsn
    address_spaces: [dsn.test]
    bridgeheads: ["127.0.0.1:{dsn.port}"]
    tls: {{ mode: none }}
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{plain.port}"]
    tls: {{ mode: none }}
""").start()
        s = smtplib.SMTP("127.0.0.1", r.port, timeout=20)
        s.ehlo("c.example")
        s.sendmail("a@example.org", ["x@dsn.test"], MSG, mail_options=["RET=HDRS", "ENVID=E1"],
                   rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;x@dsn.test"])
        s.sendmail("a@example.org", ["y@plain.test"], MSG, rcpt_options=["NOTIFY=SUCCESS"])
        s.quit()
        m = dsn.wait_messages(1)[0]
        self.assertIn("NOTIFY=SUCCESS,FAILURE", str(m["rcpt_options"]))
        self.assertIn("ENVID=E1", str(m["mail_options"]))
        plain.wait_messages(1)
        wait_for(lambda: len(home.messages()) == 1, timeout=20)
        self.assertIn("Successful", home.messages()[0]["subject"])
        self.assertEqual(home.messages()[0]["rcpt_tos"], ["a@example.org"])

    def test_closed_window_then_open(self):
        a = start_sink(name="a", log_connections=True)
        # The window opens at a minute boundary 5 to 65 s from now (never
        # within the 1.5 s looked at below) and lasts two minutes; near
        # midnight it runs past it, which a window may (SPEC §4).
        opens = (int(time.time() + 5) // 60 + 1) * 60
        start_t, end_t = time.gmtime(opens), time.gmtime(opens + 120)
        start = f"{start_t.tm_hour:02d}:{start_t.tm_min:02d}"
        end = f"{end_t.tm_hour:02d}:{end_t.tm_min:02d}"
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{a.port}"]
    tls: {{ mode: none }}
    schedule:
      timezone: UTC
      windows: [ {{ days: "sun,mon,tue,wed,thu,fri,sat", from: "{start}", to: "{end}" }} ]
""").start()
        send(r, ["s@else.test"])
        time.sleep(1.5)
        st = states(r)
        self.assertEqual(st[0][1], 2)  # scheduled
        self.assertEqual(len(a.messages()), 0)
        self.assertEqual(len(a.events("connect")), 0)
        wait_for(lambda: len(a.messages()) == 1, timeout=90)

    def test_triggered_holds(self):
        a = start_sink(name="a", log_connections=True)
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{a.port}"]
    triggered: true
    tls: {{ mode: none }}
""").start()
        send(r, ["t@else.test"])
        time.sleep(1.5)
        self.assertEqual(states(r)[0][1], 3)  # triggered
        self.assertEqual(len(a.events("connect")), 0)

    def test_etrn_starts_triggered_delivery(self):
        from bhtest import Raw
        a = start_sink(name="a")
        r = self.relay(f"""\
  - name: onsite
    address_spaces: ["*.branch.test"]
    bridgeheads: ["127.0.0.1:{a.port}"]
    triggered: true
    tls: {{ mode: none }}
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{a.port}"]
    tls: {{ mode: none }}
""").start()
        send(r, ["e1@branch.test", "e2@sub.branch.test"])
        time.sleep(1)
        self.assertEqual(len(a.messages()), 0)
        c = Raw(r.port)
        c.reply()
        c.cmd("EHLO etrn.example")
        self.assertTrue(c.cmd("ETRN #queue").startswith("501"))
        self.assertTrue(c.cmd("ETRN else.test").startswith("459 4.7.1"))
        self.assertTrue(c.cmd("ETRN branch.test").startswith("250 2.0.0 queuing for branch.test"))
        wait_for(lambda: a.recipients() == ["e1@branch.test"], timeout=20)
        self.assertTrue(c.cmd("ETRN branch.test").startswith("251 2.0.0"))
        self.assertTrue(c.cmd("ETRN @branch.test").startswith("250 2.0.0"))
        wait_for(lambda: len(a.recipients()) == 2, timeout=20)
        c.close()
        outside = Raw(r.port, source="127.0.0.2")
        outside.reply()
        outside.cmd("EHLO outside.example")
        self.assertTrue(outside.cmd("ETRN branch.test").startswith("459"))
        outside.close()

    def test_flush_now_and_etrn_ignore_a_closed_window(self):
        """Plain `queue flush` keeps to the connector's window; `flush --now`
        and ETRN deliver at once in a closed window, for the entries they
        made due only; a direct `flush --now` holds over a restart."""
        from bhtest import BIN, Raw
        a = start_sink(name="a", log_connections=True)
        self.addCleanup(a.stop)
        # A one-hour window six hours from now: surely closed during the test.
        t0, t1 = time.gmtime(time.time() + 6 * 3600), time.gmtime(time.time() + 7 * 3600)
        closed = (f'schedule: {{ timezone: UTC, windows: [ {{ days: "mon-sun", '
                  f'from: "{t0.tm_hour:02d}:{t0.tm_min:02d}", '
                  f'to: "{t1.tm_hour:02d}:{t1.tm_min:02d}" }} ] }}')
        r = self.relay(f"""\
  - name: branch
    address_spaces: ["*.branch.test"]
    bridgeheads: ["127.0.0.1:{a.port}"]
    triggered: true
    tls: {{ mode: none }}
    {closed}
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{a.port}"]
    tls: {{ mode: none }}
    {closed}
""").start()

        def queue(*args):
            p = subprocess.run([BIN, "queue", "-c", r.config_path, *args], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout

        def state_of(rcpt):
            return [st[1] for st in states(r) if st[0] == rcpt]

        send(r, ["s1@else.test"])
        send(r, ["e1@branch.test"])
        send(r, ["e2@sub.branch.test"])
        self.assertEqual([st[1] for st in states(r)], [2, 3, 3])  # scheduled, triggered
        # Without --now the windows hold: triggered mail becomes scheduled.
        self.assertIn("2 entries due now", queue("flush"))
        wait_for(lambda: [st[1] for st in states(r)] == [2, 2, 2], timeout=5)
        time.sleep(2)
        self.assertEqual(a.events("connect"), [])
        self.assertEqual([st[1] for st in states(r)], [2, 2, 2])
        # --now: the scheduled entry goes at once, the other connector's stay.
        self.assertIn("1 entry due now", queue("flush", "--connector", "out", "--now"))
        wait_for(lambda: a.recipients() == ["s1@else.test"], timeout=3)
        wait_for(lambda: state_of("s1@else.test") == [], timeout=3)
        self.assertEqual(state_of("e1@branch.test"), [2])
        # ETRN on the triggered connector: its scheduled mail (after the plain
        # flush) and its triggered mail go at once, only for the domain asked.
        send(r, ["e3@branch.test"])
        self.assertEqual(state_of("e3@branch.test"), [3])
        c = Raw(r.port)
        self.addCleanup(c.close)
        c.reply()
        c.cmd("EHLO etrn.example")
        self.assertTrue(c.cmd("ETRN branch.test").startswith("250 2.0.0"))
        wait_for(lambda: sorted(a.recipients()[1:]) == ["e1@branch.test", "e3@branch.test"],
                 timeout=3)
        self.assertEqual(state_of("e2@sub.branch.test"), [2])
        self.assertTrue(c.cmd("ETRN @branch.test").startswith("250 2.0.0"))
        wait_for(lambda: "e2@sub.branch.test" in a.recipients(), timeout=3)
        # The override went with those entries: new mail waits for the window.
        send(r, ["s2@else.test"])
        time.sleep(1.5)
        self.assertEqual(state_of("s2@else.test"), [2])
        self.assertEqual(len(a.recipients()), 4)
        # With the server stopped, a direct `flush --now` is kept in the queue
        # file: the next serve delivers at once, window closed or not.
        self.assertEqual(r.stop(), 0)
        self.assertIn("1 entry due now", queue("flush", "--now"))
        r.start()
        wait_for(lambda: "s2@else.test" in a.recipients(), timeout=3)
        wait_for(lambda: states(r) == [], timeout=3)

    def test_reload_reroutes_queue(self):
        from bhtest import BIN
        home = start_sink(name="home")
        moved = start_sink(name="moved")
        r = self.relay("""\
  - name: hold
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
""").start()
        send(r, ["x@keep.test", "y@gone.test", "z@move.test"], sender="a@example.org")
        time.sleep(0.5)
        self.assertEqual(sorted(st[1] for st in states(r)), [3, 3, 3])
        with open(r.config_path) as f:
            cfg = f.read().split("connectors:")[0]
        with open(r.config_path, "w") as f:
            f.write(cfg + f"""connectors:
  - name: hold
    address_spaces: [keep.test]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
  - name: home
    address_spaces: [example.org]
    bridgeheads: ["127.0.0.1:{home.port}"]
    tls: {{ mode: none }}
  - name: moved
    address_spaces: [move.test]
    bridgeheads: ["127.0.0.1:{moved.port}"]
    tls: {{ mode: none }}
""")
        p = subprocess.run([BIN, "reload", "-c", r.config_path], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        moved.wait_messages(1)
        self.assertEqual(moved.messages()[0]["rcpt_tos"], ["z@move.test"])
        wait_for(lambda: len(home.messages()) == 1, timeout=20)
        self.assertIn("Undelivered", home.messages()[0]["subject"])
        wait_for(lambda: [x[0] for x in states(r)] == ["x@keep.test"], timeout=20)
        self.assertIn("event=reroute", r.log())

    def test_restart_mid_delivery_loses_nothing(self):
        a = start_sink(name="a", delay_data=0.2)
        r = self.relay(f"""\
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{a.port}"]
    tls: {{ mode: none }}
""").start()
        send(r, ["k@else.test"], n=30)
        time.sleep(0.5)
        r.kill9()
        r.start()
        wait_for(lambda: states(r) == [], timeout=60)
        got = sum(len(x["rcpt_tos"]) for x in a.messages())
        self.assertGreaterEqual(got, 30)


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ca = make_ca(tempfile.mkdtemp(prefix="bh-ca-"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.ca, ignore_errors=True)

    def run_case(self, mode, sink_opts, expect, names="mx.partner.test"):
        """expect: "tls" (delivered inside TLS), "clear" (delivered in clear)
        or "none" (not delivered, and no MAIL FROM ever sent in clear)."""
        sink = start_sink(name="tls", **sink_opts)
        r = Relay(f"""\
server:
  hostname: relay.example.org
  listen: [ {{ address: "127.0.0.1:@PORT@" }} ]
storage: {{ path: queue.db }}
queue: {{ retry_initial: 1s, retry_max: 2s }}
connectors:
  - name: partner
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{sink.port}"]
    tls: {{ mode: {mode}, ca_file: {self.ca}/ca.pem, names: [{names}] }}
    health: {{ retry_initial: 1s, retry_max: 2s }}
""")
        try:
            r.start()
            send(r, ["p@partner.test"])
            if expect == "none":
                wait_for(lambda: "status=deferred" in r.log(), timeout=30)
                time.sleep(1.5)
                self.assertEqual(sink.messages(), [])
                self.assertEqual(sink.mail_in_clear(), [])
                self.assertEqual(len(states(r)), 1)
            else:
                wait_for(lambda: len(sink.messages()) == 1, timeout=30)
                self.assertEqual(sink.messages()[0]["tls"], expect == "tls")
            return r.log()
        finally:
            r.cleanup()
            sink.stop()

    def good(self, **extra):
        return dict(tls_cert=f"{self.ca}/good.pem", tls_key=f"{self.ca}/good.key", **extra)

    def test_verify_ok(self):
        log = self.run_case("verify", self.good(), "tls")
        self.assertIn('verify="ok"', log)
        self.assertIn("tls=TLSv1.3", log)

    def test_verify_wrong_ca(self):
        self.run_case("verify", {"tls_cert": f"{self.ca}/wrong.pem", "tls_key": f"{self.ca}/wrong.key"}, "none")

    def test_verify_wrong_name(self):
        self.run_case("verify", self.good(), "none", names="other.partner.test")

    def test_verify_wildcard_name(self):
        self.run_case("verify", self.good(), "tls", names='"*.partner.test"')

    def test_verify_expired(self):
        self.run_case("verify", {"tls_cert": f"{self.ca}/expired.pem", "tls_key": f"{self.ca}/expired.key"}, "none")

    def test_required_no_starttls(self):
        log = self.run_case("required", {"no_starttls": True}, "none")
        self.assertIn("TLS required but not offered", log)

    def test_required_454(self):
        self.run_case("required", self.good(starttls_reply="454 4.7.0 TLS not available"), "none")

    def test_required_wrong_ca_still_delivers(self):
        self.run_case("required", {"tls_cert": f"{self.ca}/wrong.pem", "tls_key": f"{self.ca}/wrong.key"}, "tls")

    def test_opportunistic_handshake_failure_goes_clear(self):
        sink = start_sink(name="tls12", tls_max_version="1.2", **self.good())
        r = Relay(f"""\
server:
  hostname: relay.example.org
  listen: [ {{ address: "127.0.0.1:@PORT@" }} ]
storage: {{ path: queue.db }}
connectors:
  - name: partner
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{sink.port}"]
    tls: {{ mode: opportunistic, min_version: "1.3" }}
""")
        try:
            r.start()
            send(r, ["o@partner.test"], n=2)
            wait_for(lambda: len(sink.messages()) == 2, timeout=30)
            self.assertFalse(any(m["tls"] for m in sink.messages()))
            self.assertNotIn("status=deferred", r.log())
        finally:
            r.cleanup()
            sink.stop()

    def failover_case(self, bad_opts, conn_extra, pw=None, tls="{ mode: required }"):
        """Bridgeheads [bad, good] in failover order: the bad one fails in a
        way that marks it down, and the same attempt goes on to the good one
        (SPEC §4): delivered at once, never deferred."""
        bad = start_sink(name="bad", **self.good(**bad_opts))
        good = start_sink(name="good", **self.good(auth="relay:right"))
        r = Relay(f"""\
server:
  hostname: relay.example.org
  listen: [ {{ address: "127.0.0.1:@PORT@" }} ]
storage: {{ path: queue.db }}
connectors:
  - name: partner
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{bad.port}", "127.0.0.1:{good.port}"]
    balance: failover
    tls: {tls}
{conn_extra}""")
        try:
            if pw:
                with open(os.path.join(r.dir, "pw"), "w") as f:
                    f.write(pw + "\n")
            r.start()
            send(r, ["f@partner.test"])
            wait_for(lambda: len(good.messages()) == 1, timeout=20)
            self.assertTrue(good.messages()[0]["tls"])
            self.assertEqual(bad.messages(), [])
            self.assertEqual(bad.mail_in_clear(), [])
            self.assertNotIn("status=deferred", r.log())
            return r.log()
        finally:
            r.cleanup()
            bad.stop()
            good.stop()

    def test_required_failover_when_tls_not_offered(self):
        self.failover_case({"no_starttls": True}, "")

    def test_required_failover_on_failed_handshake(self):
        self.failover_case({"tls_max_version": "1.2"}, "",
                           tls='{ mode: required, min_version: "1.3" }')

    def test_failover_on_auth_failure(self):
        self.failover_case({"auth": "relay:other"},
                           "    auth: { username: relay, password_file: pw }\n", pw="right")

    def test_opportunistic_clear_for_an_hour(self):
        """After a failed opportunistic handshake the host is contacted in
        clear for an hour (SPEC §9): a later message goes in clear on its
        first connection, without trying STARTTLS again."""
        sink = start_sink(name="tls12", tls_max_version="1.2", log_connections=True,
                          **self.good())
        r = Relay(f"""\
server:
  hostname: relay.example.org
  listen: [ {{ address: "127.0.0.1:@PORT@" }} ]
storage: {{ path: queue.db }}
connectors:
  - name: partner
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{sink.port}"]
    tls: {{ mode: opportunistic, min_version: "1.3" }}
""")
        try:
            r.start()
            send(r, ["h1@partner.test"])
            wait_for(lambda: len(sink.messages()) == 1, timeout=30)
            wait_for(lambda: len(sink.events("disconnect")) == len(sink.events("connect")),
                     timeout=10)
            first = len(sink.events("connect"))
            self.assertEqual(first, 2)  # the failed handshake, then in clear
            send(r, ["h2@partner.test"])
            wait_for(lambda: len(sink.messages()) == 2, timeout=30)
            self.assertEqual(len(sink.events("connect")), first + 1)
            self.assertFalse(any(m["tls"] for m in sink.messages()))
        finally:
            r.cleanup()
            sink.stop()

    def test_opportunistic_454_goes_clear(self):
        self.run_case("opportunistic", self.good(starttls_reply="454 4.7.0 TLS not available"), "clear")


class Mx(unittest.TestCase):
    """route: dns through dnsmasq on a loopback port: two MX hosts of
    different preference on 127.0.0.11 and 127.0.0.12, the same port."""

    def setUp(self):
        self.dport = free_port()
        self.port = free_port()
        self.dns = subprocess.Popen(
            ["dnsmasq", "-k", "-p", str(self.dport), "--listen-address=127.0.0.1",
             "--bind-interfaces", "-C", "/dev/null", "--no-resolv", "--no-hosts",
             "--user=root", "--pid-file=", "--local=/test/",
             "--mx-host=mx.test,mx1.mx.test,10", "--mx-host=mx.test,mx2.mx.test,20",
             "--host-record=mx1.mx.test,127.0.0.11", "--host-record=mx2.mx.test,127.0.0.12",
             "--host-record=nomx.test,127.0.0.11", "--mx-host=nullmx.test,.,0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        self.r = None

    def tearDown(self):
        if self.r:
            self.r.cleanup()
        self.dns.kill()
        self.dns.wait()

    def relay(self):
        self.r = Relay(f"""\
server:
  hostname: relay.example.org
  listen: [ {{ address: "127.0.0.1:@PORT@" }} ]
storage: {{ path: queue.db }}
queue: {{ retry_initial: 1s, retry_max: 2s }}
dns: {{ servers: ["127.0.0.1:{self.dport}"] }}
connectors:
  - name: internet
    address_spaces: ["*"]
    route: dns
    port: {self.port}
    tls: {{ mode: none }}
    health: {{ retry_initial: 1s, retry_max: 2s }}
""").start()
        return self.r

    def test_mx_preference_and_failover(self):
        mx1 = start_sink(name="mx1", host="127.0.0.11", port=self.port)
        mx2 = start_sink(name="mx2", host="127.0.0.12", port=self.port)
        r = self.relay()
        send(r, ["a@mx.test"], n=3)
        wait_for(lambda: len(mx1.messages()) == 3, timeout=30)
        self.assertEqual(len(mx2.messages()), 0)
        mx1.stop()
        send(r, ["b@mx.test"], n=3)
        wait_for(lambda: len(mx2.messages()) == 3, timeout=30)
        wait_for(lambda: states(r) == [])

    def test_no_mx_uses_address(self):
        a = start_sink(name="a", host="127.0.0.11", port=self.port)
        r = self.relay()
        send(r, ["c@nomx.test"])
        wait_for(lambda: len(a.messages()) == 1, timeout=30)

    def test_null_mx_bounces(self):
        """RFC 7505: a domain whose only MX is "." takes no mail: bounced at
        once (5.1.10), not deferred, and no connection is tried."""
        r = self.relay()
        send(r, ["n@nullmx.test"], sender="")
        wait_for(lambda: "status=bounced" in r.log(), timeout=30)
        self.assertIn('reply="domain accepts no mail (null MX)"', r.log())
        self.assertNotIn("status=deferred", r.log())
        wait_for(lambda: states(r) == [], timeout=10)

    def test_nxdomain_bounces(self):
        r = self.relay()
        send(r, ["d@does-not-exist.test"], sender="")
        wait_for(lambda: "status=bounced" in r.log(), timeout=30)
        wait_for(lambda: states(r) == [], timeout=10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
