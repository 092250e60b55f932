"""``eqdp report site``: built from a copy of committed records, crawled, and read in Chromium.

The browser test serves the site on localhost and drives the distribution's headless
Chromium: through chromedriver's W3C HTTP API (urllib, one browser session) when
``chromedriver`` is installed, else one ``chromium --dump-dom`` per page. It is skipped only
when no Chromium is on the machine; ``.ci/run`` installs it.
"""

from __future__ import annotations

import functools
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from typer.testing import CliRunner

from eqdp.cli import app

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("standard/breastmnist_28", "dp/breastmnist_28", "adversarial/breastmnist_28")
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
)  # fmt: skip
FINDINGS = (
    "# Findings: does it help?\n\n<!-- eqdp:findings report -->\nSee [the method](guide.md#stats)"
    " and [MedMNIST](https://medmnist.com).\n\n| benchmark | verdict |\n|---|---|\n| dp | level |\n"
)


class Page(HTMLParser):
    """What the tests read from a page: h1, every link, the leaderboard's header and rows."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.h1, self.links, self.header, self.sort = "", [], [], {}
        self.rows: list[dict] = []
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        at = dict(attrs)
        if tag in ("a", "img") and (at.get("href") or at.get("src")):
            self.links.append(at.get("href") or at.get("src"))
            if self.rows and self._in == "row":
                self.rows[-1]["links"].append(at["href"])
        if tag == "h1":
            self._in = "h1"
        elif tag == "th" and at.get("scope") == "col":
            self._in = "th"
            self.header.append("")
            if at.get("aria-sort"):
                self.sort[len(self.header) - 1] = at["aria-sort"]
        elif tag == "tr" and at.get("data-key"):
            self.rows.append({"key": at["data-key"], "cells": [], "values": [], "links": []})
            self._in = "row"
        elif tag == "td" and self._in == "row":
            self.rows[-1]["cells"].append("")
            self.rows[-1]["values"].append(at.get("data-value"))

    def handle_endtag(self, tag: str) -> None:
        if (tag, self._in) in (("h1", "h1"), ("th", "th"), ("tr", "row")):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "h1":
            self.h1 += data
        elif self._in == "th":
            self.header[-1] += data.strip()
        elif self._in == "row" and self.rows[-1]["cells"]:
            self.rows[-1]["cells"][-1] += data.strip()


def eqdp(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("records") / "results"
    for part in PARTS:
        shutil.copytree(ROOT / "results" / part, results / part)
    return results


@pytest.fixture(scope="module")
def site(records: Path) -> Path:
    """Built in a fresh interpreter, which must not import torch on the way."""
    out = records.parent / "site"
    findings = records.parent / "findings.md"
    findings.write_text(FINDINGS)
    code = (
        "import sys; from eqdp.cli import app\n"
        f"app(['report', 'site', {str(out)!r}, '--results-dir', {str(records)!r}, "
        f"'--findings', {str(findings)!r}], standalone_mode=False)\n"
        "heavy = ('torch', 'opacus', 'monai', 'escnn', 'medmnist', 'sklearn')\n"
        "assert not [m for m in heavy if m in sys.modules], 'the site imported training code'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "3 leaderboards" in done.stdout and "findings included" in done.stdout
    return out


def leaderboard_json(records: Path, benchmark: str) -> list[dict]:
    where = ("--results-dir", str(records), "--dataset", "breastmnist", "--size", "28")
    return json.loads(eqdp("leaderboard", *where, "--benchmark", benchmark, "--format", "json"))


def test_every_link_of_every_page_resolves_to_a_file(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 100 and not (site / "runs" / "index.html").exists()
    for page in pages:
        for link in Page(page.read_text()).links:
            target = urlsplit(link)
            if target.scheme:  # only the findings link out (the site itself is offline)
                assert page.name == "findings.html", f"{page}: external link {link}"
                continue
            assert (page.parent / target.path).resolve().is_file(), f"{page}: broken {link}"
    assert {p.name for p in (site / "figures").iterdir()} == {"adversarial.png", "dp.png"}
    findings = Page((site / "findings.html").read_text())
    assert findings.h1 == "Findings: does it help?"  # the markdown's heading is the page's
    assert "https://medmnist.com" in findings.links  # a link to a docs page is text only
    assert "<table>" in (site / "findings.html").read_text() and "eqdp:" not in findings.h1


def test_a_rebuild_replaces_the_site_and_a_foreign_folder_is_refused(
    records: Path, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    eqdp("report", "site", str(out), "--results-dir", str(records / "dp"), "--no-figures")
    (out / "runs" / "stale.html").write_text("old")
    eqdp("report", "site", str(out), "--results-dir", str(records / "dp"), "--no-figures")
    assert not (out / "runs" / "stale.html").exists()
    assert "Built without figures" in (out / "figures.html").read_text()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    result = CliRunner().invoke(app, ["report", "site", str(tmp_path / "mine")])
    assert result.exit_code == 2 and "not an eqdp site" in result.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_leaderboard_format_html_is_the_sites_table_on_one_page(records: Path) -> None:
    rows = leaderboard_json(records, "dp")
    page = Page(
        eqdp("leaderboard", "--results-dir", str(records), "--benchmark", "dp", "--format", "html")
    )
    assert [row["key"] for row in page.rows] == [row["key"] for row in rows]
    assert "AUC 95% CI" in page.header and page.header[-1] == "runs"
    assert page.links == []  # standalone: no run pages to link


# --- the browser ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, method: str = "GET", body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method)
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


class Chromium:
    """``dom(url)``: the page's DOM after its scripts ran, read in headless Chromium."""

    def __init__(self, profile: Path) -> None:
        self.profile, self.driver, self.session = profile, None, None
        if CHROMEDRIVER:
            port = free_port()
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], **quiet)
            self.base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if call(f"{self.base}/status")["value"]["ready"]:
                        break
                except OSError:
                    time.sleep(0.1)
            options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}"]}
            capabilities = {"browserName": "chrome", "goog:chromeOptions": options}
            wanted = {"capabilities": {"alwaysMatch": capabilities}}
            reply = call(f"{self.base}/session", "POST", wanted)
            self.session = f"{self.base}/session/{reply['value']['sessionId']}"

    def dom(self, url: str) -> str:
        if self.session is None:
            argv = [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "--dump-dom", url]
            return subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout
        call(f"{self.session}/url", "POST", {"url": url})
        script = {"script": "return document.documentElement.outerHTML", "args": []}
        return call(f"{self.session}/execute/sync", "POST", script)["value"]

    def close(self) -> None:
        if self.session is not None:
            call(self.session, "DELETE")
        if self.driver is not None:
            self.driver.terminate()
            self.driver.wait(timeout=30)


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(Quiet, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium chromium-driver)")
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


