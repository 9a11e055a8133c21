"""Archives (档案): what an upload accepts, where files live, who may download them.

Screens are used in English (``/lang/en``) so the messages asserted here do not depend on the
state of the Chinese catalog.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.models.contracts import ContractStatus
from app.models.documents import Document, DocumentType
from app.models.security import AuditLog
from app.services.demo import minimal_pdf
from app.services.documents import store_document
from tests.factories import make_client, make_contract

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40 + b"\xff\xd9"


def _zip(entries: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return out.getvalue()


XLSX = _zip({
    "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                           'package/2006/content-types"/>',
    "xl/workbook.xml": '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
                       'spreadsheetml/2006/main"/>',
})
OFD = _zip({"OFD.xml": '<?xml version="1.0"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"/>'})
PDF = minimal_pdf("invoice 2026-01")

ACCEPTED = [
    ("scan.pdf", PDF, "application/pdf"),
    ("receipt.png", PNG, "image/png"),
    ("photo.jpg", JPEG, "image/jpeg"),
    ("ledger.xlsx", XLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("电子发票.ofd", OFD, "application/ofd"),
]


# --- helpers ------------------------------------------------------------------------------

def _user(app, username: str):
    return app.appbuilder.sm.find_user(username=username)


def _english(test_client):
    assert test_client.get("/lang/en").status_code == 302
    return test_client


def _documents(session) -> int:
    return session.scalar(select(func.count()).select_from(Document))


def _downloads(session) -> int:
    return session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "download"))


def _files(app) -> list[Path]:
    """Every file under UPLOAD_DIR, hidden temporary files included."""
    root = Path(app.config["UPLOAD_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _form(client_id: int, filename: str, data: bytes, **fields) -> dict:
    form = {"client_id": str(client_id), "doc_type": "invoice", "title": "", "period": "",
            "contract_id": "", "note": ""}
    form.update({k: str(v) for k, v in fields.items()})
    form["file"] = (io.BytesIO(data), filename)
    return form


def _upload(test_client, client_id: int, filename: str, data: bytes, **fields):
    return test_client.post("/documentmodelview/add", data=_form(client_id, filename, data, **fields),
                            content_type="multipart/form-data")


def _stored(app, session, client, filename="a.pdf", data=PDF) -> Document:
    return store_document(session, app.config["UPLOAD_DIR"], app.config["UPLOAD_MAX_BYTES"],
                          client_id=client.id, filename=filename, stream=io.BytesIO(data),
                          doc_type=DocumentType.invoice, title="存档发票")


# --- upload through the screen --------------------------------------------------------------

@pytest.mark.parametrize(("filename", "data", "content_type"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_upload_of_each_accepted_type_stores_one_row_and_one_file(app, session, login_as, filename, data,
                                                                   content_type):
    client = make_client()
    contract = make_contract(client, status=ContractStatus.active)
    browser = _english(login_as("manager"))

    response = _upload(browser, client.id, filename, data, title="一月发票", period="2026-01",
                       contract_id=contract.id, note="备注")

    assert response.status_code == 302
    document = session.scalars(select(Document)).one()
    assert response.headers["Location"].endswith(f"/documentmodelview/show/{document.id}")
    assert (document.client_id, document.contract_id, document.period) == (client.id, contract.id, "2026-01")
    assert (document.title, document.note, document.doc_type) == ("一月发票", "备注", DocumentType.invoice)
    assert document.original_filename == filename
    assert document.content_type == content_type
    assert document.size_bytes == len(data)
    assert document.sha256 == hashlib.sha256(data).hexdigest()
    assert document.uploaded_by_id == _user(app, "manager").id
    files = _files(app)
    assert files == [Path(app.config["UPLOAD_DIR"]) / document.stored_name]
    assert files[0].read_bytes() == data
    page = browser.get(f"/documentmodelview/show/{document.id}", follow_redirects=True)
    assert "一月发票" in page.text and "Document uploaded." in page.text


def test_stored_files_get_random_names_under_upload_dir_never_under_static(app, session, login_as):
    client = make_client()
    browser = login_as("manager")

    for _ in range(2):
        assert _upload(browser, client.id, "../../static/evil.pdf", PDF).status_code == 302

    documents = session.scalars(select(Document).order_by(Document.id)).all()
    names = [d.stored_name for d in documents]
    assert len(set(names)) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}\.pdf", name) for name in names)
    assert [d.original_filename for d in documents] == ["evil.pdf", "evil.pdf"]
    upload_dir = Path(app.config["UPLOAD_DIR"]).resolve()
    assert sorted(p.name for p in _files(app)) == sorted(names)
    static = Path(app.static_folder).resolve()
    assert not upload_dir.is_relative_to(static)
    assert not any(p.name in names or p.name == "evil.pdf" for p in static.rglob("*"))
    for name in names:
        assert browser.get(f"/static/{name}").status_code == 404


def test_uploaded_archives_are_readable_by_the_server_user_only(app, session, login_as):
    import os
    import stat

    client = make_client()
    old_umask = os.umask(0o022)  # the usual umask would make them world-readable
    try:
        assert _upload(login_as("manager"), client.id, "a.pdf", PDF).status_code == 302
        document = _stored(app, session, client)  # the API and the screen share the service
    finally:
        os.umask(old_umask)
    folder = Path(app.config["UPLOAD_DIR"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = _files(app)
    assert len(files) == 2 and folder / document.stored_name in files
    assert {stat.S_IMODE(path.stat().st_mode) for path in files} == {0o600}


def test_upload_of_exactly_the_size_limit_is_accepted(app, session, login_as):
    app.config["UPLOAD_MAX_BYTES"] = len(PDF)
    response = _upload(login_as("manager"), make_client().id, "limit.pdf", PDF)
    assert response.status_code == 302
    assert _documents(session) == 1 and len(_files(app)) == 1


def _text_named_pdf():
    return "notes.pdf", b"just some text, not a PDF at all\n", {}


REJECTED = {
    "exe_extension": (lambda c: ("setup.exe", b"MZ\x90\x00" + b"\x00" * 60, {}),
                      "File type not allowed."),
    "content_not_matching_extension": (lambda c: _text_named_pdf(),
                                       "The file&#39;s content does not match its type."),
    "png_content_named_pdf": (lambda c: ("photo.pdf", PNG, {}),
                              "The file&#39;s content does not match its type."),
    "zip_without_markers_named_xlsx": (lambda c: ("book.xlsx", _zip({"readme.txt": "hi"}), {}),
                                       "The file&#39;s content does not match its type."),
    "empty_file": (lambda c: ("empty.pdf", b"", {}), "The file is empty."),
    "too_large": (lambda c: ("big.pdf", PDF + b"\n" * 1024 * 1024, {}), "The file is larger than 1.0 MB."),
    "bad_period": (lambda c: ("scan.pdf", PDF, {"period": "2026-13"}), "The period must look like 2026-01."),
    "contract_of_another_client": (
        lambda c: ("scan.pdf", PDF, {"contract_id": make_contract(make_client(), status=ContractStatus.active).id}),
        "The contract does not belong to this client."),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_rejected_upload_shows_the_error_and_stores_nothing(app, session, login_as, case):
    app.config["UPLOAD_MAX_BYTES"] = 1024 * 1024
    client = make_client()
    build, message = REJECTED[case]
    filename, data, fields = build(client)
    browser = _english(login_as("manager"))

    response = _upload(browser, client.id, filename, data, **fields)

    assert response.status_code == 200
    assert message in response.text
    assert 'id="upload-form"' in response.text  # the form is shown again
    assert _documents(session) == 0
    assert _files(app) == []


def test_accountant_cannot_upload_to_a_client_not_assigned_to_them(app, session, login_as):
    make_client(accountant=_user(app, "accountant"))
    foreign = make_client(accountant=_user(app, "accountant2"))
    browser = _english(login_as("accountant"))

    response = _upload(browser, foreign.id, "scan.pdf", PDF)

    assert response.status_code == 200
    assert "Not a valid choice" in response.text
    assert _documents(session) == 0 and _files(app) == []


def test_a_failing_commit_leaves_no_file_and_no_temporary_file(app, session, monkeypatch):
    client = make_client()

    def broken_commit():
        raise RuntimeError("database went away")

    monkeypatch.setattr(session, "commit", broken_commit)
    with pytest.raises(RuntimeError):
        _stored(app, session, client)
    monkeypatch.undo()

    assert _documents(session) == 0
    assert _files(app) == []


# --- download -----------------------------------------------------------------------------

def test_download_returns_the_bytes_as_attachment_and_audits_it(app, session, login_as):
    document = _stored(app, session, make_client(), filename="一月发票.pdf")
    before = _downloads(session)

    response = login_as("manager").get(f"/documentmodelview/download/{document.id}")

    assert response.status_code == 200
    assert response.data == PDF
    assert response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert "filename*=UTF-8''%E4%B8%80%E6%9C%88%E5%8F%91%E7%A5%A8.pdf" in disposition
    assert _downloads(session) == before + 1
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "download")).one()
    assert (entry.object_type, entry.object_id) == ("document", str(document.id))
    assert (entry.user_id, entry.username) == (_user(app, "manager").id, "manager")


def test_accountant_downloads_own_clients_documents_only(app, session, login_as):
    own = _stored(app, session, make_client(accountant=_user(app, "accountant")), data=PDF)
    foreign = _stored(app, session, make_client(accountant=_user(app, "accountant2")), data=PNG,
                      filename="x.png")
    browser = login_as("accountant")

    denied = browser.get(f"/documentmodelview/download/{foreign.id}")
    assert denied.status_code == 404
    assert PNG not in denied.data
    assert _downloads(session) == 0

    allowed = browser.get(f"/documentmodelview/download/{own.id}")
    assert allowed.status_code == 200 and allowed.data == PDF
    assert _downloads(session) == 1


def test_agent_may_not_download_any_document(app, session, login_as):
    document = _stored(app, session, make_client())

    response = login_as("agent").get(f"/documentmodelview/download/{document.id}")

    assert response.status_code == 403 or (
        response.status_code == 302 and "/login/" in response.headers["Location"])
    assert PDF not in response.data
    assert _downloads(session) == 0


def test_reviewer_may_download_any_clients_document(app, session, login_as):
    document = _stored(app, session, make_client(accountant=_user(app, "accountant")))

    response = login_as("reviewer").get(f"/documentmodelview/download/{document.id}")

    assert response.status_code == 200 and response.data == PDF
    assert _downloads(session) == 1


def test_download_of_a_missing_document_is_404(app, session, login_as):
    assert login_as("manager").get("/documentmodelview/download/999999").status_code == 404
    assert _downloads(session) == 0


# --- delete -------------------------------------------------------------------------------

def test_deleting_a_document_deletes_its_file(app, session, login_as):
    client = make_client()
    kept = _stored(app, session, client, data=PNG, filename="kept.png")
    document = _stored(app, session, client)
    pk, path = document.id, Path(app.config["UPLOAD_DIR"]) / document.stored_name
    assert path.is_file()

    response = login_as("manager").post(f"/documentmodelview/delete/{pk}")

    assert response.status_code == 302
    session.expire_all()
    assert session.get(Document, pk) is None
    assert not path.exists()
    assert _files(app) == [Path(app.config["UPLOAD_DIR"]) / kept.stored_name]


# --- API ----------------------------------------------------------------------------------

def _api_upload(app, headers, client_id, filename, data, **fields):
    form = {"client_id": str(client_id), "doc_type": "invoice", **{k: str(v) for k, v in fields.items()},
            "file": (io.BytesIO(data), filename)}
    return app.test_client().post("/api/v1/document/upload", headers=headers, data=form,
                                  content_type="multipart/form-data")


def test_api_upload_creates_the_document_and_shows_its_metadata(app, session, api_token):
    client = make_client(name="接口档案客户有限公司")
    headers = api_token("manager")

    response = _api_upload(app, headers, client.id, "ledger.xlsx", XLSX, period="2026-02", title="二月账簿")

    assert response.status_code == 201, response.json
    assert response.json["sha256"] == hashlib.sha256(XLSX).hexdigest()
    meta = app.test_client().get(f"/api/v1/document/{response.json['id']}", headers=headers)
    assert meta.status_code == 200
    result = meta.json["result"]
    assert result["client"] == {"id": client.id, "name": "接口档案客户有限公司"}
    assert (result["title"], result["period"], result["doc_type"]) == ("二月账簿", "2026-02", "invoice")
    assert (result["original_filename"], result["size_bytes"]) == ("ledger.xlsx", len(XLSX))
    assert result["uploaded_by"] == {"username": "manager"}
    assert "stored_name" not in result
    assert _documents(session) == 1 and len(_files(app)) == 1


@pytest.mark.parametrize(("filename", "data"), [("setup.exe", b"MZ\x90\x00"), ("notes.pdf", b"plain text"),
                                                ("empty.pdf", b"")])
def test_api_upload_of_a_bad_file_is_422_naming_file_and_stores_nothing(app, session, api_token, filename,
                                                                        data):
    response = _api_upload(app, api_token("manager"), make_client().id, filename, data)

    assert response.status_code == 422
    assert list(response.json["errors"]) == ["file"]
    assert _documents(session) == 0 and _files(app) == []


def test_api_upload_without_a_file_is_422_naming_file(app, session, api_token):
    response = app.test_client().post("/api/v1/document/upload", headers=api_token("manager"),
                                      data={"client_id": str(make_client().id), "doc_type": "invoice"},
                                      content_type="multipart/form-data")
    assert response.status_code == 422
    assert "file" in response.json["errors"]
    assert _documents(session) == 0


def test_api_upload_to_a_client_outside_the_accountants_scope_is_404_and_stores_nothing(app, session,
                                                                                       api_token):
    foreign = make_client(accountant=_user(app, "accountant2"))

    response = _api_upload(app, api_token("accountant"), foreign.id, "scan.pdf", PDF)

    assert response.status_code == 404
    assert _documents(session) == 0 and _files(app) == []


def test_api_download_returns_the_bytes_and_audits_it(app, session, api_token):
    own = _stored(app, session, make_client(accountant=_user(app, "accountant")), data=OFD, filename="票.ofd")
    foreign = _stored(app, session, make_client(accountant=_user(app, "accountant2")))
    headers = api_token("accountant")
    c = app.test_client()

    response = c.get(f"/api/v1/document/{own.id}/download", headers=headers)

    assert response.status_code == 200
    assert response.data == OFD
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert c.get(f"/api/v1/document/{foreign.id}/download", headers=headers).status_code == 404
    assert _downloads(session) == 1


def test_a_very_long_file_name_is_kept_shortened_with_its_extension(app, session, login_as):
    long_name = "发" * 300 + ".pdf"

    response = _upload(login_as("manager"), make_client().id, long_name, PDF)

    assert response.status_code == 302
    document = session.scalars(select(Document)).one()
    assert len(document.original_filename) <= 255 and document.original_filename.endswith(".pdf")
    assert len(document.title) <= 200 and document.title.startswith("发")
    assert len(_files(app)) == 1


def test_api_upload_with_a_contract_of_another_client_is_422_and_stores_nothing(app, session, api_token):
    other_contract = make_contract(make_client(), status=ContractStatus.active)

    response = _api_upload(app, api_token("manager"), make_client().id, "scan.pdf", PDF,
                           contract_id=other_contract.id)

    assert response.status_code == 422
    assert list(response.json["errors"]) == ["contract_id"]
    assert _documents(session) == 0 and _files(app) == []


def test_api_upload_with_a_bad_period_is_422_and_stores_nothing(app, session, api_token):
    response = _api_upload(app, api_token("manager"), make_client().id, "scan.pdf", PDF, period="2026-13")

    assert response.status_code == 422
    assert list(response.json["errors"]) == ["period"]
    assert _documents(session) == 0 and _files(app) == []
