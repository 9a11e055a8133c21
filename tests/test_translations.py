"""Message catalogs: every project string has a zh_CN translation, and both languages render.

``test_every_project_string_has_a_zh_cn_translation`` is the CI gate: it extracts the strings
the code uses right now (not the committed ``messages.pot``, which may be stale) and fails on
any that the committed Simplified Chinese catalog (``translations/zh_Hans_CN``, the folder
gettext searches for the ``zh_CN`` locale) does not translate, in its context (``msgctxt``).

Words with two meanings are kept apart by contexts: ``AMBIGUOUS`` lists English words that the
code may only use with a context (``pgettext`` / ``lazy_pgettext``), and a text that FAB's own
screens use is translated in FAB's meaning (``app/views/fab_strings.py``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import flask_appbuilder
import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from app.config import BASE_DIR
from app.services.i18n import ensure_compiled, extract_args

TRANSLATIONS = BASE_DIR / "translations"
# Flask-Babel parses the "zh_CN" locale as zh_Hans_CN, and gettext looks for that folder name
# (then "zh", which is where FAB keeps its own Chinese); a "zh_CN" folder would never be read.
ZH_CN_PO = TRANSLATIONS / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
FAB_ZH_PO = Path(flask_appbuilder.__file__).parent / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
# English words the desk uses in more than one meaning: never without a context.
AMBIGUOUS = frozenset({"From", "To", "Closed", "Open", "Code", "Account", "Tax", "Show", "Active", "Groups"})
# FAB texts whose translation in the desk's catalog differs from FAB's zh one in wording only.
REWORDED_FAB_TEXTS = {"Back", "Security", "Passwords must match", "This field is required."}
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")


def _read(path: Path):
    with path.open("rb") as handle:
        return read_po(handle)


def _extract(target: Path, locations: bool = False):
    args = [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", *extract_args(),
            *(() if locations else ("--no-location",)), "--sort-output", "-o", str(target), "."]
    subprocess.run(args, cwd=BASE_DIR, check=True, capture_output=True)
    return _read(target)


def _msgids(message) -> tuple[str, ...]:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def _strings(message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def _placeholders(text: str) -> list[str]:
    return sorted(p for p in PLACEHOLDER.findall(text) if p != "%%")


def _fab_zh(msgid: str) -> str:
    message = _read(FAB_ZH_PO).get(msgid)
    assert message is not None and message.string, f"FAB's zh catalog has no {msgid!r}"
    return message.string


@pytest.fixture
def translated_app(app):
    """The app with compiled catalogs, and Flask-Babel's per-locale cache dropped.

    The cache may hold a catalog loaded by an earlier test before the ``.mo`` files existed.
    """
    ensure_compiled()
    app.extensions["babel"].instance.domain_instance.cache.clear()
    return app


def catalog_problems(template, catalog) -> list[str]:
    """What *catalog* lacks for *template*: untranslated or fuzzy msgids, changed placeholders."""
    missing, fuzzy, placeholder_errors = [], [], []
    for wanted in template:
        if not wanted.id:
            continue
        ids = _msgids(wanted)
        found = catalog.get(ids[0], context=wanted.context)
        name = ids[0] if wanted.context is None else f"{wanted.context}|{ids[0]}"
        if found is None or not all(_strings(found)):
            missing.append(name)
            continue
        if found.fuzzy:
            fuzzy.append(name)
            continue
        allowed = {tuple(_placeholders(msgid)) for msgid in ids}
        for string in _strings(found):
            if tuple(_placeholders(string)) not in allowed:
                placeholder_errors.append(
                    f"{ids[0]!r} -> {string!r}: {_placeholders(string)} instead of {_placeholders(ids[0])}")

    problems = []
    if missing:
        problems.append("untranslated in zh_CN:\n  " + "\n  ".join(repr(m) for m in missing))
    if fuzzy:
        problems.append("fuzzy in zh_CN:\n  " + "\n  ".join(repr(m) for m in fuzzy))
    if placeholder_errors:
        problems.append("placeholders differ:\n  " + "\n  ".join(placeholder_errors))
    return problems


def test_every_project_string_has_a_zh_cn_translation(tmp_path) -> None:
    template = _extract(tmp_path / "messages.pot")
    assert len([m for m in template if m.id]) > 100, "extraction found too few strings; is babel.cfg right?"

    problems = catalog_problems(template, _read(ZH_CN_PO))
    assert not problems, (
        "\n".join(problems)
        + f"\nRun `flask --app app translate update`, translate these in {ZH_CN_PO.relative_to(BASE_DIR)}, "
        "then `flask --app app translate compile`."
    )


FAB_STRINGS_FILE = "app/views/fab_strings.py"  # FAB's texts, in FAB's meaning, need no context


def context_problems(template) -> list[str]:
    """The messages of *template* that use a word of ``AMBIGUOUS`` without a context (anywhere
    but in the list of FAB's texts)."""
    return sorted({f"{_msgids(m)[0]!r}" for m in template if m.id and m.context is None
                   and _msgids(m)[0] in AMBIGUOUS
                   and any(path != FAB_STRINGS_FILE for path, _ in m.locations or [("?", 0)])})


def test_ambiguous_words_are_only_used_with_a_context(tmp_path) -> None:
    problems = context_problems(_extract(tmp_path / "messages.pot", locations=True))
    assert not problems, (
        f"use pgettext/lazy_pgettext(context, word) for {', '.join(problems)}: each has two meanings in Chinese")


def test_the_context_gate_catches_a_word_without_context() -> None:
    template = Catalog()
    template.add("Closed", locations=[("app/templates/ledger/periods.html", 18)])
    template.add("Closed", context="period")
    template.add("Voucher")
    template.add("Show", locations=[(FAB_STRINGS_FILE, 17)])
    catalog = Catalog(locale="zh_Hans_CN")
    catalog.add("Closed", "已结账", context="period")
    assert context_problems(template) == ["'Closed'"]
    assert catalog_problems(template, catalog) == ["untranslated in zh_CN:\n  'Closed'\n  'Voucher'\n  'Show'"]
    catalog.add("Closed", "已结账")
    catalog.add("Voucher", "凭证")
    catalog.add("Show", "查看")
    template.add("Closed", context="conversation")
    assert catalog_problems(template, catalog) == ["untranslated in zh_CN:\n  'conversation|Closed'"]


def test_every_entry_with_a_context_is_translated() -> None:
    entries = [m for m in _read(ZH_CN_PO) if m.id and m.context]
    assert len(entries) > 50
    untranslated = [f"{m.context}|{_msgids(m)[0]}" for m in entries if not all(_strings(m)) or m.fuzzy]
    assert not untranslated, untranslated
    # one word, different meanings: different Chinese
    assert {m.string for m in entries if m.id == "Closed"} >= {"已结账", "已结束", "已关闭"}
    assert {m.string for m in entries if m.id == "Code"} == {"科目编码", "验证码"}


def _fab_texts(tmp_path: Path) -> set[str]:
    """Every text FAB's own code and templates translate."""
    package = Path(flask_appbuilder.__file__).parent
    mapping = tmp_path / "fab-babel.cfg"
    mapping.write_text("[python: **.py]\n[jinja2: **/templates/**.html]\n", encoding="utf-8")
    target = tmp_path / "fab.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", str(mapping), "-k", "_l",
                    "-k", "lazy_gettext", "--no-location", "-o", str(target), str(package)],
                   check=True, capture_output=True)
    return {_msgids(m)[0] for m in _read(target) if m.id}


