"""A static results site from the records: ``eqdp report site DIR``.

Pages (all links relative, so the folder can be served from any path, e.g. GitHub Pages):

- ``index.html``: every leaderboard (benchmark × dataset × size), the figures, the findings;
- ``leaderboards/<benchmark>/<dataset>_<size>.html``: one sortable table, the same rows as
  ``eqdp leaderboard --benchmark B --dataset D --size S --format json``, with the 95%
  interval of test AUC, the table's protocol, seeds and devices, and each row's runs linked;
- ``runs/<run_id>.html``: one record (metrics, epoch curve, configuration, environment);
- ``figures.html`` with ``figures/<kind>.png`` (``eqdp plot``'s figures);
- ``findings.html``: ``docs/findings.md`` rendered, when there is one.

Everything is rendered by Jinja2 templates in ``eqdp/report/templates``; ``eqdp leaderboard
--format html`` renders the leaderboard template as one standalone page. No torch here.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

import eqdp
from eqdp.errors import EqdpError
from eqdp.results.identity import row_key
from eqdp.results.leaderboard import LeaderboardRow, display_table, leaderboard_rows, to_json
from eqdp.results.rows import Row, aggregate_rows

MARKER = ".eqdp-site"  # a folder holding this file is a site eqdp may replace
INTERVAL_HEADER = "AUC 95% CI"  # eqdp.results.stats: Student-t over seeds
PROTOCOL_TRAIN = (("epochs", "epochs"), ("batch_size", "batch size"), ("lr", "lr"),
                  ("augment", "augment"), ("precision", "precision"))  # fmt: skip


@dataclass
class Cell:
    text: str
    value: str | None = None  # numeric sort value (JS parseFloat), None for a text column


@dataclass
class TableRow:
    key: str
    cells: list[Cell]
    runs: list[dict[str, Any]]  # run_id, seed: one per seed (measurement) of the row


@dataclass
class Table:
    benchmark: str
    dataset: str
    size: int
    header: list[str]
    numeric: list[bool]
    rows: list[TableRow]
    protocol: list[tuple[str, str]]
    seeds: str
    devices: str
    n_records: int = 0

    @property
    def slug(self) -> str:
        return f"leaderboards/{self.benchmark}/{self.dataset}_{self.size}.html"

    @property
    def title(self) -> str:
        return f"{self.benchmark}: {self.dataset} ({self.size} px)"


@dataclass
class Site:
    tables: list[Table] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    runs: int = 0
    findings: bool = False


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("eqdp.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["version"] = eqdp.__version__
    return env


def _number(value: float | int | None) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""  # sorts last
    return "Infinity" if math.isinf(value) else repr(value)


def _sort_value(line: LeaderboardRow, header: str) -> Any:
    simple = {
        "ε": line.epsilon, "seeds": line.n_seeds, "test AUC": line.test_auc_mean,
        "test ACC": line.test_acc_mean, "params": line.params, "MACs": line.macs,
        "train s": line.train_seconds_mean, "img/s": line.images_per_second_mean,
    }  # fmt: skip
    if header in simple:
        return _number(simple[header])
    if header in line.metrics:
        return _number(line.metrics[header][0])
    if header == INTERVAL_HEADER:
        return _number(line.test_auc_ci95[0] if line.test_auc_ci95 else None)
    return None


def _distinct(values: list[Any]) -> str:
    """The values, once each: numbers in numeric order, then the rest ("inf", lists) as text."""
    unique = {v if isinstance(v, str) else json.dumps(v): v for v in values if v is not None}

    def order(item: tuple[str, Any]) -> tuple[int, float, str]:
        text, value = item
        return (0, float(value), "") if _is_number(value) else (1, 0.0, text)

    return ", ".join(text for text, _ in sorted(unique.items(), key=order))


def protocol(rows: list[Row]) -> list[tuple[str, str]]:
    """The recipe of a table: each training field and benchmark option, its values in the rows."""
    train = [r.material["train"] for r in rows]
    out = [(name, _distinct([t.get(f) for t in train])) for f, name in PROTOCOL_TRAIN]
    options = dict.fromkeys(k for r in rows for k in r.material.get("options", {}))
    out += [(k, _distinct([r.material["options"].get(k) for r in rows])) for k in options]
    trained = [r.material["trained_by"]["benchmark"] for r in rows if r.material.get("trained_by")]
    if trained:
        out.append(("models trained by", _distinct(trained)))
    return [(name, text) for name, text in out if text]


def table(lines: list[LeaderboardRow], rows: dict[str, Row], show_key: bool = False) -> Table:
    """The template's view of leaderboard lines (one benchmark, dataset and size, or any)."""
    header, cells = display_table(lines, show_key)
    out = []
    for line, texts in zip(lines, cells, strict=True):
        row = rows[line.key]
        members = sorted(row.members, key=lambda r: (r["seed"], r["run_id"]))
        out.append(TableRow(
            key=line.key,
            cells=[Cell(t, _sort_value(line, h)) for h, t in zip(header, texts, strict=True)],
            runs=[{"run_id": m["run_id"], "seed": m["seed"]} for m in members],
        ))  # fmt: skip
    numeric = [any(c.cells[i].value is not None for c in out) for i in range(len(header))]
    chosen = [rows[line.key] for line in lines]
    records = [m for r in chosen for m in r.members]
    devices = [f"{e.get('device', '?')} ({e.get('device_name') or '?'})" for e in envs(records)]
    first = lines[0] if lines else None
    return Table(
        benchmark=first.benchmark if first else "", dataset=first.dataset if first else "",
        size=first.size if first else 0, header=header, numeric=numeric, rows=out,
        protocol=protocol(chosen), seeds=_distinct([m["seed"] for m in records]),
        devices=_distinct(devices), n_records=len(records),
    )  # fmt: skip


