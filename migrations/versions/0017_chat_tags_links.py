"""conversation topics and quick links of the live chat

Revision ID: 0017_chat_tags_links
Revises: 0016_chat_read_receipts
Create Date: 2026-12-10 10:00:00.000000

``chat_topic``: the managed list of topics (对话主题); ``chat_conversation_topic``: the topics of
each conversation (a topic in use cannot be deleted, only deactivated); ``chat_quick_link``: the
quick links (常用链接) agents insert into replies, per site or for every site.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_chat_tags_links'
down_revision = '0016_chat_read_receipts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('chat_topic',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=True),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('chat_conversation_topic',
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('topic_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['chat_conversation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['topic_id'], ['chat_topic.id'], ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('conversation_id', 'topic_id')
    )
    with op.batch_alter_table('chat_conversation_topic', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_topic_topic', ['topic_id', 'conversation_id'], unique=False)

    op.create_table('chat_quick_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['chat_site.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('chat_quick_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_quick_link_site_id'), ['site_id'], unique=False)


def downgrade():
    with op.batch_alter_table('chat_quick_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_quick_link_site_id'))
    op.drop_table('chat_quick_link')
    with op.batch_alter_table('chat_conversation_topic', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_topic_topic')
    op.drop_table('chat_conversation_topic')
    op.drop_table('chat_topic')
