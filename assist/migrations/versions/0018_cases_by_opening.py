"""cases are found by when they were opened: the dashboard's service levels read a date range of them

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_cases_created_at', 'cases', ['created_at'])


def downgrade() -> None:
    op.drop_index('ix_cases_created_at', table_name='cases')
