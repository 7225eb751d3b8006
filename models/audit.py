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
    AuditAction.ORGANIZATION_CREATED: 'Created the organization',
    AuditAction.LOGIN_SUCCEEDED: 'Signed in',
    AuditAction.LOGIN_FAILED: 'Failed sign-in',
    AuditAction.LOGIN_UNLOCKED: 'Unlocked sign-in',
    AuditAction.PASSWORD_CONFIRM_FAILED: 'Failed password confirmation',
    AuditAction.API_KEY_GENERATED: 'Generated the API key',
    AuditAction.API_KEY_REVEALED: 'Revealed the API key',
    AuditAction.API_KEY_ROTATED: 'Rotated the API key',
    AuditAction.API_KEY_OLD_REVOKED: 'Revoked the old API key',
    AuditAction.SUBDOMAINS_UPDATED: 'Saved the subdomains',
    AuditAction.INVITATION_SENT: 'Invited a teammate',
    AuditAction.INVITATION_RESENT: 'Resent an invitation',
    AuditAction.INVITATION_REVOKED: 'Revoked an invitation',
    AuditAction.INVITATION_ACCEPTED: 'Accepted an invitation',
    AuditAction.MEMBER_ROLE_CHANGED: 'Changed a role',
    AuditAction.MEMBER_REMOVED: 'Removed a member',
    AuditAction.ADMIN_CREATED: 'Made an admin from the command line',
    AuditAction.PASSWORD_RESET_REQUESTED: 'Asked to reset a password',
    AuditAction.PASSWORD_RESET: 'Reset a password',
    AuditAction.PASSWORD_CHANGED: 'Changed the password',
    AuditAction.SIGNED_OUT_EVERYWHERE: 'Signed out everywhere',
    AuditAction.BILLING_CHECKOUT_STARTED: 'Started Checkout',
    AuditAction.BILLING_PORTAL_OPENED: 'Opened the billing portal',
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
