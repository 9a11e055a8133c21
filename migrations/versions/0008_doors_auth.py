"""sign-in state per user (credential version, password age, failed sign-ins, lockout) and
server-side browser sessions

Revision ID: 0008_doors_auth
Revises: 0007_integrity
Create Date: 2026-12-06 14:55:00.000000

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_doors_auth'
down_revision = '0007_integrity'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('user_credential',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(), nullable=True),
    sa.Column('failed_count', sa.Integer(), nullable=False),
    sa.Column('failed_since', sa.DateTime(), nullable=True),
    sa.Column('locked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('user_session',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id_hash')
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_last_seen'), ['last_seen'], unique=False)
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)

    # Existing users: their password's age counts from this upgrade (the old schema did not record it).
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    op.execute(sa.text(
        "INSERT INTO user_credential (user_id, version, password_changed_at, failed_count) "
        "SELECT id, 0, :now, 0 FROM ab_user").bindparams(sa.bindparam("now", now, type_=sa.DateTime())))


def downgrade():
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_id'))
        batch_op.drop_index(batch_op.f('ix_user_session_last_seen'))

    op.drop_table('user_session')
    op.drop_table('user_credential')
