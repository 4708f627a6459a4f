"""playbook routing: the playbook behind a case and a bot reply, the first-response SLA

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_response_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_breached_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('playbook_id', sa.String(length=64), nullable=True))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('playbook_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('playbook_id')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('playbook_id')
        batch_op.drop_column('sla_breached_at')
        batch_op.drop_column('first_response_due_at')
