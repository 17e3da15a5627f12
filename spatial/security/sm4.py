"""SM4 (GB/T 32907-2016, 分组密码) field encryption at rest, blind indexes and display masks.

A :class:`Keyring` holds the SM4 data keys (``kid -> 16 bytes``), which one is primary, and the
key of the blind index. Keys live in a JSON file outside the database (``key_dir``); rotation
adds a new primary key and keeps the old ones so that old ciphertexts still decrypt.

Ciphertexts are text: ``sm4gcm$<kid>$<base64url(nonce ‖ ciphertext ‖ tag)>`` (SM4-GCM, 12-byte
random nonce, 16-byte tag; the caller's ``aad`` is authenticated but not stored).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from spatial.errors import ConfigurationError
from spatial.security.sm3 import hmac_sm3

PREFIX = "sm4gcm"
KEY_SIZE = 16
INDEX_KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
_KID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SPACES = re.compile(r"\s+")


class CryptoError(ValueError):
    """A ciphertext cannot be decrypted: unknown key, malformed, or tampered with (密文无效)."""


def sm4_cipher(key: bytes, mode: modes.Mode) -> Cipher:
    """SM4 in ``mode`` from ``cryptography`` (OpenSSL): the one SM4 primitive used here."""
    return Cipher(algorithms.SM4(key), mode)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _new_kid(existing: dict[str, bytes]) -> str:
    while True:
        kid = f"k{time.strftime('%Y%m%d')}-{secrets.token_hex(2)}"
        if kid not in existing:
            return kid


def normalise_for_index(value: str) -> str:
    """NFKC, all white space removed, case-folded (so ``x``/``X`` in ID numbers match)."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", value)).casefold()


