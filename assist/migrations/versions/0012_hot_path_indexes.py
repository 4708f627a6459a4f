"""indexes for lookups on the hot path: a reply by the message it answers, cases by first-response due time

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_messages_in_reply_to_id'), 'messages', ['in_reply_to_id'])
    op.create_index(op.f('ix_cases_first_response_due_at'), 'cases', ['first_response_due_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_cases_first_response_due_at'), table_name='cases')
    op.drop_index(op.f('ix_messages_in_reply_to_id'), table_name='messages')
