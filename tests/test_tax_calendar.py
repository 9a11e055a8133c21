"""The filing calendar: the official 2026 deadlines, the estimate by art. 109 where no official date
is stored, and an Admin entering a year's official dates."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import delete, func, select

from app.models.security import AuditLog
from app.models.tax_filing import TaxDeadline
from app.services import tax_calendar as calendar_svc
from app.services.errors import ValidationFailed

# 税总办征科函〔2025〕64号, by hand from the notice.
OFFICIAL_2026 = ["2026-01-20", "2026-02-24", "2026-03-16", "2026-04-20", "2026-05-22", "2026-06-15",
                 "2026-07-15", "2026-08-17", "2026-09-15", "2026-10-26", "2026-11-16", "2026-12-15"]
# 2030 (holidays not known yet): the 15th, moved past Saturdays and Sundays only. 2030-01-01 is a
# Tuesday, so the 15ths fall on Tue, Fri, Fri, Mon, Wed, Sat, Mon, Thu, Sun, Tue, Fri, Sun.
WEEKENDS_2030 = ["2030-01-15", "2030-02-15", "2030-03-15", "2030-04-15", "2030-05-15", "2030-06-17",
                 "2030-07-15", "2030-08-15", "2030-09-16", "2030-10-15", "2030-11-15", "2030-12-16"]


def _calendar(app, headers, year) -> tuple[int, dict]:
    response = app.test_client().get(f"/api/v1/tax/calendar?year={year}", headers=headers)
    return response.status_code, response.json


def test_2026_deadlines_are_the_official_ones_of_the_notice(app, api_token):
    status, body = _calendar(app, api_token("accountant"), 2026)
    assert status == 200, body
    assert body["year"] == 2026
    assert [d["month"] for d in body["deadlines"]] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert [d["due"] for d in body["deadlines"]] == OFFICIAL_2026
    assert {d["source"] for d in body["deadlines"]} == {"official"}
    assert body["deadlines"][0]["note"] == "税总办征科函〔2025〕64号"


def test_the_estimate_reproduces_every_official_2026_date(session):
    estimated = [calendar_svc.estimate_deadline(2026, m) for m in range(1, 13)]
    assert [d.due.isoformat() for d in estimated] == OFFICIAL_2026
    assert {d.source for d in estimated} == {"estimated"}


@pytest.mark.parametrize(("month", "due", "why"), [
    (1, date(2026, 1, 20), "1–3 January off: 3 working days after the 15th (16, 19, 20)"),
    (2, date(2026, 2, 24), "15–23 February off: the 15th is a holiday, next working day"),
    (5, date(2026, 5, 22), "1–5 May off: 5 working days after the 15th (18–22)"),
    (10, date(2026, 10, 26), "1–7 October off: 7 working days after the 15th (16, 19–23, 26)"),
    (8, date(2026, 8, 17), "the 15th is a Saturday"),
])
def test_each_kind_of_move_of_the_estimate(session, month, due, why):
    assert calendar_svc.estimate_deadline(2026, month).due == due, why


def test_without_official_rows_2026_is_estimated_with_the_same_dates(app, api_token, session):
    session.execute(delete(TaxDeadline).where(TaxDeadline.year == 2026))
    session.commit()
    status, body = _calendar(app, api_token("manager"), 2026)
    assert status == 200
    assert [d["due"] for d in body["deadlines"]] == OFFICIAL_2026
    assert {d["source"] for d in body["deadlines"]} == {"estimated"}
    assert "weekends only" not in body["deadlines"][0]["note"] and "仅按周末" not in body["deadlines"][0]["note"]


def test_a_year_without_known_holidays_is_estimated_from_weekends_only_and_says_so(app, api_token):
    assert not calendar_svc.holidays_known(2030)
    status, body = _calendar(app, api_token("reviewer"), 2030)
    assert status == 200
    assert [d["due"] for d in body["deadlines"]] == WEEKENDS_2030
    assert {d["source"] for d in body["deadlines"]} == {"estimated"}
    assert "weekends only" in body["deadlines"][5]["note"] or "仅按周末估算" in body["deadlines"][5]["note"]


@pytest.mark.parametrize("year", ["", "abc", "1999", "2101", "20266", "２０２６"])
def test_a_bad_year_is_refused_with_the_error_shape(app, api_token, year):
    status, body = _calendar(app, api_token("manager"), year)
    assert status == 422
    assert set(body) == {"message", "errors"}
    assert "year" in body["errors"]


def _dates(year: int, **changed) -> dict[str, str]:
    dates = {f"{m:02d}": f"{year}-{m:02d}-{15 if m != 6 else 18}" for m in range(1, 13)}
    dates.update(changed)
    return dates


def test_admin_enters_a_years_official_dates_and_they_replace_the_estimate(app, api_token, session):
    api = app.test_client()
    response = api.put("/api/v1/tax/calendar/2030", headers=api_token("admin"),
                       json={"deadlines": _dates(2030), "note": "税总办征科函〔2029〕1号"})
    assert response.status_code == 200, response.json
    june = response.json["deadlines"][5]
    assert june == {"month": "2030-06", "due": "2030-06-18", "source": "official", "note": "税总办征科函〔2029〕1号"}
    status, body = _calendar(app, api_token("accountant"), 2030)
    assert [d["due"] for d in body["deadlines"]][5:9] == ["2030-06-18", "2030-07-15", "2030-08-15", "2030-09-15"]
    assert {d["source"] for d in body["deadlines"]} == {"official"}
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.object_type == "tax_deadline", AuditLog.action == "create")) == 12
    # entered again with one date corrected: one row changes
    response = api.put("/api/v1/tax/calendar/2030", headers=api_token("admin"),
                       json={"deadlines": _dates(2030, **{"06": "2030-06-17"}), "note": "税总办征科函〔2029〕1号"})
    assert response.json["deadlines"][5]["due"] == "2030-06-17"
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.object_type == "tax_deadline", AuditLog.action == "update")) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"deadlines": {"01": "2030-01-15"}, "note": "x"}, "deadlines"),
    ({"deadlines": _dates(2030, **{"03": "2030-04-15"}), "note": "x"}, "deadlines.03"),
    ({"deadlines": _dates(2030, **{"03": "2030-03-14"}), "note": "x"}, "deadlines.03"),
    ({"deadlines": _dates(2030, **{"03": "15 March"}), "note": "x"}, "deadlines.03"),
    ({"deadlines": {**_dates(2030), "13": "2030-12-15"}, "note": "x"}, "deadlines.13"),
    ({"deadlines": _dates(2030), "note": ""}, "note"),
    ({"deadlines": ["2030-01-15"], "note": "x"}, "deadlines"),
])
def test_official_dates_are_checked_and_a_refusal_writes_nothing(app, api_token, session, body, field):
    response = app.test_client().put("/api/v1/tax/calendar/2030", headers=api_token("admin"), json=body)
    assert response.status_code == 422
    assert field in response.json["errors"], response.json
    assert session.scalar(select(func.count()).select_from(TaxDeadline).where(TaxDeadline.year == 2030)) == 0


def test_only_the_admin_enters_official_dates(app, api_token, session):
    response = app.test_client().put("/api/v1/tax/calendar/2030", headers=api_token("manager"),
                                     json={"deadlines": _dates(2030), "note": "x"})
    assert response.status_code == 403
    assert app.test_client().get("/api/v1/tax/calendar?year=2026", headers=api_token("agent")).status_code == 403


def test_the_service_refuses_a_year_out_of_range(session):
    with pytest.raises(ValidationFailed) as refused:
        calendar_svc.set_official_year(session, 1999, _dates(1999), "x")
    assert "year" in refused.value.errors


def test_admin_enters_the_dates_on_the_calendar_screen(app, login_as, session):
    browser = login_as("admin")
    page = browser.get("/taxcalendar/?year=2030").get_data(as_text=True)
    assert 'id="tax-calendar"' in page and "2030-06-17" in page
    form = {f"due_{m:02d}": due for m, due in ((int(k), v) for k, v in _dates(2030).items())}
    response = browser.post("/taxcalendar/save", data={"year": "2030", "note": "税总办征科函〔2029〕1号", **form})
    assert response.status_code == 302
    assert session.scalar(select(TaxDeadline.due).where(TaxDeadline.year == 2030, TaxDeadline.month == 6)) == \
        date(2030, 6, 18)
    refused = browser.post("/taxcalendar/save", data={"year": "2031", "note": "x", "due_01": "2031-01-15"},
                           headers={"Referer": "http://localhost/taxcalendar/?year=2031"}, follow_redirects=True)
    assert 'id="tax-calendar"' in refused.get_data(as_text=True)
    assert "YYYY-MM-DD" in refused.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(TaxDeadline).where(TaxDeadline.year == 2031)) == 0


def test_staff_read_the_calendar_screen_without_the_form(app, login_as):
    page = login_as("accountant").get("/taxcalendar/?year=2026").get_data(as_text=True)
    assert "2026-10-26" in page
    assert "/taxcalendar/save" not in page


def test_two_admins_entering_a_year_at_once_the_later_gets_a_409_and_writes_nothing(app, api_token, session):
    """The other admin's rows land between this request's read and its write (simulated in the
    same transaction, so that it happens at that exact point on every database)."""
    from sqlalchemy import event, insert
    from sqlalchemy.orm import Session as OrmSession

    raced: list[bool] = []

    def the_other_admin(flushing: OrmSession, *_: object) -> None:
        if raced or not any(isinstance(row, TaxDeadline) for row in flushing.new):
            return
        raced.append(True)
        flushing.connection().execute(insert(TaxDeadline.__table__).values(
            year=2030, month=1, due=date(2030, 1, 21), source_note="另一位管理员"))

    headers = api_token("admin")
    event.listen(OrmSession, "before_flush", the_other_admin)
    try:
        response = app.test_client().put("/api/v1/tax/calendar/2030", headers={**headers, "Accept-Language": "zh-CN"},
                                         json={"deadlines": _dates(2030), "note": "税总办征科函〔2029〕1号"})
    finally:
        event.remove(OrmSession, "before_flush", the_other_admin)
    assert raced
    assert response.status_code == 409, response.get_data(as_text=True)
    assert "其他人刚刚同时录入了 2030 年的申报期限" in response.json["errors"]["deadlines"][0]
    assert session.scalar(select(func.count()).select_from(TaxDeadline).where(TaxDeadline.year == 2030)) == 0


def test_the_calendar_screen_marks_each_estimated_month_as_such(app, login_as):
    """2027 has no official dates yet (and chinese-calendar 1.11 does not know its holidays): every
    month is shown as 估算 with the weekends-only note; 2026's are the notice's, marked 官方公布."""
    assert not calendar_svc.holidays_known(2027)  # a chinese-calendar that knows 2027 changes the note
    browser = login_as("accountant")
    page = browser.get("/taxcalendar/?year=2027").get_data(as_text=True)
    rows = page.split('id="tax-calendar"', 1)[1].split("</tbody>", 1)[0].split('<tr class="')[1:]
    assert len(rows) == 12
    assert all(row.startswith("estimated") and "<td>估算</td>" in row and "仅按周末估算" in row for row in rows)
    # 2027-05-15 is a Saturday: the estimate is Monday the 17th
    assert '<td class="due">2027-05-17</td>' in rows[4]
    official = browser.get("/taxcalendar/?year=2026").get_data(as_text=True)
    rows = official.split('id="tax-calendar"', 1)[1].split("</tbody>", 1)[0].split('<tr class="')[1:]
    assert all(row.startswith("official") and "税总办征科函〔2025〕64号" in row for row in rows)
    assert "<td>估算</td>" not in official
