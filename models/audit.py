from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import Index
from sqlmodel import Column, Field, SQLModel

from models.base import UTCDateTime, utcnow


class AuditAction(StrEnum):
    ORGANIZATION_CREATED = 'organization.created'
    LOGIN_SUCCEEDED = 'login.succeeded'
    LOGIN_FAILED = 'login.failed'
    LOGIN_UNLOCKED = 'login.unlocked'
    PASSKEY_SIGN_IN_SUCCEEDED = 'login.passkey_succeeded'
    PASSKEY_SIGN_IN_FAILED = 'login.passkey_failed'
    PASSKEY_ADDED = 'passkey.added'
    PASSKEY_REMOVED = 'passkey.removed'
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
    PASSWORD_RESET_LINK_CREATED = 'password.reset_link_created'
    PASSWORD_CHANGED = 'password.changed'
    SIGNED_OUT_EVERYWHERE = 'sessions.ended'
    BILLING_CHECKOUT_STARTED = 'billing.checkout_started'
    BILLING_PORTAL_OPENED = 'billing.portal_opened'
    BILLING_SUBSCRIPTION_CHANGED = 'billing.subscription_changed'
    TWO_FACTOR_ENABLED = 'two_factor.enabled'
    TWO_FACTOR_DISABLED = 'two_factor.disabled'
    TWO_FACTOR_FAILED = 'two_factor.failed'
    TWO_FACTOR_RESET = 'two_factor.reset'
    RECOVERY_CODE_USED = 'two_factor.recovery_code_used'
    RECOVERY_CODES_RENEWED = 'two_factor.recovery_codes_renewed'
    TWO_FACTOR_REQUIRED = 'organization.two_factor_required'
    TWO_FACTOR_NOT_REQUIRED = 'organization.two_factor_optional'
    SSO_SIGN_IN_SUCCEEDED = 'login.sso_succeeded'
    SSO_SIGN_IN_REFUSED = 'login.sso_refused'
    SSO_LINKED = 'sso.linked'
    SSO_JOINED = 'sso.joined'
    SSO_CONFIRMED = 'sso.confirmed'
    SSO_REQUIRED = 'organization.sso_required'
    SSO_NOT_REQUIRED = 'organization.sso_optional'
    SSO_PASSWORD_REFUSED = 'login.password_refused_sso'
    SSO_BREAK_GLASS = 'login.break_glass'
    ALERTS_TURNED_ON = 'alerts.turned_on'
    ALERTS_TURNED_OFF = 'alerts.turned_off'

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


# What the Activity tab says for each action.
ACTION_LABELS = {
    AuditAction.ORGANIZATION_CREATED: 'Created the organization',
    AuditAction.LOGIN_SUCCEEDED: 'Signed in',
    AuditAction.LOGIN_FAILED: 'Failed sign-in',
    AuditAction.LOGIN_UNLOCKED: 'Unlocked sign-in',
    AuditAction.PASSKEY_SIGN_IN_SUCCEEDED: 'Signed in with a passkey',
    AuditAction.PASSKEY_SIGN_IN_FAILED: 'Failed passkey sign-in',
    AuditAction.PASSKEY_ADDED: 'Added a passkey',
    AuditAction.PASSKEY_REMOVED: 'Removed a passkey',
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
    AuditAction.PASSWORD_RESET_LINK_CREATED: 'Made a password reset link',
    AuditAction.PASSWORD_CHANGED: 'Changed the password',
    AuditAction.SIGNED_OUT_EVERYWHERE: 'Signed out everywhere',
    AuditAction.BILLING_CHECKOUT_STARTED: 'Started Checkout',
    AuditAction.BILLING_PORTAL_OPENED: 'Opened the billing portal',
    AuditAction.BILLING_SUBSCRIPTION_CHANGED: 'Subscription changed',
    AuditAction.TWO_FACTOR_ENABLED: 'Set up an authenticator app',
    AuditAction.TWO_FACTOR_DISABLED: 'Turned off the authenticator app',
    AuditAction.TWO_FACTOR_FAILED: 'Failed authentication code',
    AuditAction.TWO_FACTOR_RESET: 'Reset two-factor authentication',
    AuditAction.RECOVERY_CODE_USED: 'Used a recovery code',
    AuditAction.RECOVERY_CODES_RENEWED: 'Made new recovery codes',
    AuditAction.TWO_FACTOR_REQUIRED: 'Required two-factor authentication for everyone',
    AuditAction.TWO_FACTOR_NOT_REQUIRED: 'Stopped requiring two-factor authentication',
    AuditAction.SSO_SIGN_IN_SUCCEEDED: 'Signed in with single sign-on',
    AuditAction.SSO_SIGN_IN_REFUSED: 'Refused single sign-on',
    AuditAction.SSO_LINKED: 'Linked single sign-on',
    AuditAction.SSO_JOINED: 'Joined with single sign-on',
    AuditAction.SSO_CONFIRMED: 'Confirmed with single sign-on',
    AuditAction.SSO_REQUIRED: 'Required single sign-on for everyone',
    AuditAction.SSO_NOT_REQUIRED: 'Stopped requiring single sign-on',
    AuditAction.SSO_PASSWORD_REFUSED: 'Refused a password sign-in (single sign-on required)',
    AuditAction.SSO_BREAK_GLASS: 'Signed in with a password while single sign-on is required',
    AuditAction.ALERTS_TURNED_ON: 'Turned security alerts on',
    AuditAction.ALERTS_TURNED_OFF: 'Turned security alerts off',
}


def action_label(action: str) -> str:
    """The Activity tab's words for a stored action (an action this version does not know is shown as stored)."""
    try:
        return AuditAction(action).label
    except ValueError:
        return action


class AuditEvent(SQLModel, table=True):
    __tablename__: ClassVar[str] = 'audit_event'
    # The Activity tab reads one organization's events newest first, a page at a time after a (created_at, id)
    # cursor: this index hands them over in that order, so no query sorts (or scans other organizations' rows). It
    # also serves the organization's foreign key and the per-organization time windows (invitations sent today).
    # Newest first within one organization: the Activity tab's pages (keyset on created_at, id). The filters by kind
    # and by person have their own, so a kind or a person seen only long ago is found without walking the whole log.
    __table_args__ = (
        Index('ix_audit_event_organization_created', 'organization_id', 'created_at', 'id'),
        Index('ix_audit_event_organization_action_created', 'organization_id', 'action', 'created_at', 'id'),
        Index('ix_audit_event_organization_actor_created', 'organization_id', 'actor_email', 'created_at', 'id'),
    )

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int | None = Field(default=None, foreign_key='organization.id', ondelete='CASCADE')
    actor_id: int | None = Field(default=None, foreign_key='user.id', ondelete='SET NULL')
    actor_email: str | None = Field(default=None, max_length=320)
    action: str = Field(max_length=64)
    target: str | None = Field(default=None, max_length=500)
    ip: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
