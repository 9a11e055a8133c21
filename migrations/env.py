import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# The ini file's logging set-up is for the ``flask db`` commands run on their own. When the
# process has configured logging already (the server, the tests), it is left as it is; and
# existing loggers are never disabled: fileConfig's default would silence Flask, Flask-AppBuilder,
# werkzeug and Socket.IO for the rest of the process, and with them every server error.
if not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger('alembic.env')


def get_engine():
    try:
        # this works with Flask-SQLAlchemy<3 and Alchemical
        return current_app.extensions['migrate'].db.get_engine()
    except (TypeError, AttributeError):
        # this works with Flask-SQLAlchemy>=3
        return current_app.extensions['migrate'].db.engine


def get_engine_url():
    try:
        return get_engine().url.render_as_string(hide_password=False).replace(
            '%', '%%')
    except AttributeError:
        return str(get_engine().url).replace('%', '%%')


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option('sqlalchemy.url', get_engine_url())
target_db = current_app.extensions['migrate'].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def get_metadata():
    # Every model (ours and Flask-AppBuilder's security tables) is declared on
    # Flask-AppBuilder's declarative base, not on Flask-SQLAlchemy's.
    from flask_appbuilder import Model

    import app.models  # noqa: F401

    return Model.metadata


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url, target_metadata=get_metadata(), literal_binds=True
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')

    conf_args = current_app.extensions['migrate'].configure_args
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives
    if conf_args.get("render_item") is None:
        from app.models.types import render_stored_type

        conf_args["render_item"] = render_stored_type

    connectable = get_engine()

    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=get_metadata(),
            **conf_args
        )

        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # The application's SQLite connections enforce foreign keys. A batch operation
            # recreates a table (copy, drop, rename): with enforcement on, dropping the old table
            # would cascade to, or null, every row that refers to it. So keys are off while
            # migrations run (the pragma is ignored inside a transaction, hence committed first)
            # and every key is checked when they are done.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            known = _sqlite_key_violations(connection)
            connection.commit()
        try:
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                _refuse_new_key_violations(connection, known)
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
        except BaseException:
            if sqlite:  # never back to the pool with keys off
                connection.invalidate()
            raise


def _sqlite_key_violations(connection):
    """Rows whose foreign key points at nothing, counted by (table, parent table)."""
    found = {}
    for table, _rowid, parent, _fkid in connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall():
        found[(table, parent)] = found.get((table, parent), 0) + 1
    return found


def _refuse_new_key_violations(connection, known):
    """Raise when the migrations left more dangling references than there were before them
    (a database written while SQLite did not enforce keys may hold some already; the
    migration that repairs them says so)."""
    after = _sqlite_key_violations(connection)
    new = {key: count for key, count in after.items() if count > known.get(key, 0)}
    if new:
        detail = ", ".join(f"{table} -> {parent}: {count}" for (table, parent), count in sorted(new.items()))
        raise RuntimeError(f"the migration left rows that refer to missing rows ({detail})")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
