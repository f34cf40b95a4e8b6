"""LibreOffice and poppler for the Word report tests: a .docx to PDF, its first page to PNG under
test-artifacts/; each step skips the test with the reason when its tool is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def docx_to_pdf(docx: Path, folder: Path) -> Path:
    """``docx`` converted by LibreOffice headless into ``folder`` (its own profile there); the PDF's path."""
    office = shutil.which("libreoffice") or shutil.which("soffice")
    if office is None:
        pytest.skip("LibreOffice is not installed (scripts/test.sh installs libreoffice-writer-nogui)")
    result = subprocess.run([office, "--headless", f"-env:UserInstallation=file://{folder / 'profile'}",
                             "--convert-to", "pdf", "--outdir", str(folder), str(docx)],
                            capture_output=True, text=True, timeout=180)
    pdf = folder / (docx.stem + ".pdf")
    assert result.returncode == 0 and pdf.is_file(), result.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    return pdf


def first_page_png(pdf: Path, name: str) -> Path:
    """The first page of ``pdf`` as ``test-artifacts/<name>.png`` (80 dpi)."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is not installed (poppler-utils): the PDF was made, its page not rendered")
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                    str(ARTIFACTS / name)], check=True, timeout=60)
    png = ARTIFACTS / f"{name}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return png
