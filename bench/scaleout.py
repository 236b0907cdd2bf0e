#!/usr/bin/python3
"""bench/scaleout: end-to-end relay throughput of the queue backends (SPEC §8)

    smtp-source -> bridgehead node(s) -> smtp-sink -c

for three set-ups, one after the other on the same machine:
  sqlite     one node, its SQLite queue (the default);
  postgres   one node on a throwaway PostgreSQL 15 cluster (pglib.py);
  2 nodes    two nodes on that same cluster, smtp-source split across them.
Each case sends M messages of 1 KiB over S sessions after a warm-up and
reports msgs/s from the first message sent to the last one counted by the
sink. For postgres it also reports the database's cost per message, from
pg_stat_statements (track=top, reset after the warm-up): the statements the
nodes sent, each one round trip (BEGIN, COMMIT and SAVEPOINT count; the
statements inside bh_remove_entry() and the foreign-key checks do not), and
the most frequent ones.

    /usr/bin/python3 bench/scaleout.py [--messages M] [--sessions S]

Two cores cannot show scaling: the nodes, the database, the source and the
sink all share them. The figures show the cost of the shared queue.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from pglib import PgCluster, available  # noqa: E402
from relay_lat import last_count  # noqa: E402

BH = os.environ.get("BH", os.path.join(ROOT, "build", "bridgehead"))

CONFIG = """\
server:
  hostname: {node}.bench.example.org
  node: {node}
  listen: [ {{ address: "127.0.0.1:{port}" }} ]
  max_connections_per_ip: 10000
storage:
  path: queue.db
{storage}
connectors:
  - name: out
    address_spaces: ["*"]
    bridgeheads: ["127.0.0.1:{sink}"]
    tls: {{ mode: none }}
    max_connections: 20
    max_messages_per_connection: 1000
"""


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    import socket
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Run:
    def __init__(self, work):
        self.work = work
        os.makedirs(work, exist_ok=True)
        self.procs = []

    def sink(self):
        port = free_port()
        self.counts = os.path.join(self.work, f"counts.{port}")
        self.procs.append(subprocess.Popen(
            ["smtp-sink", "-c", "-u", "nobody", f"127.0.0.1:{port}", "1024"],
            stdout=open(self.counts, "wb"), stderr=subprocess.DEVNULL))
        wait_port(port)
        return port

    def node(self, name, sink, storage):
        d = os.path.join(self.work, name)
        os.makedirs(d, exist_ok=True)
        port = free_port()
        cfg = os.path.join(d, "bench.yaml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(node=name, port=port, sink=sink, storage=storage))
        self.procs.append(subprocess.Popen([BH, "serve", "-c", cfg], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL,
                                           stderr=open(os.path.join(d, "serve.log"), "w")))
        wait_port(port)
        return port

    def send(self, ports, sessions, n):
        """n messages split over the nodes; returns msgs/s end to end."""
        base = last_count(self.counts)
        t0 = time.time()
        share = [n // len(ports) + (1 if i < n % len(ports) else 0) for i in range(len(ports))]
        srcs = [subprocess.Popen(["smtp-source", "-s", str(max(1, sessions // len(ports))),
                                  "-m", str(k), "-l", "1024", "-f", "a@example.org",
                                  "-t", "b@partner.test", f"127.0.0.1:{p}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for p, k in zip(ports, share)]
        for s in srcs:
            s.wait(timeout=300)
        end = time.time() + 300
        while last_count(self.counts) < base + n:
            if time.time() > end:
                return None
            time.sleep(0.01)
        return n / (time.time() - t0)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []


def pg_cost(pg, n):
    total = pg.sql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s"
                   " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'bridgehead'")
    top = pg.sql("SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 60)"
                 " FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
                 " WHERE d.datname = 'bridgehead' ORDER BY calls DESC LIMIT 8")
    calls = int(total[0][0])
    lines = [f"    {calls / n:5.2f} round trips (top-level statements) per message, {calls} in all"]
    for c, q in top:
        lines.append(f"      {int(c) / n:5.2f}/msg  {q}")
    return "\n".join(lines)


def case(label, work, sessions, m, warm, storage, nodes, pg=None):
    run = Run(work)
    try:
        sink = run.sink()
        ports = [run.node(name, sink, storage) for name in nodes]
        if run.send(ports, sessions, warm) is None:
            return f"  {label:10s} warm-up did not finish", None
        if pg is not None:
            pg.sql("SELECT pg_stat_statements_reset()")
        rate = run.send(ports, sessions, m)
        cost = pg_cost(pg, m) if pg is not None and rate is not None else None
        res = f"{rate:7.0f} msgs/s" if rate is not None else "did not finish"
        return f"  {label:10s} {m} x 1 KiB over {sessions} sessions: {res}", cost
    finally:
        run.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--sessions", type=int, default=20)
    a = ap.parse_args()
    for t in ("smtp-source", "smtp-sink"):
        if shutil.which(t) is None:
            print(f"scaleout: {t} not found (package postfix)")
            return 1
    if not available():
        print("scaleout: PostgreSQL is not installed (sh .ci/deps.sh)")
        return 1
    print(f"bench/scaleout: {a.messages} msgs of 1 KiB, {a.sessions} sessions, "
          f"{os.cpu_count()} CPUs (too few to show scaling)")
    warm = 300
    work = tempfile.mkdtemp(prefix="bh-bench-scale-")
    os.chmod(work, 0o755)
    pg = None
    try:
        line, _ = case("sqlite", os.path.join(work, "s"), a.sessions, a.messages, warm, "",
                       ["a"])
        print(line, flush=True)
        pg = PgCluster(options=["-c shared_preload_libraries=pg_stat_statements",
                                "-c pg_stat_statements.track=top"]).start()
        pg.sql("CREATE EXTENSION pg_stat_statements")
        storage = f'  backend: postgres\n  dsn: "{pg.dsn}"'
        for label, nodes in (("postgres", ["a"]), ("2 nodes", ["a", "b"])):
            pg.sql("DROP TABLE IF EXISTS entries, bodies, messages, bh_meta CASCADE;"
                   " DROP FUNCTION IF EXISTS bh_remove_entry(bigint, text)")
            line, cost = case(label, os.path.join(work, label.replace(" ", "")), a.sessions,
                              a.messages, warm, storage, nodes, pg)
            print(line, flush=True)
            if cost:
                print(cost, flush=True)
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
