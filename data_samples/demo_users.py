"""Demo users, one per position, with personal fields encrypted under the installation's keys.

The passwords are public (README) — a demonstration installation only. The administrator's
TOTP secret is public too, so that the second factor can be tried with any authenticator.
Street offices get their street as data scope (丰华/大中街道, 开发区).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import psycopg

from spatial.db import libpq_url
from spatial.security.keystore import KeyStore
from spatial.security.passwords import hash_password
from spatial.security.sm4 import mask_id_number, mask_phone

DEMO_PASSWORD: Final = "Dafeng@2026!"
ADMIN_TOTP_SECRET: Final = "DAFENGCITYOPSADMINDEMOTOTPSECRET"  # base32; demo only
STREET_OFFICES: Final = {"S001": "320904001", "S002": "320904002", "S003": "320904400"}


@dataclass(frozen=True)
class DemoUser:
    """One demo account."""

    username: str
    display_name: str
    position: str
    department: str | None
    staff_code: str | None = None
    inspector: str | None = None  # responsibility grids whose inspector_code this is


DEMO_USERS: Final = (
    DemoUser("inspector", "朱华", "inspector", "T003", "JD0001", inspector="JD0001"),
    DemoUser("acceptor", "陈静", "acceptor", "C001", "ZX0101"),
    DemoUser("dispatcher", "王敏", "dispatcher", "C001", "ZX0102"),
    DemoUser("shiftlead", "李强", "shift_leader", "C001", "ZX0103"),
    DemoUser("handler", "赵军", "handler", "D004", "HW0201"),
    DemoUser("street", "周洋", "handler", "S001", "FH0301"),
    DemoUser("leader", "孙建国", "leader", "D001", "CG0001"),
    DemoUser("enforcer", "吴勇", "enforcer", "D001", "ZF0401"),
    DemoUser("admin", "徐磊", "admin", "C001", "XT0001"),
    DemoUser("auditor", "郭娟", "auditor", "C001", "SJ0001"),
    DemoUser("citizen", "市民张三", "public", None),
)


def _phone(index: int) -> str:
    return f"1381588{index:04d}"


def _id_number(index: int) -> str:
    body = f"32098219850101{index:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


def load_demo_users(url: str, keys: KeyStore, iterations: int) -> int:
    """Replace the demo users (idempotent); returns how many were written."""
    encoded = hash_password(DEMO_PASSWORD, iterations)
    ring = keys.keyring
    with psycopg.connect(libpq_url(url)) as conn:
        for code, street in STREET_OFFICES.items():
            conn.execute(
                "UPDATE city.departments SET street_code = %s WHERE code = %s", (street, code)
            )
        conn.execute(
            "DELETE FROM city.users WHERE username = ANY(%s)", ([u.username for u in DEMO_USERS],)
        )
        for i, user in enumerate(DEMO_USERS, start=1):
            phone, id_number = _phone(i), _id_number(i)
            row = conn.execute(
                "INSERT INTO city.users (username, display_name, staff_code, department_code,"
                " password_hash, phone_enc, phone_mask, phone_bidx, id_number_enc,"
                " id_number_mask, id_number_bidx, totp_secret_enc, totp_enabled)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    user.username,
                    user.display_name,
                    user.staff_code,
                    user.department,
                    encoded,
                    ring.encrypt(phone),
                    mask_phone(phone),
                    ring.blind_index(phone),
                    ring.encrypt(id_number),
                    mask_id_number(id_number),
                    ring.blind_index(id_number),
                    ring.encrypt(ADMIN_TOTP_SECRET) if user.position == "admin" else None,
                    user.position == "admin",
                ),
            ).fetchone()
            assert row is not None  # noqa: S101 - INSERT … RETURNING
            conn.execute(
                "INSERT INTO city.user_positions (user_id, position_code) VALUES (%s, %s)",
                (row[0], user.position),
            )
            if user.inspector:
                conn.execute(
                    "INSERT INTO city.inspector_grids (user_id, grid_code)"
                    " SELECT %s, code FROM city.responsibility_grids WHERE inspector_code = %s",
                    (row[0], user.inspector),
                )
    return len(DEMO_USERS)
