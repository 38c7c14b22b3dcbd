"""Password hashing with Argon2id (argon2-cffi): only hashes are stored, never passwords."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from smartcity.core.errors import BadRequestData

MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# A hash of a password nobody knows: verifying against it when a user does not exist takes as
# long as a real check, so response times do not tell which user names exist.
_DUMMY_HASH = _hasher.hash("no user has this password: it only burns the same time")


def check_password_strength(password: str) -> None:
    """Refuse a password too short to resist guessing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequestData(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """Return the Argon2id hash of a password (with its own random salt)."""
    check_password_strength(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Tell whether a password matches a hash; None (no such user) costs the same and fails."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Tell whether a hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
