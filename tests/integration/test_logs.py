#!/usr/bin/python3
"""Logs (SPEC §6) from the real binary under hostile input (§7): addresses
with quoted local parts, AUTH user names and config errors full of quotes and
spaces can neither end a value early nor add keys, in key=value or JSON.
Also `serve` with a bad config (exit 1, positioned errors) and SIGINT
(graceful, exit 0)."""
import crypt
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import BIN, Relay, make_cert, starttls_session  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402

SENDER = '"a status=sent x"@example.org'
RCPT = '"b connector=evil reply=\\"x\\""@else.test'
USER = 'x" result=ok client=203.0.113.9 z="'


def config(sink_port):
    return f"""\
server:
  hostname: relay.example.org
  relay_networks: ["127.0.0.1/32"]
  listen: [ {{ address: "127.0.0.1:@PORT@" }} ]
  tls: {{ certificate: server.pem, key: server.key }}
  users_file: users.txt
storage: {{ path: queue.db }}
connectors:
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{sink_port}"]
    tls: {{ mode: none }}
"""


def kv_pairs(line):
    r"""Split a key=value line the way a log reader would: values are bare up
    to a space or "quoted" with backslash escapes; \xHH is a byte."""
    pairs, i = [], 0
    while i < len(line):
        while i < len(line) and line[i] == " ":
            i += 1
        m = re.match(r"[^= ]+", line[i:])
        if not m:
            break
        key = m.group(0)
        i += len(key)
        value = ""
        if i < len(line) and line[i] == "=":
            i += 1
            quoted = i < len(line) and line[i] == '"'
            i += quoted
            while i < len(line) and line[i] != ('"' if quoted else " "):
                if re.match(r"\\x[0-9a-f]{2}", line[i:i + 4]):
                    value += chr(int(line[i + 2:i + 4], 16))
                    i += 4
                    continue
                if quoted and line[i] == "\\" and i + 1 < len(line):
                    i += 1
                value += line[i]
                i += 1
            i += quoted
        pairs.append((key, value))
    return pairs


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise AssertionError(f"duplicate keys {dup} in {pairs}")
    return dict(pairs)


class Logs(unittest.TestCase):
    def run_relay(self, log_format):
        sink = start_sink(name="logs")
        r = Relay(config(sink.port), log_format=log_format)
        self.addCleanup(r.cleanup)
        make_cert(r.dir, "relay.example.org")
        with open(os.path.join(r.dir, "users.txt"), "w") as f:
            f.write("alice:%s\n" % crypt.crypt("pw", crypt.mksalt(crypt.METHOD_SHA512)))
        r.start()
        s = starttls_session(r.port)
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            s.login(USER, "nope")
        s.sendmail(SENDER, [RCPT], b"Subject: t\r\n\r\nbody\r\n")
        s.quit()
        sink.wait_messages(1)
        self.assertEqual(sink.messages()[0]["rcpt_tos"], [RCPT])
        wait_for(lambda: "status=sent" in r.log() or '"status":"sent"' in r.log(), timeout=10)
        # A reload of a config whose error message quotes a key.
        with open(r.config_path, "a") as f:
            f.write('colour: "blue"\n')
        os.kill(r.proc.pid, signal.SIGHUP)
        wait_for(lambda: "rejected" in r.log(), timeout=10)
        self.assertEqual(r.stop(signal.SIGINT), 0)
        return r.log().splitlines()

    def check_events(self, events):
        by = {}
        for e in events:
            by.setdefault(e.get("event") or ("attempt" if "status" in e else None), []).append(e)
        self.assertEqual([e["from"] for e in by["accepted"]], [f"<{SENDER}>"])
        # smtplib tries each mechanism offered (PLAIN, LOGIN): one line each.
        self.assertEqual({(e["user"], e["result"], e["client"]) for e in by["auth"]},
                         {(USER, "failed", "127.0.0.1")})
        sent = [e for e in by["attempt"] if e["status"] == "sent"]
        self.assertEqual([(e["to"], e["connector"]) for e in sent], [(f"<{RCPT}>", "out")])
        self.assertTrue(sent[0]["reply"].startswith("250"), sent[0])
        self.assertTrue(re.fullmatch(r"\d+\.\d\ds", sent[0]["delay"]), sent[0])
        self.assertEqual(sent[0]["attempts"], "1")
        errors = by["reload_error"]
        self.assertTrue(any('unknown key "colour"' in e["msg"] for e in errors), errors)
        self.assertTrue(all(e["file"].endswith("bridgehead.yaml") for e in errors if "file" in e))
        self.assertEqual([e["signal"] for e in by["stopping"]], ["INT"])
        self.assertIn("stopped", by)

    def test_kv_lines_keep_their_keys(self):
        lines = self.run_relay(None)
        self.check_events([no_duplicates(kv_pairs(x)) for x in lines])
        accepted = [x for x in lines if "event=accepted" in x][0]
        self.assertIn(r"from=<\x22a\x20status=sent\x20x\x22@example.org>", accepted)

    def test_json_lines_are_json(self):
        lines = self.run_relay("json")
        events = []
        for x in lines:
            events.append(json.loads(x, object_pairs_hook=no_duplicates))
        self.check_events(events)

    def test_serve_bad_config_exits_1(self):
        r = Relay("server:\n  colour: blue\nconnectors: []\n")
        self.addCleanup(r.cleanup)
        p = subprocess.run([BIN, "serve", "-c", r.config_path], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"bridgehead\.yaml:2:3: unknown key \"colour\"")
        self.assertFalse(os.path.exists(r.db))


if __name__ == "__main__":
    unittest.main(verbosity=2)
