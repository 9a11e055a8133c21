"""read receipts (已读) of a chat: how far the visitor and the agents have read a conversation

Revision ID: 0016_chat_read_receipts
Revises: 0015_chat_faq
Create Date: 2026-12-07 10:00:00.000000

Each conversation keeps the id of the last message its visitor has seen (``visitor_read_up_to``)
and the id of the last message its agents have seen (``agent_read_up_to``); both start empty
(nothing read yet) and only ever grow (``app.services.chat_receipts``).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016_chat_read_receipts'
down_revision = '0015_chat_faq'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('chat_conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visitor_read_up_to', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('agent_read_up_to', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('chat_conversation', schema=None) as batch_op:
        batch_op.drop_column('agent_read_up_to')
        batch_op.drop_column('visitor_read_up_to')
