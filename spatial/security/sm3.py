"""SM3 hash (GB/T 32905-2016, 杂凑算法), HMAC-SM3 and PBKDF2-HMAC-SM3.

OpenSSL's ``sm3`` (through :mod:`hashlib`) is used when the linked OpenSSL has it; otherwise
gmssl's pure-Python SM3 takes over (correct, but about a thousand times slower). The choice is
made once, at import.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from gmssl import sm3 as _gm_sm3

DIGEST_SIZE = 32
BLOCK_SIZE = 64


def _detect_openssl_sm3() -> bool:
    try:
        return hashlib.new("sm3", b"abc").hexdigest().startswith("66c7f0f4")
    except ValueError:
        return False


#: True when hashlib/OpenSSL provides SM3; tests flip it to exercise the fallback.
OPENSSL_SM3 = _detect_openssl_sm3()


class GmsslSm3:
    """A hashlib-compatible SM3 object backed by gmssl (the pure-Python fallback)."""

    name = "sm3"
    digest_size = DIGEST_SIZE
    block_size = BLOCK_SIZE

    def __init__(self, data: bytes = b"") -> None:
        self._buf = bytearray(data)

    def update(self, data: bytes) -> None:
        """Append ``data``."""
        self._buf += data

    def copy(self) -> GmsslSm3:
        """An independent copy of the running state."""
        return GmsslSm3(bytes(self._buf))

    def digest(self) -> bytes:
        """The 32-byte digest of everything so far."""
        return bytes.fromhex(_gm_sm3.sm3_hash(list(self._buf)))

    def hexdigest(self) -> str:
        """The digest as lowercase hex."""
        return self.digest().hex()


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)


def _new(data: bytes = b"") -> Any:
    return hashlib.new("sm3", data) if OPENSSL_SM3 else GmsslSm3(data)


def sm3(data: bytes | str) -> bytes:
    """The SM3 digest (32 bytes) of ``data`` (a ``str`` is hashed as UTF-8)."""
    return _new(_as_bytes(data)).digest()


def sm3_hex(data: bytes | str) -> str:
    """The SM3 digest of ``data`` as 64 lowercase hex characters."""
    return sm3(data).hex()


def hmac_sm3(key: bytes, msg: bytes) -> bytes:
    """HMAC-SM3 (RFC 2104 with SM3) of ``msg`` under ``key``."""
    if OPENSSL_SM3:
        return hmac.digest(key, msg, "sm3")
    return hmac.new(key, msg, GmsslSm3).digest()


def pbkdf2_sm3(password: bytes, salt: bytes, iterations: int, length: int = 32) -> bytes:
    """PBKDF2 (RFC 8018) with HMAC-SM3 as the PRF."""
    if iterations < 1 or length < 1:
        raise ValueError("iterations and length must be positive")
    if OPENSSL_SM3:
        return hashlib.pbkdf2_hmac("sm3", password, salt, iterations, length)
    return _pbkdf2_fallback(password, salt, iterations, length)


def _pbkdf2_fallback(password: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    """RFC 8018 PBKDF2 over :class:`GmsslSm3`, for an OpenSSL without SM3."""
    keyed = hmac.new(password, None, GmsslSm3)
    out = bytearray()
    block = 1
    while len(out) < length:
        mac = keyed.copy()
        mac.update(salt + block.to_bytes(4, "big"))
        u = mac.digest()
        acc = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            mac = keyed.copy()
            mac.update(u)
            u = mac.digest()
            acc ^= int.from_bytes(u, "big")
        out += acc.to_bytes(DIGEST_SIZE, "big")
        block += 1
    return bytes(out[:length])
