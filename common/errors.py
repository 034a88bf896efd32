"""Base error class: a stable code, a fixed public message, and internal detail for logs."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused an operation.

    ``code`` is stable and machine-readable, ``public_message`` is fixed ASCII text safe to
    show anyone, ``detail`` is for the log only and is never rendered.
    """

    code = "domain_error"
    public_message = "The request could not be completed."
    status_code = 400

    def __init__(self, detail: str = "", *, public_message: str | None = None) -> None:
        super().__init__(detail or self.public_message)
        self.detail = detail
        if public_message is not None:
            self.public_message = public_message


class NotFoundError(DomainError):
    code = "not_found"
    public_message = "Not found."
    status_code = 404


class ValidationError(DomainError):
    code = "invalid_input"
    public_message = "The input is not valid."
