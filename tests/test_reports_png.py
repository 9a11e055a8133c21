"""Every document type rendered to PNG with pdftoppm (poppler-utils), so a person can look.

The images go to ``$REPORTS_PNG_DIR`` when set (e.g. ``REPORTS_PNG_DIR=/tmp/pdf-png``), else to
the test's temporary folder; the test checks that each first page has ink on it, is A4 (landscape
for the wide documents) and uses only Noto Sans CJK faces (embedded subsets).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from tests import test_ledger_reports as ledger_books
from tests import test_reports_pdf as pdf_tests
from tests.test_reports_pdf import url

book, checker, maker = ledger_books.book, ledger_books.checker, ledger_books.maker  # fixtures
manager, report_store, conversation = pdf_tests.manager, pdf_tests.report_store, pdf_tests.conversation

pytestmark = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed")


def _ink(path: Path) -> float:
    """Share of pixels that are not near-white."""
    image = Image.open(path).convert("L")
    pixels = image.getdata()
    return sum(1 for p in pixels if p < 200) / len(pixels)


LANDSCAPE = {"trial-balance", "general-ledger", "detail-ledger", "balance-sheet"}


def _fonts(resources) -> set[str]:  # noqa: ANN001
    """Base font names used by a page's resources, forms included."""
    names: set[str] = set()
    resources = resources.get_object() if resources is not None else {}
    for font in (resources.get("/Font") or {}).values():
        names.add(str(font.get_object()["/BaseFont"]))
    for form in (resources.get("/XObject") or {}).values():
        names |= _fonts(form.get_object().get("/Resources"))
    return names


def test_every_document_type_renders_to_a_png_with_content(app, book, manager, conversation, tmp_path):
    out = Path(os.environ.get("REPORTS_PNG_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    cid = book.client_id
    urls = {
        "statement": url("statement", client_id=cid, period="2026-01"),
        "vouchers": url("vouchers", client_id=cid, period="2026-01"),
        "trial-balance": url("trial-balance", client_id=cid, period="2026-01"),
        "general-ledger": url("general-ledger", client_id=cid, **{"from": "2026-01", "to": "2026-02"}),
        "detail-ledger": url("detail-ledger", client_id=cid, account_code="1001", period="2026-01"),
        "balance-sheet": url("balance-sheet", client_id=cid, period="2026-02"),
        "income-statement": url("income-statement", client_id=cid, period="2026-02"),
        "transcript": f"/reports/transcript/{conversation.id}.pdf",
    }
    for name, address in urls.items():
        response = manager.get(address)
        assert response.status_code == 200, (name, response.data[:200])
        pdf = out / f"{name}.pdf"
        pdf.write_bytes(response.data)
        page = PdfReader(pdf).pages[0]
        size = (round(float(page.mediabox.width)), round(float(page.mediabox.height)))
        assert size == ((842, 595) if name in LANDSCAPE else (595, 842)), (name, size)  # A4 in points
        fonts = _fonts(page.get("/Resources"))
        assert fonts and all("+Noto-Sans-" in f and "CJK" in f for f in fonts), (name, fonts)  # subsets
        subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                        str(out / name)], check=True, timeout=60)
        png = out / f"{name}.png"
        assert png.exists(), name
        assert 0.002 < _ink(png) < 0.5, name  # text and rules on a white page
