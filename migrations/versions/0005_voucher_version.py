"""voucher versions for reviews, system-made carry-forwards, idempotent requests

Revision ID: 0005_voucher_version
Revises: 0004_chat_work
Create Date: 2026-12-06 15:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0005_voucher_version'
down_revision = '0004_chat_work'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ledger_voucher', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('reviewed_version', sa.Integer(), nullable=True))
    # A voucher reviewed before versions existed was reviewed as it is now.
    op.execute("UPDATE ledger_voucher SET reviewed_version = version WHERE state IN ('reviewed', 'posted')")
    # Carry-forward vouchers are made by the system; whoever closed the month stays their reviewer.
    op.execute("UPDATE ledger_voucher SET maker_id = NULL WHERE kind = 'carry_forward'")

    op.create_table('idempotent_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('scope', sa.String(length=100), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'key', name='uq_idempotent_user_key')
    )
    with op.batch_alter_table('idempotent_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotent_request_created_at'), ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('idempotent_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotent_request_created_at'))
    op.drop_table('idempotent_request')
    op.execute("UPDATE ledger_voucher SET maker_id = reviewer_id WHERE kind = 'carry_forward'")
    with op.batch_alter_table('ledger_voucher', schema=None) as batch_op:
        batch_op.drop_column('reviewed_version')
        batch_op.drop_column('version')
