"""confidentiality: restricted notes, redactions of messages, retention's mark on cases

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('notes') as batch:
        batch.add_column(sa.Column('restricted', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('cases') as batch:
        batch.add_column(sa.Column('bodies_removed_at', UTC, nullable=True))
    op.create_table(
        'redactions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('start', sa.Integer(), nullable=False),
        sa.Column('length', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=16), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=False),
        sa.Column('at', UTC, nullable=False),
        sa.Column('original', sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_redactions_message_id_messages')),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_redactions_actor_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_redactions')),
    )
    op.create_index(op.f('ix_redactions_message_id'), 'redactions', ['message_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_redactions_message_id'), table_name='redactions')
    op.drop_table('redactions')
    with op.batch_alter_table('cases') as batch:
        batch.drop_column('bodies_removed_at')
    with op.batch_alter_table('notes') as batch:
        batch.drop_column('restricted')
