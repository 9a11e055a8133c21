"""tax rates as effective-dated data (seeded), and each client's tax profile

Revision ID: 0009_tax_rates
Revises: 0008_doors_auth
Create Date: 2026-12-06 16:20:00.000000

The seeded rates are data an Admin edits afterwards (税率 screen); the values are the ones known
when this revision was written and should be checked against the current notices.
"""
from datetime import date, datetime, timezone
from decimal import Decimal

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_tax_rates'
down_revision = '0008_doors_auth'
branch_labels = None
depends_on = None

TAX = sa.Enum('vat', 'urban_maintenance', 'education', 'local_education', 'corporate_income',
              'individual_income', 'stamp', name='tax_kind', native_enum=False, length=30)
TAXPAYER = sa.Enum('small_scale', 'general', name='taxpayer_type', native_enum=False, length=20)
LOCATION = sa.Enum('urban', 'county_town', 'other', name='location_class', native_enum=False, length=30)
PERIOD = sa.Enum('monthly', 'quarterly', 'yearly', name='filing_period', native_enum=False, length=30)

VAT_LAW = '《中华人民共和国增值税法》（2026年1月1日起施行）'
NOTICE_2023_19 = '财政部 税务总局公告2023年第19号（增值税小规模纳税人减免增值税政策，执行至2027年12月31日）'
NOTICE_2023_12 = '财政部 税务总局公告2023年第12号（小微企业和个体工商户所得税、六税两费减半征收，执行至2027年12月31日）'
UMT_LAW = '《中华人民共和国城市维护建设税法》第四条'
EDU = '《征收教育费附加的暂行规定》（国务院令第448号修订）'
LOCAL_EDU = '财政部关于统一地方教育附加政策有关问题的通知（财综〔2010〕98号）'
CIT_LAW = '《中华人民共和国企业所得税法》第四条'
END_2027 = date(2027, 12, 31)
VAT_START = date(2026, 1, 1)
RELIEF_START = date(2023, 1, 1)

# (tax, taxpayer_type, location_class, item, period, rate %, threshold, reduction %, input_credit,
#  effective_from, effective_to, basis)
SEED = [
    ('vat', 'small_scale', None, 'statutory', None, '3', None, None, False, VAT_START, None,
     VAT_LAW + '第十一条：小规模纳税人征收率3%'),
    ('vat', 'small_scale', None, 'reduced', None, '1', None, None, False, RELIEF_START, END_2027,
     NOTICE_2023_19 + '：适用3%征收率的应税销售收入减按1%征收'),
    ('vat', 'small_scale', None, 'exemption', 'monthly', '0', '100000', None, False, RELIEF_START, END_2027,
     NOTICE_2023_19 + '：月销售额10万元以下（含本数）免征增值税'),
    ('vat', 'small_scale', None, 'exemption', 'quarterly', '0', '300000', None, False, RELIEF_START, END_2027,
     NOTICE_2023_19 + '：以一个季度为纳税期限的，季度销售额30万元以下（含本数）免征增值税'),
    ('vat', 'general', None, 'goods', None, '13', None, None, True, VAT_START, None,
     VAT_LAW + '第十条：销售货物、加工修理修配、有形动产租赁服务，进口货物，税率13%'),
    ('vat', 'general', None, 'transport', None, '9', None, None, True, VAT_START, None,
     VAT_LAW + '第十条：交通运输、邮政、基础电信、建筑、不动产租赁服务，销售不动产，转让土地使用权等，税率9%'),
    ('vat', 'general', None, 'services', None, '6', None, None, True, VAT_START, None,
     VAT_LAW + '第十条：销售服务、无形资产（另有规定的除外），税率6%'),
    ('urban_maintenance', None, 'urban', 'statutory', None, '7', None, None, False, date(2021, 9, 1), None,
     UMT_LAW + '：纳税人所在地在市区的，税率为7%'),
    ('urban_maintenance', None, 'county_town', 'statutory', None, '5', None, None, False, date(2021, 9, 1), None,
     UMT_LAW + '：纳税人所在地在县城、镇的，税率为5%'),
    ('urban_maintenance', None, 'other', 'statutory', None, '1', None, None, False, date(2021, 9, 1), None,
     UMT_LAW + '：纳税人所在地不在市区、县城或者镇的，税率为1%'),
    ('education', None, None, 'statutory', None, '3', None, None, False, date(2005, 10, 1), None,
     EDU + '：教育费附加率为3%'),
    ('local_education', None, None, 'statutory', None, '2', None, None, False, date(2011, 1, 1), None,
     LOCAL_EDU + '：地方教育附加征收标准为2%'),
    ('urban_maintenance', 'small_scale', None, 'reduction', None, '0', None, '50', False, RELIEF_START, END_2027,
     NOTICE_2023_12 + '：增值税小规模纳税人减半征收城市维护建设税'),
    ('education', 'small_scale', None, 'reduction', None, '0', None, '50', False, RELIEF_START, END_2027,
     NOTICE_2023_12 + '：增值税小规模纳税人减半征收教育费附加'),
    ('local_education', 'small_scale', None, 'reduction', None, '0', None, '50', False, RELIEF_START, END_2027,
     NOTICE_2023_12 + '：增值税小规模纳税人减半征收地方教育附加'),
    ('corporate_income', None, None, 'statutory', None, '25', None, None, False, date(2008, 1, 1), None,
     CIT_LAW + '：企业所得税的税率为25%'),
    ('corporate_income', None, None, 'small_low_profit', 'quarterly', '5', '3000000', None, False,
     RELIEF_START, END_2027,
     NOTICE_2023_12 + '：小型微利企业减按25%计算应纳税所得额，按20%的税率缴纳企业所得税（实际税负5%），'
     '年应纳税所得额不超过300万元；按季度预缴'),
]


