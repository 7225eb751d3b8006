"""Database tables, one module per table family."""

from models.api_key import ApiKey
from models.audit import AuditEvent
from models.billing import StripeEvent
from models.invitation import Invitation
from models.organization import Organization
from models.user import LoginFailure, PasswordResetToken, Role, User

__all__ = [
    'ApiKey',
    'AuditEvent',
    'Invitation',
    'LoginFailure',
    'Organization',
    'PasswordResetToken',
    'Role',
    'StripeEvent',
    'User',
]
