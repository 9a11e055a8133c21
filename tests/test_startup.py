"""A start does only the work it needs, and the server it builds is the same.

- Each URL rule's builder is compiled when a URL is first built from it, and builds the same URLs
  as Werkzeug's own, for every rule of the application.
- The head revision is read from the migration files: a start on a database at the head imports
  neither Alembic nor Flask-Migrate; when the files cannot tell, Alembic decides; a database
  behind the head is still migrated, and the ``flask db`` commands still work.
- ``run.py`` pauses the garbage collector while it starts and freezes what the start built.
"""

from __future__ import annotations

import gc
import re
import subprocess
import sys
from pathlib import Path

from werkzeug.routing import Map, Rule

import run
from app import heap
from app.services import bootstrap
from app.url_rules import LazyBuilderRule
from tests.servers import server_env

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = {None: "x-1", "string": "x-1", "int": 7, "path": "a/b c"}  # by converter name
ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _sample_values(rule: Rule) -> dict:
    values = {}
    for converter, name in ARGUMENT.findall(rule.rule):
        assert (converter or None) in SAMPLES, f"no sample value for the converter of {rule.rule}"
        values[name] = SAMPLES[converter or None]
    return values


def test_every_rule_builds_the_url_werkzeugs_own_builder_builds(app):
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 300
    assert all(type(rule) is LazyBuilderRule for rule in rules if rule.endpoint != "static")
    # The override is in effect: a rule no URL was built from yet has no compiled builder.
    unbuilt = next(rule for rule in rules if rule.endpoint == "AuditLogModelView.action_post")
    assert unbuilt._build.__name__ == "build_on_first_use"  # noqa: SLF001 - what the override replaces
    eager = Map([Rule(rule.rule, **rule.get_empty_kwargs()) for rule in rules],
                converters=app.url_map.converters, strict_slashes=app.url_map.strict_slashes,
                merge_slashes=app.url_map.merge_slashes)
    lazy_urls, eager_urls = app.url_map.bind("desk.example"), eager.bind("desk.example")
    for rule in rules:
        values = _sample_values(rule)
        for extra in ({}, {"next": "/a b", "page": 2}):
            expected = eager_urls.build(rule.endpoint, {**values, **extra}, method=sorted(rule.methods)[0])
            built = lazy_urls.build(rule.endpoint, {**values, **extra}, method=sorted(rule.methods)[0])
            assert built == expected, rule.rule
    with app.test_request_context():
        from flask import url_for

        assert url_for("ClientModelView.show", pk=12) == "/clientmodelview/show/12"
        assert url_for("ClientModelView.show", pk=12, next="/a b") == "/clientmodelview/show/12?next=/a+b"


def test_the_head_read_from_the_migration_files_is_alembics():
    assert bootstrap.heads_from_files() == bootstrap._head_revisions()  # noqa: SLF001


def _write_migration(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(f'"""{name}\n\nRevision ID: {name}\n"""\n{body}\n\n\ndef upgrade():\n    pass\n')


def test_heads_follow_merges_and_annotated_lines_and_give_up_on_computed_ones(tmp_path, monkeypatch):
    versions = tmp_path / "versions"
    versions.mkdir()
    monkeypatch.setattr(bootstrap, "MIGRATIONS", tmp_path)
    _write_migration(versions, "a", "revision = 'a'\ndown_revision = None")
    _write_migration(versions, "b", "revision: str = 'b'\ndown_revision: Union[str, None] = 'a'")
    _write_migration(versions, "c", 'revision = "c"\ndown_revision = "a"')
    assert bootstrap.heads_from_files() == {"b", "c"}  # two branches
    _write_migration(versions, "d", "revision = 'd'\ndown_revision = ('b', 'c')")
    assert bootstrap.heads_from_files() == {"d"}  # merged
    _write_migration(versions, "e", "revision = 'e'\ndown_revision = 'd'.upper()")
    assert bootstrap.heads_from_files() is None  # Alembic is asked
    (versions / "e.py").unlink()
    _write_migration(versions, "f", "down_revision = 'd'")
    assert bootstrap.heads_from_files() is None


def test_alembic_decides_when_the_migration_files_cannot_tell(app, monkeypatch):
    with app.app_context():
        monkeypatch.setattr(bootstrap, "heads_from_files", lambda: None)
        assert bootstrap.database_at_head()
        monkeypatch.setattr(bootstrap, "heads_from_files", lambda: {"0000_not_a_revision"})
        assert bootstrap.database_at_head()
        monkeypatch.setattr(bootstrap, "_head_revisions", lambda: {"0000_not_a_revision"})
        assert not bootstrap.database_at_head()


def test_a_start_at_the_head_imports_neither_alembic_nor_flask_migrate(tmp_path):
    code = ("import sys\nimport run\nfrom app import create_app\napp = create_app()\n"
            "run.prepare(app, seed=False)\n"
            "print(sorted(m for m in ('alembic', 'flask_migrate', 'mako') if m in sys.modules))\n")
    env = server_env(INSTANCE_PATH=str(tmp_path / "instance"), ASYNC_MODE="threading",
                     DATABASE_URL=f"sqlite:///{tmp_path / 'desk.db'}")
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: S603
                           check=True, timeout=300) for _ in range(2)]
    first, restart = (r.stdout.strip().splitlines()[-1] for r in runs)
    assert first == "['alembic', 'flask_migrate', 'mako']"  # an empty database: migrated
    assert "Running upgrade" in runs[0].stderr
    assert restart == "[]"
    assert "Running upgrade" not in runs[1].stderr


def test_the_flask_db_commands_still_work(tmp_path):
    env = server_env(INSTANCE_PATH=str(tmp_path / "instance"), DATABASE_URL=f"sqlite:///{tmp_path / 'desk.db'}")
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "heads"], cwd=ROOT, env=env,  # noqa: S603
                            capture_output=True, text=True, check=True, timeout=300)
    [head] = bootstrap.heads_from_files()
    assert result.stdout.strip() == f"{head} (head)"


def test_run_pauses_the_collector_while_it_starts_and_then_collects_what_came_after():
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    run.pause_collector()
    try:
        assert not gc.isenabled()
        built = [[] for _ in range(10)]  # what the start built: frozen, never walked again
        heap.resume_collector()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(built)
        cycle: list = []
        cycle.append(cycle)  # garbage made by the running server is collected
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.enable()
