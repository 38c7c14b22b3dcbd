"""The one error hierarchy of the platform, with the NGSI-LD problem types it maps to."""

from __future__ import annotations

from typing import Any

NGSI_LD_ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
SMARTCITY_ERRORS = "urn:smartcity:errors:"


class SmartCityError(Exception):
    """Base of every error the platform raises on purpose."""

    status: int = 500
    problem_type: str = NGSI_LD_ERRORS + "InternalError"
    title: str = "Internal error"

    def __init__(self, detail: str, *, instance: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.instance = instance
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        """Return the RFC 9457 ProblemDetails body."""
        body: dict[str, Any] = {
            "type": self.problem_type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.instance is not None:
            body["instance"] = self.instance
        body.update(self.extra)
        return body


class InvalidRequest(SmartCityError):
    """The request is not well-formed (syntax, unknown parameter, bad JSON)."""

    status = 400
    problem_type = NGSI_LD_ERRORS + "InvalidRequest"
    title = "Invalid request"


class BadRequestData(SmartCityError):
    """The request is well-formed but its content is not acceptable."""

    status = 400
    problem_type = NGSI_LD_ERRORS + "BadRequestData"
    title = "Bad request data"


class Unauthorized(SmartCityError):
    """The request carries no valid credential."""

    status = 401
    problem_type = SMARTCITY_ERRORS + "Unauthorized"
    title = "Unauthorized"


class Forbidden(SmartCityError):
    """The caller's credential is valid but does not allow this operation."""

    status = 403
    problem_type = SMARTCITY_ERRORS + "Forbidden"
    title = "Forbidden"


class TooManyResults(SmartCityError):
    """The query asks for more results than the broker returns in one page."""

    status = 403
    problem_type = NGSI_LD_ERRORS + "TooManyResults"
    title = "Too many results"


class TooManyRequests(SmartCityError):
    """The caller sends faster than it may; it should wait `retry_after` seconds."""

    status = 429
    problem_type = SMARTCITY_ERRORS + "TooManyRequests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: float, **extra: Any) -> None:
        super().__init__(detail, retryAfter=round(retry_after, 3), **extra)
        self.retry_after = retry_after


class AlreadyExists(SmartCityError):
    """The entity (or attribute) to create exists already."""

    status = 409
    problem_type = NGSI_LD_ERRORS + "AlreadyExists"
    title = "Already exists"


class Conflict(SmartCityError):
    """The request does not fit the current state of what it acts on (NGSI-LD 1.6 Conflict)."""

    status = 409
    problem_type = NGSI_LD_ERRORS + "Conflict"
    title = "Conflict"


class ResourceNotFound(SmartCityError):
    """The entity, attribute or type asked for does not exist."""

    status = 404
    problem_type = NGSI_LD_ERRORS + "ResourceNotFound"
    title = "Resource not found"


class OperationNotSupported(SmartCityError):
    """The broker does not support this operation."""

    status = 422
    problem_type = NGSI_LD_ERRORS + "OperationNotSupported"
    title = "Operation not supported"


class NoMultiTenantSupport(SmartCityError):
    """A tenant was named but this broker runs without tenants."""

    status = 501
    problem_type = NGSI_LD_ERRORS + "NoMultiTenantSupport"
    title = "No multi-tenant support"


class LdContextNotAvailable(SmartCityError):
    """A JSON-LD @context named by the request cannot be had."""

    status = 503
    problem_type = NGSI_LD_ERRORS + "LdContextNotAvailable"
    title = "@context not available"


class ContextReloadFailed(LdContextNotAvailable):
    """A cached @context could not be downloaded again to replace the cached copy."""

    status = 504
    title = "@context reload failed"


class NotAcceptable(SmartCityError):
    """The Accept header asks for a representation the broker cannot give."""

    status = 406
    problem_type = NGSI_LD_ERRORS + "InvalidRequest"
    title = "Not acceptable"


class UnsupportedMediaType(SmartCityError):
    """The request body has a media type the broker does not read."""

    status = 415
    problem_type = NGSI_LD_ERRORS + "InvalidRequest"
    title = "Unsupported media type"


class ConfigurationError(SmartCityError):
    """The settings are invalid or insecure for the environment."""

    status = 500
    problem_type = NGSI_LD_ERRORS + "InternalError"
    title = "Configuration error"
