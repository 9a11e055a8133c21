"""Domain exceptions, turned into form errors, HTTP 4xx or socket error payloads in one place each."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the request; nothing was written.

    ``errors`` maps a field name (or ``"_"`` for the whole request) to a list of messages.
    """

    status_code = 422

    def __init__(self, errors: dict[str, list[str]] | str, field: str = "_") -> None:
        if isinstance(errors, str):
            errors = {field: [errors]}
        self.errors = {k: [str(m) for m in v] for k, v in errors.items()}
        # str() is what a screen shows when it flashes the error: no "_:" before a whole-request message.
        super().__init__("; ".join(", ".join(v) if k == "_" else f"{k}: {', '.join(v)}"
                                   for k, v in self.errors.items()))

    @property
    def message(self) -> str:
        return "; ".join(m for msgs in self.errors.values() for m in msgs)


class ValidationFailed(DomainError):
    """Input does not satisfy a rule (bad credit code, missing reason, ...)."""


class TransitionNotAllowed(DomainError):
    """A status change that the lifecycle does not allow."""

    status_code = 409


class NotFound(DomainError):
    status_code = 404


class AccessDenied(DomainError):
    status_code = 403


class PeriodClosed(DomainError):
    """The accounting period is closed (已结账): no new, edited or reversed voucher."""

    status_code = 409


class Conflict(DomainError):
    """The request clashes with the current state of the books (a voucher already posted, ...)."""

    status_code = 409
