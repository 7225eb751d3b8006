"""Database tables, one module per table family."""

from models.api_key import ApiKey
from models.audit import AuditAction, AuditEvent
from models.billing import StripeEvent, SubscriptionStatus
from models.browser_session import BrowserSession
from models.invitation import DeliveryStatus, Invitation, LinkState, ProcessHeartbeat
from models.key_traffic import KeyTraffic
from models.organization import Organization
from models.passkey import Passkey
from models.single_sign_on import SingleSignOnLink, SingleSignOnState
from models.two_factor import AuthenticatorApp, CodeLock, PendingSignIn, RecoveryCode
from models.user import LoginFailure, PasswordResetToken, Role, User, UserStatus

__all__ = [
    'ApiKey',
    'AuditAction',
    'AuditEvent',
    'AuthenticatorApp',
    'BrowserSession',
    'CodeLock',
    'DeliveryStatus',
    'Invitation',
    'KeyTraffic',
    'LinkState',
    'LoginFailure',
    'Organization',
    'Passkey',
    'PasswordResetToken',
    'PendingSignIn',
    'ProcessHeartbeat',
    'RecoveryCode',
    'Role',
    'SingleSignOnLink',
    'SingleSignOnState',
    'StripeEvent',
    'SubscriptionStatus',
    'User',
    'UserStatus',
]