def test_texts_of_fabs_screens_keep_fabs_meaning(tmp_path) -> None:
    """Under zh_CN the desk's catalog overrides FAB's: a FAB text the desk translates without a
    context must be one the desk translates in FAB's meaning on purpose (``FAB_STRINGS``), and
    where FAB's own catalog has it, the same words or a reviewed rewording."""
    from babel.messages.mofile import read_mo

    from app.views.fab_strings import FAB_STRINGS

    fab_texts = _fab_texts(tmp_path)
    assert {"Show", "Add", "Search", "Username"} <= fab_texts
    with (FAB_ZH_PO.with_suffix(".mo")).open("rb") as handle:
        fab_zh = read_mo(handle)
    ours = {_msgids(m)[0]: m.string for m in _read(ZH_CN_PO) if m.id and m.context is None}
    declared = {text._args[0] for text in FAB_STRINGS}
    shared = set(ours) & fab_texts
    assert shared - declared == set(), "FAB uses these texts too: list them in app/views/fab_strings.py"
    reworded = {msgid for msgid in shared if (fab_zh.get(msgid) is not None and fab_zh.get(msgid).string
                                              and fab_zh.get(msgid).string != ours[msgid])}
    assert reworded <= REWORDED_FAB_TEXTS, reworded - REWORDED_FAB_TEXTS
    assert ours["Show"] == "查看"  # FAB's record button; the report forms' "Show" has a context


