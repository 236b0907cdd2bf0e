"""A throwaway PostgreSQL cluster for the tests (SPEC §8): initdb in a new
folder owned by the postgres user (initdb refuses root), pg_ctl start on a
free loopback port with its socket in that folder, one database, and
pg_ctl stop -m immediate at the end (atexit, also on failure).

    from pglib import PgCluster
    pg = PgCluster().start()
    pg.dsn          # "host=127.0.0.1 port=N dbname=bridgehead user=postgres"
    pg.sql("SELECT count(*) FROM entries")   # -> [["3"]]
    pg.stop()
"""
import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

_clusters = []


def _bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    return None


BINDIR = _bindir()


def available():
    """Can this machine run a cluster (PostgreSQL installed, a postgres user)?"""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return BINDIR is not None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_all():
    for c in list(_clusters):
        c.stop()


atexit.register(_stop_all)


class PgCluster:
    def __init__(self, dbname="bridgehead", options=()):
        self.dbname = dbname
        self.options = list(options)
        self.dir = None
        self.port = None
        self.running = False

    def _as_postgres(self, *args, check=True, timeout=60):
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], check=check,
                              capture_output=True, text=True, timeout=timeout)

    def start(self):
        if not available():
            raise RuntimeError("PostgreSQL is not installed (sh .ci/deps.sh)")
        self.dir = tempfile.mkdtemp(prefix="bh-pg-")
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        data = os.path.join(self.dir, "data")
        self._as_postgres(os.path.join(BINDIR, "initdb"), "-D", data, "-A", "trust",
                          "-U", "postgres", "--no-sync")
        self.port = _free_port()
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on "
                + " ".join(self.options))
        _clusters.append(self)
        self._as_postgres(os.path.join(BINDIR, "pg_ctl"), "-D", data, "-o", opts,
                          "-l", os.path.join(self.dir, "server.log"), "-w", "start")
        self.running = True
        self.psql("postgres", f"CREATE DATABASE {self.dbname}")
        return self

    @property
    def dsn(self):
        return f"host=127.0.0.1 port={self.port} dbname={self.dbname} user=postgres"

    def psql(self, db, sql):
        out = subprocess.run([os.path.join(BINDIR, "psql"), "-X", "-q", "-A", "-t", "-F", "\t",
                              "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", "postgres", "-d", db, "-c", sql],
                             check=True, capture_output=True, text=True, timeout=60)
        return [line.split("\t") for line in out.stdout.splitlines() if line != ""]

    def sql(self, sql):
        """Rows of a query on the test database, as lists of strings."""
        return self.psql(self.dbname, sql)

    def stop(self):
        if self.running:
            self._as_postgres(os.path.join(BINDIR, "pg_ctl"), "-D",
                              os.path.join(self.dir, "data"), "-m", "immediate", "-w", "stop",
                              check=False)
            self.running = False
        if self in _clusters:
            _clusters.remove(self)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


if __name__ == "__main__":
    # `python3 pglib.py CMD...`: run CMD with BRIDGEHEAD_TEST_PG_DSN set to a
    # fresh cluster, then stop it (tests/run.sh runs the unit tests so).
    import sys
    pg = PgCluster().start()
    try:
        env = dict(os.environ, BRIDGEHEAD_TEST_PG_DSN=pg.dsn)
        rc = subprocess.run(sys.argv[1:], env=env).returncode
    finally:
        pg.stop()
    sys.exit(rc)
