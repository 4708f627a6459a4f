"""outbox: the work a commit owes, written in its transaction; sends that record being handed over

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)
OLD = ('pending', 'retrying', 'queued', 'sent', 'delivered', 'undelivered', 'failed', 'suppressed')
NEW = OLD + ('sending', 'unconfirmed')


def _statuses(values) -> str:
    return "delivery_status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        'outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('target', sa.String(length=120), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('queue', sa.String(length=16), nullable=False),
        sa.Column('job_id', sa.String(length=80), nullable=True),
        sa.Column('retry', sa.Boolean(), nullable=False),
        sa.Column('run_at', UTC, nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('relayed_at', UTC, nullable=True),
        sa.Column('done_at', UTC, nullable=True),
        sa.Column('relays', sa.Integer(), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    )
    op.create_index('ix_outbox_waiting', 'outbox', ['done_at', 'relayed_at', 'run_at'])
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_messages_delivery_status'), type_='check')
        batch_op.create_check_constraint('delivery_status', _statuses(NEW))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_messages_delivery_status'), type_='check')
        batch_op.create_check_constraint('delivery_status', _statuses(OLD))
    op.drop_index('ix_outbox_waiting', table_name='outbox')
    op.drop_table('outbox')
