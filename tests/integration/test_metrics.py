#!/usr/bin/python3
"""metrics.listen: Prometheus text at /metrics and /healthz, scraped with a
real HTTP client (curl)."""
import os
import smtplib
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import Raw, Relay, free_port  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402


def curl(url):
    p = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", url], capture_output=True,
                       text=True, timeout=10)
    body, _, code = p.stdout.rpartition("\n")
    return int(code), body


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


if __name__ == "__main__":
    unittest.main(verbosity=2)
