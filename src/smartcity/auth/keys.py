"""API keys: random secrets shown once, stored as a SHA-256 hash behind a short public prefix.

A key is high-entropy random text, so a fast hash is enough (no one can guess their way to a
preimage) and each request can be checked without Argon2's deliberate cost.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_PREFIX = "sck"
PREFIX_BYTES = 6
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: the whole key (shown once), its public prefix and its hash."""

    key: str
    prefix: str
    key_hash: str


def key_hash(key: str) -> str:
    """Return the stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> NewKey:
    """Make a new random key: sck_<public prefix>_<secret>."""
    prefix = f"{KEY_PREFIX}_{secrets.token_hex(PREFIX_BYTES)}"
    key = f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return NewKey(key, prefix, key_hash(key))


def prefix_of(key: str) -> str | None:
    """Return the public prefix of a key, or None if it is not shaped like one of ours."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 2 * PREFIX_BYTES:
        return None
    return f"{parts[0]}_{parts[1]}"


def key_matches(key: str, stored_hash: str) -> bool:
    """Compare a presented key with a stored hash in constant time."""
    return hmac.compare_digest(key_hash(key), stored_hash)
