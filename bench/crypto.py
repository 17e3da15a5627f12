"""Cost of the 商用密码 primitives on the log-in and field paths, against their usual peers.

Measured in one run on this machine: PBKDF2-HMAC-SM3 (password storage) vs PBKDF2-HMAC-SHA256
at the same iteration count, SM4-GCM vs AES-128-GCM field encryption, and the SM2 log-in
envelope (client seal, server open). Prints milliseconds per operation and the ratios.

    .venv/bin/python bench/crypto.py [--iterations 60000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from spatial.security.login_envelope import open_password, seal_password
from spatial.security.passwords import hash_password, verify_password
from spatial.security.sm2 import Sm2KeyPair
from spatial.security.sm4 import Keyring


def per_op_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of ``fn`` over ``repeat`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[len(times) // 2]


def main() -> None:
    """Run and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    n, repeat = args.iterations, args.repeat

    stored = hash_password("Dafeng@2026!", n)
    sm3 = per_op_ms(lambda: verify_password("Dafeng@2026!", stored), repeat)
    sha = per_op_ms(lambda: hashlib.pbkdf2_hmac("sha256", b"Dafeng@2026!", b"s" * 16, n), repeat)

    ring, aes = Keyring.generate(), AESGCM(AESGCM.generate_key(bit_length=128))
    text = "13815880001"
    sm4 = per_op_ms(lambda: ring.decrypt(ring.encrypt(text)), repeat * 50)

    def aes_roundtrip() -> bytes:
        nonce = os.urandom(12)
        return aes.decrypt(nonce, aes.encrypt(nonce, text.encode(), b""), b"")

    aes_ms = per_op_ms(aes_roundtrip, repeat * 50)

    pair = Sm2KeyPair.generate()
    seal = per_op_ms(lambda: seal_password(pair.public_hex, "Dafeng@2026!"), repeat)
    sealed = seal_password(pair.public_hex, "Dafeng@2026!")
    opened = per_op_ms(lambda: open_password(pair.private_hex, sealed, 300), repeat)

    print(f"{'operation':<44} {'ms/op':>9}")
    print(f"{f'PBKDF2-HMAC-SM3 verify, {n:,} iterations':<44} {sm3:9.2f}")
    print(f"{f'PBKDF2-HMAC-SHA256, {n:,} iterations':<44} {sha:9.2f}")
    print(f"{'SM4-GCM encrypt+decrypt (phone number)':<44} {sm4:9.4f}")
    print(f"{'AES-128-GCM encrypt+decrypt (same)':<44} {aes_ms:9.4f}")
    print(f"{'SM2 envelope seal (client side)':<44} {seal:9.2f}")
    print(f"{'SM2 envelope open (server side, log-in)':<44} {opened:9.2f}")
    print(f"ratios: SM3/SHA-256 PBKDF2 {sm3 / sha:.2f}x, SM4-GCM/AES-GCM {sm4 / aes_ms:.2f}x")


if __name__ == "__main__":
    main()
