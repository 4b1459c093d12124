"""Typed errors raised by services and turned into the JSON error shape in one place."""
from __future__ import annotations


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict | None = None, *, status: int | None = None,
                 code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def to_dict(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


class ValidationFailed(ApiError):
    status, code = 422, "validation_error"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class TooMany(ApiError):
    status, code = 429, "too_many_requests"


class Unavailable(ApiError):
    status, code = 503, "unavailable"


def field_error(field: str, message: str, status: int = 422) -> ValidationFailed:
    """A validation error naming one field, the most common failure of a request."""
    return ValidationFailed(f"Invalid {field}: {message}", {field: [message]}, status=status)


def a_or_an(word: str) -> str:
    """The word with its English article, for a message such as "An accepted quote cannot be sent."."""
    return f"{'An' if word[:1].lower() in 'aeiou' else 'A'} {word}"
