"""The README's app command starts on the demo region (streamlit AppTest, no browser)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def app_test():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    return at


def test_app_shows_the_fictional_demo_region_in_chinese(app_test):
    assert not app_test.exception, app_test.exception
    assert app_test.title[0].value == "医保定点零售药店布局规划"
    assert "示例市" in app_test.caption[0].value and "虚构" in app_test.caption[0].value
    labels = [m.label for m in app_test.metric]
    assert "定点药店" in labels
    pharmacies = next(m for m in app_test.metric if m.label == "定点药店")
    assert int(pharmacies.value) >= 150


def test_app_switches_to_english(app_test):
    app_test.sidebar.radio[0].set_value("English").run()
    assert not app_test.exception
    assert app_test.title[0].value == "Designated pharmacy planning"
    assert "fictional" in app_test.caption[0].value
