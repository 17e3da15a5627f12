"""The project-local cluster: a second ``db up`` reuses the running server and its port."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg

from spatial.cluster import Cluster


def test_second_start_reuses_running_cluster() -> None:
    root = Path(tempfile.mkdtemp(prefix="cityops-reuse-"))
    root.chmod(0o755)
    first = Cluster(root / "pg")
    try:
        first.ensure_running(fast=True)
        again = Cluster(root / "pg")
        again.ensure_running(fast=True)
        assert again.port == first.port
        with psycopg.connect(again.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        first.destroy()
        root.rmdir()


def test_restart_after_stop_keeps_port() -> None:
    root = Path(tempfile.mkdtemp(prefix="cityops-restart-"))
    root.chmod(0o755)
    cluster = Cluster(root / "pg")
    try:
        cluster.ensure_running(fast=True)
        port = cluster.port
        cluster.stop()
        revived = Cluster(root / "pg")
        revived.ensure_running(fast=True)
        assert revived.port == port and revived.running()
    finally:
        cluster.destroy()
        root.rmdir()
