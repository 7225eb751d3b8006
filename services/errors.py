"""Errors a service raises; their text is safe to show to the person who caused them."""

from collections.abc import Mapping


class ServiceError(Exception):
    """Base class: the message is meant for the user."""


class PermissionDenied(ServiceError):
    def __init__(self, message: str = 'You do not have permission to do that.') -> None:
        super().__init__(message)


class NotFound(ServiceError):
    pass


class ValidationFailed(ServiceError):
    """Bad input; `field` names the input the message belongs to, when there is one. `errors` holds every invalid
    field's message (a form marks them all at once); the first one is also `field` and the message."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.errors: dict[str | None, str] = {field: message}

    @classmethod
    def for_fields(cls, errors: Mapping[str, str]) -> 'ValidationFailed':
        """One error for several invalid fields (at least one), each with its own message."""
        field, message = next(iter(errors.items()))
        error = cls(message, field=field)
        error.errors = {name: said for name, said in errors.items()}
        return error


class ReauthenticationRequired(ServiceError):
    def __init__(self) -> None:
        super().__init__('Please confirm your password to continue.')


class LoginLocked(ServiceError):
    def __init__(self, minutes: int) -> None:
        super().__init__(f'Too many failed attempts. Try again in {minutes} minutes.')
        self.minutes = minutes


class InvalidCredentials(ServiceError):
    def __init__(self) -> None:
        super().__init__('Invalid email or password')


class ExternalServiceError(ServiceError):
    """An outside service (mail, Stripe) failed; the message says so plainly."""


class NotConfigured(ServiceError):
    pass


class ConfigError(Exception):
    """A bad configuration value; the message is one line naming the variable."""
