"""tax worksheet: the standard tax sub-accounts in existing books, and the accrual records

Every set of books opened from now on gets the standard sub-accounts of 2221 应交税费 and 5403
税金及附加 (``app/data/accounting/tax_sub_accounts_small_business.csv``). Books opened before get
the ones they lack, by these rules:

* a code that already exists is skipped (whatever its name), and so is a name that one of the
  parent's sub-accounts already has;
* a parent that holds entries of its own (voucher lines or an opening balance: it is a leaf) gets
  no sub-accounts here, so that no posted amount silently moves into a sub-account the
  accountant did not choose; the log names these books, and adding the first sub-account on the
  accounts screen moves the entries as it always does;
* a sub-account whose parent is missing (skipped) is skipped too.

The accrual records (``tax_accrual``) keep the worksheet each accrual voucher (计提税金) was made
from; one per client and period while its voucher exists (a partial unique index).

The downgrade drops the accrual records; the sub-accounts stay (they may hold entries by then).

Revision ID: 0010_tax_worksheet
Revises: 0009_tax_rates
Create Date: 2026-12-06 18:00:00.000000

"""
import logging

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_tax_worksheet'
down_revision = '0009_tax_rates'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# (code, name) as in app/data/accounting/tax_sub_accounts_small_business.csv when this revision
# was written; parents before children.
SUB_ACCOUNTS = [
    ('222101', '应交增值税'), ('222102', '未交增值税'), ('222103', '应交城市维护建设税'),
    ('222104', '应交教育费附加'), ('222105', '应交地方教育附加'), ('222106', '应交企业所得税'),
    ('222107', '应交个人所得税'),
    ('540301', '消费税'), ('540302', '城市维护建设税'), ('540303', '教育费附加'), ('540304', '地方教育附加'),
    ('540305', '印花税'), ('540306', '房产税'), ('540307', '城镇土地使用税'), ('540308', '车船税'),
    ('540309', '资源税'), ('540310', '土地增值税'),
    ('22210101', '进项税额'), ('22210102', '销项税额'), ('22210103', '转出未交增值税'),
]

ACCOUNT = sa.table('ledger_account', sa.column('id', sa.Integer), sa.column('book_id', sa.Integer),
                   sa.column('code', sa.String), sa.column('name', sa.String), sa.column('category', sa.String),
                   sa.column('normal_balance', sa.String), sa.column('parent_id', sa.Integer),
                   sa.column('level', sa.Integer), sa.column('is_leaf', sa.Boolean),
                   sa.column('active', sa.Boolean))
LINE = sa.table('ledger_voucher_line', sa.column('account_id', sa.Integer))
OPENING = sa.table('ledger_opening_balance', sa.column('account_id', sa.Integer), sa.column('debit', sa.Numeric),
                   sa.column('credit', sa.Numeric))


def _has_entries(conn, account_id):
    if conn.execute(sa.select(LINE.c.account_id).where(LINE.c.account_id == account_id).limit(1)).first():
        return True
    return conn.execute(sa.select(OPENING.c.account_id).where(
        OPENING.c.account_id == account_id, (OPENING.c.debit != 0) | (OPENING.c.credit != 0)).limit(1)).first() \
        is not None


def add_sub_accounts(conn):
    """Give every set of books the standard tax sub-accounts it lacks (rules in the docstring);
    returns how many accounts were added."""
    added = 0
    book_ids = [row[0] for row in conn.execute(sa.text('SELECT id FROM ledger_book ORDER BY id'))]
    for book_id in book_ids:
        accounts = {row.code: row for row in conn.execute(sa.select(ACCOUNT).where(ACCOUNT.c.book_id == book_id))}
        names = {(row.parent_id, row.name) for row in accounts.values()}
        held = set()
        for code, name in SUB_ACCOUNTS:
            parent = accounts.get(code[:-2])
            if code in accounts or parent is None or (parent.id, name) in names:
                continue
            if parent.is_leaf and (parent.code in held or _has_entries(conn, parent.id)):
                if parent.code not in held:
                    log.warning("books %s: %s %s holds entries of its own; its standard sub-accounts are "
                                "not added", book_id, parent.code, parent.name)
                held.add(parent.code)
                continue
            conn.execute(sa.insert(ACCOUNT).values(
                book_id=book_id, code=code, name=name, category=parent.category,
                normal_balance=parent.normal_balance, parent_id=parent.id, level=parent.level + 1,
                is_leaf=True, active=True))
            if parent.is_leaf:
                conn.execute(sa.update(ACCOUNT).where(ACCOUNT.c.id == parent.id).values(is_leaf=False))
            added += 1
            accounts = {row.code: row for row in conn.execute(
                sa.select(ACCOUNT).where(ACCOUNT.c.book_id == book_id))}
            names.add((parent.id, name))
    return added


def upgrade():
    op.create_table('tax_accrual',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('voucher_id', sa.Integer(), nullable=True),
    sa.Column('total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('worksheet', sa.Text(), nullable=False),
    sa.Column('made_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['voucher_id'], ['ledger_voucher.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['made_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tax_accrual', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tax_accrual_client_id'), ['client_id'], unique=False)
    op.create_index('uq_tax_accrual_period', 'tax_accrual', ['client_id', 'period'], unique=True,
                    sqlite_where=sa.text('voucher_id IS NOT NULL'),
                    postgresql_where=sa.text('voucher_id IS NOT NULL'))
    added = add_sub_accounts(op.get_bind())
    if added:
        log.info("added %d standard tax sub-accounts to existing books", added)


def downgrade():
    op.drop_index('uq_tax_accrual_period', table_name='tax_accrual')
    with op.batch_alter_table('tax_accrual', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tax_accrual_client_id'))
    op.drop_table('tax_accrual')
