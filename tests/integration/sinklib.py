"""Helpers for the delivery tests: start SMTP sinks (tests/integration/sink.py,
one process each) on loopback ports, read what they received, and stop every
sink on exit (also on failure).

    from sinklib import start_sink, wait_for
    sink = start_sink(name="gw1", dsn=True, rcpt_reply_for={"x@p.test": "550 5.1.1 no"})
    ... point a connector at f"127.0.0.1:{sink.port}" ...
    wait_for(lambda: len(sink.messages()) == 1, timeout=10)
    sink.stop()

start_sink() keywords are sink.py's long options with '_' for '-': a True
value is a bare flag, False/None leaves the option out, a list or tuple
repeats it, and `rcpt_reply_for` may also be a dict {address: reply}.
Keywords the helper itself takes: port (default: a free one), host, name,
folder (where the output file goes; default a new temporary folder), out,
timeout (to wait for READY).
"""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SINK = os.path.join(HERE, "sink.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

_sinks = []


def _kill_all():
    for s in _sinks:
        s.kill()
    for s in _sinks:
        if s._own_folder:
            shutil.rmtree(s.folder, ignore_errors=True)


atexit.register(_kill_all)


def _chain_sigterm():
    """Kill the sinks on SIGTERM too (atexit does not run then), then hand the
    signal on to whoever handled it before (bhtest's handler, or exit)."""
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame):
        _kill_all()
        if callable(previous):
            previous(signum, frame)
        os._exit(1)
    signal.signal(signal.SIGTERM, handler)


_chain_sigterm()


def _die_with_parent():
    """In the child: get SIGTERM when the test process dies, however it dies
    (a sink is therefore best started from the main thread)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def free_port(host="127.0.0.1"):
    import socket
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.05, what=None):
    """Call predicate() until it returns something true, and return that.
    Raise AssertionError (a test failure) after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what or getattr(predicate, '__name__', 'condition')}")
        time.sleep(interval)


def _flags(options):
    args = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, dict):
            for k, v in value.items():
                args += [flag, f"{k}={v}"]
        elif isinstance(value, (list, tuple)):
            for v in value:
                args += [flag, str(v)]
        else:
            args += [flag, str(value)]
    return args


class Sink:
    """One sink.py process. records() reads its JSON lines afresh each call."""

    def __init__(self, port=None, host="127.0.0.1", name="sink", folder=None, out=None,
                 timeout=10.0, **options):
        self._own_folder = folder is None and out is None
        self.folder = folder or (os.path.dirname(out) if out else tempfile.mkdtemp(prefix="bh-sink-"))
        self.host = host
        self.name = name
        self.port = port if port is not None else free_port(host)
        self.out = out or os.path.join(self.folder, f"sink-{name}-{self.port}.jsonl")
        self.options = options
        self.timeout = timeout
        self.proc = None
        self.stderr_path = self.out + ".stderr"

    @property
    def address(self):
        """"host:port" as a connector's bridgeheads entry wants it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self):
        args = [PYTHON, SINK, "--port", str(self.port), "--host", self.host,
                "--out", self.out, "--name", self.name] + _flags(self.options)
        self._errf = open(self.stderr_path, "a")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._errf,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        if self not in _sinks:
            _sinks.append(self)
        self._wait_ready()
        return self

    def _wait_ready(self):
        import select
        end = time.monotonic() + self.timeout
        line = b""
        while time.monotonic() < end:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if r:
                line = self.proc.stdout.readline()
                if line.strip() == b"READY":
                    return
                if not line:
                    break
        self.kill()
        with open(self.stderr_path) as f:
            err = f.read()[-2000:]
        raise RuntimeError(f"sink {self.name} on port {self.port} did not start: {err}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL if it lingers. Returns the exit status."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self._reap()

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()
        return self._reap()

    def _reap(self):
        if self.proc is None:
            return None
        if self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "_errf", None):
            self._errf.close()
            self._errf = None
        return self.proc.returncode

    def restart(self, **changes):
        """Stop, then start again on the same port and output file, with the
        options changed as given (a None value drops an option)."""
        self.stop()
        for k, v in changes.items():
            if v is None:
                self.options.pop(k, None)
            else:
                self.options[k] = v
        return self.start()

    # -- what it received ---------------------------------------------------
    def records(self):
        """Every JSON line so far: messages and events."""
        try:
            with open(self.out) as f:
                lines = f.readlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            if line.endswith("\n"):  # a line being written is not complete yet
                out.append(json.loads(line))
        return out

    def messages(self):
        """The accepted messages only (records without an "event" key)."""
        return [r for r in self.records() if "event" not in r]

    def events(self, kind):
        return [r for r in self.records() if r.get("event") == kind]

    def mail_in_clear(self):
        """Every MAIL command this sink saw outside TLS."""
        return self.events("mail_in_clear")

    def recipients(self):
        """Every accepted recipient, over all messages, in arrival order."""
        return [rcpt for m in self.messages() for rcpt in m["rcpt_tos"]]

    def wait_messages(self, n, timeout=10.0):
        """Wait until at least n messages arrived; return the messages."""
        wait_for(lambda: len(self.messages()) >= n, timeout,
                 what=f"{n} message(s) at sink {self.name}")
        return self.messages()

    def reset(self):
        """Forget what was received so far (truncate the output file)."""
        with open(self.out, "w"):
            pass

    def __repr__(self):
        return f"<Sink {self.name} {self.address}>"


def start_sink(**options):
    """Start a sink.py process and wait until it listens; see the module doc."""
    return Sink(**options).start()
