"""Passwords (Argon2id), API keys (hashed, with a public prefix) and bearer tokens (HS256)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from smartcity.auth import keys, passwords
from smartcity.auth.tokens import TokenIssuer, load_or_create_secret
from smartcity.core.clock import ManualClock
from smartcity.core.errors import BadRequestData, ConfigurationError, Unauthorized

SECRET = "a-secret-of-at-least-thirty-two-characters"
START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_passwords_are_hashed_with_argon2_and_checked() -> None:
    hashed = passwords.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "correct horse battery" not in hashed
    assert passwords.verify_password(hashed, "correct horse battery")
    assert not passwords.verify_password(hashed, "correct horse batterY")
    assert not passwords.verify_password(None, "correct horse battery")
    assert not passwords.verify_password("not a hash", "anything at all")
    assert not passwords.needs_rehash(hashed)
    with pytest.raises(BadRequestData, match="at least"):
        passwords.hash_password("short")


def test_keys_are_random_and_stored_as_hashes() -> None:
    made = keys.new_key()
    other = keys.new_key()
    assert made.key != other.key
    assert made.prefix != other.prefix
    assert made.key.startswith(made.prefix + "_")
    assert keys.prefix_of(made.key) == made.prefix
    assert made.key not in made.key_hash
    assert keys.key_matches(made.key, made.key_hash)
    assert not keys.key_matches(other.key, made.key_hash)
    for shapeless in ("", "nonsense", "sck_short_x", "abc_000000000000_x"):
        assert keys.prefix_of(shapeless) is None


def test_tokens_name_their_principal_until_they_expire() -> None:
    clock = ManualClock(START)
    issuer = TokenIssuer(SECRET, clock, lifetime=timedelta(hours=8))
    issued = issuer.issue("principal-1")
    assert issued.expires_at == START + timedelta(hours=8)
    assert issuer.verify(issued.token) == "principal-1"
    clock.advance(timedelta(hours=8))
    with pytest.raises(Unauthorized, match="expired"):
        issuer.verify(issued.token)


def test_forged_tokens_are_refused() -> None:
    clock = ManualClock(START)
    issuer = TokenIssuer(SECRET, clock, lifetime=timedelta(hours=1))
    claims = {"sub": "admin", "iss": "smartcity", "iat": 0, "exp": 2**40}
    for forged in (
        jwt.encode(claims, "another-secret-of-at-least-32-characters", algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),
        issuer.issue("x").token[:-2] + "AA",
        "not a token",
    ):
        with pytest.raises(Unauthorized):
            issuer.verify(forged)
    with pytest.raises(ConfigurationError, match="at least"):
        TokenIssuer("short", clock, lifetime=timedelta(hours=1))


def test_the_development_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "auth-secret"
    first = load_or_create_secret(path)
    assert len(first) >= 32
    assert load_or_create_secret(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.write_text("short\n")
    with pytest.raises(ConfigurationError, match="too short"):
        load_or_create_secret(path)
