"""key traffic counters and alert preferences

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'key_traffic',
        sa.Column('key_id', sa.Integer(), nullable=False),
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('accepted', sa.Integer(), nullable=False),
        sa.Column('refused', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['key_id'], ['api_key.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('key_id', 'hour'),
    )
    with op.batch_alter_table('key_traffic', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_key_traffic_hour'), ['hour'], unique=False)
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alerts_enabled', sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('alerts_enabled')
    with op.batch_alter_table('key_traffic', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_key_traffic_hour'))
    op.drop_table('key_traffic')
