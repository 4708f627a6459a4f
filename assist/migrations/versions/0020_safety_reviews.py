"""safety_reviews and review_findings: confidential reviews of a member's conduct

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        'safety_reviews',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('status', _enum('review_status', 'requested', 'open', 'pending', 'decided'), nullable=False),
        sa.Column('requested_by_id', sa.Integer(), nullable=False),
        sa.Column('reviewer_id', sa.Integer(), nullable=True),
        sa.Column('decision', _enum('review_decision', 'no_action', 'warning', 'suspension', 'removal'),
                  nullable=True),
        sa.Column('reasons', sa.Text(), nullable=True),
        sa.Column('suspended_until', UTC, nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', UTC, nullable=True),
        sa.Column('approved_by_id', sa.Integer(), nullable=True),
        sa.Column('in_force_at', UTC, nullable=True),
        sa.Column('outcome_message_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_safety_reviews_member_id_members')),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_safety_reviews_case_id_cases')),
        sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'],
                                name=op.f('fk_safety_reviews_requested_by_id_users')),
        sa.ForeignKeyConstraint(['reviewer_id'], ['users.id'], name=op.f('fk_safety_reviews_reviewer_id_users')),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_safety_reviews_decided_by_id_users')),
        sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'],
                                name=op.f('fk_safety_reviews_approved_by_id_users')),
        sa.ForeignKeyConstraint(['outcome_message_id'], ['messages.id'],
                                name=op.f('fk_safety_reviews_outcome_message_id_messages')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_safety_reviews')),
    )
    op.create_index(op.f('ix_safety_reviews_member_id'), 'safety_reviews', ['member_id'])
    op.create_index(op.f('ix_safety_reviews_case_id'), 'safety_reviews', ['case_id'])
    op.create_table(
        'review_findings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('review_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=False),
        sa.Column('guideline', sa.String(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['review_id'], ['safety_reviews.id'],
                                name=op.f('fk_review_findings_review_id_safety_reviews')),
        sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_review_findings_author_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review_findings')),
    )
    op.create_index(op.f('ix_review_findings_review_id'), 'review_findings', ['review_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_review_findings_review_id'), table_name='review_findings')
    op.drop_table('review_findings')
    op.drop_index(op.f('ix_safety_reviews_case_id'), table_name='safety_reviews')
    op.drop_index(op.f('ix_safety_reviews_member_id'), table_name='safety_reviews')
    op.drop_table('safety_reviews')
