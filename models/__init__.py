"""Database tables, one module per table family."""

from models.api_key import ApiKey
from models.audit import AuditAction, AuditEvent
from models.billing import StripeEvent
from models.browser_session import BrowserSession
from models.invitation import DeliveryStatus, Invitation, LinkState
from models.organization import Organization
from models.user import LoginFailure, PasswordResetToken, Role, User, UserStatus

__all__ = [
    'ApiKey',
    'AuditAction',
    'AuditEvent',
    'BrowserSession',
    'DeliveryStatus',
    'Invitation',
    'LinkState',
    'LoginFailure',
    'Organization',
    'PasswordResetToken',
    'Role',
    'StripeEvent',
    'User',
    'UserStatus',
]
