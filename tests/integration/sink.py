#!/usr/bin/python3
"""A configurable SMTP sink for the delivery tests, built on aiosmtpd and run
as its own process:

    /usr/bin/python3 tests/integration/sink.py --port P --out FILE [options]

It appends one JSON line per accepted message to FILE (flushed and fsynced
unless --no-fsync):

    {"sink", "mail_from", "rcpt_tos", "mail_options", "rcpt_options",
     "mail_params", "rcpt_params", "tls", "tls_version", "peer", "helo",
     "esmtp", "auth_user", "conn", "conn_msg", "size", "data_sha256",
     "subject", "message_id", "received_at", "data", "data_truncated"}

`mail_options` are the MAIL parameters as sent (case kept), `rcpt_options`
one list per accepted recipient, parallel to `rcpt_tos`; `mail_params` and
`rcpt_params` are the same parsed into {"KEY": "value"} (a bare keyword maps
to true). `tls` tells whether the session was inside STARTTLS at MAIL,
`conn` numbers the connections (from 1) and `conn_msg` the messages within
one. `data` is the message as received, decoded as latin-1 (so
`r["data"].encode("latin-1")` is the exact bytes), cut at --max-data bytes.
`received_at` is time.time() at the final dot.

Lines with an "event" key are not messages:
  {"event": "mail_in_clear", ...}  every MAIL command seen outside TLS, also
                                   ones that were then refused;
  {"event": "data_refused", ...}   a message answered with a non-2xx reply
                                   at the final dot (--data-reply,
                                   --fail-file);
  {"event": "tls_failed", "error"} a STARTTLS handshake that failed;
  {"event": "connect"|"disconnect"} with --log-connections.

The PID goes to FILE.pid (and the bound port to FILE.port, useful with
--port 0); "READY" is printed on stdout once listening. SIGTERM or SIGINT
stops it (exit 0).

Without --dsn, DSN is not advertised and NOTIFY/ORCPT/RET/ENVID get 555
(aiosmtpd's own behaviour); with --dsn, "DSN" is in the EHLO reply and those
parameters are accepted and recorded. A reply given as only a code
("454") gets a default text.
"""
import argparse
import asyncio
import email.parser
import email.policy
import hashlib
import json
import logging
import os
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, TLSSetupException

DSN_MAIL = ("RET", "ENVID")
DSN_RCPT = ("NOTIFY", "ORCPT")
DEFAULT_TEXT = {
    "421": "4.3.2 Service not available, closing channel",
    "450": "4.2.0 Mailbox unavailable",
    "451": "4.3.0 Local error in processing",
    "452": "4.3.1 Insufficient system storage",
    "454": "4.7.0 TLS not available due to temporary reason",
    "535": "5.7.8 Authentication credentials invalid",
    "550": "5.1.1 Mailbox unavailable",
    "552": "5.3.4 Message too big",
    "554": "5.7.1 Transaction failed",
}


def full_reply(reply):
    """'454' -> '454 4.7.0 ...'; a reply with text is kept as given."""
    if reply is None:
        return None
    reply = reply.strip()
    if len(reply) == 3 and reply.isdigit():
        return f"{reply} {DEFAULT_TEXT.get(reply, 'sink reply')}"
    return reply


def parse_params(tokens):
    out = {}
    for t in tokens:
        k, eq, v = t.partition("=")
        out[k.upper()] = v if eq else True
    return out


