"""leads (线索): prospective clients met in the live chat, converted into clients or lost

Revision ID: 0018_chat_leads
Revises: 0017_chat_tags_links
Create Date: 2026-12-08 10:00:00.000000

One lead per chat visitor (``uq_lead_visitor``; leads without a visitor are not limited).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018_chat_leads'
down_revision = '0017_chat_tags_links'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('crm_lead',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('company', sa.String(length=200), nullable=True),
    sa.Column('phone', sa.String(length=30), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('question', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('new', 'contacted', 'converted', 'lost', name='lead_status', native_enum=False,
                                length=20), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('source_url', sa.String(length=2000), nullable=True),
    sa.Column('visitor_id', sa.Integer(), nullable=True),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('lost_reason', sa.String(length=500), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['chat_conversation.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['chat_site.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['visitor_id'], ['chat_visitor.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('visitor_id', name='uq_lead_visitor')
    )
    with op.batch_alter_table('crm_lead', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_lead_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_lead_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_lead_status'), ['status'], unique=False)


def downgrade():
    with op.batch_alter_table('crm_lead', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_lead_status'))
        batch_op.drop_index(batch_op.f('ix_crm_lead_owner_id'))
        batch_op.drop_index(batch_op.f('ix_crm_lead_client_id'))
    op.drop_table('crm_lead')
