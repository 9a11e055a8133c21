"""the work board's steps ticked by hand (资料收齐)

Revision ID: 0012_work_board
Revises: 0011_tax_filings
Create Date: 2026-12-06 19:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012_work_board'
down_revision = '0011_tax_filings'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('work_board_tick',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.Integer(), nullable=False),
    sa.Column('step', sa.String(length=20), nullable=False),
    sa.Column('ticked_by_id', sa.Integer(), nullable=True),
    sa.Column('ticked_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticked_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_id', 'period', 'step', name='uq_work_board_tick')
    )
    with op.batch_alter_table('work_board_tick', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_board_tick_client_id'), ['client_id'], unique=False)


def downgrade():
    with op.batch_alter_table('work_board_tick', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_board_tick_client_id'))
    op.drop_table('work_board_tick')
