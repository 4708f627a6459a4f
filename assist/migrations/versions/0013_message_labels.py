"""the triage's urgency and category as columns of messages, with the index the dashboard counts them from

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('messages', sa.Column('urgency', sa.String(length=16), nullable=True))
    op.add_column('messages', sa.Column('category', sa.String(length=40), nullable=True))
    messages = sa.table('messages', sa.column('triage', sa.JSON), sa.column('urgency', sa.String),
                        sa.column('category', sa.String))
    op.execute(messages.update().where(messages.c.triage.is_not(None))
               .values(urgency=messages.c.triage['urgency'].as_string(),
                       category=messages.c.triage['category'].as_string()))
    op.create_index('ix_messages_volume', 'messages', ['direction', 'created_at', 'urgency', 'category'])


def downgrade() -> None:
    op.drop_index('ix_messages_volume', table_name='messages')
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('category')
        batch.drop_column('urgency')