def fmt_peer(peer):
    if not peer:
        return None
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Recorder:
    """Appends JSON lines to the output file, one write + fsync per line."""

    def __init__(self, path, fsync=True):
        self.f = open(path, "a", encoding="ascii")
        self.fsync = fsync

    def write(self, obj):
        self.f.write(json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n")
        self.f.flush()
        if self.fsync:
            os.fsync(self.f.fileno())


class Config:
    def __init__(self, a):
        self.name = a.name
        self.dsn = a.dsn and not a.no_dsn
        self.pipelining = a.pipelining
        self.starttls_reply = full_reply(a.starttls_reply)
        self.rcpt_reply = full_reply(a.rcpt_reply)
        self.rcpt_reply_for = {}
        for item in a.rcpt_reply_for:
            addr, eq, reply = item.partition("=")
            if not eq:
                raise SystemExit(f"--rcpt-reply-for wants ADDR=REPLY, not {item!r}")
            self.rcpt_reply_for[addr.strip().strip("<>").lower()] = full_reply(reply)
        self.data_reply = full_reply(a.data_reply)
        self.greeting_reply = full_reply(a.greeting_reply)
        self.fail_file = a.fail_file
        self.delay_data = a.delay_data
        self.delay_greeting = a.delay_greeting
        self.auth = a.auth.split(":", 1) if a.auth else None
        self.auth_reply = full_reply(a.auth_reply)
        self.max_data = a.max_data
        self.log_connections = a.log_connections


class SinkSMTP(SMTP):
    """aiosmtpd's SMTP with the sink's knobs. One instance per connection."""

    conn_counter = 0

    def __init__(self, cfg, rec, **kw):
        self.cfg = cfg
        self.rec = rec
        self._greeted = False
        self._raw_mail = []
        self._raw_rcpt = []
        self._rcpt_opts = []
        self._conn_msgs = 0
        SinkSMTP.conn_counter += 1
        self.conn_id = SinkSMTP.conn_counter
        super().__init__(SinkHandler(self), **kw)

    # -- connection ---------------------------------------------------------
    def connection_made(self, transport):
        first = self.transport is None
        super().connection_made(transport)
        if first and self.cfg.log_connections:
            self.rec.write({"event": "connect", "sink": self.cfg.name, "conn": self.conn_id,
                            "peer": fmt_peer(self.session.peer), "at": time.time()})

    def connection_lost(self, error):
        if self.cfg.log_connections and not getattr(self, "_lost_logged", False):
            self._lost_logged = True
            self.rec.write({"event": "disconnect", "sink": self.cfg.name, "conn": self.conn_id,
                            "at": time.time()})
        super().connection_lost(error)

    async def push(self, status):
        if not self._greeted:
            # The first push is aiosmtpd's 220 greeting.
            self._greeted = True
            if self.cfg.delay_greeting:
                await asyncio.sleep(self.cfg.delay_greeting)
            if self.cfg.greeting_reply:
                await super().push(self.cfg.greeting_reply)
                if self.cfg.greeting_reply.startswith("421"):
                    self.transport.close()
                return
        await super().push(status)

    def _no_service(self):
        """After a 554 (or any other non-2xx, non-421) greeting only QUIT is
        served, as RFC 5321 3.1 has it; every other command gets 503."""
        g = self.cfg.greeting_reply
        return bool(g) and not g.startswith("2")

    def tls_version(self):
        if not self._tls_protocol or self.transport is None:
            return None
        obj = self.transport.get_extra_info("ssl_object")
        return obj.version() if obj is not None else None

    # -- commands -----------------------------------------------------------
    async def smtp_HELO(self, arg):
        if self._no_service():
            return await self.push("503 5.5.1 No service")
        return await super().smtp_HELO(arg)

    async def smtp_EHLO(self, arg):
        if self._no_service():
            return await self.push("503 5.5.1 No service")
        return await super().smtp_EHLO(arg)

    async def smtp_STARTTLS(self, arg):
        if self._no_service():
            return await self.push("503 5.5.1 No service")
        if self.tls_context and self._tls_protocol:
            return await self.push("503 5.5.1 TLS already active")
        if self.cfg.starttls_reply:
            return await self.push(self.cfg.starttls_reply)
        return await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg):
        if self.cfg.auth_reply and self.session.extended_smtp:
            return await self.push(self.cfg.auth_reply)
        if not self.cfg.auth:
            return await self.push("502 5.5.1 AUTH not offered")
        return await super().smtp_AUTH(arg)

    async def smtp_MAIL(self, arg):
        if self._no_service():
            return await self.push("503 5.5.1 No service")
        if not self._tls_protocol:
            self.rec.write({"event": "mail_in_clear", "sink": self.cfg.name,
                            "line": "MAIL " + (arg or ""), "peer": fmt_peer(self.session.peer),
                            "conn": self.conn_id, "at": time.time()})
        self._raw_mail = []
        if arg and self.session.extended_smtp:
            rest = self._strip_command_keyword("FROM:", arg)
            if rest is not None:
                _, params = self._getaddr(rest)
                self._raw_mail = (params or "").split()
            if self.cfg.dsn:
                bad = self._check_dsn(self._raw_mail, DSN_MAIL)
                if bad:
                    return await self.push(bad)
                arg = " ".join(t for t in arg.split(" ")
                               if t.split("=", 1)[0].upper() not in DSN_MAIL)
        return await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        if self._no_service():
            return await self.push("503 5.5.1 No service")
        self._raw_rcpt = []
        if arg and self.session.extended_smtp:
            rest = self._strip_command_keyword("TO:", arg)
            if rest is not None:
                _, params = self._getaddr(rest)
                self._raw_rcpt = (params or "").split()
            if self.cfg.dsn:
                bad = self._check_dsn(self._raw_rcpt, DSN_RCPT)
                if bad:
                    return await self.push(bad)
                arg = " ".join(t for t in arg.split(" ")
                               if t.split("=", 1)[0].upper() not in DSN_RCPT)
        return await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg):
        if self._no_service():
            return await self.push("503 5.5.1 No service")
        return await super().smtp_DATA(arg)

    @staticmethod
    def _check_dsn(tokens, keys):
        for t in tokens:
            k, eq, v = t.partition("=")
            k = k.upper()
            if k not in keys:
                continue
            if not eq or not v:
                return f"501 5.5.4 {k} needs a value"
            if k == "RET" and v.upper() not in ("FULL", "HDRS"):
                return "501 5.5.4 RET must be FULL or HDRS"
            if k == "NOTIFY":
                vals = v.upper().split(",")
                if any(x not in ("NEVER", "SUCCESS", "FAILURE", "DELAY") for x in vals) or \
                        ("NEVER" in vals and len(vals) > 1):
                    return "501 5.5.4 bad NOTIFY value"
            if k == "ORCPT" and ";" not in v:
                return "501 5.5.4 ORCPT needs addr-type;address"
        return None


