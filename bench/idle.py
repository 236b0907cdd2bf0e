#!/usr/bin/python3
"""Hold N idle SMTP connections (after EHLO; with 'tls', after STARTTLS and
a second EHLO) and report (VmRSS with them - VmRSS before) / N for PID."""
import socket
import ssl
import sys
import time

pid, port, n, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def reply(f):
    while True:
        line = f.readline()
        if not line or line[3:4] != b"-":
            return line


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
time.sleep(0.5)
before = rss_kib()
conns = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO bench.example\r\n")
    reply(f)
    if mode == "tls":
        s.sendall(b"STARTTLS\r\n")
        reply(f)
        s = ctx.wrap_socket(s, server_hostname="localhost")
        f = s.makefile("rb")
        s.sendall(b"EHLO bench.example\r\n")
        reply(f)
    conns.append((s, f))
time.sleep(1.0)
after = rss_kib()
per = (after - before) * 1024 / n
print(f"  {mode}: {n} idle connections, VmRSS {before} KiB -> {after} KiB, {per / 1024:.1f} KiB per connection")
for s, f in conns:
    s.close()
