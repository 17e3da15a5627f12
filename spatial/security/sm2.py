"""SM2 public-key encryption (GM/T 0003.4 / GB/T 32918.4, 公钥加密算法), C1C3C2 hex.

The ciphertext format is that of npm ``sm-crypto`` ``sm2.doEncrypt(msg, publicKey, 1)``:
``x1 ‖ y1 ‖ C3 ‖ C2`` in lowercase hex, C1 *without* the ``04`` prefix (a leading ``04`` is
accepted on decryption). Public keys are ``x ‖ y`` hex (128 characters, no ``04``).

gmssl's :class:`~gmssl.sm2.CryptSM2` (mode 1, C1C3C2) provides the curve arithmetic, but its
``encrypt``/``decrypt`` are not used as they are: its ephemeral ``k`` comes from :mod:`random`
(not a CSPRNG), its decryption never checks C3 (a wrong key or a tampered ciphertext yields
garbage instead of an error), it does not check that C1 is on the curve (invalid-curve attacks),
and its constructor's ``public_key.lstrip("04")`` corrupts keys whose ``x`` starts with ``0``/``4``.
So the scalar ``k`` comes from :mod:`secrets`, KDF and C3 use :func:`spatial.security.sm3.sm3`,
and decryption validates C1 and compares C3 in constant time. One scalar multiplication takes
about 2 ms here, so a decryption costs about 2 ms and an encryption about 4 ms.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from gmssl.sm2 import CryptSM2, default_ecc_table

from spatial.security.sm3 import sm3
from spatial.security.sm4 import CryptoError

P = int(default_ecc_table["p"], 16)
A = int(default_ecc_table["a"], 16)
B = int(default_ecc_table["b"], 16)
N = int(default_ecc_table["n"], 16)
G = default_ecc_table["g"]  # x ‖ y, 128 hex
COORD_HEX = 64
C3_HEX = 64
_HEX = re.compile(r"[0-9a-fA-F]*")

# Only the (stateless) curve arithmetic of this object is used; see the module docstring.
_CURVE = CryptSM2(private_key="", public_key="", ecc_table=default_ecc_table, mode=1)


def _mul(k: int, point_hex: str) -> str:
    """``[k]P`` as 128 hex (affine ``x ‖ y``) with gmssl's Jacobian double-and-add."""
    out = _CURVE._kg(k, point_hex)
    if not out or len(out) != 2 * COORD_HEX:
        raise CryptoError("SM2 point multiplication gave the point at infinity")
    return out


def _on_curve(point_hex: str) -> bool:
    """True when ``x ‖ y`` hex is a finite point of the SM2 recommended curve."""
    if len(point_hex) != 2 * COORD_HEX or not _HEX.fullmatch(point_hex):
        return False
    x, y = int(point_hex[:COORD_HEX], 16), int(point_hex[COORD_HEX:], 16)
    if not (0 <= x < P and 0 <= y < P) or (x == 0 and y == 0):
        return False
    return (y * y - (x * x * x + A * x + B)) % P == 0


def _kdf(z: bytes, klen: int) -> bytes:
    """GM/T 0003.4 KDF with SM3: ``SM3(z ‖ ct)`` for ct = 1, 2, ... concatenated."""
    out = bytearray()
    ct = 1
    while len(out) < klen:
        out += sm3(z + ct.to_bytes(4, "big"))
        ct += 1
    return bytes(out[:klen])


def normalise_public_key(public_hex: str) -> str:
    """``x ‖ y`` lowercase hex from 128 hex or 130 hex with a ``04`` prefix; ``ValueError``."""
    key = (public_hex or "").strip().lower()
    if len(key) == 2 + 2 * COORD_HEX and key.startswith("04"):
        key = key[2:]
    if not _on_curve(key):
        raise ValueError("not an SM2 public key (uncompressed x‖y on the SM2 curve)")
    return key


def _private_int(private_hex: str) -> int:
    try:
        d = int(private_hex.strip(), 16)
    except (AttributeError, ValueError) as exc:
        raise CryptoError("malformed SM2 private key") from exc
    if not 1 <= d <= N - 2:
        raise CryptoError("SM2 private key out of range [1, n-2]")
    return d