class SinkHandler:
    def __init__(self, smtp):
        self.smtp = smtp

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        cfg = self.smtp.cfg
        out = [r for r in responses if not r[4:].startswith("AUTH")]
        if cfg.auth and server._tls_protocol:
            out.insert(-1, "250-AUTH LOGIN PLAIN")
        extra = []
        if cfg.pipelining:
            extra.append("250-PIPELINING")
        if cfg.dsn:
            extra.append("250-DSN")
        return out[:-1] + extra + out[-1:]

    async def handle_exception(self, error):
        """A failed TLS handshake is an event the TLS tests look for, not a
        bug: record it in one line. Anything else is a bug: log it."""
        if isinstance(error, TLSSetupException):
            cause = error.__cause__ or error
            self.smtp.rec.write({"event": "tls_failed", "sink": self.smtp.cfg.name,
                                 "conn": self.smtp.conn_id,
                                 "peer": fmt_peer(self.smtp.session.peer),
                                 "error": f"{type(cause).__name__}: {cause}", "at": time.time()})
            return "454 4.7.0 TLS handshake failed"
        logging.getLogger("sink").error("session exception", exc_info=error)
        return f"451 4.3.0 sink error: {type(error).__name__}"

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        session.extended_smtp = False
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(self.smtp._raw_mail)
        self.smtp._rcpt_opts = []
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        cfg = self.smtp.cfg
        reply = cfg.rcpt_reply_for.get(address.lower(), cfg.rcpt_reply)
        if reply and not reply.startswith("2"):
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(self.smtp._raw_rcpt)
        self.smtp._rcpt_opts.append(list(self.smtp._raw_rcpt))
        return reply or "250 2.1.5 OK"

    async def handle_RSET(self, server, session, envelope):
        self.smtp._rcpt_opts = []
        return "250 2.0.0 OK"

    async def handle_DATA(self, server, session, envelope):
        at = time.time()
        cfg = self.smtp.cfg
        data = envelope.original_content or b""
        try:
            hdrs = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
            subject, msgid = hdrs.get("Subject"), hdrs.get("Message-ID")
            subject = str(subject) if subject is not None else None
            msgid = str(msgid) if msgid is not None else None
        except Exception:  # hostile input must not kill the sink
            subject = msgid = None
        rec = {"sink": cfg.name, "mail_from": envelope.mail_from,
               "rcpt_tos": list(envelope.rcpt_tos),
               "mail_options": list(envelope.mail_options),
               "rcpt_options": [list(o) for o in self.smtp._rcpt_opts],
               "mail_params": parse_params(envelope.mail_options),
               "rcpt_params": [parse_params(o) for o in self.smtp._rcpt_opts],
               "tls": bool(server._tls_protocol), "tls_version": server.tls_version(),
               "peer": fmt_peer(session.peer), "helo": session.host_name,
               "esmtp": bool(session.extended_smtp),
               "auth_user": session.auth_data if session.authenticated else None,
               "conn": server.conn_id, "size": len(data),
               "data_sha256": hashlib.sha256(data).hexdigest(),
               "subject": subject, "message_id": msgid, "received_at": at}
        self.smtp._rcpt_opts = []
        if cfg.delay_data:
            await asyncio.sleep(cfg.delay_data)
        reply = cfg.data_reply
        if cfg.fail_file and os.path.exists(cfg.fail_file):
            reply = "451 4.3.0 fail-file present, try later"
        if reply and not reply.startswith("2"):
            rec = {"event": "data_refused", "reply": reply, **rec}
            self.smtp.rec.write(rec)
            return reply
        server._conn_msgs += 1
        rec["conn_msg"] = server._conn_msgs
        if cfg.max_data != 0:
            cut = data if cfg.max_data < 0 else data[:cfg.max_data]
            rec["data"] = cut.decode("latin-1")
            rec["data_truncated"] = len(cut) < len(data)
        self.smtp.rec.write(rec)
        return reply or "250 2.0.0 OK queued"


