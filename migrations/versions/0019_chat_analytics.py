"""indexes for the chat analytics (统计分析): a month's view reads by time

Revision ID: 0019_chat_analytics
Revises: 0018_chat_leads
Create Date: 2026-12-07 12:00:00.000000

The analytics (``app.services.chat_analytics``) select the conversations started in a range of
days, the offers made in it and the page views seen in it: each by its time column, so each gets
an index on that column (the existing ones lead with the status or the conversation).
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0019_chat_analytics'
down_revision = '0018_chat_leads'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_conversation_queued_at', 'chat_conversation', ['queued_at'], unique=False)
    op.create_index('ix_offer_offered_at', 'chat_offer', ['offered_at'], unique=False)
    op.create_index('ix_page_view_started_at', 'chat_page_view', ['started_at'], unique=False)


def downgrade():
    op.drop_index('ix_page_view_started_at', table_name='chat_page_view')
    op.drop_index('ix_offer_offered_at', table_name='chat_offer')
    op.drop_index('ix_conversation_queued_at', table_name='chat_conversation')
