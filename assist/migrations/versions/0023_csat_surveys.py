"""csat_surveys: the one satisfaction question asked of a resolved case's customer, and the answer

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'csat_surveys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.Column('question_id', sa.Integer(), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('asked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('score', sa.Integer(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('answer_id', sa.Integer(), nullable=True),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_csat_surveys_case_id_cases')),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_csat_surveys_contact_id_contacts')),
        sa.ForeignKeyConstraint(['question_id'], ['messages.id'], name=op.f('fk_csat_surveys_question_id_messages')),
        sa.ForeignKeyConstraint(['answer_id'], ['messages.id'], name=op.f('fk_csat_surveys_answer_id_messages')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_csat_surveys')),
        sa.UniqueConstraint('case_id', name=op.f('uq_csat_surveys_case_id')),
    )
    op.create_index('ix_csat_surveys_waiting', 'csat_surveys', ['contact_id', 'answered_at', 'asked_at'])
    op.create_index(op.f('ix_csat_surveys_asked_at'), 'csat_surveys', ['asked_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_csat_surveys_asked_at'), table_name='csat_surveys')
    op.drop_index('ix_csat_surveys_waiting', table_name='csat_surveys')
    op.drop_table('csat_surveys')
