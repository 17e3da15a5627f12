"""Key material outside the database (密钥管理): SM2 login key pair, SM4 keyring, token key.

``key_dir`` (``CITY_SECURITY_KEY_DIR``, mode 0700) holds three files, each mode 0600:

* ``sm2.json`` — the SM2 key pair whose public key clients use to seal login passwords;
* ``sm4-keyring.json`` — SM4 data keys (rotated with ``cityops keys rotate-sm4``) and the
  blind-index key;
* ``token.key`` — 32 random bytes (hex) for HMAC-SM3 signed access tokens.

``cityops keys init`` (:meth:`KeyStore.ensure`) creates whatever is missing and never
overwrites; the server only loads (:meth:`KeyStore.load`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from spatial.errors import ConfigurationError
from spatial.security.sm2 import Sm2KeyPair
from spatial.security.sm4 import Keyring, write_private

SM2_FILE = "sm2.json"
KEYRING_FILE = "sm4-keyring.json"
TOKEN_FILE = "token.key"
LOCK_FILE = ".lock"
TOKEN_KEY_SIZE = 32
_INIT_HINT = "run `cityops keys init` (or set CITY_SECURITY_KEY_DIR)"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyStore:
    """All server key material, loaded from ``key_dir``."""

    sm2: Sm2KeyPair
    keyring: Keyring
    token_key: bytes
    key_dir: Path

    @classmethod
    def ensure(cls, key_dir: Path) -> KeyStore:
        """Create the directory (0700) and any missing key file (0600), then load all."""
        key_dir = Path(key_dir)
        if not key_dir.exists():
            key_dir.mkdir(parents=True, mode=0o700)
            key_dir.chmod(0o700)  # mkdir's mode is filtered by the umask
        with _locked(key_dir):
            if not (key_dir / SM2_FILE).exists():
                write_private(key_dir / SM2_FILE, _sm2_json(Sm2KeyPair.generate()))
            if not (key_dir / KEYRING_FILE).exists():
                Keyring.generate().save(key_dir / KEYRING_FILE)
            if not (key_dir / TOKEN_FILE).exists():
                write_private(key_dir / TOKEN_FILE, secrets.token_hex(TOKEN_KEY_SIZE) + "\n")
        return cls.load(key_dir)

    @classmethod
    def load(cls, key_dir: Path) -> KeyStore:
        """Load all three files; ``ConfigurationError`` naming a missing or broken one."""
        key_dir = Path(key_dir)
        for name in (SM2_FILE, KEYRING_FILE, TOKEN_FILE):
            if not (key_dir / name).is_file():
                raise ConfigurationError(f"missing key file {key_dir / name}: {_INIT_HINT}")
        _warn_if_exposed(key_dir)
        return cls(
            sm2=_load_sm2(key_dir / SM2_FILE),
            keyring=Keyring.load(key_dir / KEYRING_FILE),
            token_key=_load_token_key(key_dir / TOKEN_FILE),
            key_dir=key_dir,
        )


def rotate_sm4(key_dir: Path) -> str:
    """Add a new primary SM4 key to the keyring in ``key_dir``; return its kid.

    Old keys stay, so existing ciphertexts still decrypt. Running servers keep their loaded
    keyring until restarted (they cannot decrypt values written under the new key until then).
    """
    path = Path(key_dir) / KEYRING_FILE
    if not path.is_file():
        raise ConfigurationError(f"missing key file {path}: {_INIT_HINT}")
    with _locked(Path(key_dir)):
        keyring = Keyring.load(path)
        kid = keyring.rotate()
        keyring.save(path)
    return kid


@contextmanager
def _locked(key_dir: Path) -> Iterator[None]:
    """An exclusive lock on ``key_dir/.lock`` (several workers may start at once)."""
    fd = os.open(key_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _sm2_json(pair: Sm2KeyPair) -> str:
    doc = {
        "version": 1,
        "algorithm": "SM2 (GB/T 32918, curve sm2p256v1)",
        "private_hex": pair.private_hex,
        "public_hex": pair.public_hex,
    }
    return json.dumps(doc, indent=2) + "\n"


def _load_sm2(path: Path) -> Sm2KeyPair:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        pair = Sm2KeyPair(str(doc["private_hex"]).lower(), str(doc["public_hex"]).lower())
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"SM2 key file {path} is unreadable: {exc!r}") from exc
    if not pair.matches():
        raise ConfigurationError(f"SM2 key file {path}: the public key does not match")
    return pair


def _load_token_key(path: Path) -> bytes:
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if not re.fullmatch(rf"[0-9a-fA-F]{{{2 * TOKEN_KEY_SIZE}}}", text):
        raise ConfigurationError(f"token key file {path} must hold {TOKEN_KEY_SIZE} bytes as hex")
    return bytes.fromhex(text)


def _warn_if_exposed(key_dir: Path) -> None:
    """Log (not fail: mounted secrets are often 0644) when group/others can read keys."""
    for path in (key_dir, key_dir / SM2_FILE, key_dir / KEYRING_FILE, key_dir / TOKEN_FILE):
        try:
            exposed = path.stat().st_mode & 0o077
        except OSError:
            continue
        if exposed:
            log.warning("key material %s is accessible to other users; chmod go-rwx it", path)
