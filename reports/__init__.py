"""PDF reports rendered with WeasyPrint: templates, styles and the render pipeline.

Statements of account, voucher prints, ledgers and the 小企业会计准则 statements are built here
from the services' SQL aggregates; the download views live in ``app/views``.
"""
