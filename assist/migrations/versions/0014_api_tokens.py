"""api_tokens: named API tokens with a scope, an expiry, their last use and revocation; users' single token
moves there (read scope, expiring 90 days after the migration)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
MIGRATED_DAYS = 90  # the old tokens never expired: they do this long after the migration


def upgrade() -> None:
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('scope', sa.Enum('read', 'write', name='token_scope', native_enum=False, create_constraint=True,
                                   length=16), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTC_TIME, nullable=False),
        sa.Column('expires_at', UTC_TIME, nullable=False),
        sa.Column('last_used_at', UTC_TIME, nullable=True),
        sa.Column('revoked_at', UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash')),
    )
    op.create_index(op.f('ix_api_tokens_user_id'), 'api_tokens', ['user_id'], unique=False)
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('api_token_hash', sa.String))
    tokens = sa.table('api_tokens', sa.column('user_id', sa.Integer), sa.column('name', sa.String),
                      sa.column('scope', sa.String), sa.column('token_hash', sa.String),
                      sa.column('created_at', UTC_TIME), sa.column('expires_at', UTC_TIME))
    now = datetime.now(UTC)
    connection = op.get_bind()
    rows = connection.execute(sa.select(users.c.id, users.c.api_token_hash)
                              .where(users.c.api_token_hash.is_not(None))).all()
    if rows:
        connection.execute(tokens.insert(), [
            {"user_id": user_id, "name": "migrated", "scope": "read", "token_hash": token_hash, "created_at": now,
             "expires_at": now + timedelta(days=MIGRATED_DAYS)} for user_id, token_hash in rows])
    with op.batch_alter_table('users') as batch:
        batch.drop_constraint(op.f('uq_users_api_token_hash'), type_='unique')
        batch.drop_column('api_token_hash')


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('api_token_hash', sa.String(length=64), nullable=True))
        batch.create_unique_constraint(op.f('uq_users_api_token_hash'), ['api_token_hash'])
    op.drop_index(op.f('ix_api_tokens_user_id'), table_name='api_tokens')
    op.drop_table('api_tokens')
