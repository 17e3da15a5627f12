"""The SM2 login envelope (登录密码 SM2 加密传输): clients seal, the server opens.

A sealed password is ``"sm2:" + hex(SM2-encrypt(JSON))`` where the JSON is
``{"p": password, "t": unix_ms, "n": 32-hex random nonce}`` (compact, keys in this order,
non-ASCII kept as UTF-8: what ``JSON.stringify`` gives in ``web/static/js/sm2-login.js``).
The ciphertext is C1C3C2 hex without the ``04`` prefix (sm-crypto's ``doEncrypt(…, 1)``).

The server rejects envelopes older than ``max_age_s`` or more than :data:`MAX_SKEW_S` in the
future; the caller rejects a nonce it has seen before (replay, 重放).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass

from spatial.errors import FieldIssue, InvalidInput
from spatial.security import sm2
from spatial.security.sm4 import CryptoError

PREFIX = "sm2:"
MAX_SKEW_S = 60
MAX_SEALED_CHARS = 8192  # a password of a few hundred characters seals to ~1 kB of hex
_MIN_CIPHER_HEX = 2 * (64 + 32 + len('{"p":"","t":0,"n":""}') + 32)
_SEALED = re.compile(rf"{PREFIX}(?:[0-9a-fA-F]{{2}}){{{_MIN_CIPHER_HEX // 2},}}")
_NONCE = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class OpenedPassword:
    """The contents of an opened envelope."""

    password: str
    nonce: str  # 32 lowercase hex: remember it for ``max_age_s`` to refuse replays
    issued_ms: int  # the client's clock, Unix milliseconds


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def envelope_json(password: str, issued_ms: int, nonce: str) -> str:
    """The plaintext of an envelope, byte for byte as the browser helper builds it."""
    return json.dumps(
        {"p": password, "t": issued_ms, "n": nonce}, ensure_ascii=False, separators=(",", ":")
    )


def seal_password(public_hex: str, password: str, now_ms: int | None = None) -> str:
    """Seal ``password`` for the server's SM2 public key: ``"sm2:" + hex``."""
    issued = _now_ms() if now_ms is None else now_ms
    plain = envelope_json(password, issued, secrets.token_hex(16)).encode("utf-8")
    return PREFIX + sm2.encrypt(public_hex, plain)


def is_sealed(value: object) -> bool:
    """True when ``value`` looks like a sealed envelope (not a plaintext password)."""
    return isinstance(value, str) and bool(_SEALED.fullmatch(value))


def _refuse(detail: str, message: str) -> InvalidInput:
    return InvalidInput(detail, [FieldIssue("password", message)])


def open_password(
    private_hex: str, sealed: str, max_age_s: int, now_ms: int | None = None
) -> OpenedPassword:
    """Decrypt and check an envelope; ``InvalidInput`` (field ``password``) when unusable."""
    if not is_sealed(sealed) or len(sealed) > MAX_SEALED_CHARS:
        raise _refuse("The password is not an SM2 envelope.", "not sealed (密码未加密)")
    try:
        plain = sm2.decrypt(private_hex, sealed[len(PREFIX) :])
    except CryptoError as exc:
        raise _refuse(
            "The password envelope cannot be decrypted; reload the login page for the current "
            "server key.",
            "cannot be decrypted (密码密文无法解密)",
        ) from exc
    try:
        doc = json.loads(plain.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError, JSONDecodeError, [[[[…
        doc = None
    opened = _parse(doc)
    now = _now_ms() if now_ms is None else now_ms
    if now - opened.issued_ms > max_age_s * 1000:
        raise _refuse("The password envelope has expired.", "envelope expired (密码密文已过期)")
    if opened.issued_ms - now > MAX_SKEW_S * 1000:
        raise _refuse(
            "The password envelope is dated in the future; check the client's clock.",
            "client clock skew too large (客户端时间偏差过大)",
        )
    return opened


def _parse(doc: object) -> OpenedPassword:
    if isinstance(doc, dict) and set(doc) == {"p", "t", "n"}:
        password, issued, nonce = doc["p"], doc["t"], doc["n"]
        if (
            isinstance(password, str)
            and isinstance(issued, int)
            and not isinstance(issued, bool)
            and isinstance(nonce, str)
            and _NONCE.fullmatch(nonce.lower())
        ):
            return OpenedPassword(password, nonce.lower(), issued)
    raise _refuse("The password envelope is malformed.", "malformed envelope (密码密文格式错误)")
