#!/usr/bin/python3
"""Helpers for bench/relay.sh.

  relay_lat.py count FILE
      Print the message count in FILE, the stdout of `smtp-sink -c` (a
      stream of "sess=N quit=N mesg=N" updates separated by CR).

  relay_lat.py wait FILE TARGET TIMEOUT
      Poll FILE every 10 ms until its count reaches TARGET; print
      "COUNT MTIME", where MTIME is FILE's modification time when the count
      was first seen at TARGET (smtp-sink writes an update on every final
      dot, so this is the arrival time of the last message, give or take a
      session-end update within the last poll interval). Exit 1 on timeout,
      printing the count reached and the time of the last update.

  relay_lat.py latency --port P --sink-out FILE [--rate 200] [--seconds 20]
                       [--threads 10] [--size 1024] [--wait 30]
      Send rate*seconds messages to the relay on 127.0.0.1:P, paced at
      --rate, from --threads smtplib sessions; note time.time() when the
      relay's 250 after DATA arrives; each message has a unique Subject.
      Then read FILE (JSON lines of tests/integration/sink.py, which notes
      received_at at the final dot) until every accepted message arrived or
      --wait seconds passed, and print one line:
        sent=N ok=N arrived=N rate=R median_ms=X p99_ms=Y max_ms=Z
      (the latencies are arrival - 250, over the messages that arrived).
      Exit 1 when nothing arrived.
"""
import argparse
import json
import math
import os
import smtplib
import sys
import threading
import time


def last_count(path):
    """The mesg= value of the last complete update in an smtp-sink -c file."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256))
            tail = f.read()
    except FileNotFoundError:
        return 0
    parts = tail.split(b"\r")
    for seg in reversed(parts[:-1]):  # the last piece may be incomplete
        i = seg.rfind(b"mesg=")
        if i >= 0:
            digits = seg[i + 5:].split()[0] if seg[i + 5:].split() else b""
            if digits.isdigit():
                return int(digits)
    return 0


def cmd_count(a):
    print(last_count(a.file))
    return 0


def mtime(path):
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except FileNotFoundError:
        return 0.0


def cmd_wait(a):
    end = time.time() + a.timeout
    while True:
        # mtime, count, mtime again: when both agree, no update came in
        # between, so the mtime is that of the update that gave the count.
        m1 = mtime(a.file)
        n = last_count(a.file)
        if mtime(a.file) != m1:
            continue
        if n >= a.target:
            print(f"{n} {m1:.6f}")
            return 0
        if time.time() >= end:
            print(f"{n} {m1:.6f}")
            return 1
        time.sleep(0.01)


def message(run, i, size):
    subject = f"bhlat-{run}-{i}"
    head = (f"From: a@example.org\r\nTo: b@partner.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@bench.test>\r\n\r\n")
    line = "x" * 76 + "\r\n"
    body = (line * (size // len(line) + 1))[:max(0, size - len(head) - 2)]
    return subject, (head + body + "\r\n").encode()


def sender(a, run, start, indices, results, lock):
    conn = None
    for i in indices:
        due = start + i / a.rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        subject, msg = message(run, i, a.size)
        t_sent = time.time()
        try:
            if conn is None:
                conn = smtplib.SMTP("127.0.0.1", a.port, timeout=30)
                conn.ehlo("bench.test")
            conn.sendmail("a@example.org", ["b@partner.test"], msg)
            t250 = time.time()
            with lock:
                results[subject] = (t_sent, t250)
        except (smtplib.SMTPException, OSError) as e:
            with lock:
                results[subject] = (t_sent, None)
                results.setdefault("_errors", []).append(str(e))
            try:
                if conn is not None:
                    conn.close()
            except OSError:
                pass
            conn = None
    if conn is not None:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass


def arrivals(path, prefix):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                r = json.loads(line)
                s = r.get("subject") or ""
                if "event" not in r and s.startswith(prefix) and s not in out:
                    out[s] = r["received_at"]
    except FileNotFoundError:
        pass
    return out


def percentile(sorted_vals, p):
    """Nearest rank."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def cmd_latency(a):
    run = f"{os.getpid()}{int(time.time())}"
    n = int(a.rate * a.seconds)
    results, lock = {}, threading.Lock()
    start = time.time() + 0.2
    threads = [threading.Thread(target=sender,
                                args=(a, run, start, range(k, n, a.threads), results, lock))
               for k in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = results.pop("_errors", [])
    ok = {s: v[1] for s, v in results.items() if v[1] is not None}
    sent_span = max(v[0] for v in results.values()) - start if results else 0
    end = time.time() + a.wait
    prefix = f"bhlat-{run}-"
    got = arrivals(a.sink_out, prefix)
    while len([s for s in ok if s in got]) < len(ok) and time.time() < end:
        time.sleep(0.1)
        got = arrivals(a.sink_out, prefix)
    lat = sorted((got[s] - t250) * 1000.0 for s, t250 in ok.items() if s in got)
    rate = n / sent_span if sent_span > 0 else float("nan")
    print(f"sent={n} ok={len(ok)} arrived={len(lat)} rate={rate:.1f} "
          f"median_ms={percentile(lat, 50):.1f} p99_ms={percentile(lat, 99):.1f} "
          f"max_ms={(lat[-1] if lat else float('nan')):.1f}")
    if errors:
        print(f"{len(errors)} send errors, first: {errors[0]}", file=sys.stderr)
    return 0 if lat else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("count")
    c.add_argument("file")
    w = sub.add_parser("wait")
    w.add_argument("file")
    w.add_argument("target", type=int)
    w.add_argument("timeout", type=float)
    la = sub.add_parser("latency")
    la.add_argument("--port", type=int, required=True)
    la.add_argument("--sink-out", required=True)
    la.add_argument("--rate", type=float, default=200.0)
    la.add_argument("--seconds", type=float, default=20.0)
    la.add_argument("--threads", type=int, default=10)
    la.add_argument("--size", type=int, default=1024)
    la.add_argument("--wait", type=float, default=30.0)
    a = p.parse_args()
    return {"count": cmd_count, "wait": cmd_wait, "latency": cmd_latency}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
