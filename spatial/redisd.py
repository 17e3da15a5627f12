"""A project-local ``redis-server`` (``var/redis``) for rate limits, and throwaway test servers.

Like :mod:`spatial.cluster` for PostgreSQL: the server is daemonised on 127.0.0.1 on a free
port, keeps nothing on disk (``--save "" --appendonly no``) and is reused while it runs. It
runs as the calling user (root included: unlike ``initdb``, ``redis-server`` accepts root).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from spatial.cluster import free_port
from spatial.errors import ConfigurationError

FIRST_PORT = 56379
FALLBACK_PATHS = ("/usr/bin/redis-server", "/usr/sbin/redis-server")  # PATH without /usr/bin
LISTEN_FAILURES = ("Address already in use", "Failed listening")


def redis_server_binary() -> str:
    """Return the path of ``redis-server`` or raise a configuration error."""
    found = shutil.which("redis-server") or next(
        (p for p in FALLBACK_PATHS if os.access(p, os.X_OK)), None
    )
    if not found:
        raise ConfigurationError(
            "redis-server not found: install Debian's redis-server "
            "(`apt-get install redis-server`, or `make deps`), or set REDIS_URL."
        )
    return found


def redis_call(port: int, *args: str, timeout: float = 1.0) -> bytes | None:
    """Send one command to ``127.0.0.1:port``; return a simple/bulk reply or None on failure."""
    payload = b"*%d\r\n" % len(args)
    for arg in args:
        raw = arg.encode()
        payload += b"$%d\r\n%s\r\n" % (len(raw), raw)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(payload)
            reply = sock.makefile("rb")
            line = reply.readline()
            if line.startswith(b"+"):
                return line[1:].rstrip(b"\r\n")
            if line.startswith(b"$") and int(line[1:]) >= 0:
                return reply.read(int(line[1:]))
    except (OSError, ValueError):
        return None
    return None


class LocalRedis:
    """A ``redis-server`` whose dir, pid file, log file and port file live under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.port = 0

    @property
    def pid_file(self) -> Path:
        """The daemon's pid file (removed by the server when it exits cleanly)."""
        return self.root / "redis.pid"

    @property
    def log_file(self) -> Path:
        """The server log."""
        return self.root / "redis.log"

    @property
    def port_file(self) -> Path:
        """Where the chosen port is remembered between runs."""
        return self.root / "redis.port"

    def url(self) -> str:
        """The ``redis://`` URL of this server (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def running(self) -> bool:
        """True when this root's server (pid file and process) answers PING on its port."""
        return self._live_port() != 0

    def ensure_running(self, timeout: float = 20.0) -> str:
        """Start the server unless it already runs; return its URL."""
        if self._live_port():
            return self.url()
        binary = redis_server_binary()
        self.root.mkdir(parents=True, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        remembered = self._remembered_port()
        self.port = remembered if remembered and _port_free(remembered) else free_port(FIRST_PORT)
        for _attempt in range(3):  # another process may take the free port first
            log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
            subprocess.run(self._command(binary), check=True, capture_output=True, text=True)
            if self._started(log_start, timeout):
                self.port_file.write_text(str(self.port))
                return self.url()
            self.port = free_port(self.port + 1)
        raise RuntimeError(f"redis-server found no free port; see {self.log_file}")

    def stop(self, timeout: float = 20.0) -> None:
        """Shut the server down (nothing to save); a no-op when it is not running."""
        port = self._live_port()
        pid = self._pid()
        if not port or not pid:
            return
        if redis_call(port, "SHUTDOWN", "NOSAVE") is None and _alive(pid):
            os.kill(pid, signal.SIGTERM)  # SHUTDOWN closes the connection without a reply
        self._wait(lambda: not _alive(pid), timeout)
        self.pid_file.unlink(missing_ok=True)

    def _command(self, binary: str) -> list[str]:
        return [
            binary,
            "--daemonize", "yes",
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--protected-mode", "yes",
            "--dir", str(self.root.resolve()),
            "--pidfile", str(self.pid_file.resolve()),
            "--logfile", str(self.log_file.resolve()),
            "--save", "",
            "--appendonly", "no",
        ]  # fmt: skip

    def _live_port(self) -> int:
        """The port of this root's running server, or 0 (a foreign server there is not ours)."""
        pid = self._pid()
        if not pid or not _alive(pid):
            return 0
        for port in dict.fromkeys(p for p in (self.port, self._remembered_port()) if p):
            info = redis_call(port, "INFO", "server")
            if info is not None and f"process_id:{pid}\r".encode() in info:
                self.port = port
                return port
        return 0

    def _pid(self) -> int:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return 0

    def _remembered_port(self) -> int:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return 0

    def _started(self, log_start: int, timeout: float) -> bool:
        """Wait for the new server; False when it could not listen on its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._live_port():
                return True
            if any(sign in self._log_since(log_start) for sign in LISTEN_FAILURES):
                return False
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start in time; see {self.log_file}")

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _wait(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not stop in time; see {self.log_file}")


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie left for a non-reaping PID 1 counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _port_free(port: int) -> bool:
    """True when redis-server could listen on ``port`` (like it, ignore TIME_WAIT sockets)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
