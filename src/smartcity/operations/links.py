"""Signed, time-limited video links: who may see which camera of which incident, until when.

A link is `<payload>.<signature>`, both base64url: the payload is JSON (tenant, incident,
camera, principal, share, mode, expiry, nonce); the signature is HMAC-SHA256 under a key
derived from the platform's secret, so a link cannot be made or altered without it. The link
says what was granted; whether the grant still holds (the share not ended, the principal not
disabled) is checked again every time the link is opened.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from smartcity.core.errors import Forbidden

DERIVATION = b"smartcity video links v1"


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a video link grants."""

    tenant: str
    incident_id: str
    camera_id: str
    principal_id: str
    subject: str
    share_id: str
    """The video share it was issued under ('' for operators, who need none)."""
    mode: str
    """'live' or 'recorded'."""
    expires: int
    """Unix time (seconds) after which the link no longer opens."""
    at: str = ""
    """For recorded video: the moment asked for."""
    nonce: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Sign and check video links with a key derived from the platform's secret."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), DERIVATION, hashlib.sha256).digest()

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def sign(self, claims: LinkClaims) -> str:
        """Return the link token for some claims (a fresh nonce makes every link unique)."""
        body: dict[str, Any] = {
            "t": claims.tenant,
            "i": claims.incident_id,
            "c": claims.camera_id,
            "p": claims.principal_id,
            "u": claims.subject,
            "s": claims.share_id,
            "m": claims.mode,
            "e": claims.expires,
            "a": claims.at,
            "n": claims.nonce or secrets.token_hex(6),
        }
        payload = _b64(orjson.dumps(body))
        return f"{payload}.{self._signature(payload)}"

    def verify(self, token: str, now: datetime) -> LinkClaims:
        """Return the claims of an authentic link that has not expired; Forbidden otherwise."""
        payload, _, signature = token.partition(".")
        if not payload or not signature:
            raise Forbidden("this is not a video link")
        if not hmac.compare_digest(self._signature(payload).encode(), signature.encode()):
            raise Forbidden("this video link is not authentic")
        try:
            body = orjson.loads(_unb64(payload))
            claims = LinkClaims(
                tenant=str(body["t"]),
                incident_id=str(body["i"]),
                camera_id=str(body["c"]),
                principal_id=str(body["p"]),
                subject=str(body["u"]),
                share_id=str(body["s"]),
                mode=str(body["m"]),
                expires=int(body["e"]),
                at=str(body["a"]),
                nonce=str(body["n"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise Forbidden("this video link is not authentic") from None
        if now.timestamp() >= claims.expires:
            raise Forbidden("this video link has expired; ask for a new one")
        return claims
