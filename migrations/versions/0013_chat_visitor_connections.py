"""the open widget connections of each chat visitor, across server processes

Revision ID: 0013_chat_visitor_connections
Revises: 0012_work_board
Create Date: 2026-12-06 19:00:00.000000

A visitor is online while they have a row here; a waiting chat of a visitor whose every connection
closed leaves the queue after a grace (CHAT_VISITOR_GRACE_SECONDS).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_chat_visitor_connections'
down_revision = '0012_work_board'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('chat_visitor_connection',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visitor_id', sa.Integer(), nullable=False),
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('process', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['visitor_id'], ['chat_visitor.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sid')
    )
    with op.batch_alter_table('chat_visitor_connection', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_visitor_connection_process'), ['process'], unique=False)
        batch_op.create_index(batch_op.f('ix_chat_visitor_connection_visitor_id'), ['visitor_id'], unique=False)
    # Connections opened before this revision are not recorded: nobody is online until they connect again.
    op.execute("UPDATE chat_visitor SET online = false")


def downgrade():
    with op.batch_alter_table('chat_visitor_connection', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_visitor_connection_visitor_id'))
        batch_op.drop_index(batch_op.f('ix_chat_visitor_connection_process'))
    op.drop_table('chat_visitor_connection')
