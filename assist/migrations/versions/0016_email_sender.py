"""a Message-ID is unique per sender and contact, not across senders (anyone can write any); a contact may
hold only the address that mail failing authentication claimed

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.drop_constraint('uq_messages_channel_id', type_='unique')
        batch.create_unique_constraint('uq_messages_channel_id_sender',
                                        ['channel', 'channel_id', 'sender', 'contact_id'])
    op.add_column('contacts', sa.Column('claimed_email', sa.String(length=320), nullable=True))
    op.create_index(op.f('ix_contacts_claimed_email'), 'contacts', ['claimed_email'])
    # raw_emails.digest now covers the envelope sender too; the digests stored before stay as they are (a
    # resend of such a mail is stored again, and its message is still recognised as a duplicate).


def downgrade() -> None:
    op.drop_index(op.f('ix_contacts_claimed_email'), table_name='contacts')
    with op.batch_alter_table('contacts') as batch:
        batch.drop_column('claimed_email')
    with op.batch_alter_table('messages') as batch:
        batch.drop_constraint('uq_messages_channel_id_sender', type_='unique')
        batch.create_unique_constraint('uq_messages_channel_id', ['channel', 'channel_id'])
