"""Access tokens: JWTs signed with HMAC-SM3 (``alg: HSM3``), nothing else accepted.

PyJWT does the encoding and the claim checks (exp, iat, nbf, aud, iss, required claims); the
only algorithm registered on our private ``PyJWS`` is HMAC-SM3, so ``alg: none``, HS256 and
RS256 tokens (the HS/RS confusion attack included) are refused before any key is used.
Refresh tokens are opaque random strings stored as SM3 digests (see ``accounts``).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

import jwt
from jwt.algorithms import HMACAlgorithm

from spatial.errors import InvalidToken
from spatial.security.sm3 import hmac_sm3, sm3_hex

ALGORITHM: Final = "HSM3"
ISSUER: Final = "cityops"
AUDIENCE: Final = "cityops-api"
LEEWAY_S: Final = 30


class HmacSm3(HMACAlgorithm):
    """HMAC with SM3 (GB/T 32905) for JWS."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)  # hash_alg unused: sign/verify are ours

    def sign(self, msg: bytes, key: bytes) -> bytes:
        """HMAC-SM3 of the signing input."""
        return hmac_sm3(key, msg)

    def verify(self, msg: bytes, key: bytes, sig: bytes) -> bool:
        """Constant-time comparison."""
        return hmac.compare_digest(sig, hmac_sm3(key, msg))


def _codec() -> jwt.PyJWT:
    codec = jwt.PyJWT()
    jws = jwt.PyJWS(algorithms=[])
    jws.register_algorithm(ALGORITHM, HmacSm3())
    codec._jws = jws  # PyJWT has no public per-instance algorithm set
    return codec


_CODEC: Final = _codec()


@dataclass(frozen=True)
class AccessClaims:
    """What a valid access token says."""

    user_id: int
    family: str
    jti: str
    expires_at: int


def issue_access(
    key: bytes, user_id: int, family: str, ttl_s: int, now: float | None = None
) -> str:
    """A signed access token for ``user_id`` in refresh-token family ``family``."""
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "fam": family,
        "typ": "access",
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_hex(8),
    }
    return _CODEC.encode(claims, key, algorithm=ALGORITHM, headers={"typ": "JWT"})


def decode_access(key: bytes, token: str) -> AccessClaims:
    """Verify signature, algorithm and claims; ``InvalidToken`` with the reason otherwise."""
    try:
        claims: dict[str, Any] = _CODEC.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iat", "sub", "jti", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The access token has expired; refresh it or log in again.") from None
    except jwt.InvalidAlgorithmError:
        raise InvalidToken(f"Token algorithm not accepted (only {ALGORITHM}).") from None
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"Invalid access token: {exc}.") from None
    if claims.get("typ") != "access" or not str(claims["sub"]).isdigit():
        raise InvalidToken("Not an access token.")
    return AccessClaims(
        int(claims["sub"]), str(claims.get("fam", "")), claims["jti"], claims["exp"]
    )


def new_refresh_token() -> tuple[str, str]:
    """(token for the client, SM3 digest to store)."""
    token = "rt_" + secrets.token_urlsafe(32)
    return token, sm3_hex(token.encode())


def refresh_digest(token: str) -> str:
    """The stored form of a refresh token."""
    return sm3_hex(token.encode())
