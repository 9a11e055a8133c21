"""the pre-chat form of each chat site, when a visitor sent it, and each agent's send key

Revision ID: 0014_chat_prechat_form
Revises: 0013_chat_visitor_connections
Create Date: 2026-12-06 21:40:00.000000

Every site starts with its form off (every field "off"), so the widget behaves as before until an
Admin turns fields on; every agent starts with Enter sending (as before).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_chat_prechat_form'
down_revision = '0013_chat_visitor_connections'
branch_labels = None
depends_on = None

PRECHAT_FIELDS = ('prechat_name', 'prechat_phone', 'prechat_email', 'prechat_question')


def upgrade():
    with op.batch_alter_table('chat_site', schema=None) as batch_op:
        for name in PRECHAT_FIELDS:
            batch_op.add_column(sa.Column(name, sa.Enum('off', 'optional', 'required', name='prechat_mode',
                                                        native_enum=False, length=10),
                                          nullable=False, server_default='off'))
    with op.batch_alter_table('chat_visitor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prechat_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('chat_agent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_key', sa.Enum('enter', 'ctrl_enter', name='send_key', native_enum=False,
                                                          length=10), nullable=False, server_default='enter'))


def downgrade():
    with op.batch_alter_table('chat_agent', schema=None) as batch_op:
        batch_op.drop_column('send_key')
    with op.batch_alter_table('chat_visitor', schema=None) as batch_op:
        batch_op.drop_column('prechat_at')
    with op.batch_alter_table('chat_site', schema=None) as batch_op:
        for name in reversed(PRECHAT_FIELDS):
            batch_op.drop_column(name)
