#!/usr/bin/python3
"""The four use cases of examples/*.yaml, end to end: each test runs a config
that mirrors one example file's connectors (same names, address spaces,
balance, TLS, schedule and content rules), with the real next hops replaced
by loopback sinks (tests/integration/sink.py) and, for DNS, by dnsmasq on a
loopback port. No test waits for a real schedule window: windows are chosen
closed now and the test checks that they hold."""
import datetime
import json
import os
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import BIN, Relay, free_port  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def message(subject="hello", headers="", size=0):
    body = "body line\r\n"
    if size:
        body += ("x" * 70 + "\r\n") * (size // 72 + 1)
    return (f"Subject: {subject}\r\n{headers}\r\n{body}").encode()


def send(relay, rcpts, sender="a@example.org", n=1, body=None):
    s = smtplib.SMTP("127.0.0.1", relay.port, timeout=20)
    s.ehlo("client.example.org")
    for i in range(n):
        s.sendmail(sender, rcpts, body or message(f"msg {i}"))
    s.quit()


def queue_list(relay):
    out = subprocess.run([BIN, "queue", "list", "--json", "-c", relay.config_path],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def header(connectors, extra="", queue="{ retry_initial: 1s, retry_max: 2s }"):
    return ("server:\n  hostname: relay.example.org\n"
            '  listen: [ { address: "127.0.0.1:@PORT@" } ]\n'
            "  accepted_domains: [example.org, \"*.example.org\"]\n"
            '  relay_networks: ["127.0.0.0/8"]\n'
            "storage:\n  path: queue.db\n"
            f"queue: {queue}\n"
            + extra + "connectors:\n" + connectors)


class UseCase(unittest.TestCase):
    def setUp(self):
        self.relays, self.sinks = [], []

    def tearDown(self):
        for r in self.relays:
            r.cleanup()
        for s in self.sinks:
            s.stop()

    def sink(self, **kw):
        s = start_sink(**kw)
        self.sinks.append(s)
        return s

    def relay(self, cfg):
        r = Relay(cfg)
        self.relays.append(r)
        return r.start()


class OrgOutbound(UseCase):
    """Mirrors examples/org-outbound.yaml: `outbound` (*) over two
    bridgeheads weighted 2:1, round robin; `mailstore` (example.org,
    *.example.org) as a failover pair."""

    def test_two_to_one_and_mailstore(self):
        gw1, gw2 = self.sink(name="gw1"), self.sink(name="gw2")
        ms1, ms2 = self.sink(name="mailstore1"), self.sink(name="mailstore2")
        r = self.relay(header(f"""\
  - name: outbound
    address_spaces: ["*"]
    bridgeheads:
      - {{ host: 127.0.0.1, port: {gw1.port}, weight: 2 }}
      - {{ host: 127.0.0.1, port: {gw2.port}, weight: 1 }}
    balance: round_robin
    max_connections: 20
    max_messages_per_connection: 1
    tls: {{ mode: opportunistic }}
  - name: mailstore
    address_spaces:
      - example.org
      - {{ space: "*.example.org", cost: 1 }}
    bridgeheads: ["127.0.0.1:{ms1.port}", "127.0.0.1:{ms2.port}"]
    balance: failover
"""))
        send(r, ["someone@partner.test"], n=30)
        send(r, ["alice@example.org", "bob@hq.example.org"])
        wait_for(lambda: len(gw1.messages()) + len(gw2.messages()) >= 30, timeout=30)
        ms1.wait_messages(1)
        wait_for(lambda: queue_list(r) == [], timeout=10)
        time.sleep(0.3)
        self.assertEqual((len(gw1.messages()), len(gw2.messages())), (20, 10))
        self.assertEqual(sorted(ms1.recipients()), ["alice@example.org", "bob@hq.example.org"])
        self.assertEqual(ms2.messages(), [])
        self.assertNotIn("example.org", " ".join(gw1.recipients() + gw2.recipients()))
        # failover: with mailstore1 down, internal mail goes to mailstore2
        ms1.stop()
        send(r, ["carol@example.org"])
        wait_for(lambda: ms2.recipients() == ["carol@example.org"], timeout=30)


class MeteredLink(UseCase):
    """Mirrors examples/metered-link.yaml: `satellite` (low, normal) with
    windows and separate oversized windows; `daytime-urgent` (high only,
    1MiB max) always open. The windows are moved to days that are not today
    (UTC) so that they are closed now; the threshold is lowered to 16KiB."""

    def test_holds_urgent_and_oversized(self):
        hq = self.sink(name="hq-relay", log_connections=True)
        today = datetime.datetime.now(datetime.timezone.utc).date()
        normal_day = today + datetime.timedelta(days=2)
        big_day = today + datetime.timedelta(days=4)
        r = self.relay(header(f"""\
  - name: satellite
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{hq.port}"]
    tls: {{ mode: none }}
    content:
      priorities: [low, normal]
    schedule:
      timezone: UTC
      windows:
        - {{ days: {DAYS[normal_day.weekday()]}, from: "22:00", to: "24:00" }}
      oversized:
        threshold: 16KiB
        windows:
          - {{ days: {DAYS[big_day.weekday()]}, from: "01:00", to: "05:00" }}
  - name: daytime-urgent
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{hq.port}"]
    tls: {{ mode: none }}
    content:
      priorities: [high]
    max_message_size: 1MiB
""", queue="{ retry_initial: 1s, retry_max: 2s, lifetime: 7d, delay_warning: 1d }"))
        send(r, ["normal@hq.test"], body=message("normal"))
        send(r, ["big@hq.test"], body=message("big", size=40000))
        send(r, ["urgent@hq.test"], body=message("urgent", headers="Importance: high\r\n"))
        msgs = hq.wait_messages(1, timeout=20)
        self.assertEqual(msgs[0]["rcpt_tos"], ["urgent@hq.test"])
        self.assertIn("connector=daytime-urgent", r.log())

        def held():
            rows = {e["recipient"]: e for e in queue_list(r)}
            if len(rows) == 2 and all(e["state"] == "scheduled" for e in rows.values()):
                return rows
        rows = wait_for(held, timeout=10, what="two scheduled entries")
        normal, big = rows["normal@hq.test"], rows["big@hq.test"]
        self.assertEqual(normal["connector"], "satellite")
        self.assertEqual(big["connector"], "satellite")
        self.assertTrue(normal["next_attempt"].startswith(f"{normal_day.isoformat()}T22:00"),
                        normal["next_attempt"])
        self.assertTrue(big["next_attempt"].startswith(f"{big_day.isoformat()}T01:00"),
                        big["next_attempt"])
        self.assertNotEqual(normal["next_attempt"], big["next_attempt"])
        time.sleep(1)
        self.assertEqual(len(hq.messages()), 1)          # nothing else went out
        self.assertEqual(len(hq.events("connect")), 1)   # only the urgent session


def make_ca(folder):
    """A test CA and a certificate for gw1.contoso.com signed by it."""
    def run(*args):
        subprocess.run(args, check=True, capture_output=True, cwd=folder)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=Test CA", "-keyout", "ca.key", "-out", "ca.pem")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=gw1.contoso.com",
        "-keyout", "gw1.key", "-out", "gw1.csr")
    with open(os.path.join(folder, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:gw1.contoso.com\n")
    run("openssl", "x509", "-req", "-in", "gw1.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "gw1.pem", "-extfile", "san.ext")


class PartnerTls(UseCase):
    """Mirrors examples/partner-tls.yaml: `partner-contoso` (*.contoso.com,
    failover, tls verify with the example's names, min 1.2, senders only
    from example.org) beside `internet` (*). The partner gateway is a sink
    with a certificate from a test CA (given as ca_file); `internet` goes to
    a sink instead of DNS."""

    def setUp(self):
        super().setUp()
        import tempfile
        self.ca = tempfile.mkdtemp(prefix="bh-ca-")
        make_ca(self.ca)

    def tearDown(self):
        super().tearDown()
        import shutil
        shutil.rmtree(self.ca, ignore_errors=True)

    def config(self, gw, internet):
        return header(f"""\
  - name: partner-contoso
    address_spaces:
      - "*.contoso.com"
    bridgeheads: ["127.0.0.1:{gw.port}"]
    balance: failover
    tls:
      mode: verify
      ca_file: {self.ca}/ca.pem
      names: [gw1.contoso.com, gw2.contoso.com, "*.mail.contoso.com"]
      min_version: "1.2"
    senders:
      default: reject
      accept: ["*@example.org", "*@*.example.org"]
    health: {{ retry_initial: 1s, retry_max: 2s }}
  - name: internet
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{internet.port}"]
    tls: {{ mode: opportunistic }}
""")

    def test_verified_tls_delivers(self):
        gw = self.sink(name="gw1", tls_cert=f"{self.ca}/gw1.pem", tls_key=f"{self.ca}/gw1.key")
        internet = self.sink(name="internet")
        r = self.relay(self.config(gw, internet))
        send(r, ["p@contoso.com", "q@eu.contoso.com"])
        send(r, ["x@elsewhere.test"])
        m = gw.wait_messages(1, timeout=20)[0]
        self.assertTrue(m["tls"])
        self.assertEqual(sorted(m["rcpt_tos"]), ["p@contoso.com", "q@eu.contoso.com"])
        internet.wait_messages(1)
        self.assertEqual(internet.recipients(), ["x@elsewhere.test"])
        self.assertEqual(gw.mail_in_clear(), [])
        self.assertIn('verify="ok"', r.log())
        # a sender the partner connector refuses is refused: no fallback to *
        s = smtplib.SMTP("127.0.0.1", r.port, timeout=20)
        s.ehlo("client.example.org")
        s.mail("z@other.test")
        code, _ = s.rcpt("p@contoso.com")
        s.quit()
        self.assertGreaterEqual(code, 500)

    def test_no_starttls_never_leaks(self):
        gw = self.sink(name="gw1", no_starttls=True)
        internet = self.sink(name="internet")
        r = self.relay(self.config(gw, internet))
        send(r, ["p@contoso.com"])
        wait_for(lambda: "status=deferred" in r.log(), timeout=20)
        time.sleep(2.5)  # at least one retry
        self.assertEqual(gw.messages(), [])
        self.assertEqual(gw.mail_in_clear(), [])
        self.assertEqual(internet.messages(), [])
        rows = queue_list(r)
        self.assertEqual([(e["recipient"], e["connector"]) for e in rows],
                         [("p@contoso.com", "partner-contoso")])


class InternetDns(UseCase):
    """Mirrors examples/internet-dns.yaml: `internet` (*) and `dot-net`
    (*.net), both by DNS MX, against dnsmasq on a loopback port; MX hosts
    are sinks on 127.0.0.31/.32 on the connectors' `port:`."""

    def setUp(self):
        super().setUp()
        self.dport, self.mxport = free_port(), free_port()
        self.dns = subprocess.Popen(
            ["dnsmasq", "-k", "-p", str(self.dport), "--listen-address=127.0.0.1",
             "--bind-interfaces", "-C", "/dev/null", "--no-resolv", "--no-hosts",
             "--user=root", "--pid-file=", "--local=/net/", "--local=/com/",
             "--mx-host=fabrikam.net,mx.fabrikam.net,10",
             "--mx-host=tailspin.com,mx.tailspin.com,10",
             "--host-record=mx.fabrikam.net,127.0.0.31",
             "--host-record=mx.tailspin.com,127.0.0.32"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)

    def tearDown(self):
        super().tearDown()
        self.dns.kill()
        self.dns.wait()

    def test_net_and_com_by_mx(self):
        net = self.sink(name="mx-net", host="127.0.0.31", port=self.mxport)
        com = self.sink(name="mx-com", host="127.0.0.32", port=self.mxport)
        r = self.relay(header(f"""\
  - name: internet
    address_spaces: ["*"]
    route: dns
    port: {self.mxport}
    max_connections: 50
    tls: {{ mode: none }}
  - name: dot-net
    address_spaces: ["*.net"]
    route: dns
    port: {self.mxport}
    tls: {{ mode: opportunistic }}
    max_connections: 20
""", extra=f'dns: {{ servers: ["127.0.0.1:{self.dport}"] }}\n'))
        send(r, ["n@fabrikam.net"])
        send(r, ["c@tailspin.com"])
        net.wait_messages(1, timeout=20)
        com.wait_messages(1, timeout=20)
        self.assertEqual(net.recipients(), ["n@fabrikam.net"])
        self.assertEqual(com.recipients(), ["c@tailspin.com"])
        wait_for(lambda: queue_list(r) == [], timeout=10)
        lines = r.log().splitlines()
        sent_net = [l for l in lines if "n@fabrikam.net" in l and "status=sent" in l]
        sent_com = [l for l in lines if "c@tailspin.com" in l and "status=sent" in l]
        self.assertTrue(sent_net and all("connector=dot-net" in l for l in sent_net), lines)
        self.assertTrue(sent_com and all("connector=internet" in l for l in sent_com), lines)


if __name__ == "__main__":
    unittest.main(verbosity=2)
