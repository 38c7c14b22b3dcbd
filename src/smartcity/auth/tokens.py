"""Signed bearer tokens (JWT, HS256) with an expiry, and the secret that signs them."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt

from smartcity.core.clock import Clock
from smartcity.core.errors import ConfigurationError, Unauthorized

ALGORITHM = "HS256"
ISSUER = "smartcity"
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token and when it stops being accepted."""

    token: str
    expires_at: datetime


class TokenIssuer:
    """Issue and verify bearer tokens naming a principal."""

    def __init__(self, secret: str, clock: Clock, *, lifetime: timedelta) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"the token secret needs at least {MIN_SECRET_LENGTH} characters"
            )
        self._secret = secret
        self._clock = clock
        self._lifetime = lifetime

    def issue(self, principal_id: str) -> IssuedToken:
        """Return a token for a principal, valid for the configured lifetime."""
        now = self._clock.now()
        expires = now + self._lifetime
        claims = {
            "sub": principal_id,
            "iss": ISSUER,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": secrets.token_hex(8),
        }
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires)

    def verify(self, token: str) -> str:
        """Return the principal id a token names; Unauthorized if it is forged or expired."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["sub", "exp", "iat"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not valid; log in again") from None
        # Expiry is checked against the platform's clock, not the machine's.
        if int(claims["exp"]) <= int(self._clock.now().timestamp()):
            raise Unauthorized("the bearer token has expired; log in again")
        return str(claims["sub"])


def load_or_create_secret(path: Path) -> str:
    """Return the secret kept in a file, creating it (owner-only) on first use."""
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process started at the same moment
            return load_or_create_secret(path)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secret + "\n")
        return secret
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigurationError(f"the token secret in {path} is too short; delete the file")
    return secret
