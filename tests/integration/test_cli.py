#!/usr/bin/python3
"""bridgehead check / route / version: exit codes, summaries and JSON, run
against the built binary (SPEC §6)."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BRIDGEHEAD", os.path.join(ROOT, "build", "bridgehead"))

CONFIG = """\
server:
  hostname: relay.example.org
connectors:
  - name: internet
    address_spaces: ["*"]
    route: dns
  - name: dot-net
    address_spaces: ["*.net"]
    route: dns
  - name: partner-contoso
    address_spaces:
      - contoso.com
      - { space: "*.contoso.com", cost: 5 }
    bridgeheads:
      - { host: 10.1.1.5, port: 25, weight: 2 }
      - "relay2.contoso.com:587"
    tls: { mode: verify, names: [mx.contoso.com] }
    schedule:
      timezone: UTC
      windows:
        - { days: mon-fri, from: "22:00", to: "06:00" }
        - { days: "sat,sun", from: "00:00", to: "24:00" }
    senders:
      default: reject
      accept: ["*@example.org"]
  - name: small
    address_spaces: [small.test]
    bridgeheads: ["192.0.2.1"]
    max_message_size: 1KiB
  - name: a-cheap
    address_spaces: [tie.test]
    bridgeheads: ["192.0.2.2"]
  - name: b-cheap
    address_spaces: [tie.test]
    bridgeheads: ["192.0.2.3"]
  - name: urgent-only
    address_spaces: [prio.test]
    bridgeheads: ["192.0.2.4"]
    content: { priorities: [high] }
  - name: no-dsn
    address_spaces: [sys.test]
    bridgeheads: ["192.0.2.5"]
    content: { system_messages: false }
