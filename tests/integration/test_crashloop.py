#!/usr/bin/python3
"""Crash loop (SPEC §5 durability, at-least-once delivery): under continuous
load from several smtplib sender threads, `kill -9` the relay at random
moments (seeded; the seed is printed) CRASHLOOP_CYCLES times (default 5;
`make soak` runs 20), restarting it each time on the same queue folder and
port. Then let it drain into a sink and check that every message acknowledged
with a final 250 after DATA reached the sink at least once (matched by its
unique Message-ID). Duplicates are allowed (a crash between the remote 250
and the queue update resends) and counted; lost messages fail the test.

    CRASHLOOP_CYCLES=20 CRASHLOOP_SEED=1234 tests/integration/test_crashloop.py

Prints one line: crashloop: cycles=N acknowledged=A delivered=D
duplicates=X lost=0 seed=S (plus the unacknowledged messages that were
delivered anyway, which is allowed: the 250 was lost with the connection).
"""
import collections
import os
import random
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bhtest import Relay, wait_port  # noqa: E402
from sinklib import start_sink, wait_for  # noqa: E402

CYCLES = int(os.environ.get("CRASHLOOP_CYCLES", "5"))
SEED = int(os.environ.get("CRASHLOOP_SEED", str(random.SystemRandom().randrange(1 << 31))))
SENDERS = int(os.environ.get("CRASHLOOP_SENDERS", "4"))
# Each sender pauses this long between messages, so that the Python sink
# keeps up and the final drain stays short.
PAUSE = float(os.environ.get("CRASHLOOP_PAUSE", "0.005"))
DRAIN_TIMEOUT = float(os.environ.get("CRASHLOOP_DRAIN_TIMEOUT", "180"))

CONFIG = """\
server:
  hostname: relay.example.org
  listen: [ { address: "127.0.0.1:@PORT@" } ]
storage:
  path: queue.db
queue: { retry_initial: 1s, retry_max: 2s, delay_warning: 0s }
connectors:
  - name: sink
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:@SINK@"]
    tls: { mode: none }
    max_connections: 2
    health: { retry_initial: 1s, retry_max: 2s }
"""

SMALL = b"crash loop body line\r\n" * 20
LARGE = (b"x" * 76 + b"\r\n") * 1400  # ~109 KiB: spooled to a file, not memory


class Sender(threading.Thread):
    """Sends one message per transaction until told to stop. A message counts
    as acknowledged only when DATA got a final 250; a connection error or a
    4xx/5xx is no acknowledgement (the message may still be delivered)."""

    def __init__(self, k, port, rng_seed, stop):
        super().__init__(name=f"sender-{k}", daemon=True)
        self.k, self.port, self.stop = k, port, stop
        self.rng = random.Random(rng_seed)
        self.acked = []
        self.tried = []
        self.refused = collections.Counter()  # reply code -> count
        self.errors = 0

    def run(self):
        i = 0
        while not self.stop.is_set():
            try:
                s = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
            except OSError:
                time.sleep(0.05)  # the relay is down or restarting
                continue
            try:
                s.ehlo("load.example")
                while not self.stop.is_set():
                    mid = f"<cl-{SEED}-{self.k}-{i}@crashloop.test>"
                    i += 1
                    body = LARGE if self.rng.random() < 0.05 else SMALL
                    msg = (f"Message-ID: {mid}\r\nSubject: crash loop {i}\r\n\r\n").encode() + body
                    self.tried.append(mid)
                    if s.mail("load@example.org")[0] != 250 or \
                            s.rcpt(f"r{self.k}@crash.test")[0] != 250:
                        self.refused["env"] += 1
                        s.rset()
                        continue
                    code, _ = s.data(msg)
                    if code == 250:
                        self.acked.append(mid)
                    else:
                        self.refused[code] += 1
                    if PAUSE:
                        time.sleep(PAUSE)
            except (OSError, smtplib.SMTPException):
                self.errors += 1
            finally:
                try:
                    s.close()
                except OSError:
                    pass


