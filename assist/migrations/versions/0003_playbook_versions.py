"""playbook versions: supervisors' drafts and published playbooks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'playbook_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('playbook_id', sa.String(length=64), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('yaml', sa.Text(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('published_by_id', sa.Integer(), nullable=True),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('note', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_playbook_versions_created_by_id_users')),
        sa.ForeignKeyConstraint(['published_by_id'], ['users.id'],
                                name=op.f('fk_playbook_versions_published_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_playbook_versions')),
        sa.UniqueConstraint('playbook_id', 'number', name='uq_playbook_versions_number'),
    )
    with op.batch_alter_table('playbook_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_playbook_versions_playbook_id'), ['playbook_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('playbook_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_playbook_versions_playbook_id'))
    op.drop_table('playbook_versions')
