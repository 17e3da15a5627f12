"""A project-local Mosquitto broker (``var/mosquitto``) and throwaway brokers for tests.

Like :mod:`spatial.redisd`: bound to 127.0.0.1 on a free port, anonymous access on loopback
only, running as the calling user (``user`` is set to it, so root does not drop to
``mosquitto``). The project broker persists sessions and queued QoS 1 messages to disk so a
restarted consumer (or broker) loses nothing; test brokers keep them in memory.
``MQTT_URL`` (``mqtt://host:port``) selects another broker instead.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from spatial.cluster import free_port
from spatial.errors import ConfigurationError
from spatial.settings import PROJECT_ROOT

FIRST_PORT = 51883
LOCAL_DIR = PROJECT_ROOT / "var" / "mosquitto"
LOCAL_URL_FILE = PROJECT_ROOT / "var" / "mqtt_url"
FALLBACK_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def mosquitto_binary() -> str:
    """Path of ``mosquitto`` or a configuration error."""
    found = shutil.which("mosquitto") or next(
        (p for p in FALLBACK_PATHS if os.access(p, os.X_OK)), None
    )
    if not found:
        raise ConfigurationError(
            "mosquitto not found: install Debian's mosquitto (`apt-get install mosquitto`), "
            "or set MQTT_URL."
        )
    return found


def parse_url(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` → (host, port); default port 1883."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    return parts.hostname or "127.0.0.1", parts.port or 1883


def broker_url() -> str:
    """``MQTT_URL``, else the project-local broker's URL, else the machine's loopback broker."""
    env = os.environ.get("MQTT_URL")
    if env:
        return env
    if LOCAL_URL_FILE.exists():
        return LOCAL_URL_FILE.read_text().strip()
    return "mqtt://127.0.0.1:1883"


def answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on the port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def config_text(root: Path, port: int, persistent: bool) -> str:
    """Broker configuration: loopback listener, large queues, optional persistence."""
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        f"user {getpass.getuser()}",
        "max_queued_messages 1000000",
        "max_inflight_messages 1000",
        f"persistence {'true' if persistent else 'false'}",
        f"persistence_location {root.resolve()}/",
        "autosave_interval 10",
        f"pid_file {(root / 'mosquitto.pid').resolve()}",
        f"log_dest file {(root / 'mosquitto.log').resolve()}",
    ]
    return "\n".join(lines) + "\n"


class LocalBroker:
    """A mosquitto whose config, pid, log and persistence files live under ``root``."""

    def __init__(self, root: Path, persistent: bool = True) -> None:
        self.root = Path(root)
        self.persistent = persistent
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        """The broker's pid file."""
        return self.root / "mosquitto.pid"

    @property
    def port_file(self) -> Path:
        """Where the port is remembered between runs."""
        return self.root / "mosquitto.port"

    def url(self) -> str:
        """``mqtt://127.0.0.1:port``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def _pid(self) -> int:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return 0

    def running(self) -> bool:
        """True when this root's broker process runs and answers on its port."""
        pid = self._pid()
        try:
            self.port = int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return False
        return bool(pid) and _alive(pid) and answers(self.port)

    def ensure_running(self, daemon: bool = True, timeout: float = 20.0) -> str:
        """Start the broker unless it runs; return its URL."""
        if self.running():
            return self.url()
        binary = mosquitto_binary()
        self.root.mkdir(parents=True, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        self.port = free_port(FIRST_PORT)
        conf = self.root / "mosquitto.conf"
        conf.write_text(config_text(self.root, self.port, self.persistent))
        command = [binary, "-c", str(conf)]
        if daemon:
            subprocess.run([*command, "-d"], check=True, capture_output=True)
        else:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while not answers(self.port):
            if time.monotonic() > deadline or (self.process and self.process.poll() is not None):
                raise RuntimeError(f"mosquitto did not start; see {self.root / 'mosquitto.log'}")
            time.sleep(0.05)
        self.port_file.write_text(str(self.port))
        return self.url()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the broker (it saves its persistence file on SIGTERM)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=timeout)
            self.process = None
            return
        pid = self._pid()
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
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
