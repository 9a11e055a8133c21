"""``flask --app app ...`` commands: database, users, demo data, backups, translations."""

from __future__ import annotations

import sqlite3
import subprocess  # noqa: S404
import sys
from datetime import date

import click
from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from app.config import BASE_DIR


class MigrationCommands(click.Group):
    """``flask db ...``: Flask-Migrate's commands (``upgrade``, ``revision``, ``history``...),
    loaded, with Alembic, only when one of them is asked for."""

    def __init__(self, app: Flask) -> None:
        super().__init__("db", help="Perform database migrations.")
        self.app = app

    def _commands(self) -> click.Group:
        from flask_migrate.cli import db as migration_commands

        from app.services.bootstrap import init_migrations

        init_migrations(self.app)
        return migration_commands

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        commands = self._commands()  # the group's own options (--directory, --x-arg) and callback
        self.params, self.callback = commands.params, commands.callback
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._commands().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._commands().get_command(ctx, cmd_name)


def register_cli(app: Flask) -> None:
    app.cli.add_command(MigrationCommands(app))

    @app.cli.command("init-db")
    def init_db() -> None:
        """Apply migrations and sync roles and permissions."""
        from app.services.bootstrap import prepare_database

        prepare_database(current_app)
        click.echo("database ready")

    @app.cli.command("sync-roles")
    @click.option("--reset", is_flag=True, help="Restore each role's default permissions exactly.")
    def sync_roles_cmd(reset: bool) -> None:
        """Write the default permissions of the built-in roles."""
        from app.services.bootstrap import sync_permissions, sync_roles

        sync_permissions(current_app)
        sync_roles(current_app, reset=reset)
        click.echo("roles synced")

    @app.cli.command("create-admin")
    @click.option("--username", prompt=True)
    @click.option("--email", default=None)
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    def create_admin(username: str, email: str | None, password: str) -> None:
        """Create a user with the Admin role."""
        from app.services.bootstrap import prepare_database
        from app.services.errors import DomainError
        from app.services.users import create_user

        prepare_database(current_app)
        try:
            create_user(current_app, username, password, ["Admin"], email=email)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"admin {username} created")

    @app.cli.command("seed-demo")
    def seed_demo_cmd() -> None:
        """Create the demo users, clients, contracts and documents (idempotent)."""
        from app.services.bootstrap import prepare_database
        from app.services.demo import seed_demo

        prepare_database(current_app)
        result = seed_demo(current_app)
        click.echo(f"users created: {', '.join(result['users']) or 'none'}; clients created: {result['clients']}")
        if result["password"]:
            click.echo(f"demo password: {result['password']} (also in {result['credentials_file']})")

    @app.cli.command("backup")
    @click.argument("path")
    def backup_cmd(path: str) -> None:
        """Write a full backup of the database to PATH."""
        from app.extensions import db
        from app.services.backup import BackupError, backup

        try:
            written = backup(db.engine, path)
        except (BackupError, OSError, sqlite3.Error, SQLAlchemyError) as exc:
            raise click.ClickException(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)) from None
        click.echo(f"backup written to {written}")

    @app.cli.command("restore")
    @click.argument("path")
    def restore_cmd(path: str) -> None:
        """Restore the backup at PATH into the (empty) configured database."""
        from app.extensions import db
        from app.services.backup import BackupError, restore

        try:
            restore(db.engine, path)
        except (BackupError, OSError, sqlite3.Error, SQLAlchemyError) as exc:
            raise click.ClickException(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)) from None
        click.echo("restore complete")

    @app.cli.command("expire-contracts")
    def expire_contracts() -> None:
        """Mark live contracts whose end date has passed as expired (run daily from cron)."""
        from app.extensions import db
        from app.services.contracts import expire_due_contracts

        click.echo(f"{expire_due_contracts(db.session, date.today())} contract(s) expired")

    @app.cli.command("remind")
    @click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                  help="The day to remind for (YYYY-MM-DD; default today).")
    @click.option("--dry-run", is_flag=True, help="Only list who would be mailed.")
    def remind(day, dry_run: bool) -> None:  # noqa: ANN001
        """Mail each accountant their clients' filings overdue or due within 3 days, and each
        manager the overdue list (run daily from cron). Exits 1 when a mail could not be sent."""
        from app.reminder_mail import send_reminders

        result = send_reminders(app, day.date() if day else date.today(), dry_run=dry_run)
        for who in result.planned:
            click.echo(f"would mail {who}")
        for who in result.sent:
            click.echo(f"mailed {who}")
        for who, why in result.failed:
            click.echo(f"NOT mailed {who}: {why}", err=True)
        click.echo(f"{len(result.sent)} reminder(s) sent, {len(result.failed)} failed"
                   + (f", {len(result.planned)} planned (dry run)" if dry_run else ""))
        if result.failed:
            raise SystemExit(1)

    @app.cli.command("chat-retention")
    @click.option("--days", type=click.IntRange(min=0), default=None,
                  help="Age in days (default: CHAT_RETENTION_DAYS).")
    @click.option("--dry-run", is_flag=True, help="Only count what would change.")
    def chat_retention(days: int | None, dry_run: bool) -> None:
        """Truncate old visitor addresses and anonymise old chats of unidentified visitors (run daily
        from cron)."""
        from app.extensions import db
        from app.services.chat_retention import apply_retention

        days = current_app.config["CHAT_RETENTION_DAYS"] if days is None else days
        result = apply_retention(db.session, days, dry_run=dry_run)
        prefix = "dry run, would change: " if dry_run else ""
        click.echo(f"{prefix}cutoff {result.cutoff:%Y-%m-%d %H:%M} UTC; addresses truncated: {result.ips_truncated}; "
                   f"conversations anonymised: {result.conversations_anonymised} "
                   f"({result.messages_anonymised} messages); visitors anonymised: {result.visitors_anonymised}; "
                   f"left messages anonymised: {result.leave_messages_anonymised}; "
                   f"unanswered questions deleted: {result.unanswered_deleted}")

    @app.cli.group("translate")
    def translate() -> None:
        """Extract, update and compile the message catalogs."""

    def _babel(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], check=True,  # noqa: S603
                       cwd=BASE_DIR)

    @translate.command("update")
    def translate_update() -> None:
        from app.services.i18n import extract_args

        _babel("extract", "-F", "babel.cfg", *extract_args(), "-o", "translations/messages.pot",
               "--no-location", "--sort-output", ".")
        _babel("update", "-i", "translations/messages.pot", "-d", "translations", "--no-fuzzy-matching")

    @translate.command("compile")
    def translate_compile() -> None:
        _babel("compile", "-d", "translations")
