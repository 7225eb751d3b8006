"""activity: index on organization and time

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

The Activity tab pages one organization's events newest first after a (created_at, id) cursor. The composite index
gives them in that order (SQLite and PostgreSQL alike: no sort step, no rows of other organizations); it replaces the
single-column indexes on organization_id and created_at, which it makes redundant.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_audit_event_organization_created', 'audit_event', ['organization_id', 'created_at', 'id'])
    op.create_index(
        'ix_audit_event_organization_action_created', 'audit_event', ['organization_id', 'action', 'created_at', 'id']
    )
    op.create_index(
        'ix_audit_event_organization_actor_created',
        'audit_event',
        ['organization_id', 'actor_email', 'created_at', 'id'],
    )
    op.drop_index('ix_audit_event_organization_id', table_name='audit_event')
    op.drop_index('ix_audit_event_created_at', table_name='audit_event')


def downgrade() -> None:
    op.create_index('ix_audit_event_created_at', 'audit_event', ['created_at'])
    op.create_index('ix_audit_event_organization_id', 'audit_event', ['organization_id'])
    op.drop_index('ix_audit_event_organization_actor_created', table_name='audit_event')
    op.drop_index('ix_audit_event_organization_action_created', table_name='audit_event')
    op.drop_index('ix_audit_event_organization_created', table_name='audit_event')
