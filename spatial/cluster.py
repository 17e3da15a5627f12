"""A project-local PostgreSQL/PostGIS cluster (``var/pg``) and throwaway test clusters."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"


def pg_bin_dir() -> Path:
    """Return the ``bin`` directory of the newest installed PostgreSQL with PostGIS."""
    candidates = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name),
        reverse=True,
    )
    for bindir in candidates:
        if _has_postgis(bindir.parent.name):
            return bindir
    raise RuntimeError(
        "PostgreSQL with PostGIS not found under /usr/lib/postgresql; run `make deps` "
        "(apt-get install postgresql postgis)."
    )


def _has_postgis(version: str) -> bool:
    return Path(f"/usr/share/postgresql/{version}/extension/postgis.control").exists()


def free_port(start: int = 55432) -> int:
    """Return a free loopback TCP port at or above ``start``."""
    for port in range(start, start + 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for PostgreSQL")


def _run_as_owner(cmd: list[str], owner: str | None) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary, as ``owner`` when we are root (initdb refuses root)."""
    if owner:
        cmd = ["runuser", "-u", owner, "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


@dataclass
class Cluster:
    """A PostgreSQL data directory listening on 127.0.0.1:``port`` with trust auth."""

    datadir: Path
    port: int = 0

    @property
    def owner(self) -> str | None:
        """The OS user that runs the server: ``postgres`` when we are root."""
        return SUPERUSER if os.geteuid() == 0 else None

    @property
    def port_file(self) -> Path:
        """Where the chosen port is remembered between runs."""
        return self.datadir.parent / f"{self.datadir.name}.port"

    def url(self, dbname: str = "postgres") -> str:
        """Return a libpq URL for ``dbname`` on this cluster."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def initialised(self) -> bool:
        """True when ``initdb`` has run."""
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        """Run ``initdb`` (UTF-8, trust auth on loopback)."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        if self.owner:
            pw = pwd.getpwnam(self.owner)
            os.chown(self.datadir, pw.pw_uid, pw.pw_gid)
        initdb = str(pg_bin_dir() / "initdb")
        _run_as_owner(
            [
                initdb,
                "-D",
                str(self.datadir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            self.owner,
        )

    def running(self) -> bool:
        """True when the server answers on its port."""
        if not self.port:
            return False
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def start(self, fast: bool = False) -> None:
        """Start the server; ``fast`` turns durability off (throwaway clusters)."""
        if not self.port:
            self.port = self._remembered_port() or free_port()
        opts = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.datadir}",
            "-c max_connections=200",
            "-c shared_buffers=256MB",
            "-c max_parallel_workers_per_gather=0",
        ]
        if fast:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        pg_ctl = str(pg_bin_dir() / "pg_ctl")
        log = self.datadir / "server.log"
        _run_as_owner(
            [pg_ctl, "-D", str(self.datadir), "-l", str(log), "-o", " ".join(opts), "-w", "start"],
            self.owner,
        )
        self.port_file.write_text(str(self.port))
        self._wait_ready()

    def stop(self) -> None:
        """Stop the server (fast mode)."""
        pg_ctl = str(pg_bin_dir() / "pg_ctl")
        _run_as_owner([pg_ctl, "-D", str(self.datadir), "-m", "fast", "-w", "stop"], self.owner)

    def ensure_running(self, fast: bool = False) -> None:
        """Initialise and start when needed; reuse a server that is already running."""
        if not self.initialised():
            self.init()
        live = self._live_port()
        if live:
            self.port = live
            return
        remembered = self._remembered_port()
        self.port = remembered if remembered and self._port_free(remembered) else free_port()
        self.start(fast=fast)

    def _live_port(self) -> int:
        """Return the port of this data directory's running postmaster, or 0."""
        pid_file = self.datadir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            os.kill(int(lines[0]), 0)
            port = int(lines[3])
        except (OSError, ValueError, IndexError):
            return 0
        self.port = port
        return port if self.running() else 0

    def destroy(self) -> None:
        """Stop and delete the data directory."""
        if self.running():
            self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
        self.port_file.unlink(missing_ok=True)

    def _remembered_port(self) -> int:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return 0

    @staticmethod
    def _port_free(port: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
            return True

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running():
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start; see {self.datadir / 'server.log'}")