def make_authenticator(cfg):
    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        ok = [user, auth_data.password.decode("utf-8", "replace")] == cfg.auth
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)
    return authenticator


TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def tls_context(a):
    if not a.tls_cert or a.no_starttls:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.tls_cert, a.tls_key or a.tls_cert)
    if a.tls_min_version:
        ctx.minimum_version = TLS_VERSIONS[a.tls_min_version]
    if a.tls_max_version:
        ctx.maximum_version = TLS_VERSIONS[a.tls_max_version]
    return ctx


def parse_args(argv):
    p = argparse.ArgumentParser(description="SMTP sink for the bridgehead tests")
    p.add_argument("--port", type=int, required=True, help="0: any free port (see OUT.port)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--out", required=True, help="JSON lines file (appended)")
    p.add_argument("--name", default="sink")
    p.add_argument("--hostname", default="sink.test", help="name in the greeting and EHLO")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-min-version", choices=sorted(TLS_VERSIONS))
    p.add_argument("--tls-max-version", choices=sorted(TLS_VERSIONS))
    p.add_argument("--no-starttls", action="store_true", help="never offer STARTTLS")
    p.add_argument("--starttls-reply", help="offer STARTTLS but answer it with this (e.g. 454)")
    p.add_argument("--rcpt-reply", help="reply to every RCPT (e.g. '550 5.1.1 no such user')")
    p.add_argument("--rcpt-reply-for", action="append", default=[], metavar="ADDR=REPLY",
                   help="reply to RCPT for ADDR (case-insensitive); repeatable")
    p.add_argument("--data-reply", help="reply to every final dot (e.g. '451 4.3.0 try later')")
    p.add_argument("--greeting-reply", help="greeting instead of 220 (421 closes; 554 serves QUIT only)")
    p.add_argument("--fail-file", help="while this file exists, every final dot gets 451")
    p.add_argument("--dsn", action="store_true", help="advertise DSN, accept NOTIFY/ORCPT/RET/ENVID")
    p.add_argument("--no-dsn", action="store_true", help="do not advertise DSN (the default)")
    p.add_argument("--pipelining", action="store_true", help="advertise PIPELINING")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="offer AUTH LOGIN PLAIN inside TLS")
    p.add_argument("--auth-reply", help="answer every AUTH with this (e.g. '454 4.7.0 ...')")
    p.add_argument("--max-size", type=int, default=33554432, help="SIZE advertised; 0: none")
    p.add_argument("--delay-data", type=float, default=0.0, help="seconds before the final reply")
    p.add_argument("--delay-greeting", type=float, default=0.0, help="seconds before the greeting")
    p.add_argument("--max-data", type=int, default=1 << 20,
                   help="bytes of each message kept in 'data' (0: none, -1: all)")
    p.add_argument("--no-fsync", action="store_true", help="flush but do not fsync each line")
    p.add_argument("--log-connections", action="store_true", help="connect/disconnect events")
    a = p.parse_args(argv)
    if a.tls_cert is None and a.tls_key is not None:
        p.error("--tls-key needs --tls-cert")
    if a.auth and ":" not in a.auth:
        p.error("--auth wants USER:PASSWORD")
    return a


async def serve(a):
    cfg = Config(a)
    rec = Recorder(a.out, fsync=not a.no_fsync)
    ctx = tls_context(a)
    auth = make_authenticator(cfg) if cfg.auth else None
    loop = asyncio.get_running_loop()

    def factory():
        return SinkSMTP(cfg, rec, hostname=a.hostname, tls_context=ctx, require_starttls=False,
                        data_size_limit=a.max_size or None, authenticator=auth,
                        auth_require_tls=True, timeout=300, loop=loop)

    server = await loop.create_server(factory, host=a.host, port=a.port)
    port = server.sockets[0].getsockname()[1]
    with open(a.out + ".pid", "w") as f:
        f.write(f"{os.getpid()}\n")
    with open(a.out + ".port", "w") as f:
        f.write(f"{port}\n")
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    print("READY", flush=True)
    await stop
    server.close()
    for name in (a.out + ".pid",):
        try:
            os.unlink(name)
        except OSError:
            pass


def main(argv=None):
    a = parse_args(argv if argv is not None else sys.argv[1:])
    # Errors (a bug in a hook, say) go to stderr; TLS handshake failures
    # provoked by the tests are expected and stay quiet.
    logging.basicConfig(level=logging.ERROR, format="sink %(levelname)s %(message)s")
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    asyncio.run(serve(a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
