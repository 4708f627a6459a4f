"""calls keep their voicemail's recording (Twilio's RecordingSid and its length), which was attached to the
caller's latest message; the calls recorded before get theirs from those messages

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""
import re

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")


def upgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('recording_sid', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('recording_duration', sa.Integer(), nullable=True))
    calls = sa.table('calls', sa.column('id', sa.Integer), sa.column('call_sid', sa.String),
                     sa.column('recording_sid', sa.String))
    messages = sa.table('messages', sa.column('channel', sa.String), sa.column('meta', sa.JSON),
                        sa.column('attachments', sa.JSON))
    connection = op.get_bind()
    recordings = {}
    for meta, attachments in connection.execute(sa.select(messages.c.meta, messages.c.attachments)
                                                .where(messages.c.channel == 'voice')):
        for attachment in attachments or []:
            found = RECORDING_SID.search(attachment.get('ref') or '')
            if found and (meta or {}).get('call_sid'):
                recordings.setdefault(meta['call_sid'], found.group(0))
    for call_sid, recording_sid in recordings.items():
        connection.execute(calls.update().where(calls.c.call_sid == call_sid).values(recording_sid=recording_sid))


def downgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.drop_column('recording_duration')
        batch.drop_column('recording_sid')
