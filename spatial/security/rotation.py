"""SM4 key rotation: re-encrypt every stored ``*_enc`` value under the keyring's primary key."""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg import sql

from spatial.db import libpq_url
from spatial.security.sm4 import Keyring

ENCRYPTED: Final = {
    "users": ("phone_enc", "id_number_enc", "totp_secret_enc"),
    "cases": ("reporter_name_enc", "reporter_phone_enc"),
    "notifications": ("recipient_phone_enc",),
}


def reencrypt_all(url: str, keyring: Keyring) -> int:
    """Re-encrypt values not under the primary key, in one transaction; returns the count."""
    count = 0
    with psycopg.connect(libpq_url(url)) as conn:
        for table, columns in ENCRYPTED.items():
            for column in columns:
                ident = sql.Identifier("city", table)
                col = sql.Identifier(column)
                rows = conn.execute(
                    sql.SQL("SELECT ctid::text, {} FROM {} WHERE {} IS NOT NULL FOR UPDATE").format(
                        col, ident, col
                    )
                ).fetchall()
                for ctid, value in rows:
                    if keyring.needs_reencrypt(value):
                        conn.execute(
                            sql.SQL("UPDATE {} SET {} = %s WHERE ctid = %s::tid").format(
                                ident, col
                            ),
                            (keyring.encrypt(keyring.decrypt(value)), ctid),
                        )
                        count += 1
    return count
