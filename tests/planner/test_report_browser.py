"""The HTML report in a real browser: headless Debian Chromium driven by Selenium.

A small real run (the bundled default scenario, half an hour, fluid engine) goes
through `planner simulate --report`; the page must load without a console error,
show the headline, the summary table with every policy and the oracle, the
decision timeline, and every plot decoded (`naturalWidth > 0`), and load nothing
from outside the file. A page with a corrupt plot is checked too, so the image
check is known to catch one.

Chromium and chromedriver are Debian packages (`chromium`, `chromium-driver`);
`.ci/run` installs them when absent. Without them this test fails and says how
to install them rather than skipping: a skipped browser check reads as a pass.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner.cli import app

POLICIES = ("hpa", "step")
INSTALL_HINT = (
    "the HTML report test needs Debian's Chromium and chromedriver: "
    "sudo apt-get install chromium chromium-driver (or run .ci/run, which installs them)"
)


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if chromium is None or driver is None:
        pytest.fail(INSTALL_HINT)
    return chromium, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1200,900")
    # Console messages of every level, read back with get_log("browser").
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = CliRunner().invoke(
        app,
        ["simulate", "--duration-h", "0.5", "--engine", "fluid", "--workers", "1",
         "--policies", ",".join(POLICIES), "--report", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def _load(browser: Any, page: Path) -> list[dict[str, Any]]:
    """Open `page` and return the console entries it produced (errors and warnings)."""
    browser.get_log("browser")  # drop what an earlier page left
    browser.get(page.resolve().as_uri())
    browser.execute_script("return document.readyState")
    entries: list[dict[str, Any]] = browser.get_log("browser")
    return [e for e in entries if e["level"] in ("SEVERE", "WARNING")]


_IMAGES = """
return Array.from(document.images).map(img => ({
  alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight
}));
"""


def test_report_loads_clean_with_headline_table_and_plots(browser: Any, report_page: Path) -> None:
    from selenium.webdriver.common.by import By

    assert _load(browser, report_page) == []
    headline = browser.find_element(By.ID, "headline").text
    assert headline.startswith(("Cheapest policy that meets the SLO", "No policy meets the SLO"))
    assert "per month at this traffic" in headline
    assumptions = browser.find_element(By.ID, "assumptions").text
    assert "g5.xlarge" in assumptions and "per GPU-hour" in assumptions
    rows = browser.find_elements(By.CSS_SELECTOR, "#summary tbody tr")
    names = [row.find_elements(By.TAG_NAME, "td")[0].text for row in rows]
    assert names == [*POLICIES, "oracle (offline optimum)"]
    images = browser.execute_script(_IMAGES)
    assert len(images) == 3
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
    timeline = browser.find_elements(By.CSS_SELECTOR, "#decisions details summary")
    assert [s.text.split(":")[0] for s in timeline] == list(POLICIES)
    # Self-contained: the page fetched nothing (data: URIs are not resource loads).
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert fetched == []


def test_a_corrupt_plot_is_caught(browser: Any, report_page: Path, tmp_path: Path) -> None:
    page = report_page.read_text()
    marker = 'src="data:image/png;base64,'
    start = page.index(marker) + len(marker)
    broken = tmp_path / "broken.html"
    broken.write_text(page[:start] + "AAAA" + page[start + 4 :])
    _load(browser, broken)
    widths = [image["width"] for image in browser.execute_script(_IMAGES)]
    assert widths[0] == 0 and all(width > 0 for width in widths[1:])


def test_console_errors_are_collected(browser: Any, tmp_path: Path) -> None:
    # The no-console-error check above means something only if errors reach get_log.
    page = tmp_path / "noisy.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('boom')</script></body>")
    entries = _load(browser, page)
    assert [e["level"] for e in entries] == ["SEVERE"] and "boom" in entries[0]["message"]
