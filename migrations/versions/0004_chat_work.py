"""chat routing, team, tools, inbox

Revision ID: 0004_chat_work
Revises: 0003_chat
Create Date: 2026-11-23 14:46:26.488298

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_chat_work'
down_revision = '0003_chat'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('chat_canned_reply',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=50), nullable=True),
    sa.Column('shortcut', sa.String(length=30), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['chat_site.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('chat_canned_reply', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_canned_reply_owner_id'), ['owner_id'], unique=False)

    op.create_table('chat_invitation_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('min_seconds_on_page', sa.Integer(), nullable=True),
    sa.Column('url_pattern', sa.String(length=500), nullable=True),
    sa.Column('referrer_pattern', sa.String(length=500), nullable=True),
    sa.Column('keyword_pattern', sa.String(length=200), nullable=True),
    sa.Column('returning_only', sa.Boolean(), nullable=False),
    sa.Column('min_page_views', sa.Integer(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['chat_site.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('chat_team_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sender_user_id', sa.Integer(), nullable=True),
    sa.Column('sender_name', sa.String(length=100), nullable=False),
    sa.Column('client_msg_id', sa.String(length=64), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['sender_user_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_msg_id')
    )
    op.create_table('chat_invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visitor_id', sa.Integer(), nullable=False),
    sa.Column('visit_no', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.String(length=500), nullable=False),
    sa.Column('status', sa.Enum('sent', 'accepted', 'declined', name='invitation_status', native_enum=False, length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('responded_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['chat_agent.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['rule_id'], ['chat_invitation_rule.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['visitor_id'], ['chat_visitor.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('visitor_id', 'rule_id', 'visit_no', name='uq_invitation_rule_visit')
    )
    with op.batch_alter_table('chat_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_invitation_visitor_id'), ['visitor_id'], unique=False)

    op.create_table('chat_leave_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('visitor_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=30), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('page_url', sa.String(length=2000), nullable=True),
    sa.Column('client_msg_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.Enum('new', 'assigned', 'replied', 'closed', name='leave_message_status', native_enum=False, length=10), nullable=False),
    sa.Column('assigned_to_id', sa.Integer(), nullable=True),
    sa.Column('reply_text', sa.Text(), nullable=True),
    sa.Column('replied_at', sa.DateTime(), nullable=True),
    sa.Column('replied_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('phone IS NOT NULL OR email IS NOT NULL', name='ck_leave_message_contact'),
    sa.ForeignKeyConstraint(['assigned_to_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['replied_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['chat_site.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visitor_id'], ['chat_visitor.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_msg_id')
    )
    with op.batch_alter_table('chat_leave_message', schema=None) as batch_op:
        batch_op.create_index('ix_leave_message_status', ['status', 'created_at'], unique=False)

    op.create_table('chat_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_by', sa.Enum('visitor', 'agent', 'system', 'note', 'whisper', name='sender_type', native_enum=False, length=10), nullable=False),
    sa.Column('uploader_user_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['chat_conversation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploader_user_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('storage_name')
    )
    with op.batch_alter_table('chat_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_attachment_conversation_id'), ['conversation_id'], unique=False)

    op.create_table('chat_offer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('offered_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('outcome', sa.Enum('pending', 'accepted', 'timed_out', 'declined', 'withdrawn', name='offer_outcome', native_enum=False, length=10), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['chat_agent.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['chat_conversation.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('chat_offer', schema=None) as batch_op:
        batch_op.create_index('ix_offer_conversation', ['conversation_id', 'id'], unique=False)

    op.create_table('chat_participant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('invited', 'watcher', name='participant_role', native_enum=False, length=10), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.Column('joined_at', sa.DateTime(), nullable=False),
    sa.Column('left_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['chat_conversation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invited_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id', 'user_id', name='uq_participant_conversation_user')
    )
    op.create_table('chat_transfer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('from_agent_id', sa.Integer(), nullable=True),
    sa.Column('to_agent_id', sa.Integer(), nullable=True),
    sa.Column('to_group_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['chat_conversation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['from_agent_id'], ['chat_agent.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['to_agent_id'], ['chat_agent.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['to_group_id'], ['chat_group.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('chat_transfer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_transfer_conversation_id'), ['conversation_id'], unique=False)

    with op.batch_alter_table('chat_conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entry_url', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('requested_agent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('offer_expires_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_visitor_message_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('auto_replied_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('closed_by', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('transcript_email', sa.String(length=254), nullable=True))
        batch_op.create_foreign_key('fk_conversation_requested_agent', 'chat_agent', ['requested_agent_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('chat_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipient_user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('attachment_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_message_attachment', 'chat_attachment', ['attachment_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key('fk_message_recipient_user', 'ab_user', ['recipient_user_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('chat_site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_reply_seconds', sa.Integer(), nullable=False, server_default='60'))
        batch_op.add_column(sa.Column('auto_reply_text', sa.String(length=500), nullable=True))

    with op.batch_alter_table('chat_visitor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('phone', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('anonymised_at', sa.DateTime(), nullable=True))



def downgrade():
    with op.batch_alter_table('chat_visitor', schema=None) as batch_op:
        batch_op.drop_column('anonymised_at')
        batch_op.drop_column('phone')
        batch_op.drop_column('email')
        batch_op.drop_column('name')

    with op.batch_alter_table('chat_site', schema=None) as batch_op:
        batch_op.drop_column('auto_reply_text')
        batch_op.drop_column('auto_reply_seconds')

    with op.batch_alter_table('chat_message', schema=None) as batch_op:
        batch_op.drop_constraint('fk_message_recipient_user', type_='foreignkey')
        batch_op.drop_constraint('fk_message_attachment', type_='foreignkey')
        batch_op.drop_column('attachment_id')
        batch_op.drop_column('recipient_user_id')

    with op.batch_alter_table('chat_conversation', schema=None) as batch_op:
        batch_op.drop_constraint('fk_conversation_requested_agent', type_='foreignkey')
        batch_op.drop_column('transcript_email')
        batch_op.drop_column('closed_by')
        batch_op.drop_column('auto_replied_at')
        batch_op.drop_column('last_visitor_message_at')
        batch_op.drop_column('offer_expires_at')
        batch_op.drop_column('requested_agent_id')
        batch_op.drop_column('entry_url')

    with op.batch_alter_table('chat_transfer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_transfer_conversation_id'))

    op.drop_table('chat_transfer')
    op.drop_table('chat_participant')
    with op.batch_alter_table('chat_offer', schema=None) as batch_op:
        batch_op.drop_index('ix_offer_conversation')

    op.drop_table('chat_offer')
    with op.batch_alter_table('chat_attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_attachment_conversation_id'))

    op.drop_table('chat_attachment')
    with op.batch_alter_table('chat_leave_message', schema=None) as batch_op:
        batch_op.drop_index('ix_leave_message_status')

    op.drop_table('chat_leave_message')
    with op.batch_alter_table('chat_invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_invitation_visitor_id'))

    op.drop_table('chat_invitation')
    op.drop_table('chat_team_message')
    op.drop_table('chat_invitation_rule')
    with op.batch_alter_table('chat_canned_reply', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_canned_reply_owner_id'))

    op.drop_table('chat_canned_reply')
