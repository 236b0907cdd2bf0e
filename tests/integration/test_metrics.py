#!/usr/bin/python3
"""metrics.listen: Prometheus text at /metrics and /healthz, scraped with a
real HTTP client (curl)."""
import os
import re
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import BIN, Raw, Relay, free_port  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402


def curl(url):
    p = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", url], capture_output=True,
                       text=True, timeout=10)
    body, _, code = p.stdout.rpartition("\n")
    return int(code), body


def samples(body, name):
    """{labels: value} of every sample of one metric family."""
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^" + name + r"(\{[^}]*\})? (\S+)$", body, re.M)}


def grouped(body):
    """True when every sample follows its family's TYPE line, each family in
    one block, as the Prometheus text format asks."""
    seen, current = set(), None
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            current = line.split()[2]
            if current in seen:
                return False
            seen.add(current)
        elif line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            if current not in (name, family):
                return False
    return True


class Metrics(unittest.TestCase):
    def test_scrape(self):
        sink = start_sink(name="m")
        mport = free_port()
        dead = free_port()
        r = Relay(f"""\
server:
  hostname: relay.example.org
  listen: [ {{ address: "127.0.0.1:@PORT@" }} ]
storage: {{ path: queue.db }}
metrics: {{ listen: "127.0.0.1:{mport}" }}
connectors:
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{sink.port}"]
    tls: {{ mode: none }}
  - name: dead
    address_spaces: [dead.test]
    bridgeheads: ["127.0.0.1:{dead}"]
    tls: {{ mode: none }}
  - name: hold
    address_spaces: [held.test]
    bridgeheads: ["127.0.0.1:9"]
    triggered: true
""")
        try:
            r.start()
            s = smtplib.SMTP("127.0.0.1", r.port, timeout=10)
            s.sendmail("a@example.org", ["x@else.test"], b"Subject: m\r\n\r\nhi\r\n")
            s.sendmail("a@example.org", ["y@held.test"], b"Subject: m\r\n\r\nhi\r\n")
            s.sendmail("a@example.org", ["z@dead.test"], b"Subject: m\r\n\r\nhi\r\n")
            s.quit()
            sink.wait_messages(1)
            wait_for(lambda: 'status="sent"} 1' in curl(f"http://127.0.0.1:{mport}/metrics")[1])
            code, body = curl(f"http://127.0.0.1:{mport}/metrics")
            self.assertEqual(code, 200)
            wait_for(lambda: "bridgehead_destination_up" in curl(f"http://127.0.0.1:{mport}/metrics")[1])
            code, body = curl(f"http://127.0.0.1:{mport}/metrics")
            self.assertIn("bridgehead_messages_received_total 3\n", body)
            self.assertIn(f'bridgehead_destination_up{{destination="127.0.0.1:{dead}"}} 0', body)
            self.assertIn('bridgehead_deliveries_total{connector="dead",status="deferred"} 1', body)
            self.assertIn('bridgehead_deliveries_total{connector="out",status="sent"} 1', body)
            self.assertIn('bridgehead_queue_recipients{connector="hold",state="triggered"} 1', body)
            self.assertIn('bridgehead_commit_seconds_bucket{le="+Inf"}', body)
            self.assertIn("bridgehead_smtp_sessions 0", body)
            self.assertEqual(curl(f"http://127.0.0.1:{mport}/healthz"), (200, "ok\n"))
            self.assertEqual(curl(f"http://127.0.0.1:{mport}/nope")[0], 404)
            g = Raw(mport)
            g.send("\x00\x01garbage\r\n\r\n")
            self.assertIn("400", g.reply())
            g.close()
            self.assertEqual(r.stop(), 0)
        finally:
            r.cleanup()
            sink.stop()

    def test_oldest_queued_age(self):
        """bridgehead_queue_oldest_age_seconds{connector}: now minus the
        arrival of the connector's oldest message still queued, exact to the
        second; gone once that connector's queue is empty."""
        sink = start_sink(name="age")
        self.addCleanup(sink.stop)
        mport = free_port()
        r = Relay(f"""\
server:
  hostname: relay.example.org
  listen: [ {{ address: "127.0.0.1:@PORT@" }} ]
storage: {{ path: queue.db }}
metrics: {{ listen: "127.0.0.1:{mport}" }}
connectors:
  - name: hold
    address_spaces: [held.test]
    bridgeheads: ["127.0.0.1:{sink.port}"]
    triggered: true
    tls: {{ mode: none }}
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{sink.port}"]
    tls: {{ mode: none }}
""")
        self.addCleanup(r.cleanup)
        url = f"http://127.0.0.1:{mport}/metrics"
        name = "bridgehead_queue_oldest_age_seconds"
        r.start()
        s = smtplib.SMTP("127.0.0.1", r.port, timeout=10)
        before = time.time()
        s.sendmail("a@example.org", ["y@held.test"], b"Subject: m\r\n\r\nhi\r\n")
        after = time.time()
        s.sendmail("a@example.org", ["x@else.test"], b"Subject: m\r\n\r\nhi\r\n")
        sink.wait_messages(1)
        time.sleep(2.5)
        s.sendmail("a@example.org", ["z@held.test"], b"Subject: m\r\n\r\nhi\r\n")
        s.quit()
        t0 = time.time()
        code, body = curl(url)
        t1 = time.time()
        self.assertEqual(code, 200)
        self.assertTrue(grouped(body), body)
        self.assertIn(f"# TYPE {name} gauge\n", body)
        ages = samples(body, name)
        # Only a connector with something queued has the gauge.
        self.assertEqual(list(ages), ['{connector="hold"}'], body)
        # The oldest of the two held messages counts, to the second.
        age = ages['{connector="hold"}']
        self.assertGreaterEqual(age, 2)
        self.assertGreaterEqual(age, int(t0 - after) - 1)
        self.assertLessEqual(age, int(t1 - before) + 1)
        # Emptied (the held mail is flushed and delivered): the gauge goes.
        p = subprocess.run([BIN, "queue", "-c", r.config_path, "flush", "--connector", "hold"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        sink.wait_messages(3)
        wait_for(lambda: samples(curl(url)[1], name) == {})
        self.assertEqual(samples(curl(url)[1], "bridgehead_queue_recipients"), {})
        self.assertEqual(r.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
