"""Filing reminders (``flask --app app remind``): each accountant is mailed their clients' filings
overdue or due within 3 days, each manager the overdue list; mailed through a local SMTP server.

The data, on 2026-05-20 (official deadlines: April's filings due 2026-04-20, May's 2026-05-22):

- 甲公司 (accountant): VAT and 城建税 monthly, 企业所得税 quarterly. March's VAT is still to file
  (overdue); March's 城建税 is filed with 120.00 to pay and not paid (overdue); Q1 企业所得税 is a
  zero return (done); April's VAT and 城建税 are due 05-22 (within 3 days).
- 乙公司 (accountant2): VAT quarterly, Q1 filed and paid (done): nothing to say.
- 丙公司 (accountant2): VAT monthly; March's is still to file (overdue).
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from app.models.tax_filing import TaxFiling
from app.services import reminders, tax_profile
from app.services import tax_filings as filings
from tests.factories import make_client

TODAY = date(2026, 5, 20)


@pytest.fixture
def books(app, session, user_id):
    sm = app.appbuilder.sm
    a = make_client(accountant=sm.find_user(username="accountant"), name="甲公司")
    b = make_client(accountant=sm.find_user(username="accountant2"), name="乙公司")
    c = make_client(accountant=sm.find_user(username="accountant2"), name="丙公司")
    tax_profile.set_tax_profile(session, a.id, "monthly", "urban", {
        "vat": "monthly", "urban_maintenance": "monthly", "corporate_income": "quarterly"})
    tax_profile.set_tax_profile(session, b.id, "quarterly", "urban", {"vat": "quarterly"})
    tax_profile.set_tax_profile(session, c.id, "monthly", "urban", {"vat": "monthly"})
    filings.generate_month(session, "2026-04")
    filings.generate_month(session, "2026-05")

    def one(client, tax: str, period: str) -> TaxFiling:
        return session.scalar(select(TaxFiling).where(TaxFiling.client_id == client.id, TaxFiling.tax == tax,
                                                      TaxFiling.period == period))

    clerk = user_id("accountant")
    filings.file_return(session, one(a, "urban_maintenance", "2026-03").id, clerk, False, "120.00")
    filings.file_return(session, one(a, "corporate_income", "2026-Q1").id, clerk, True)
    paid = filings.file_return(session, one(b, "vat", "2026-Q1").id, user_id("accountant2"), False, "300.00")
    filings.record_payment(session, paid.id, user_id("accountant2"), "300.00")
    return {"a": a, "b": b, "c": c}


def _lines(filings_: list[TaxFiling]) -> list[tuple[str, str, str, str]]:
    return [(f.client.name, f.tax.value, f.period, f.due.isoformat()) for f in filings_]


def test_who_is_told_of_what(app, session, books):
    by_user = {(d.name, d.role): d for d in reminders.digests(session, TODAY)}
    accountant = next(d for (name, role), d in by_user.items() if role == "Accountant"
                      and d.user_id == app.appbuilder.sm.find_user(username="accountant").id)
    assert _lines(accountant.overdue) == [("甲公司", "vat", "2026-03", "2026-04-20"),
                                          ("甲公司", "urban_maintenance", "2026-03", "2026-04-20")]
    assert sorted(_lines(accountant.due)) == [("甲公司", "urban_maintenance", "2026-04", "2026-05-22"),
                                              ("甲公司", "vat", "2026-04", "2026-05-22")]
    second = next(d for d in by_user.values() if d.role == "Accountant"
                  and d.user_id == app.appbuilder.sm.find_user(username="accountant2").id)
    assert _lines(second.overdue) == [("丙公司", "vat", "2026-03", "2026-04-20")]
    assert _lines(second.due) == [("丙公司", "vat", "2026-04", "2026-05-22")]
    managers = [d for d in by_user.values() if d.role == "Manager"]
    assert managers and all(sorted(_lines(d.overdue)) == [
        ("丙公司", "vat", "2026-03", "2026-04-20"), ("甲公司", "urban_maintenance", "2026-03", "2026-04-20"),
        ("甲公司", "vat", "2026-03", "2026-04-20")] and d.due == [] for d in managers)


def test_due_within_three_days_counts_today_and_the_third_day_only(session, books):
    assert [d for d in reminders.digests(session, date(2026, 5, 18)) if d.due] == []  # 05-22 is 4 days away
    on_19 = reminders.digests(session, date(2026, 5, 19))
    assert {f.due for d in on_19 for f in d.due} == {date(2026, 5, 22)}
    on_22 = {f.period for d in reminders.digests(session, date(2026, 5, 22)) for f in d.due}
    assert on_22 == {"2026-04"}  # the deadline day itself is due, not yet overdue


def test_a_day_with_nothing_due_mails_nobody(app, session, smtp):
    result = app.test_cli_runner().invoke(args=["remind", "--date", "2026-05-20"])
    assert result.exit_code == 0, result.output
    assert smtp.mails == [] and "0 reminder(s) sent" in result.output


def test_the_command_mails_each_digest_in_chinese(app, session, books, smtp):
    app.config["DESK_URL"] = "https://desk.example.com"
    result = app.test_cli_runner().invoke(args=["remind", "--date", "2026-05-20"])
    assert result.exit_code == 0, result.output
    sm = app.appbuilder.sm
    by_address = {recipients[0]: message for recipients, message in smtp.mails}
    accountant = by_address[sm.find_user(username="accountant").email]
    assert accountant["Subject"] == "报税提醒（2026-05-20）：逾期2项，3天内到期2项"
    text = accountant.get_body(("plain",)).get_content()
    assert "逾期申报（2 项）" in text and "3 天内到期（2 项）" in text
    assert "甲公司 · 增值税 · 2026-03 · 截止 2026-04-20 · 待申报" in text
    assert "甲公司 · 城市维护建设税 · 2026-03 · 截止 2026-04-20 · 已申报未缴款" in text
    assert "丙公司" not in text and "乙公司" not in text  # another accountant's clients
    assert "https://desk.example.com/taxfilings/overdue" in text
    html = accountant.get_body(("html",)).get_content()
    assert "<td>甲公司</td>" in html
    manager = by_address[sm.find_user(username="manager").email]
    manager_text = manager.get_body(("plain",)).get_content()
    assert "逾期申报（3 项）" in manager_text and "到期" not in manager_text.replace("逾期", "")
    assert f"{len(smtp.mails)} reminder(s) sent, 0 failed" in result.output


def test_client_names_are_escaped_in_the_html_part(app, session, books, smtp):
    books["a"].name = "<b>甲</b>公司"
    session.commit()
    app.test_cli_runner().invoke(args=["remind", "--date", "2026-05-20"])
    html = next(m for r, m in smtp.mails if r[0] == app.appbuilder.sm.find_user(username="accountant").email) \
        .get_body(("html",)).get_content()
    assert "<b>甲</b>" not in html and "&lt;b&gt;甲&lt;/b&gt;公司" in html


def test_a_dry_run_mails_nothing_and_says_who(app, session, books, smtp):
    result = app.test_cli_runner().invoke(args=["remind", "--date", "2026-05-20", "--dry-run"])
    assert result.exit_code == 0 and smtp.mails == []
    assert "would mail" in result.output and "planned (dry run)" in result.output


def test_an_unreachable_mail_server_fails_the_command_and_says_so(app, session, books, smtp_down):
    result = app.test_cli_runner().invoke(args=["remind", "--date", "2026-05-20"])
    assert result.exit_code == 1
    assert "NOT mailed" in result.output and "0 reminder(s) sent" in result.output


def test_a_bad_date_is_refused(app):
    result = app.test_cli_runner().invoke(args=["remind", "--date", "2026-13-01"])
    assert result.exit_code == 2 and "2026-13-01" in result.output


def test_an_inactive_user_is_not_told(app, session, books, smtp):
    user = app.appbuilder.sm.find_user(username="accountant")
    user.active = False
    session.commit()
    app.test_cli_runner().invoke(args=["remind", "--date", "2026-05-20"])
    assert user.email not in {r[0] for r, _ in smtp.mails}
