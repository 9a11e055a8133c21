"""the filing calendar (official deadlines, seeded for 2026) and the filing records

Revision ID: 0011_tax_filings
Revises: 0010_tax_worksheet
Create Date: 2026-12-06 18:00:00.000000

The 2026 deadlines are those of 国家税务总局办公厅《关于明确2026年度申报纳税期限的通知》
（税总办征科函〔2025〕64号, 2025-12-10); later years are entered by an Admin when published.
"""
from datetime import date, datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_tax_filings'
down_revision = '0010_tax_worksheet'
branch_labels = None
depends_on = None

TAX = sa.Enum('vat', 'urban_maintenance', 'education', 'local_education', 'corporate_income',
              'individual_income', 'stamp', name='tax_kind', native_enum=False, length=30)
PERIOD = sa.Enum('monthly', 'quarterly', 'yearly', name='filing_period', native_enum=False, length=30)
STATUS = sa.Enum('pending', 'filed', 'paid', name='filing_status', native_enum=False, length=20)

NOTICE_2026 = '税总办征科函〔2025〕64号'
DUE_2026 = ['2026-01-20', '2026-02-24', '2026-03-16', '2026-04-20', '2026-05-22', '2026-06-15',
            '2026-07-15', '2026-08-17', '2026-09-15', '2026-10-26', '2026-11-16', '2026-12-15']


def upgrade():
    op.create_table('tax_deadline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('due', sa.Date(), nullable=False),
    sa.Column('source_note', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('year', 'month', name='uq_tax_deadline_month')
    )
    op.create_table('tax_filing',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('tax', TAX, nullable=False),
    sa.Column('period_kind', PERIOD, nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('due', sa.Date(), nullable=False),
    sa.Column('status', STATUS, nullable=False),
    sa.Column('zero_return', sa.Boolean(), nullable=False),
    sa.Column('tax_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('paid_amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('filed_at', sa.DateTime(), nullable=True),
    sa.Column('filed_by_id', sa.Integer(), nullable=True),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.Column('paid_by_id', sa.Integer(), nullable=True),
    sa.Column('return_document_id', sa.Integer(), nullable=True),
    sa.Column('receipt_document_id', sa.Integer(), nullable=True),
    sa.Column('reopen_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['filed_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['paid_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['return_document_id'], ['document.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['receipt_document_id'], ['document.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_id', 'tax', 'period', name='uq_tax_filing')
    )
    with op.batch_alter_table('tax_filing', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tax_filing_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tax_filing_due'), ['due'], unique=False)
        batch_op.create_index(batch_op.f('ix_tax_filing_status'), ['status'], unique=False)

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    table = sa.table('tax_deadline', *(sa.column(name) for name in (
        'year', 'month', 'due', 'source_note', 'created_at', 'updated_at')))
    op.bulk_insert(table, [
        dict(year=2026, month=month, due=date.fromisoformat(due), source_note=NOTICE_2026,
             created_at=now, updated_at=now)
        for month, due in enumerate(DUE_2026, start=1)
    ])


def downgrade():
    with op.batch_alter_table('tax_filing', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tax_filing_status'))
        batch_op.drop_index(batch_op.f('ix_tax_filing_due'))
        batch_op.drop_index(batch_op.f('ix_tax_filing_client_id'))
    op.drop_table('tax_filing')
    op.drop_table('tax_deadline')