def tables(records: list[dict], show_key: bool = False) -> list[Table]:
    """One table per benchmark, dataset and size, in the leaderboard's order."""
    rows = aggregate_rows(records)
    by_key = {row.key: row for row in rows}
    grouped: dict[tuple, list[LeaderboardRow]] = defaultdict(list)
    for line in leaderboard_rows(rows):
        grouped[(line.benchmark, line.dataset, line.size)].append(line)
    return [table(lines, by_key, show_key) for lines in grouped.values()]


def leaderboard_html(records: list[dict], lines: list[LeaderboardRow], show_key: bool) -> str:
    """``eqdp leaderboard --format html``: the site's leaderboard template as one page."""
    by_key = {row.key: row for row in aggregate_rows(records)}
    view = table(lines, by_key, show_key)
    return (
        environment()
        .get_template("leaderboard.html")
        .render(table=view, root=None, title="eqdp leaderboard", n_records=view.n_records)
    )


def envs(records: list[dict]) -> list[dict]:
    return [record.get("env", {}) for record in records]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def chart(history: list[dict], names: tuple[str, ...], width: int = 420, height: int = 220) -> dict:
    """Polylines of ``names`` over epochs (inline SVG); empty when nothing was recorded."""
    series = {n: [(h["epoch"], h[n]) for h in history if _is_number(h.get(n))] for n in names}
    series = {n: pts for n, pts in series.items() if pts and all(math.isfinite(y) for _, y in pts)}
    if not series:
        return {}
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(ys), max(ys)
    y0, y1 = (y0 - 0.5, y1 + 0.5) if y1 - y0 < 1e-12 else (y0, y1)
    pad = 36

    def at(x: float, y: float) -> str:
        px = pad + (x - x0) / (x1 - x0) * (width - 2 * pad)
        py = height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)
        return f"{px:.1f},{py:.1f}"

    return {
        "width": width, "height": height, "pad": pad,
        "lines": [{"name": n, "points": " ".join(at(x, y) for x, y in p), "colour": f"c{i}"}
                  for i, (n, p) in enumerate(series.items())],
        "x": (x0, x1), "y": (f"{y0:.3g}", f"{y1:.3g}"),
    }  # fmt: skip


def flat(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as dotted keys and JSON values, for the run page's tables."""
    if isinstance(value, dict) and value:
        return [item for k, v in value.items() for item in flat(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), value if isinstance(value, str) else json.dumps(value))]


RUN_SECTIONS = ("config", "env", "metrics", "history", "timing", "model_info", "data")
HEADER_FIELDS = ("run_id", "created_at", "status", "benchmark", "dataset", "size", "model",
                 "seed", "key", "label", "best_epoch", "schema_version", "checkpoint")  # fmt: skip


