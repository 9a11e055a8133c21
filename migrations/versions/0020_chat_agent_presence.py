"""agents' presence history (在线时长): each stretch of online, away or invisible, for the analytics

Revision ID: 0020_chat_agent_presence
Revises: 0019_chat_analytics
Create Date: 2026-12-07 01:00:00.000000

Until now only an agent's current status was kept, so the analytics could not say how long an
agent was online or away. ``chat_agent_presence`` keeps one row per stretch of a status; every
agent who is not offline when this runs starts a stretch now.
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020_chat_agent_presence'
down_revision = '0019_chat_analytics'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'chat_agent_presence',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.Enum('online', 'away', 'offline', 'invisible', name='agent_presence_status',
                                    native_enum=False, length=10), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['agent_id'], ['chat_agent.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_agent_presence_agent_open', 'chat_agent_presence', ['agent_id', 'ended_at'], unique=False)
    op.create_index('ix_agent_presence_started_at', 'chat_agent_presence', ['started_at'], unique=False)
    now = datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as the application stores times
    op.get_bind().execute(sa.text("INSERT INTO chat_agent_presence (agent_id, status, started_at) "
                                  "SELECT id, status, :now FROM chat_agent WHERE status <> 'offline'"), {"now": now})


def downgrade():
    op.drop_index('ix_agent_presence_started_at', table_name='chat_agent_presence')
    op.drop_index('ix_agent_presence_agent_open', table_name='chat_agent_presence')
    op.drop_table('chat_agent_presence')
