"""exact money on SQLite: amounts stored as integer cents

SQLite kept the ``NUMERIC(18, 2)`` money columns as binary floats (9,999,999,999,999,999.99 read
back as 10,000,000,000,000,000.00). The ``Money`` column type now stores integer cents there, in
the same declared columns; this migration converts the stored values. PostgreSQL stores
``NUMERIC(18, 2)`` exactly already: nothing changes there.

Revision ID: 0006_exact_money
Revises: 0005_voucher_version
Create Date: 2026-12-06 15:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006_exact_money'
down_revision = '0005_voucher_version'
branch_labels = None
depends_on = None

MONEY_COLUMNS = {
    'ledger_opening_balance': ('debit', 'credit'),
    'ledger_voucher': ('total',),
    'ledger_voucher_line': ('debit', 'credit'),
    'contract': ('monthly_fee',),
    'fee_bill': ('amount',),
    'payment': ('amount',),
}


def _convert(expression: str) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table, columns in MONEY_COLUMNS.items():
        assignments = ', '.join(f'"{column}" = {expression.format(column=column)}' for column in columns)
        op.execute(f'UPDATE "{table}" SET {assignments}')  # noqa: S608 (fixed names)


def upgrade():
    # yuan (a float or an integer) → integer cents, rounded to the nearest cent
    _convert('CAST(ROUND("{column}" * 100) AS INTEGER)')


def downgrade():
    # integer cents → yuan as the former storage kept them
    _convert('"{column}" / 100.0')
