"""The month's work board: each derived state from data built here, the hand tick and its
refusals, late and due-soon cells against the 2026 official deadlines, the API and the statement
count. The board of 2026-03 has the filing deadline of April 2026: 2026-04-20 (税总办征科函〔2025〕64号)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.contracts import ContractStatus
from app.models.security import AuditLog
from app.models.work_board import WorkBoardTick
from app.services import contracts as contract_svc
from app.services import periods, tax_filings, tax_profile
from app.services import work_board as svc
from app.services.errors import NotFound, ValidationFailed
from tests.factories import make_books, make_client, make_contract, make_voucher
from tests.test_page_queries import counted

MARCH = "2026-03"
BEFORE = date(2026, 4, 10)  # ten days before the deadline: nothing is late


def _states(row) -> dict[str, str]:  # noqa: ANN001
    return {step: cell.state for step, cell in row.cells.items()}


def _row(board, client_id: int):  # noqa: ANN001, ANN202
    return next(r for r in board.rows if r.client_id == client_id)


@pytest.fixture
def accountant(app):
    return app.appbuilder.sm.find_user(username="accountant")


def _vat_filing(client_id: int):  # noqa: ANN202
    tax_profile.set_tax_profile(db.session, client_id, "monthly", "urban", {"vat": "monthly"})
    made = [f for f in tax_filings.generate_month(db.session, "2026-04") if f.client_id == client_id]
    assert [(f.period, f.due) for f in made] == [(MARCH, date(2026, 4, 20))]
    return made[0]


def test_a_client_with_nothing_done_has_every_step_to_do_and_nothing_to_file_pay_or_bill(app, accountant):
    client = make_client(accountant=accountant)
    board = svc.compute(db.session, MARCH, BEFORE)
    assert board.deadline == date(2026, 4, 20) and board.deadline_source == "official"
    assert _states(_row(board, client.id)) == {
        "documents": "todo", "bookkeeping": "todo", "review": "todo", "close": "todo",
        "filing": "na", "payment": "na", "fee": "na"}


def test_a_month_done_from_documents_to_fee_is_done_in_every_cell_with_who_and_when(app, accountant, user_id):
    client = make_client(accountant=accountant)
    book = make_books(client, start=MARCH)
    manager = user_id("manager")
    make_voucher(book, accountant.id, state="posted", reviewer_id=manager, day="2026-03-10")
    periods.close_period(db.session, client.id, MARCH, manager)
    filing = _vat_filing(client.id)
    tax_filings.file_return(db.session, filing.id, accountant.id, False, "30.00")
    tax_filings.record_payment(db.session, filing.id, manager, "30.00")
    contract = make_contract(client, ContractStatus.active)  # 500.00 a month from January
    assert len(contract_svc.bill_contract(db.session, contract, date(2026, 3, 1))) == 3
    contract_svc.record_payment(db.session, contract, "1500.00", date(2026, 3, 20))
    svc.tick(db.session, client.id, MARCH, "documents", accountant.id)

    row = _row(svc.compute(db.session, MARCH, date(2026, 4, 25)), client.id)
    assert _states(row) == {step: "done" for step in svc.STEPS}
    assert all(cell.late is None for cell in row.cells.values())  # done is never late
    assert row.cells["documents"].by == "accountant" and row.cells["documents"].at is not None
    assert row.cells["close"].by == "manager" and row.cells["close"].at is not None
    assert row.cells["filing"].by == "accountant" and row.cells["payment"].by == "manager"
    assert row.accountant == "accountant"


def test_drafts_a_pending_filing_and_a_bill_the_payments_do_not_reach_are_to_do(app, accountant, user_id):
    client = make_client(accountant=accountant)
    book = make_books(client, start=MARCH)
    make_voucher(book, accountant.id, state="posted", reviewer_id=user_id("manager"), day="2026-03-05")
    make_voucher(book, accountant.id, day="2026-03-06")  # a draft left
    _vat_filing(client.id)  # pending
    contract = make_contract(client, ContractStatus.active)
    contract_svc.bill_contract(db.session, contract, date(2026, 3, 1))  # Jan, Feb, Mar: 500.00 each
    contract_svc.record_payment(db.session, contract, "1499.99", date(2026, 3, 20))  # one cent short of March

    row = _row(svc.compute(db.session, MARCH, BEFORE), client.id)
    assert _states(row) == {"documents": "todo", "bookkeeping": "done", "review": "todo", "close": "todo",
                            "filing": "todo", "payment": "todo", "fee": "todo"}
    contract_svc.record_payment(db.session, contract, "0.01", date(2026, 3, 21))
    assert _row(svc.compute(db.session, MARCH, BEFORE), client.id).cells["fee"].state == "done"
    # February's bill is paid too, so February's fee is done while its books were never kept
    assert _states(_row(svc.compute(db.session, "2026-02", BEFORE), client.id))["fee"] == "done"


def test_a_zero_return_is_filed_and_needs_no_payment(app, accountant):
    client = make_client(accountant=accountant)
    filing = _vat_filing(client.id)
    row = _row(svc.compute(db.session, MARCH, BEFORE), client.id)
    assert (row.cells["filing"].state, row.cells["payment"].state) == ("todo", "todo")  # not filed yet
    tax_filings.file_return(db.session, filing.id, accountant.id, True, None)
    row = _row(svc.compute(db.session, MARCH, BEFORE), client.id)
    assert (row.cells["filing"].state, row.cells["payment"].state) == ("done", "na")


def test_a_quarterly_filing_belongs_to_the_quarter_s_last_month_only(app, accountant):
    client = make_client(accountant=accountant)
    tax_profile.set_tax_profile(db.session, client.id, "quarterly", "urban", {"vat": "quarterly"})
    made = tax_filings.generate_month(db.session, "2026-04")
    assert [(f.period, f.due) for f in made if f.client_id == client.id] == [("2026-Q1", date(2026, 4, 20))]
    assert _row(svc.compute(db.session, MARCH, BEFORE), client.id).cells["filing"].state == "todo"
    assert _row(svc.compute(db.session, "2026-02", BEFORE), client.id).cells["filing"].state == "na"


@pytest.mark.parametrize(("today", "late"), [
    (date(2026, 4, 16), None),  # four days before 2026-04-20
    (date(2026, 4, 17), "due_soon"),  # three days before
    (date(2026, 4, 20), "due_soon"),  # the deadline itself
    (date(2026, 4, 21), "late"),  # the day after
])
def test_a_step_to_do_is_due_soon_within_3_days_of_the_official_deadline_and_late_after_it(app, accountant,
                                                                                            today, late):
    client = make_client(accountant=accountant)
    row = _row(svc.compute(db.session, MARCH, today), client.id)
    assert row.cells["bookkeeping"].late == late
    assert row.cells["filing"].late is None  # nothing to file is never late


def test_the_may_board_is_measured_against_the_june_deadline(app, accountant):
    board = svc.compute(db.session, "2026-05", date(2026, 6, 15))  # June 2026: the 15th
    assert (board.deadline, board.label) == (date(2026, 6, 15), "2026-05")


def test_ticking_keeps_who_and_when_unticking_clears_it_and_both_are_audited(app, accountant):
    client = make_client(accountant=accountant)
    first = svc.tick(db.session, client.id, MARCH, "documents", accountant.id, scope=accountant.id)
    again = svc.tick(db.session, client.id, MARCH, "documents", None, scope=accountant.id)
    assert again.id == first.id and again.ticked_by_id == accountant.id  # the first tick stands
    assert svc.untick(db.session, client.id, MARCH, "documents", scope=accountant.id) is True
    assert svc.untick(db.session, client.id, MARCH, "documents", scope=accountant.id) is False
    assert _row(svc.compute(db.session, MARCH, BEFORE), client.id).cells["documents"].state == "todo"
    actions = db.session.scalars(select(AuditLog.action).where(AuditLog.object_type == "work_board_tick")
                                 .order_by(AuditLog.id)).all()
    assert actions == ["create", "delete"]


def test_a_tick_is_refused_for_a_derived_step_a_bad_month_and_a_client_outside_the_scope(app, accountant, user_id):
    mine = make_client(accountant=accountant)
    other = make_client(accountant=app.appbuilder.sm.find_user(username="manager"))
    with pytest.raises(ValidationFailed) as refused:
        svc.tick(db.session, mine.id, MARCH, "close", accountant.id)
    assert "step" in refused.value.errors
    with pytest.raises(ValidationFailed) as refused:
        svc.tick(db.session, mine.id, "2026-13", "documents", accountant.id)
    assert "period" in refused.value.errors
    with pytest.raises(NotFound):
        svc.tick(db.session, other.id, MARCH, "documents", accountant.id, scope=accountant.id)
    assert db.session.scalar(select(WorkBoardTick.id)) is None


def test_the_board_screen_ticks_by_hand_and_refuses_another_accountant_s_client(app, login_as, accountant):
    mine = make_client(accountant=accountant, name="甲公司")
    other = make_client(accountant=app.appbuilder.sm.find_user(username="manager"), name="乙公司")
    browser = login_as("accountant")
    page = browser.get("/workboard/?period=2026-03").get_data(as_text=True)
    assert "甲公司" in page and "乙公司" not in page  # an accountant's own clients
    assert 'id="work-board"' in page and "2026-04-20" in page
    response = browser.post("/workboard/tick", data={"client_id": mine.id, "period": MARCH, "step": "documents",
                                                     "done": "y"})
    assert response.status_code == 303
    tick = db.session.scalars(select(WorkBoardTick)).one()
    assert (tick.client_id, tick.period, tick.ticked_by_id) == (mine.id, 202603, accountant.id)
    refused = browser.post("/workboard/tick", data={"client_id": other.id, "period": MARCH, "step": "documents",
                                                    "done": "y"}, headers={"Referer": "/workboard/"})
    assert refused.status_code == 303
    assert db.session.scalar(select(WorkBoardTick.id).where(WorkBoardTick.client_id == other.id)) is None
    page = browser.get("/workboard/?period=2026-03").get_data(as_text=True)
    assert "该客户不存在。" in page  # the refusal, flashed


def test_the_api_answers_the_board_with_the_deadline_and_each_cell(app, login_as, accountant):
    mine = make_client(accountant=accountant, name="甲公司")
    make_client(accountant=app.appbuilder.sm.find_user(username="manager"), name="乙公司")
    data = login_as("accountant").get("/api/v1/work_board?period=2026-03").get_json()
    assert data["period"] == MARCH and data["deadline"] == "2026-04-20"
    assert [(r["client_id"], r["client_name"], r["accountant"]) for r in data["rows"]] == [
        (mine.id, "甲公司", "accountant")]
    assert data["rows"][0]["cells"]["fee"] == {"state": "na", "by": None, "at": None, "late": None}
    assert set(data["rows"][0]["cells"]) == set(svc.STEPS)
    manager = login_as("manager")
    both = manager.get("/api/v1/work_board?period=2026-03").get_json()
    assert {r["client_name"] for r in both["rows"]} >= {"甲公司", "乙公司"}
    narrowed = manager.get(f"/api/v1/work_board?period=2026-03&accountant_id={accountant.id}").get_json()
    assert [r["client_name"] for r in narrowed["rows"]] == ["甲公司"]
    bad = manager.get("/api/v1/work_board?period=2026-3")
    assert bad.status_code == 422 and "period" in bad.get_json()["errors"]


def test_the_open_filter_keeps_the_rows_whose_step_is_to_do(app, login_as, accountant):
    done = make_client(accountant=accountant, name="甲公司")
    make_client(accountant=accountant, name="乙公司")
    svc.tick(db.session, done.id, MARCH, "documents", accountant.id)
    data = login_as("manager").get("/api/v1/work_board?period=2026-03&open=documents").get_json()
    assert [r["client_name"] for r in data["rows"]] == ["乙公司"]


def test_the_board_runs_as_many_statements_for_12_clients_as_for_2(app, accountant, user_id):
    def grow(n: int) -> None:
        for _ in range(n):
            client = make_client(accountant=accountant)
            book = make_books(client, start=MARCH)
            make_voucher(book, accountant.id, day="2026-03-10")
            _vat_filing(client.id)
            contract = make_contract(client, ContractStatus.active)
            contract_svc.bill_contract(db.session, contract, date(2026, 3, 1))
            svc.tick(db.session, client.id, MARCH, "documents", accountant.id)

    grow(2)
    db.session.expire_all()
    with counted() as few:
        svc.compute(db.session, MARCH, BEFORE)
    grow(10)
    db.session.expire_all()
    with counted() as many:
        board = svc.compute(db.session, MARCH, BEFORE)
    assert len(board.rows) == 12
    assert len(many) == len(few) <= 8


def test_the_board_opens_on_last_month_and_finds_a_client_by_a_part_of_its_name(app, login_as, accountant):
    make_client(accountant=accountant, name="甲公司")
    make_client(accountant=accountant, name="乙公司")
    manager = login_as("manager")
    data = manager.get("/api/v1/work_board").get_json()
    today = date.today()
    last = date(today.year - 1, 12, 1) if today.month == 1 else date(today.year, today.month - 1, 1)
    assert data["period"] == f"{last.year:04d}-{last.month:02d}"
    assert [r["client_name"] for r in manager.get("/api/v1/work_board?q=乙").get_json()["rows"]] == ["乙公司"]
    page = manager.get("/workboard/?q=甲&period=2026-03").get_data(as_text=True)
    assert "甲公司" in page and "乙公司" not in page
