"""calls: inbound calls, the legs placed to agents' phones, applied callbacks; agents' phones and presence

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('presence', _enum('presence', 'available', 'busy', 'offline'),
                                      nullable=False, server_default='offline'))
        batch_op.add_column(sa.Column('skip_calls_until', UTC, nullable=True))
    op.create_table(
        'calls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_sid', sa.String(length=64), nullable=False),
        sa.Column('caller', sa.String(length=64), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=True),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('state', _enum('call_state', 'ivr', 'waiting', 'connecting', 'dialing', 'voicemail', 'ended'),
                  nullable=False),
        sa.Column('queue', sa.String(length=40), nullable=True),
        sa.Column('urgency', sa.String(length=16), nullable=True),
        sa.Column('emotion', sa.String(length=16), nullable=True),
        sa.Column('category', sa.String(length=32), nullable=True),
        sa.Column('waiting_since', UTC, nullable=True),
        sa.Column('wait_prompts', sa.Integer(), nullable=False),
        sa.Column('on_call_tried', sa.Boolean(), nullable=False),
        sa.Column('answered_by_id', sa.Integer(), nullable=True),
        sa.Column('answered_at', UTC, nullable=True),
        sa.Column('outcome', sa.String(length=32), nullable=True),
        sa.Column('duration', sa.Integer(), nullable=True),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('updated_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['answered_by_id'], ['users.id'], name=op.f('fk_calls_answered_by_id_users')),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_calls_case_id_cases')),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_calls_contact_id_contacts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_calls')),
        sa.UniqueConstraint('call_sid', name=op.f('uq_calls_call_sid')),
    )
    op.create_index(op.f('ix_calls_case_id'), 'calls', ['case_id'])
    op.create_index(op.f('ix_calls_contact_id'), 'calls', ['contact_id'])
    op.create_table(
        'call_legs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_id', sa.Integer(), nullable=True),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('number', sa.String(length=20), nullable=False),
        sa.Column('leg_sid', sa.String(length=64), nullable=True),
        sa.Column('status', _enum('leg_status', 'placing', 'ringing', 'answered', 'accepted', 'declined', 'missed',
                                  'canceled', 'ended'), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('updated_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_call_legs_call_id_calls')),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_call_legs_case_id_cases')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_call_legs_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_call_legs')),
        sa.UniqueConstraint('leg_sid', name=op.f('uq_call_legs_leg_sid')),
    )
    op.create_index(op.f('ix_call_legs_call_id'), 'call_legs', ['call_id'])
    op.create_index(op.f('ix_call_legs_case_id'), 'call_legs', ['case_id'])
    op.create_table(
        'call_callbacks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('at', UTC, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_call_callbacks')),
        sa.UniqueConstraint('key', name=op.f('uq_call_callbacks_key')),
    )


def downgrade() -> None:
    op.drop_table('call_callbacks')
    op.drop_index(op.f('ix_call_legs_case_id'), table_name='call_legs')
    op.drop_index(op.f('ix_call_legs_call_id'), table_name='call_legs')
    op.drop_table('call_legs')
    op.drop_index(op.f('ix_calls_contact_id'), table_name='calls')
    op.drop_index(op.f('ix_calls_case_id'), table_name='calls')
    op.drop_table('calls')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('skip_calls_until')
        batch_op.drop_column('presence')
        batch_op.drop_column('phone')
