"""The catalog in a real browser (headless Chromium through Selenium): it loads from disk,
search filters by name, owner, tag and PII class, links resolve, and the script raises no
error. A screenshot is kept in test-artifacts/catalog.png.

Chromium comes from the system (Debian: ``apt-get install chromium chromium-driver``; .ci/run
installs it). In CI (``CI=true``) a missing browser fails the test; elsewhere it is skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsgen.catalog import build_catalog, write_catalog
from fsgen.config import load_config
from fsgen.loader import load
from fsgen.store import LocalStore

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1400",
)


def _need_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (apt-get install -y chromium chromium-driver)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"the catalog browser test must run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("browser") / "example"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(
        REPO / "featuredefs", root / "featuredefs", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(REPO / "data", root / "data")
    config, spec = load_config(root), load(root)
    with LocalStore.open(config, spec) as store:
        store.ingest("customer-features", root / "data/customers.csv")
        store.ingest("merchant-features", root / "data/merchants.jsonl")
    out = root / "catalog"
    write_catalog(config, spec, out)
    return root, out


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _visible(driver: object) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#catalog tbody tr")  # type: ignore[attr-defined]
    return sorted(r.get_attribute("data-text").split()[0] for r in rows if r.is_displayed())


def _search(driver: object, query: str) -> list[str]:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "search")  # type: ignore[attr-defined]
    box.clear()
    box.send_keys(query)
    return _visible(driver)


def _expected(root: Path, keep: object) -> list[str]:
    rows = build_catalog(load_config(root), load(root), stats=False).rows
    return sorted(str(r["qualified"]).lower() for r in rows if keep(r))  # type: ignore[operator]


def _no_script_errors(driver: object) -> None:
    errors = [
        e
        for e in driver.get_log("browser")  # type: ignore[attr-defined]
        if e["level"] == "SEVERE"
    ]
    assert not errors, errors


def test_index_loads_and_search_filters(browser: object, site: tuple[Path, Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    root, out = site
    driver = browser
    driver.get((out / "index.html").as_uri())  # type: ignore[attr-defined]
    assert "feature catalog" in driver.title  # type: ignore[attr-defined]
    everything = _visible(driver)
    assert everything == _expected(root, lambda r: True)  # every feature and window page
    assert _search(driver, "owner:growth-ml") == _expected(
        root, lambda r: r["owner"] == "growth-ml"
    )
    assert _search(driver, "pii:personal") == ["customer-features:age"]
    assert _search(driver, "tag:domain=merchant") == _expected(
        root, lambda r: "domain=merchant" in r["tags"]
    )
    assert _search(driver, "chargeback") == _expected(
        root, lambda r: "chargeback" in f"{r['qualified']} {r['group']} {r['description']}".lower()
    )
    assert _search(driver, "type:on-demand owner:risk-ml spend") == ["amount_to_monthly_spend"]
    assert driver.find_element(By.ID, "count").text == "1"  # type: ignore[attr-defined]
    assert _search(driver, "type:feature owner:growth-ml spend") == [
        "customer-features:avg_monthly_spend"
    ]
    assert _search(driver, "no-such-thing") == []
    _search(driver, "")
    Select(driver.find_element(By.ID, "filter-pii")).select_by_value("none")  # type: ignore[attr-defined]
    assert _visible(driver) == _expected(root, lambda r: r["pii"] == "none")
    Select(driver.find_element(By.ID, "filter-pii")).select_by_value("")  # type: ignore[attr-defined]
    assert _visible(driver) == everything
    _no_script_errors(driver)


def test_search_state_lives_in_the_url(browser: object, site: tuple[Path, Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    root, out = site
    driver = browser
    driver.get((out / "index.html").as_uri() + "#q=owner%3Arisk-ml")  # type: ignore[attr-defined]
    assert _visible(driver) == _expected(root, lambda r: "risk-ml" in r["owner"])
    # the search box in the header of any page jumps to the filtered index
    driver.get((out / "features/customer-features/age.html").as_uri())  # type: ignore[attr-defined]
    jump = driver.find_element(By.CSS_SELECTOR, "header form input")  # type: ignore[attr-defined]
    jump.send_keys("pii:personal", Keys.ENTER)
    assert driver.current_url.endswith("index.html#q=pii%3Apersonal")  # type: ignore[attr-defined]
    assert _visible(driver) == ["customer-features:age"]
    _no_script_errors(driver)


def test_links_resolve_and_screenshot(browser: object, site: tuple[Path, Path]) -> None:
    from selenium.webdriver.common.by import By

    _, out = site
    driver = browser
    index = (out / "index.html").as_uri()
    driver.get(index)  # type: ignore[attr-defined]
    hrefs = sorted(
        {
            a.get_attribute("href")
            for a in driver.find_elements(  # type: ignore[attr-defined]
                By.CSS_SELECTOR, "#catalog a, .cards a"
            )
        }
    )
    assert len(hrefs) >= 11
    for href in hrefs:
        driver.get(href)  # type: ignore[attr-defined]
        heading = driver.find_element(By.TAG_NAME, "h1").text  # type: ignore[attr-defined]
        assert heading, href
        for link in driver.find_elements(By.CSS_SELECTOR, "main a"):  # type: ignore[attr-defined]
            target = link.get_attribute("href")
            assert target.startswith("file://"), (href, target)
            path = Path(target.removeprefix("file://").split("#", 1)[0])
            assert path.is_file(), (href, target)
    driver.get((out / "features/merchant-features/chargeback_rate.html").as_uri())  # type: ignore[attr-defined]
    bars = driver.find_elements(By.CSS_SELECTOR, "svg.hist rect")  # type: ignore[attr-defined]
    assert len(bars) == 20 and all(b.size["width"] > 0 for b in bars)
    driver.find_element(By.LINK_TEXT, "fraud-model").click()  # type: ignore[attr-defined]
    assert driver.find_element(By.TAG_NAME, "h1").text == "fraud-model"  # type: ignore[attr-defined]
    _no_script_errors(driver)
    driver.get(index)  # type: ignore[attr-defined]
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    driver.set_window_size(
        1280,
        driver.execute_script(  # type: ignore[attr-defined]
            "return document.body.scrollHeight"
        )
        + 40,
    )
    assert driver.save_screenshot(str(artifacts / "catalog.png"))  # type: ignore[attr-defined]
    assert (artifacts / "catalog.png").stat().st_size > 10_000


def test_review_details_render(browser: object, site: tuple[Path, Path]) -> None:
    """PII banner on the feature-set page, history timestamps on one line at a narrow width,
    value statistics of personal data withheld, histograms with axes and counts."""
    from selenium.webdriver.common.by import By

    _, out = site
    driver = browser
    driver.set_window_size(900, 1200)  # type: ignore[attr-defined]
    driver.get((out / "feature-sets/fraud-model.html").as_uri())  # type: ignore[attr-defined]
    banner = driver.find_element(By.CSS_SELECTOR, ".pii-banner")  # type: ignore[attr-defined]
    assert banner.is_displayed() and "age (personal)" in banner.text
    cells = driver.find_elements(By.CSS_SELECTOR, "table.history td.when code")  # type: ignore[attr-defined]
    assert cells
    for cell in cells:
        line = driver.execute_script(  # type: ignore[attr-defined]
            "const s = getComputedStyle(arguments[0]); "
            "return [arguments[0].getClientRects().length, s.whiteSpace];",
            cell,
        )
        assert line == [1, "nowrap"], cell.text  # one box: the timestamp did not wrap
    driver.get((out / "features/customer-features/age.html").as_uri())  # type: ignore[attr-defined]
    assert driver.find_element(By.CSS_SELECTOR, ".withheld").is_displayed()  # type: ignore[attr-defined]
    assert not driver.find_elements(By.CSS_SELECTOR, "svg.hist")  # type: ignore[attr-defined]
    tags = driver.find_elements(By.CSS_SELECTOR, ".group-tags .tag")  # type: ignore[attr-defined]
    assert [t.text for t in tags] == ["cost-center=growth", "domain=customer"]
    driver.get((out / "features/merchant-features/chargeback_rate.html").as_uri())  # type: ignore[attr-defined]
    ticks = driver.find_elements(By.CSS_SELECTOR, "svg.hist text.y-tick")  # type: ignore[attr-defined]
    assert [t.text for t in ticks][-1] == "0" and int(ticks[0].text.replace(",", "")) > 0
    driver.find_element(By.CSS_SELECTOR, "details.bins summary").click()  # type: ignore[attr-defined]
    counts = driver.find_elements(By.CSS_SELECTOR, "td.bin-count")  # type: ignore[attr-defined]
    assert len(counts) == 20 and all(c.is_displayed() for c in counts)
    _no_script_errors(driver)
