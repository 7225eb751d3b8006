from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime, utcnow


class AuditAction(StrEnum):
    ORGANIZATION_CREATED = 'organization.created'
    LOGIN_SUCCEEDED = 'login.succeeded'
    LOGIN_FAILED = 'login.failed'
    LOGIN_UNLOCKED = 'login.unlocked'
    PASSWORD_CONFIRM_FAILED = 'password.confirm_failed'
    API_KEY_GENERATED = 'api_key.generated'
    API_KEY_REVEALED = 'api_key.revealed'
    API_KEY_ROTATED = 'api_key.rotated'
    API_KEY_OLD_REVOKED = 'api_key.old_revoked'
    SUBDOMAINS_UPDATED = 'subdomains.updated'
    INVITATION_SENT = 'invitation.sent'
    INVITATION_RESENT = 'invitation.resent'
    INVITATION_REVOKED = 'invitation.revoked'
    INVITATION_ACCEPTED = 'invitation.accepted'
    MEMBER_ROLE_CHANGED = 'member.role_changed'
    MEMBER_REMOVED = 'member.removed'
    ADMIN_CREATED = 'member.admin_created'
    PASSWORD_RESET_REQUESTED = 'password.reset_requested'
    PASSWORD_RESET = 'password.reset'
    PASSWORD_CHANGED = 'password.changed'
    SIGNED_OUT_EVERYWHERE = 'sessions.ended'
    BILLING_CHECKOUT_STARTED = 'billing.checkout_started'
    BILLING_PORTAL_OPENED = 'billing.portal_opened'
    BILLING_SUBSCRIPTION_CHANGED = 'billing.subscription_changed'

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


# What the Activity tab says for each action.
ACTION_LABELS = {
    AuditAction.ORGANIZATION_CREATED: 'Organization created',
    AuditAction.LOGIN_SUCCEEDED: 'Signed in',
    AuditAction.LOGIN_FAILED: 'Sign-in failed',
    AuditAction.LOGIN_UNLOCKED: 'Sign-in unlocked',
    AuditAction.PASSWORD_CONFIRM_FAILED: 'Wrong password when confirming an action',
    AuditAction.API_KEY_GENERATED: 'API key generated',
    AuditAction.API_KEY_REVEALED: 'API key revealed',
    AuditAction.API_KEY_ROTATED: 'API key rotated',
    AuditAction.API_KEY_OLD_REVOKED: 'Old API key revoked',
    AuditAction.SUBDOMAINS_UPDATED: 'Subdomains saved',
    AuditAction.INVITATION_SENT: 'Invitation sent',
    AuditAction.INVITATION_RESENT: 'Invitation resent',
    AuditAction.INVITATION_REVOKED: 'Invitation revoked',
    AuditAction.INVITATION_ACCEPTED: 'Invitation accepted',
    AuditAction.MEMBER_ROLE_CHANGED: 'Role changed',
    AuditAction.MEMBER_REMOVED: 'Member removed',
    AuditAction.ADMIN_CREATED: 'Admin created from the command line',
    AuditAction.PASSWORD_RESET_REQUESTED: 'Password reset requested',
    AuditAction.PASSWORD_RESET: 'Password reset',
    AuditAction.PASSWORD_CHANGED: 'Password changed',
    AuditAction.SIGNED_OUT_EVERYWHERE: 'Signed out everywhere',
    AuditAction.BILLING_CHECKOUT_STARTED: 'Checkout started',
    AuditAction.BILLING_PORTAL_OPENED: 'Billing portal opened',
    AuditAction.BILLING_SUBSCRIPTION_CHANGED: 'Subscription changed',
}


def action_label(action: str) -> str:
    """The Activity tab's words for a stored action (an action this version does not know is shown as stored)."""
    try:
        return AuditAction(action).label
    except ValueError:
        return action


class AuditEvent(SQLModel, table=True):
    __tablename__: ClassVar[str] = 'audit_event'

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int | None = Field(default=None, foreign_key='organization.id', index=True, ondelete='CASCADE')
    actor_id: int | None = Field(default=None, foreign_key='user.id', ondelete='SET NULL')
    actor_email: str | None = Field(default=None, max_length=320)
    action: str = Field(max_length=64)
    target: str | None = Field(default=None, max_length=500)
    ip: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True))