def test_the_site_in_headless_chromium(records: Path, served: str, browser: Chromium) -> None:
    index = Page(browser.dom(served + "index.html"))
    assert index.h1 == "eqdp results"
    boards = [link for link in index.links if link.startswith("leaderboards/")]
    assert boards == [f"leaderboards/{part}.html" for part in sorted(PARTS)]

    for board in boards:
        benchmark = board.split("/")[1]
        page = Page(browser.dom(served + board))
        assert page.h1 == f"{benchmark}: breastmnist (28 px)"
        expected = leaderboard_json(records, benchmark)
        assert [row["key"] for row in page.rows] == [row["key"] for row in expected]
        auc, seeds = page.header.index("test AUC"), page.header.index("seeds")
        for row, want in zip(page.rows, expected, strict=True):
            assert row["cells"][auc].startswith(f"{want['test_auc_mean']:.3f} ± ")
            assert row["cells"][seeds] == str(want["n_seeds"])
            assert len(row["links"]) >= want["n_seeds"]

    # Every link from a row of one leaderboard opens that run's page, which links back.
    page = Page(browser.dom(served + "leaderboards/adversarial/breastmnist_28.html"))
    links = [(row["key"], link) for row in page.rows for link in row["links"]]
    assert len(links) >= len(page.rows)
    for key, link in links:
        url = urljoin(served + "leaderboards/adversarial/breastmnist_28.html", link)
        run = Page(browser.dom(url))
        run_id = link.rsplit("/", 1)[1].removesuffix(".html")
        assert run.h1 == f"Run {run_id}", f"{link} did not open its run page"
        assert f"../leaderboards/adversarial/breastmnist_28.html#row-{key}" in run.links

    # The table sorts in the browser: #sort=COLUMN-asc, read by the page's script.
    column = Page(browser.dom(served + boards[1])).header.index("test AUC")
    page = Page(browser.dom(f"{served}{boards[1]}#sort={column}-asc"))
    values = [float(row["values"][column]) for row in page.rows]
    assert values == sorted(values) and page.sort == {column: "ascending"}