@dataclass(frozen=True)
class Sm2KeyPair:
    """An SM2 key pair: 64-hex private key ``d`` and 128-hex public key ``x ‖ y`` (no ``04``)."""

    private_hex: str
    public_hex: str

    @classmethod
    def generate(cls) -> Sm2KeyPair:
        """A new key pair with ``d`` uniformly random in [1, n-2] (from :mod:`secrets`)."""
        return cls.from_private(f"{secrets.randbelow(N - 2) + 1:064x}")

    @classmethod
    def from_private(cls, private_hex: str) -> Sm2KeyPair:
        """The key pair of ``d`` (public key ``[d]G``)."""
        d = _private_int(private_hex)
        return cls(f"{d:064x}", _mul(d, G))

    def matches(self) -> bool:
        """True when ``public_hex`` is ``[d]G`` for ``private_hex``."""
        try:
            return Sm2KeyPair.from_private(self.private_hex).public_hex == self.public_hex.lower()
        except CryptoError:
            return False

    @property
    def public_hex_04(self) -> str:
        """The public key with the ``04`` prefix (sm-crypto, BouncyCastle, OpenSSL)."""
        return "04" + self.public_hex


def encrypt(public_hex: str, data: bytes) -> str:
    """SM2-encrypt ``data`` for ``public_hex``: hex ``C1 ‖ C3 ‖ C2``, C1 without ``04``."""
    key = normalise_public_key(public_hex)
    if not data:
        raise ValueError("SM2 cannot encrypt an empty message")
    while True:
        out = _encrypt_with_k(key, data, secrets.randbelow(N - 1) + 1)
        if out is not None:
            return out


def _encrypt_with_k(public_hex: str, data: bytes, k: int) -> str | None:
    """One encryption attempt with ephemeral ``k`` (None when the KDF output is all zero)."""
    c1 = _mul(k, G)
    xy = bytes.fromhex(_mul(k, public_hex))
    t = _kdf(xy, len(data))
    if not any(t):
        return None
    c2 = bytes(m ^ b for m, b in zip(data, t, strict=True))
    c3 = sm3(xy[:32] + data + xy[32:])
    return c1 + c3.hex() + c2.hex()


def decrypt(private_hex: str, cipher_hex: str) -> bytes:
    """Decrypt hex ``C1 ‖ C3 ‖ C2`` (optionally ``04``-prefixed); ``CryptoError`` on any fault."""
    d = _private_int(private_hex)
    text = cipher_hex.strip() if isinstance(cipher_hex, str) else ""
    if len(text) % 2 or not _HEX.fullmatch(text):
        raise CryptoError("SM2 ciphertext is not hex (密文格式错误)")
    candidates = [text[2:]] if text.startswith("04") else []
    candidates.append(text)  # without prefix; x1 itself may start with "04"
    for body in candidates:
        plain = _decrypt_body(d, body.lower())
        if plain is not None:
            return plain
    raise CryptoError("SM2 decryption failed (SM2 解密失败)")


def _decrypt_body(d: int, body: str) -> bytes | None:
    """Plaintext of ``x1 ‖ y1 ‖ C3 ‖ C2`` hex, or None when C1 or C3 does not check out."""
    c1_end = 2 * COORD_HEX
    if len(body) < c1_end + C3_HEX + 2:
        return None
    c1, c3, c2 = (
        body[:c1_end],
        body[c1_end : c1_end + C3_HEX],
        bytes.fromhex(body[c1_end + C3_HEX :]),
    )
    if not _on_curve(c1):  # B1: C1 must be on the curve (cofactor 1: then [h]C1 is finite)
        return None
    xy = bytes.fromhex(_mul(d, c1))
    t = _kdf(xy, len(c2))
    if not any(t):
        return None
    plain = bytes(c ^ b for c, b in zip(c2, t, strict=True))
    if not hmac.compare_digest(sm3(xy[:32] + plain + xy[32:]), bytes.fromhex(c3)):
        return None
    return plain