def run_page(env: jinja2.Environment, record: dict, board: str, n_records: int) -> str:
    """One record: its row's key links back to the row on its leaderboard."""
    history = record.get("history") or []
    shown = (*RUN_SECTIONS, *HEADER_FIELDS)
    extra = {k: v for k, v in record.items() if k not in shown and not k.startswith("_")}
    curves = [chart(history, ("val_auc", "val_acc")), chart(history, ("train_loss",))]
    sections = ("config", "model_info", "timing", "data", "env")
    return env.get_template("run.html").render(
        root="../",
        record=record,
        key=row_key(record["config"]),
        board=board,
        n_records=n_records,
        fields=[(k, record[k]) for k in HEADER_FIELDS if record.get(k) is not None],
        curves=[c for c in curves if c],
        sections=[(name, flat(record.get(name, {}))) for name in sections]
        + [(name, flat(value)) for name, value in extra.items()],
    )


def render_findings(path: Path) -> tuple[str, str]:
    """The findings page's title (its first heading) and body as HTML (markdown-it-py, rich's
    renderer). Generated-block comments are dropped, and a relative link (to a docs page the
    site does not have) keeps its text only; preformatted text without the renderer."""
    text = re.sub(r"<!--.*?-->\n?", "", path.read_text(encoding="utf-8"), flags=re.S)
    title = "Findings"
    heading = re.match(r"\s*# (.+)\n", text)
    if heading:
        title, text = heading.group(1).strip(), text[heading.end() :]
    try:
        from markdown_it import MarkdownIt
    except ImportError:  # pragma: no cover - rich depends on it
        return title, f"<pre>{markupsafe.escape(text)}</pre>"
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    for token in tokens:
        relative: list[bool] = []  # per open link: is it relative (dropped)?
        for child in token.children or []:
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                relative.append(not re.match(r"[a-z][a-z0-9+.-]*:|#", href))
                if relative[-1]:
                    child.type, child.tag, child.content = "text", "", ""
            elif child.type == "link_close" and relative.pop():
                child.type, child.tag, child.content = "text", "", ""
    return title, md.renderer.render(tokens, md.options, {})


def _prepare(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise EqdpError(
                f"{out} is not empty and is not an eqdp site (no {MARKER}); "
                "choose a new or empty folder"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("built by `eqdp report site`; the folder is replaced on rebuild\n")


def build_site(
    records: list[dict],
    out: str | Path,
    *,
    findings: Path | None = None,
    figures: bool = True,
    on_step: Any = None,
) -> Site:
    """Write the site for ``records`` into ``out`` (replaced if it is an earlier site)."""
    out = Path(out)
    if not records:
        raise EqdpError("no records to publish; run a benchmark first")
    _prepare(out)
    env = environment()
    site = Site(tables=tables(records), runs=len(records))
    n = len(records)
    say = on_step or (lambda message: None)
    for view in site.tables:
        target = out / view.slug
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(env.get_template("leaderboard.html").render(
            table=view, root="../../", title=view.title, n_records=n))  # fmt: skip
    boards = {(t.benchmark, t.dataset, t.size): t.slug for t in site.tables}
    (out / "runs").mkdir()
    for record in records:
        board = boards.get((record["benchmark"], record["dataset"], record["size"]), "index.html")
        page = run_page(env, record, board, n)
        (out / "runs" / f"{record['run_id']}.html").write_text(page)
    say(f"{len(site.tables)} leaderboards, {n} run pages")
    if figures:
        site.figures = draw_figures(records, out / "figures", say)
    (out / "figures.html").write_text(env.get_template("figures.html").render(
        root="", figures=site.figures, n_records=n, built=figures))  # fmt: skip
    title, body = "Findings", None
    if findings is not None and findings.is_file():
        title, body = render_findings(findings)
    site.findings = body is not None
    source = str(findings) if findings else None
    (out / "findings.html").write_text(env.get_template("findings.html").render(
        root="", title=title, body=body, source=source, n_records=n))  # fmt: skip
    (out / "leaderboard.json").write_text(to_json(leaderboard_rows(aggregate_rows(records))))
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (out / "index.html").write_text(env.get_template("index.html").render(
        root="", site=site, n_records=n, generated=generated))  # fmt: skip
    return site


def draw_figures(records: list[dict], folder: Path, say: Any) -> list[str]:
    """Each benchmark's ``eqdp plot`` figure, where it has records; file names in order."""
    from eqdp.report.plots import plot_kinds, plot_records

    names = []
    for kind in plot_kinds():
        if not any(r["benchmark"] == kind for r in records):
            continue
        try:
            plot_records(kind, records, folder / f"{kind}.png")
        except EqdpError as error:  # e.g. too few points for a fit: the site goes on
            say(f"figure {kind} left out: {error}")
            continue
        names.append(f"{kind}.png")
        say(f"figure {kind}")
    return names