@dataclass
class Keyring:
    """SM4 data keys by kid, the primary kid (used to encrypt) and the blind-index key."""

    keys: dict[str, bytes]
    primary: str
    index_key: bytes
    created: dict[str, str] = field(default_factory=dict)  # kid -> ISO time, informational

    def __post_init__(self) -> None:
        """Refuse key material of the wrong shape."""
        if self.primary not in self.keys:
            raise ValueError(f"primary key {self.primary!r} is not in the keyring")
        for kid, key in self.keys.items():
            if not _KID.fullmatch(kid) or len(key) != KEY_SIZE:
                raise ValueError(f"bad SM4 key {kid!r}: kids are [A-Za-z0-9_.-], keys 16 bytes")
        if len(self.index_key) != INDEX_KEY_SIZE:
            raise ValueError("the blind-index key must be 32 bytes")

    @classmethod
    def generate(cls) -> Keyring:
        """A fresh keyring with one random data key and a random index key."""
        kid = _new_kid({})
        return cls(
            {kid: secrets.token_bytes(KEY_SIZE)}, kid, secrets.token_bytes(32), {kid: _now()}
        )

    # -- persistence -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON document stored in ``sm4-keyring.json``."""
        return {
            "version": 1,
            "algorithm": "SM4-GCM",
            "primary": self.primary,
            "keys": {kid: _b64url(key) for kid, key in self.keys.items()},
            "created": self.created,
            "index_key": _b64url(self.index_key),
        }

    @classmethod
    def from_json(cls, doc: Any) -> Keyring:
        """Parse :meth:`to_json` output; ``ValueError`` when malformed."""
        try:
            keys = {str(k): _unb64url(v) for k, v in doc["keys"].items()}
            created = {str(k): str(v) for k, v in dict(doc.get("created") or {}).items()}
            return cls(keys, str(doc["primary"]), _unb64url(doc["index_key"]), created)
        except (KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise ValueError(f"malformed keyring: {exc!r}") from exc

    @classmethod
    def load(cls, path: Path) -> Keyring:
        """Read a keyring file; ``ConfigurationError`` when it is malformed."""
        path = Path(path)
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as exc:  # includes JSONDecodeError
            raise ConfigurationError(f"SM4 keyring {path} is unreadable: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write atomically with mode 0600."""
        write_private(Path(path), json.dumps(self.to_json(), indent=2) + "\n")

    # -- keys --------------------------------------------------------------------------------

    def rotate(self) -> str:
        """Add a new primary key (old keys stay for decryption); return its kid."""
        kid = _new_kid(self.keys)
        self.keys[kid] = secrets.token_bytes(KEY_SIZE)
        self.created[kid] = _now()
        self.primary = kid
        return kid

    # -- encryption --------------------------------------------------------------------------

    def encrypt(self, plaintext: str, aad: bytes = b"") -> str:
        """SM4-GCM under the primary key: ``sm4gcm$<kid>$<base64url(nonce‖ct‖tag)>``."""
        nonce = secrets.token_bytes(NONCE_SIZE)
        enc = sm4_cipher(self.keys[self.primary], modes.GCM(nonce)).encryptor()
        if aad:
            enc.authenticate_additional_data(aad)
        body = enc.update(plaintext.encode("utf-8")) + enc.finalize()
        return f"{PREFIX}${self.primary}${_b64url(nonce + body + enc.tag)}"

    def decrypt(self, token: str, aad: bytes = b"") -> str:
        """Decrypt :meth:`encrypt` output; ``CryptoError`` on unknown kid or tampering."""
        kid, raw = _split(token)
        key = self.keys.get(kid)
        if key is None:
            raise CryptoError(f"unknown SM4 key id {kid!r} (密钥不存在)")
        nonce, body, tag = raw[:NONCE_SIZE], raw[NONCE_SIZE:-TAG_SIZE], raw[-TAG_SIZE:]
        dec = sm4_cipher(key, modes.GCM(nonce, tag)).decryptor()
        if aad:
            dec.authenticate_additional_data(aad)
        try:
            plain = dec.update(body) + dec.finalize()
            return plain.decode("utf-8")
        except (InvalidTag, UnicodeDecodeError) as exc:
            raise CryptoError("ciphertext failed authentication (密文校验失败)") from exc

    def needs_reencrypt(self, token: str) -> bool:
        """True when ``token`` is not under the primary key (re-encrypt after rotation)."""
        return kid_of(token) != self.primary

    def kid_of(self, token: str) -> str:
        """The key id of a ciphertext."""
        return kid_of(token)

    def blind_index(self, value: str) -> str:
        """Hex HMAC-SM3 of the normalised value: equality search on encrypted fields (盲索引)."""
        return hmac_sm3(self.index_key, normalise_for_index(value).encode("utf-8")).hex()


def _split(token: str) -> tuple[str, bytes]:
    if not isinstance(token, str):
        raise CryptoError("ciphertext must be text")
    parts = token.split("$")
    if len(parts) != 3 or parts[0] != PREFIX or not _KID.fullmatch(parts[1]):
        raise CryptoError("not an SM4-GCM ciphertext (密文格式错误)")
    try:
        raw = _unb64url(parts[2])
    except (ValueError, binascii.Error) as exc:
        raise CryptoError("not an SM4-GCM ciphertext (密文格式错误)") from exc
    if len(raw) < NONCE_SIZE + TAG_SIZE:
        raise CryptoError("SM4-GCM ciphertext too short (密文格式错误)")
    return parts[1], raw


def kid_of(token: str) -> str:
    """The key id of an ``sm4gcm$kid$…`` ciphertext; ``CryptoError`` when malformed."""
    return _split(token)[0]


def is_encrypted(value: object) -> bool:
    """True for text that looks like :meth:`Keyring.encrypt` output."""
    return isinstance(value, str) and value.startswith(PREFIX + "$") and value.count("$") == 2


def write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, readable by the owner only (0600)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# -- display masks (脱敏) ------------------------------------------------------------------------


def _mask(value: str | None, head: int, tail: int) -> str:
    """Keep ``head`` and ``tail`` characters, star the rest; short values keep less."""
    text = _SPACES.sub("", value or "")
    n = len(text)
    if n <= head + tail:  # too short to show both ends: show at most a quarter at each end
        head = tail = n // 4
    return text[:head] + "*" * (n - head - tail) + text[n - tail :]


def mask_phone(value: str | None) -> str:
    """``13812345678`` -> ``138****5678`` (手机号脱敏)."""
    return _mask(value, 3, 4)


def mask_id_number(value: str | None) -> str:
    """``320982199001011234`` -> ``320982********1234`` (身份证号脱敏)."""
    return _mask(value, 6, 4)


def mask_name(value: str | None) -> str:
    """``张三丰`` -> ``张**``, ``张三`` -> ``张*``, ``张`` -> ``*`` (姓名脱敏)."""
    text = (value or "").strip()
    if len(text) <= 1:
        return "*" * len(text)
    return text[0] + "*" * (len(text) - 1)
