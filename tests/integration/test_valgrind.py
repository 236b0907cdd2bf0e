#!/usr/bin/python3
"""A short relay session with `bridgehead serve` under valgrind (`make
valgrind`, and part of `make test`): plain and STARTTLS submissions (one
with AUTH, one over 64 KiB so it is spooled to a file, one with several
recipients), delivery to a sink in clear and over STARTTLS, a 550 that
bounces with a DSN, `queue list` and `queue stats` against the running
server (themselves under valgrind), then SIGTERM. Fails unless every
valgrind run reports zero errors and no definitely lost block.

    VALGRIND_TIMEOUT=120 tests/integration/test_valgrind.py
"""
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import BIN, Relay, make_cert, wait_port  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402

TIMEOUT = float(os.environ.get("VALGRIND_TIMEOUT", "120"))

CONFIG = """\
server:
  hostname: relay.example.org
  listen: [ { address: "127.0.0.1:@PORT@" } ]
  tls: { certificate: relay.pem, key: relay.key }
  users_file: users.txt
storage: { path: queue.db }
queue: { retry_initial: 1s, retry_max: 2s, delay_warning: 0s }
connectors:
  - name: secure
    address_spaces: ["*.tls.test"]
    bridgeheads: ["127.0.0.1:@SINK@"]
    tls: { mode: required }
  - name: plain
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:@SINK@"]
    tls: { mode: none }
"""


def valgrind(folder, name):
    return ["valgrind", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--track-fds=no",
            f"--log-file={os.path.join(folder, f'vg-{name}-%p.log')}"]


def summary(path):
    """(errors, definitely lost bytes, the summary lines) of one valgrind log."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
    errors = int(m.group(1).replace(",", "")) if m else None
    m = re.search(r"definitely lost: ([\d,]+) bytes", text)
    lost = int(m.group(1).replace(",", "")) if m else 0  # "All heap blocks were freed"
    lines = [ln.split("== ", 1)[-1] for ln in text.splitlines()
             if re.search(r"(ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|"
                          r"still reachable|in use at exit|All heap blocks)", ln)]
    return errors, lost, lines, text


def main():
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (.ci/deps.sh installs it)", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    folder = None
    sink = None
    relay = None
    ok = False
    try:
        folder = tempfile.mkdtemp(prefix="bh-vg-")
        sink_cert, sink_key = make_cert(folder, "sink.test", name="sink")
        make_cert(folder, "relay.example.org", name="relay")
        hashed = subprocess.run(["openssl", "passwd", "-6", "s3cret"], check=True,
                                capture_output=True, text=True).stdout.strip()
        with open(os.path.join(folder, "users.txt"), "w") as f:
            f.write(f"alice:{hashed}\n")
        sink = start_sink(name="vg", tls_cert=sink_cert, tls_key=sink_key,
                          rcpt_reply_for={"nobody@plain.test": "550 5.1.1 no such user"})
        relay = Relay(CONFIG.replace("@SINK@", str(sink.port)), folder=folder,
                      wrapper=valgrind(folder, "serve"))
        relay.start(wait=False)
        wait_port(relay.port, timeout=60, proc=relay.proc)

        msg = b"Subject: valgrind\r\n\r\nbody line\r\n"
        big = b"Subject: big\r\n\r\n" + (b"z" * 76 + b"\r\n") * 1200  # ~94 KiB: a spool file
        s = smtplib.SMTP("127.0.0.1", relay.port, timeout=60)
        s.ehlo("plain.example")
        s.sendmail("a@example.org", ["p1@plain.test"], msg)
        s.sendmail("a@example.org", ["p2@plain.test", "t2@x.tls.test"], msg)
        s.sendmail("a@example.org", ["p3@plain.test"], big)
        s.sendmail("a@example.org", ["nobody@plain.test"], msg)  # bounces: a DSN to a@
        s.quit()
        ctx = ssl.create_default_context(cafile=os.path.join(folder, "relay.pem"))
        ctx.check_hostname = False
        s = smtplib.SMTP("127.0.0.1", relay.port, timeout=60)
        s.ehlo("tls.example")
        s.starttls(context=ctx)
        s.ehlo("tls.example")
        s.login("alice", "s3cret")
        s.sendmail("alice@example.org", ["t1@x.tls.test"], msg)
        s.sendmail("alice@example.org", ["t3@x.tls.test"], big)
        s.quit()
        # 5 messages and the DSN: 6 deliveries (p2's message goes out twice,
        # once per connector): 7.
        wait_for(lambda: len(sink.messages()) >= 7, timeout=TIMEOUT, interval=0.5,
                 what="7 deliveries at the sink")
        got = sink.messages()
        assert any(m["mail_from"] in ("", "<>") for m in got), "no DSN arrived"
        assert all(m["tls"] for m in got if m["rcpt_tos"][0].endswith(".tls.test")), \
            "mail for *.tls.test went out in clear"
        wait_for(lambda: not relay.queue_rows(), timeout=TIMEOUT, what="an empty queue")

        for args in (["list"], ["stats", "--json"]):
            p = subprocess.run(valgrind(folder, "queue") + [BIN, "queue", "-c", relay.config_path]
                               + args, capture_output=True, text=True, timeout=TIMEOUT)
            assert p.returncode == 0, f"queue {args[0]} exited {p.returncode}: {p.stderr}"

        relay.proc.send_signal(signal.SIGTERM)
        rc = relay.proc.wait(timeout=TIMEOUT)
        relay.logf.close()
        assert rc == 0, f"serve under valgrind exited {rc} (99: valgrind found errors)"

        logs = sorted(f for f in os.listdir(folder) if f.startswith("vg-"))
        assert len(logs) >= 3, logs
        bad = []
        for name in logs:
            errors, lost, lines, text = summary(os.path.join(folder, name))
            kind = name.split("-")[1]
            print(f"valgrind {kind}: " + "; ".join(lines))
            if errors != 0 or lost != 0:
                bad.append(name)
                print(text[-6000:], file=sys.stderr)
        assert not bad, f"valgrind reported errors or definite leaks in {bad}"
        print(f"valgrind: {len(logs)} runs clean, {len(got)} deliveries, "
              f"{time.monotonic() - t0:.0f}s")
        ok = True
    except AssertionError as e:
        print(f"FAIL valgrind: {e}", file=sys.stderr)
    finally:
        if relay is not None:
            if not ok:
                try:
                    print("---- serve log (tail) ----\n" + relay.log()[-3000:], file=sys.stderr)
                except OSError:
                    pass
            relay.cleanup()
        if sink is not None:
            sink.stop()
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
