"""single sign-on: a person's link to the identity provider, started round trips, the organization's requirement

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'single_sign_on_link',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('issuer', 'subject'),
        sa.UniqueConstraint('user_id'),
    )
    op.create_table(
        'single_sign_on_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash'),
    )
    with op.batch_alter_table('single_sign_on_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_single_sign_on_state_expires_at'), ['expires_at'], unique=False)
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('require_single_sign_on', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table('browser_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('single_sign_on', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('browser_session', schema=None) as batch_op:
        batch_op.drop_column('single_sign_on')
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_column('require_single_sign_on')
    with op.batch_alter_table('single_sign_on_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_single_sign_on_state_expires_at'))
    op.drop_table('single_sign_on_state')
    op.drop_table('single_sign_on_link')