def test_the_gate_catches_missing_fuzzy_and_broken_placeholders() -> None:
    template = Catalog()
    for msgid in ("Clients", "Draft", "Welcome, %(name)s.", "%(n)s bill(s) created.", "Fee bills"):
        template.add(msgid)
    catalog = Catalog(locale="zh_Hans_CN")
    catalog.add("Clients", "客户")
    catalog.add("Draft", "")  # empty
    catalog.add("Welcome, %(name)s.", "欢迎。")  # placeholder dropped
    catalog.add("%(n)s bill(s) created.", "已生成 %(n)s 张账单，%(x)s。")  # placeholder added
    catalog.add("Fee bills", "收费账单", flags=["fuzzy"])

    report = "\n".join(catalog_problems(template, catalog))
    assert "'Draft'" in report
    assert "fuzzy in zh_CN:\n  'Fee bills'" in report
    assert "'Welcome, %(name)s.'" in report
    assert "'%(n)s bill(s) created.'" in report
    assert "'Clients'" not in report


def test_catalogs_have_no_fuzzy_entries() -> None:
    for po_path in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")):
        fuzzy = [m.id for m in _read(po_path) if m.id and m.fuzzy]
        assert not fuzzy, f"{po_path}: fuzzy entries {fuzzy}"


def test_compiled_catalog_is_current() -> None:
    ensure_compiled()
    mo_path = ZH_CN_PO.with_suffix(".mo")
    assert mo_path.exists()
    assert mo_path.stat().st_mtime >= ZH_CN_PO.stat().st_mtime


def test_login_page_shows_fab_strings_in_chinese_then_english(translated_app) -> None:
    prompt = "Enter your login and password below"
    client = translated_app.test_client()

    page = client.get("/login/").get_data(as_text=True)
    assert _fab_zh(prompt) in page  # "请在下面输入您的用户名和密码": FAB's zh under zh_CN
    assert _fab_zh("Username") in page
    assert prompt not in page

    assert client.get("/lang/en").status_code == 302
    page = client.get("/login/").get_data(as_text=True)
    assert prompt in page
    assert "Username" in page
    assert _fab_zh(prompt) not in page


def test_client_list_shows_project_strings_in_chinese_then_english(translated_app, login_as) -> None:
    client = login_as("manager")

    page = client.get("/clientmodelview/list/").get_data(as_text=True)
    assert "统一社会信用代码" in page  # "Unified social credit code" column
    assert "纳税人类型" in page  # "Taxpayer type" column
    assert "Unified social credit code" not in page

    assert client.get("/lang/en").status_code == 302
    page = client.get("/clientmodelview/list/").get_data(as_text=True)
    assert "Unified social credit code" in page
    assert "Taxpayer type" in page
    assert "统一社会信用代码" not in page


def test_default_locale_finds_the_project_catalog(translated_app) -> None:
    """The folder name must be the one gettext derives from the parsed default locale."""
    from babel import Locale
    from babel.support import Translations

    locale = Locale.parse(translated_app.config["BABEL_DEFAULT_LOCALE"])
    catalog = Translations.load(str(TRANSLATIONS), [locale])
    assert catalog.gettext("Unified social credit code") == "统一社会信用代码", (
        f"no catalog for {locale} under {TRANSLATIONS}: its folder must be named {str(locale)!r}")