"""


def run(*args, cwd=None):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, cwd=cwd, timeout=30)
    return p.returncode, p.stdout, p.stderr


class Cli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bh-cli-")
        self.cfg = os.path.join(self.dir, "bridgehead.yaml")
        with open(self.cfg, "w") as f:
            f.write(CONFIG)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def route_json(self, *args):
        rc, out, err = run("route", "-c", self.cfg, "--json", *args)
        return rc, [json.loads(line) for line in out.splitlines()], err

    def test_examples_check(self):
        exdir = os.path.join(ROOT, "examples")
        names = sorted(n for n in os.listdir(exdir) if n.endswith(".yaml"))
        self.assertGreaterEqual(len(names), 4)
        for n in names:
            rc, out, err = run("check", "-c", os.path.join(exdir, n))
            self.assertEqual(rc, 0, f"{n}: {err}")
            self.assertIn("CONNECTOR", out)

    def test_check_summary_and_default_file(self):
        rc, out, err = run("check", cwd=self.dir)  # default bridgehead.yaml
        self.assertEqual(rc, 0, err)
        for name in ("internet", "dot-net", "partner-contoso", "verify", "smarthost"):
            self.assertIn(name, out)
        self.assertIn("contoso.com(1)", out)
        self.assertIn("*.contoso.com(5)", out)

    def test_check_errors_positioned(self):
        bad = os.path.join(self.dir, "bad.yaml")
        with open(bad, "w") as f:
            f.write("connectors:\n  - name: x\n    address_spaces: [\"a*b.com\"]\n"
                    "    bridgeheads: [\"h\"]\n    colour: blue\n")
        rc, out, err = run("check", "-c", bad)
        self.assertEqual(rc, 1)
        lines = err.splitlines()
        self.assertIn(f"{bad}:3:22:", err)  # the bad space value
        self.assertTrue(any(l.startswith(f"{bad}:5:5: ") for l in lines), err)
        self.assertGreaterEqual(len(lines), 2)

    def test_check_missing_file(self):
        rc, out, err = run("check", "-c", os.path.join(self.dir, "nope.yaml"))
        self.assertEqual(rc, 1)
        self.assertIn("nope.yaml", err)

    def test_check_unreadable_as_nobody(self):
        if shutil.which("setpriv") is None or os.getuid() != 0:
            self.skipTest("needs root and setpriv")
        os.chmod(self.dir, 0o755)
        os.chmod(self.cfg, 0o644)
        cert = os.path.join(self.dir, "cert.pem")
        with open(cert, "w") as f:
            f.write("not readable by nobody\n")
        os.chmod(cert, 0)
        cfg = os.path.join(self.dir, "tls.yaml")
        with open(cfg, "w") as f:
            f.write("server:\n  tls:\n    certificate: cert.pem\n    key: cert.pem\n" + CONFIG.split("\n", 2)[2])
        os.chmod(cfg, 0o644)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            BIN, "check", "-c", cfg], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"{cfg}:3:18:", p.stderr)

    def test_route_json_shape(self):
        rc, objs, err = self.route_json("--from", "a@example.org",
                                        "--at", "2026-11-30T10:00:00Z", "a@contoso.com")
        self.assertEqual(rc, 0, err)
        o = objs[0]
        self.assertEqual(list(o.keys()), ["recipient", "domain", "sender", "connector",
                                          "address_space", "cost", "route", "bridgeheads",
                                          "tls", "schedule", "considered", "error"])
        self.assertEqual(o["connector"], "partner-contoso")
        self.assertEqual(o["address_space"], "contoso.com")
        self.assertEqual(o["cost"], 1)
        self.assertEqual(o["route"], "smarthost")
        self.assertEqual(o["bridgeheads"], ["10.1.1.5:25", "relay2.contoso.com:587"])
        self.assertEqual(o["tls"], "verify")
        self.assertEqual(o["schedule"], {"open": False, "next_open": "2026-11-30T22:00:00Z"})
        self.assertEqual(o["considered"], [{"connector": "internet", "address_space": "*",
                                            "reason": "less specific"}])
        self.assertIsNone(o["error"])
        self.assertEqual(o["sender"], "a@example.org")

    def test_route_no_sender_is_null(self):
        rc, objs, _ = self.route_json("A@Sub.Contoso.COM.")
        self.assertEqual(rc, 0)
        self.assertIsNone(objs[0]["sender"])
        self.assertEqual(objs[0]["domain"], "sub.contoso.com")
        self.assertEqual(objs[0]["recipient"], "A@Sub.Contoso.COM.")
        self.assertEqual(objs[0]["address_space"], "*.contoso.com")
        self.assertEqual(objs[0]["cost"], 5)

    def test_route_dns_and_star_net(self):
        rc, objs, _ = self.route_json("x@example.net", "y@example.com")
        self.assertEqual(rc, 0)
        self.assertEqual(objs[0]["connector"], "dot-net")
        self.assertEqual(objs[0]["bridgeheads"], [])
        self.assertIsNone(objs[0]["schedule"])
        self.assertEqual(objs[1]["connector"], "internet")

    def test_route_sender_refused_no_fallback(self):
        rc, objs, _ = self.route_json("--from", "evil@else.where", "a@contoso.com")
        self.assertEqual(rc, 2)
        o = objs[0]
        self.assertIsNone(o["connector"])
        self.assertIsNotNone(o["error"])
        reasons = {k["connector"]: k["reason"] for k in o["considered"]}
        self.assertEqual(reasons["partner-contoso"], "sender refused")
        self.assertEqual(reasons["internet"], "less specific")

    def test_route_null_sender(self):
        rc, objs, _ = self.route_json("--from", "<>", "a@contoso.com")
        self.assertEqual(rc, 2)
        self.assertEqual(objs[0]["sender"], "<>")

    def test_route_size_priority_system_ties(self):
        rc, objs, _ = self.route_json("--size", "2KiB", "a@small.test")
        self.assertEqual(rc, 2)
        self.assertEqual(objs[0]["considered"][0]["reason"], "too large")
        rc, objs, _ = self.route_json("--size", "512", "a@small.test")
        self.assertEqual(objs[0]["connector"], "small")
        rc, objs, _ = self.route_json("a@tie.test")
        self.assertEqual(objs[0]["connector"], "a-cheap")
        self.assertEqual(objs[0]["considered"][0]["reason"], "name order")
        rc, objs, _ = self.route_json("a@prio.test")  # default priority normal
        self.assertEqual(rc, 2)
        self.assertEqual(objs[0]["considered"][0]["reason"], "priority refused")
        rc, objs, _ = self.route_json("--priority", "high", "a@prio.test")
        self.assertEqual(objs[0]["connector"], "urgent-only")
        rc, objs, _ = self.route_json("--system", "a@sys.test")
        self.assertEqual(objs[0]["considered"][0]["reason"], "system message refused")

    def test_route_unroutable_literal(self):
        rc, objs, _ = self.route_json("a@[192.0.2.1]", "nodomain", "ok@example.com")
        self.assertEqual(rc, 2)
        self.assertIsNone(objs[0]["connector"])
        self.assertIsNotNone(objs[0]["error"])
        self.assertIsNone(objs[1]["connector"])
        self.assertEqual(objs[2]["connector"], "internet")
        for o in objs:
            self.assertEqual(len(o), 12)

    def test_route_json_hostile_bytes(self):
        """Bytes that are not UTF-8 in an argument: the JSON line stays valid
        (U+FFFD), and valid UTF-8 comes through as it is."""
        p = subprocess.run([BIN, "route", "-c", self.cfg, "--json",
                            b"a\xff@example.com", "b\u00e9@example.com".encode(),
                            b"c@\xc3(.example.com"], capture_output=True, timeout=30)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 3, p.stderr)
        objs = [json.loads(line.decode("utf-8")) for line in lines]
        self.assertEqual(objs[0]["recipient"], "a\ufffd@example.com")
        self.assertEqual(objs[1]["recipient"], "b\u00e9@example.com")
        self.assertIsNone(objs[2]["connector"])
        self.assertIsNotNone(objs[2]["error"])

    def test_route_at_offset(self):
        # 23:30+01:00 is 22:30Z on a Monday: inside mon-fri 22:00-06:00 UTC.
        rc, objs, _ = self.route_json("--at", "2026-11-30T23:30:00+01:00", "a@contoso.com")
        self.assertEqual(objs[0]["schedule"]["open"], True)

    def test_route_text_explains(self):
        rc, out, _ = run("route", "-c", self.cfg, "a@contoso.com")
        self.assertEqual(rc, 0)
        self.assertIn("partner-contoso", out)
        self.assertIn("less specific", out)

    def test_usage_errors(self):
        for args in (["route", "--bogus", "a@b.com"], ["check", "--nope"], ["route"],
                     ["frobnicate"], ["route", "--size", "ten", "a@b.com"],
                     ["route", "--at", "yesterday", "a@b.com"], ["route", "--from"]):
            rc, out, err = run(*args, "-c", self.cfg) if args[0] != "route" or "--from" not in args else run(*args)
            self.assertEqual(rc, 64, f"{args}: {err}")
            self.assertIn("usage:", err)

    def test_help_and_version(self):
        for verb in ("check", "route", "serve", "queue", "reload"):
            rc, out, _ = run(verb, "--help")
            self.assertEqual(rc, 0, verb)
            self.assertIn("usage:", out)
        rc, out, _ = run("version")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^bridgehead \d+\.\d+\.\d+")

    def test_config_before_and_after_verb(self):
        rc1, out1, _ = run("-c", self.cfg, "route", "a@contoso.com")
        rc2, out2, _ = run("route", "a@contoso.com", "-c", self.cfg)
        self.assertEqual((rc1, out1), (rc2, out2))


if __name__ == "__main__":
    unittest.main(verbosity=2)
