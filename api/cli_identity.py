"""``cityops keys`` (SM2/SM4/token keys) and ``cityops users`` (demo users, unlock, TOTP)."""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer

from spatial.db import libpq_url

keys_app = typer.Typer(help="Key material under CITY_SECURITY_KEY_DIR (never in the database).")
users_app = typer.Typer(help="Users: demo accounts, unlock, TOTP enrolment.", no_args_is_help=True)


def _security():  # noqa: ANN202 - settings type stays local to the CLI
    from spatial.settings import SecuritySettings

    return SecuritySettings()


def _url() -> str:
    from spatial.settings import DatabaseSettings

    return DatabaseSettings().resolved_url()


@keys_app.command("init")
def keys_init() -> None:
    """Create the SM2 key pair, the SM4 keyring and the token key when missing (idempotent)."""
    from spatial.security.keystore import KeyStore

    store = KeyStore.ensure(_security().key_dir)
    typer.echo(f"Keys ready in {store.key_dir} (SM4 primary {store.keyring.primary}).")


@keys_app.command("rotate")
def keys_rotate(
    reencrypt: Annotated[bool, typer.Option(help="re-encrypt stored fields now")] = True,
) -> None:
    """Add a new primary SM4 key; old keys stay for reading. Restart servers afterwards."""
    from spatial.security.keystore import KeyStore, rotate_sm4
    from spatial.security.rotation import reencrypt_all

    key_dir = _security().key_dir
    kid = rotate_sm4(key_dir)
    typer.echo(f"New primary SM4 key {kid}.")
    if reencrypt:
        count = reencrypt_all(_url(), KeyStore.load(key_dir).keyring)
        typer.echo(f"Re-encrypted {count} field value(s) under {kid}.")


@users_app.command("demo")
def users_demo(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="skip when users exist")] = False,
) -> None:
    """(Re)create the demo users of the README, one per position."""
    from data_samples.demo_users import load_demo_users
    from spatial.security.keystore import KeyStore

    if if_empty:
        with psycopg.connect(libpq_url(_url())) as conn:
            if conn.execute("SELECT EXISTS (SELECT 1 FROM city.users)").fetchone()[0]:
                typer.echo("Users exist; skipping the demo users.")
                return
    settings = _security()
    count = load_demo_users(_url(), KeyStore.ensure(settings.key_dir), settings.password_iterations)
    typer.echo(f"{count} demo users ready.")


@users_app.command("unlock")
def users_unlock(username: str) -> None:
    """Clear a lockout after failed log-ins."""
    with psycopg.connect(libpq_url(_url())) as conn:
        row = conn.execute(
            "UPDATE city.users SET failed_logins = 0, locked_until = NULL"
            " WHERE username = %s RETURNING id",
            (username,),
        ).fetchone()
    typer.echo("Unlocked." if row else f"No user {username}.")


@users_app.command("totp")
def users_totp(username: str) -> None:
    """Enrol (or re-enrol) a TOTP second factor and print the otpauth URI to scan."""
    import pyotp

    from spatial.security.keystore import KeyStore

    secret = pyotp.random_base32()
    ring = KeyStore.ensure(_security().key_dir).keyring
    with psycopg.connect(libpq_url(_url())) as conn:
        row = conn.execute(
            "UPDATE city.users SET totp_secret_enc = %s, totp_enabled = true,"
            " totp_last_step = NULL WHERE username = %s RETURNING id",
            (ring.encrypt(secret), username),
        ).fetchone()
    if row is None:
        typer.echo(f"No user {username}.", err=True)
        raise typer.Exit(1)
    typer.echo(pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="cityops 大丰运管服"))