def upgrade():
    op.create_table('tax_rate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tax', TAX, nullable=False),
    sa.Column('taxpayer_type', TAXPAYER, nullable=True),
    sa.Column('location_class', LOCATION, nullable=True),
    sa.Column('item', sa.String(length=40), nullable=False),
    sa.Column('period', PERIOD, nullable=True),
    sa.Column('rate', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('threshold', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('reduction', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('input_credit', sa.Boolean(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('effective_to', sa.Date(), nullable=True),
    sa.Column('basis', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tax_rate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tax_rate_tax'), ['tax'], unique=False)
    op.create_table('client_tax_profile',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('vat_period', PERIOD, nullable=False),
    sa.Column('location_class', LOCATION, nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_id')
    )
    op.create_table('client_tax_filing',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('tax', TAX, nullable=False),
    sa.Column('period', PERIOD, nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_id', 'tax', name='uq_client_tax_filing')
    )
    with op.batch_alter_table('client_tax_filing', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_client_tax_filing_client_id'), ['client_id'], unique=False)

    # Money columns hold integer cents on SQLite (app/models/types.py), numeric on PostgreSQL.
    sqlite = op.get_bind().dialect.name == 'sqlite'

    def amount(text):
        if text is None:
            return None
        value = Decimal(text)
        return int(value * 100) if sqlite else value

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    table = sa.table('tax_rate', *(sa.column(name) for name in (
        'tax', 'taxpayer_type', 'location_class', 'item', 'period', 'rate', 'threshold', 'reduction',
        'input_credit', 'effective_from', 'effective_to', 'basis', 'created_at', 'updated_at')))
    op.bulk_insert(table, [
        dict(tax=tax, taxpayer_type=payer, location_class=location, item=item, period=period,
             rate=amount(rate), threshold=amount(threshold), reduction=amount(reduction),
             input_credit=credit, effective_from=start, effective_to=end, basis=basis,
             created_at=now, updated_at=now)
        for (tax, payer, location, item, period, rate, threshold, reduction, credit, start, end, basis) in SEED
    ])


def downgrade():
    with op.batch_alter_table('client_tax_filing', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_tax_filing_client_id'))
    op.drop_table('client_tax_filing')
    op.drop_table('client_tax_profile')
    with op.batch_alter_table('tax_rate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tax_rate_tax'))
    op.drop_table('tax_rate')
