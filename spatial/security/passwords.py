"""Password storage as salted, iterated SM3 (PBKDF2-HMAC-SM3) and the password policy.

Encoded form: ``$pbkdf2-sm3$i=<iterations>$<salt>$<digest>`` with a 16-byte random salt and a
32-byte digest, both standard base64 without padding. Passwords are NFKC-normalised first, so a
full-width ``Ａ１`` typed by an input method (输入法全角) matches ``A1``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass

from spatial.errors import FieldIssue, UnprocessableInput
from spatial.security.sm3 import pbkdf2_sm3

SCHEME = "pbkdf2-sm3"
SALT_SIZE = 16
DIGEST_SIZE = 32
MAX_ITERATIONS = 10_000_000  # refuse absurd stored counts (a tampered row must not hang us)
_ENCODED = re.compile(
    rf"\${SCHEME}\$i=([1-9][0-9]{{0,7}})\$([A-Za-z0-9+/]{{16,}})\$([A-Za-z0-9+/]{{22,}})"
)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _secret(password: str) -> bytes:
    return unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")


def hash_password(password: str, iterations: int) -> str:
    """Hash ``password`` with a fresh 16-byte salt: ``$pbkdf2-sm3$i=N$salt$digest``."""
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be in [1, {MAX_ITERATIONS}]")
    salt = secrets.token_bytes(SALT_SIZE)
    digest = pbkdf2_sm3(_secret(password), salt, iterations, DIGEST_SIZE)
    return f"${SCHEME}$i={iterations}${_b64(salt)}${_b64(digest)}"


def _parse(encoded: str) -> tuple[int, bytes, bytes] | None:
    match = _ENCODED.fullmatch(encoded) if isinstance(encoded, str) else None
    if not match:
        return None
    try:
        iterations = int(match.group(1))
        salt, digest = _unb64(match.group(2)), _unb64(match.group(3))
    except (ValueError, binascii.Error):
        return None
    if iterations > MAX_ITERATIONS or len(digest) < 16 or len(digest) > 64:
        return None
    return iterations, salt, digest


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches; False for a wrong password or a malformed hash."""
    parsed = _parse(encoded)
    if parsed is None or not isinstance(password, str):
        return False
    iterations, salt, digest = parsed
    candidate = pbkdf2_sm3(_secret(password), salt, iterations, len(digest))
    return hmac.compare_digest(candidate, digest)


def needs_rehash(encoded: str, iterations: int) -> bool:
    """True when the hash is malformed, weaker than ``iterations`` or of another shape.

    Only upgrades: a hash with *more* iterations than configured is kept.
    """
    parsed = _parse(encoded)
    if parsed is None:
        return True
    stored, salt, digest = parsed
    return stored < iterations or len(salt) != SALT_SIZE or len(digest) != DIGEST_SIZE


def _classes(password: str) -> int:
    """How many of upper case, lower case, digits and symbols (anything else) occur."""
    kinds = {
        "upper" if c.isupper() else "lower" if c.islower() else "digit" if c.isdigit() else "sym"
        for c in password
    }
    return len(kinds)


@dataclass(frozen=True)
class PasswordPolicy:
    """Complexity rules (密码复杂度): length, character classes, no user name inside."""

    min_length: int = 10
    min_classes: int = 3

    def problems(self, password: str, username: str = "") -> list[str]:
        """What is wrong with ``password`` for ``username``; empty when acceptable."""
        text = unicodedata.normalize("NFKC", password or "")
        out: list[str] = []
        if len(text) < self.min_length:
            out.append(f"at least {self.min_length} characters (密码长度不足)")
        if _classes(text) < self.min_classes:
            out.append(
                f"at least {self.min_classes} of: upper case, lower case, digits, symbols "
                "(字符类型不足)"
            )
        name = unicodedata.normalize("NFKC", username or "").strip().casefold()
        if len(name) >= 3 and name in text.casefold():
            out.append("must not contain the user name (密码不能包含用户名)")
        return out

    def require(self, password: str, username: str, field: str = "password") -> None:
        """Raise 422 naming ``field`` when ``password`` breaks the policy."""
        problems = self.problems(password, username)
        if problems:
            raise UnprocessableInput(
                "The password is too weak.", [FieldIssue(field, p) for p in problems]
            )
