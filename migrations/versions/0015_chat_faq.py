"""the chat knowledge base: entries, their search terms, unanswered questions; bot messages

Revision ID: 0015_chat_faq
Revises: 0014_chat_prechat_form
Create Date: 2026-12-06 21:30:00.000000

``chat_message.sender_type`` and ``chat_attachment.uploaded_by`` are strings of at most 10
characters without a check constraint: the new sender type ``bot`` needs no change of them.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015_chat_faq'
down_revision = '0014_chat_prechat_form'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('chat_faq',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=50), nullable=True),
    sa.Column('question', sa.String(length=200), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('keywords', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['chat_site.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('chat_faq', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_faq_site_id'), ['site_id'], unique=False)

    op.create_table('chat_faq_term',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('faq_id', sa.Integer(), nullable=False),
    sa.Column('term', sa.String(length=40), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['faq_id'], ['chat_faq.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('chat_faq_term', schema=None) as batch_op:
        batch_op.create_index('ix_faq_term_term', ['term', 'faq_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_chat_faq_term_faq_id'), ['faq_id'], unique=False)

    op.create_table('chat_faq_unanswered',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('question', sa.String(length=500), nullable=False),
    sa.Column('question_key', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['chat_conversation.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['chat_site.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('chat_faq_unanswered', schema=None) as batch_op:
        batch_op.create_index('ix_faq_unanswered_question', ['question_key', 'site_id'], unique=False)


def downgrade():
    with op.batch_alter_table('chat_faq_unanswered', schema=None) as batch_op:
        batch_op.drop_index('ix_faq_unanswered_question')
    op.drop_table('chat_faq_unanswered')
    with op.batch_alter_table('chat_faq_term', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_faq_term_faq_id'))
        batch_op.drop_index('ix_faq_term_term')
    op.drop_table('chat_faq_term')
    with op.batch_alter_table('chat_faq', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_faq_site_id'))
    op.drop_table('chat_faq')
    op.execute("DELETE FROM chat_message WHERE sender_type = 'bot'")
