"""agent queues: queue membership, capacity and on-call duty of users

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queues', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('capacity', sa.Integer(), nullable=False, server_default='5'))
        batch_op.add_column(sa.Column('on_call', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('on_call')
        batch_op.drop_column('capacity')
        batch_op.drop_column('queues')
