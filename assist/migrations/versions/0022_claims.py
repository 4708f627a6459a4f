"""claims: vet claims on a case, with their invoice lines

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)
CLAIM_STATUSES = ('open', 'awaiting_lead', 'decided')


def upgrade() -> None:
    op.create_table(
        'claims',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('claimant_id', sa.Integer(), nullable=False),
        sa.Column('booking_id', sa.Integer(), nullable=False),
        sa.Column('pet_id', sa.Integer(), nullable=False),
        sa.Column('incident_at', UTC, nullable=False),
        sa.Column('incident_day', sa.Date(), nullable=False),
        sa.Column('clinic', sa.String(length=200), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('amount_claimed', sa.Integer(), nullable=False),
        sa.Column('documents', sa.JSON(), nullable=False),
        sa.Column('reviews', sa.JSON(), nullable=False),
        sa.Column('status', sa.Enum(*CLAIM_STATUSES, name='claim_status', native_enum=False, create_constraint=True,
                                    length=16), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=True),
        sa.Column('reason_code', sa.String(length=32), nullable=True),
        sa.Column('amount_approved', sa.Integer(), nullable=True),
        sa.Column('letter', sa.Text(), nullable=True),
        sa.Column('letter_message_id', sa.Integer(), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', UTC, nullable=True),
        sa.Column('approved_by_id', sa.Integer(), nullable=True),
        sa.Column('approved_at', UTC, nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_claims_case_id_cases')),
        sa.ForeignKeyConstraint(['claimant_id'], ['members.id'], name=op.f('fk_claims_claimant_id_members')),
        sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_claims_booking_id_bookings')),
        sa.ForeignKeyConstraint(['pet_id'], ['pets.id'], name=op.f('fk_claims_pet_id_pets')),
        sa.ForeignKeyConstraint(['letter_message_id'], ['messages.id'],
                                name=op.f('fk_claims_letter_message_id_messages')),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_claims_decided_by_id_users')),
        sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'], name=op.f('fk_claims_approved_by_id_users')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_claims_created_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_claims')),
        sa.UniqueConstraint('booking_id', 'pet_id', 'incident_day', name='uq_claims_incident'),
    )
    op.create_index(op.f('ix_claims_case_id'), 'claims', ['case_id'])
    op.create_index(op.f('ix_claims_claimant_id'), 'claims', ['claimant_id'])
    op.create_table(
        'claim_lines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('claim_id', sa.Integer(), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_lines_claim_id_claims'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_lines')),
    )
    op.create_index(op.f('ix_claim_lines_claim_id'), 'claim_lines', ['claim_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_claim_lines_claim_id'), table_name='claim_lines')
    op.drop_table('claim_lines')
    op.drop_index(op.f('ix_claims_claimant_id'), table_name='claims')
    op.drop_index(op.f('ix_claims_case_id'), table_name='claims')
    op.drop_table('claims')
