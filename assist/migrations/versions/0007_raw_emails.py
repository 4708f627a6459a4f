"""raw emails: every message received over SMTP, stored before it is acknowledged

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'raw_emails',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('mail_from', sa.String(length=320), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_raw_emails_message_id_messages')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_raw_emails')),
        sa.UniqueConstraint('digest', name=op.f('uq_raw_emails_digest')),
    )


def downgrade() -> None:
    op.drop_table('raw_emails')
