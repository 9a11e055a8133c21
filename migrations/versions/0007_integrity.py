"""integrity: put right the rows SQLite let point at nothing before it enforced foreign keys

SQLite enforces foreign keys from this version on (``PRAGMA foreign_keys=ON`` on every
connection). A SQLite database written before may hold rows whose key names a deleted row (the
contacts of a deleted client, say). Each such row is given what its key's ``ondelete`` rule would
have done: CASCADE deletes it, SET NULL clears the reference; repeated until nothing changes (a
deleted row may itself have been referred to). Rows under a RESTRICT key (vouchers of a deleted
client) cannot be put right without the row they lost: they are left as they are and counted in
the log, for the operator to restore from a backup. PostgreSQL always enforced its keys: nothing
to do there. The repair cannot be undone, so the downgrade changes nothing.

Revision ID: 0007_integrity
Revises: 0006_exact_money
Create Date: 2026-12-06 15:00:00.000000

"""
import logging
from collections import defaultdict

from alembic import op

# revision identifiers, used by Alembic.
revision = '0007_integrity'
down_revision = '0006_exact_money'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def _dangling(conn):
    """{(table, key id): [rowid, ...]} of the rows whose foreign key points at nothing."""
    found = defaultdict(list)
    for table, rowid, _parent, fkid in conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall():
        found[(table, fkid)].append(rowid)
    return found


def _key(conn, table, fkid):
    """(columns, ondelete rule) of foreign key *fkid* of *table*."""
    rows = [r for r in conn.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")').fetchall() if r[0] == fkid]
    return [r[3] for r in rows], (rows[0][6] if rows else "NO ACTION").upper()


def repair(conn):
    """Apply the keys' ondelete rules to the rows that point at nothing; return what is left."""
    while True:
        changed = False
        for (table, fkid), rowids in _dangling(conn).items():
            columns, rule = _key(conn, table, fkid)
            marks = ", ".join("?" for _ in rowids)
            if rule == "CASCADE":
                conn.exec_driver_sql(f'DELETE FROM "{table}" WHERE rowid IN ({marks})', tuple(rowids))
                changed = True
            elif rule == "SET NULL":
                assignments = ", ".join(f'"{c}" = NULL' for c in columns)
                conn.exec_driver_sql(f'UPDATE "{table}" SET {assignments} WHERE rowid IN ({marks})', tuple(rowids))
                changed = True
        if not changed:
            return _dangling(conn)


def upgrade():
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    left = repair(conn)
    for (table, _fkid), rowids in sorted(left.items()):
        log.warning("%d row(s) of %s refer to rows that no longer exist and were kept (their key "
                    "refuses deletes); restore the missing rows from a backup", len(rowids), table)


def downgrade():
    pass