def main():
    print(f"crashloop: seed={SEED} cycles={CYCLES} senders={SENDERS}", flush=True)
    rng = random.Random(SEED)
    # A sink slower than the senders (2 connections, 10 ms per message), so
    # that a backlog sits in the queue when the relay is killed: deleting or
    # corrupting the queue must then lose acknowledged mail.
    sink = start_sink(name="crashloop", no_fsync=True, max_data=0, delay_data=0.01)
    relay = Relay(CONFIG.replace("@SINK@", str(sink.port)))
    stop = threading.Event()
    senders = []
    backlog = []  # recipients in the queue at each kill
    ok = False
    try:
        relay.start()
        senders = [Sender(k, relay.port, rng.randrange(1 << 30), stop) for k in range(SENDERS)]
        for t in senders:
            t.start()
        for cycle in range(1, CYCLES + 1):
            # Mostly kill a serving relay, sometimes one that is still starting
            # (recovering the queue, cleaning the spool).
            if rng.random() < 0.2:
                time.sleep(rng.uniform(0.0, 0.15))
            else:
                time.sleep(rng.uniform(0.2, 3.0))
            assert relay.proc.poll() is None, f"relay died by itself before cycle {cycle}"
            relay.kill9()
            acked_now = sum(len(t.acked) for t in senders)
            backlog.append(len(relay.queue_rows()))
            print(f"cycle {cycle}: kill -9, acknowledged so far {acked_now}, "
                  f"queued at the kill {backlog[-1]}", flush=True)
            time.sleep(rng.uniform(0.0, 0.5))
            relay.start(wait=rng.random() >= 0.2)
        if relay.proc.poll() is None:
            wait_port(relay.port, proc=relay.proc)
        time.sleep(1.0)  # some load on the last incarnation too
        stop.set()
        for t in senders:
            t.join(timeout=30)
            assert not t.is_alive(), f"{t.name} did not stop"

        acked = [m for t in senders for m in t.acked]
        tried = {m for t in senders for m in t.tried}
        assert len(acked) == len(set(acked)), "a Message-ID was acknowledged twice"
        acked_set = set(acked)

        # Drained: every acknowledged message arrived and the queue is empty,
        # or (when something was lost) the queue has been empty and the sink
        # quiet for 3 s.
        quiet = {"n": -1, "since": time.monotonic()}

        def drained():
            msgs = sink.messages()
            if relay.queue_rows() or len(msgs) != quiet["n"]:
                quiet["n"], quiet["since"] = len(msgs), time.monotonic()
                return False
            got = {m["message_id"] for m in msgs}
            return acked_set <= got or time.monotonic() - quiet["since"] >= 3.0
        try:
            wait_for(drained, timeout=DRAIN_TIMEOUT, interval=0.5, what="the queue to drain")
        except AssertionError:
            pass  # reported below as lost or left in the queue
        time.sleep(1.0)  # late duplicates, if any, arrive now
        assert relay.proc.poll() is None, "the relay died during the drain"
        left = relay.queue_rows()
        rc = relay.stop()

        ids = [m["message_id"] for m in sink.messages()]
        counts = collections.Counter(ids)
        delivered_acked = acked_set & set(counts)
        lost = sorted(acked_set - set(counts))
        duplicates = sum(n - 1 for n in counts.values())
        unacked_delivered = len(set(counts) - acked_set)
        phantoms = sorted(set(counts) - tried)
        refused = sum((t.refused for t in senders), collections.Counter())
        errors = sum(t.errors for t in senders)
        print(f"crashloop: cycles={CYCLES} acknowledged={len(acked_set)} "
              f"delivered={len(delivered_acked)} duplicates={duplicates} lost={len(lost)} "
              f"seed={SEED}", flush=True)
        print(f"crashloop: sent={len(tried)} unacknowledged_but_delivered={unacked_delivered} "
              f"refused={dict(refused)} connection_errors={errors} "
              f"sink_deliveries={len(ids)} left_in_queue={len(left)} "
              f"max_queued_at_kill={max(backlog, default=0)} exit={rc}", flush=True)
        assert CYCLES == 0 or errors > 0, "no kill ever interrupted a sender: the test tested nothing"
        assert len(acked_set) > 0, "nothing was acknowledged"
        assert CYCLES == 0 or max(backlog) > 0, "the queue was empty at every kill"
        assert not lost, f"{len(lost)} acknowledged message(s) lost, e.g. {lost[:5]}"
        assert not phantoms, f"the sink got messages nobody sent: {phantoms[:5]}"
        assert not left, f"{len(left)} recipient(s) left in the queue: {left[:5]}"
        assert rc == 0, f"serve exited {rc} on SIGTERM"
        ok = True
    finally:
        stop.set()
        for t in senders:
            t.join(timeout=15)
        if not ok:
            try:
                print("---- relay log (tail) ----\n" + relay.log()[-4000:], file=sys.stderr)
            except OSError:
                pass
        relay.cleanup()
        sink.stop()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"FAIL crashloop (seed={SEED}): {e}", file=sys.stderr)
        sys.exit(1)
