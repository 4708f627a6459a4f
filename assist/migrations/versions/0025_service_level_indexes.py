"""cases are found by when they were opened, and audit events by kind: the dashboard's service levels read
a date range of cases, and which of them were escalated or reopened

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_cases_created_at', 'cases', ['created_at'])
    op.create_index('ix_events_kind_case', 'events', ['kind', 'case_id'])


def downgrade() -> None:
    op.drop_index('ix_events_kind_case', table_name='events')
    op.drop_index('ix_cases_created_at', table_name='cases')
