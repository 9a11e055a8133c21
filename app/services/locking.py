"""One rule for serialising the writers of one row, on every supported database.

``write_lock(session, model, key, value, column)`` rewrites *column* of the row whose *key* is
*value* with its own value: on PostgreSQL that takes the row's lock until the transaction ends;
on SQLite, whose ``SELECT … FOR UPDATE`` is a no-op, it takes the database's write lock (the
first write of a transaction), so two threads or processes cannot both read "not there yet" and
both write. Reads made after it see what every other writer committed. Nothing is committed here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute, Session


def write_lock(session: Session, model: type, key: InstrumentedAttribute, value: Any,
               column: InstrumentedAttribute) -> bool:
    """Lock the row of *model* whose *key* is *value* for the rest of the transaction (see the
    module); whether that row exists. *column* is any plain column of the row (rewritten with its
    own value: choose one without an ``onupdate`` default, or the lock would change it)."""
    result = session.execute(update(model).where(key == value).values({column.key: column})
                             .execution_options(synchronize_session=False))
    return result.rowcount > 0
