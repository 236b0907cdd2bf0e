"""Shared harness for the integration tests: start the real bridgehead
binary on loopback ports with a config written for the test, talk to it,
read its queue, and stop every process it started (also on failure)."""
import atexit
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BRIDGEHEAD", os.path.join(ROOT, "build", "bridgehead"))

_procs = []


def _kill_all():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_all)
signal.signal(signal.SIGTERM, lambda *a: (_kill_all(), os._exit(1)))


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    end = time.time() + timeout
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with socket.socket(fam) as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def make_cert(folder, cn="localhost", name="server"):
    """A throwaway self-signed certificate made with `openssl req`."""
    cert = os.path.join(folder, f"{name}.pem")
    key = os.path.join(folder, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn}",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class Relay:
    """One `bridgehead serve` process with its own folder, config and queue.
    wrapper: argv put in front of the server's own, e.g. ["unshare", "-m",
    ...]; it must exec the server in the end, so that proc.pid is the
    server's (signals and kill9 reach it)."""

    def __init__(self, config, folder=None, env=None, log_format=None, wrapper=None):
        self.dir = folder or tempfile.mkdtemp(prefix="bh-it-")
        self.port = free_port()
        self.config_path = os.path.join(self.dir, "bridgehead.yaml")
        self.db = os.path.join(self.dir, "queue.db")
        with open(self.config_path, "w") as f:
            f.write(config.replace("@PORT@", str(self.port)).replace("@DIR@", self.dir))
        self.env = dict(os.environ, **(env or {}))
        self.log_format = log_format
        self.wrapper = list(wrapper or [])
        self.proc = None
        self.log_path = os.path.join(self.dir, "serve.log")

    def start(self, wait=True):
        args = self.wrapper + [BIN, "serve", "-c", self.config_path]
        if self.log_format:
            args += ["--log-format", self.log_format]
        self.logf = open(self.log_path, "a")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=self.logf, env=self.env)
        _procs.append(self.proc)
        if wait:
            wait_port(self.port, proc=self.proc)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        rc = self.proc.returncode if self.proc else None
        if self.proc:
            self.logf.close()
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def queue_rows(self):
        """(qid, sender, rcpt, connector, state) of every queued recipient."""
        if not os.path.exists(self.db):
            return []
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return con.execute(
                "SELECT m.qid, m.sender, e.rcpt, e.connector, e.state FROM entries e "
                "JOIN messages m USING (mid) ORDER BY e.eid").fetchall()
        finally:
            con.close()

    def body(self, qid):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT b.data FROM bodies b JOIN messages m USING (mid) "
                              "WHERE m.qid = ?", (qid,)).fetchone()
            return row[0] if row else None
        finally:
            con.close()

    def cleanup(self):
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def edit_config(self, old, new):
        """Replace old (which must be there) with new in the config file."""
        with open(self.config_path) as f:
            text = f.read()
        assert old in text, f"{old!r} is not in the config"
        with open(self.config_path, "w") as f:
            f.write(text.replace(old, new))


def connector(name, spaces, port, extra=""):
    """One connector of a test config: a smarthost on 127.0.0.1:port, in
    clear; extra adds indented keys."""
    return (f"  - name: {name}\n    address_spaces: [{spaces}]\n"
            f'    bridgeheads: ["127.0.0.1:{port}"]\n    tls: {{ mode: none }}\n' + extra)


def starttls_session(port, helo="client.example"):
    """smtplib session to the relay on port, inside STARTTLS (certificate
    not checked: the tests' relays use throwaway self-signed ones)."""
    import smtplib
    import ssl
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo(helo)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo(helo)
    return s


class Raw:
    """A raw SMTP client over a socket, for what smtplib will not send."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=10):
        self.s = socket.create_connection((host, port), timeout=timeout,
                                          source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """One whole (possibly multi-line) reply as text, or '' at EOF."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    return "\n".join(lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("latin-1"))
            if len(line) < 4 or line[3:4] != b"-":
                return "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()
