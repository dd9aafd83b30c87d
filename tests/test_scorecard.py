"""The reproduction scorecard: the verdict rule on hand-made numbers, every claim resolves
its experiments, paper rows and chapter section, the scorecard never trains, and the
landing page's verdicts equal those the chapters print (one function makes both)."""
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from advlit import experiments
from advlit import scorecard as sc
from advlit.results import code_fingerprint, run_name
from advlit.utils import ConfigError

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(dict.fromkeys(c.chapter for c in sc.CLAIMS))


# ------------------------------------------------------------------------------ the rule
@pytest.mark.parametrize("a,b,direction,label", [
    ([40, 41, 42], [10, 11, 12], ">", sc.REPRODUCED),           # d = +30 > margin 5
    ([10, 11, 12], [40, 41, 42], ">", sc.CONTRADICTED),         # d = -30 < -5
    ([13, 14, 15], [10, 11, 12], ">", sc.NOT_RESOLVABLE),       # d = +3, within 5 points
    ([16, 16, 16], [10, 11, 12], ">", sc.NOT_RESOLVABLE),       # d = +5 exactly is not beyond the margin
    ([30, 40, 50], [20, 20, 20], ">", sc.NOT_RESOLVABLE),       # d = +20, but 2 std = 20: within the margin
    ([10, 11, 12], [12, 13, 14], ">=", sc.REPRODUCED),          # level: d = -2 >= -5
    ([50, 51, 52], [10, 11, 12], ">=", sc.REPRODUCED),          # better than level
    ([10, 11, 12], [20, 21, 22], ">=", sc.CONTRADICTED),        # d = -10 < -5
    ([40, 41], [10, 11], ">", sc.TOO_FEW_SEEDS),                # fewer than 3 seeds
])
def test_verdict_rule_each_branch(a, b, direction, label):
    assert sc.verdict(a, b, direction).label == label


def test_verdict_margin_and_rounding():
    v = sc.verdict([20.0, 20.0, 20.0], [14.96, 14.96, 14.96], ">")
    assert (v.difference, v.margin, v.label) == (5.0, 5.0, sc.NOT_RESOLVABLE)  # compared as printed
    v = sc.verdict([20.0, 20.0, 20.0], [14.9, 14.9, 14.9], ">")
    assert (v.difference, v.label) == (5.1, sc.REPRODUCED)
    v = sc.verdict([0, 10, 20], [0, 0, 0], ">")
    assert v.margin == 20.0 and v.seeds == 3
    assert sc.Rule(min_gap=1.0).margin(0.2) == 1.0
    with pytest.raises(ValueError):
        sc.verdict([1, 2, 3], [1, 2, 3], "<")


def test_rule_text_names_every_verdict_and_the_numbers():
    text = sc.RULE.text()
    for word in ("reproduced", "contradicted", "not resolvable at this scale", "5 points", "2 ×", "397", "3 seeds"):
        assert word in text


# ------------------------------------------------------------------------------ the claims
@pytest.mark.parametrize("claim", sc.CLAIMS, ids=lambda c: c.key)
def test_claim_resolves_experiments_paper_rows_and_section(claim):
    attack, _, budget = claim.metric.partition("@")  # "pgd-10@2eps": the attack at twice the training eps
    for name in claim.experiments:
        config = experiments.get_config(name, "cpu")
        assert attack in config.final_attacks, f"{name} does not evaluate {attack}"
        if budget:
            assert float(budget.removesuffix("eps")) in config.final_eps_ratios, f"{name} is not evaluated at {budget}"
    assert sc.metric_at(claim, "cpu") == claim.metric
    assert sc.metric_at(claim, "gpu")  # every claim can be scored at the paper's scale too
    assert claim.quotes, "every claim quotes the paper"
    for quote in claim.quotes:
        row = quote.row()  # exactly one row of the paper's table
        assert row["value"] == row["value"] and row["source"]
    assert claim.direction in (">", ">=") and claim.quantity in ("accuracy", "gap")
    assert claim.checkpoint in ("best", "last")
    src = (REPO / "notebooks" / "src" / f"{claim.chapter}.py").read_text()
    headings = [m.group(1).strip() for m in re.finditer(r"^# #{2,3} (.+)$", src, flags=re.M)]
    assert claim.section in headings, f"{claim.chapter} has no section {claim.section!r}"


def test_claim_keys_are_unique_and_every_chapter_has_claims():
    keys = [c.key for c in sc.CLAIMS]
    assert len(keys) == len(set(keys))
    # every chapter has claims, unless it is listed (with its reason) as one that tests no paper's claim
    assert not set(CHAPTERS) & set(sc.WITHOUT_CLAIMS)
    assert sorted([*CHAPTERS, *sc.WITHOUT_CLAIMS]) == sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert [c.key for c in sc.claims("atas")] == [c.key for c in sc.claims("02_atas")]
    with pytest.raises(Exception, match="no scorecard claims"):
        sc.claims("99_nope")


def test_slug_is_myst_s():
    from myst_parser.mdit_to_docutils.base import default_slugify

    for claim in sc.CLAIMS:
        assert sc.slug(claim.section) == default_slugify(claim.section)


def test_the_scorecard_never_trains(monkeypatch, tmp_path):
    import advlit.train

    def no_training(*args, **kwargs):
        raise AssertionError("the scorecard trained a run")

    monkeypatch.setattr(advlit.train.Trainer, "fit", no_training)
    rows = sc.scorecard({"cpu": tmp_path / "empty", "gpu": tmp_path / "empty"})
    assert {r["cpu"]["verdict"] for r in rows} == {sc.NO_RECORDS}
    assert {r["gpu"]["verdict"] for r in rows} == {sc.NOT_RUN}


def _fake_records(root, name, profile, values, metric, checkpoint="last"):
    for seed, value in zip(experiments.DEFAULT_SEEDS[profile], values):
        config = experiments.get_config(name, profile, seed=seed)
        run_dir = root / run_name(config)
        run_dir.mkdir(parents=True)
        final = {"best": {metric: value}, "last": {metric: value}}
        (run_dir / "record.json").write_text(json.dumps({
            "complete": True, "config_hash": config.hash(), "code": code_fingerprint(config), "final": final}))


def test_gpu_column_fills_in_when_records_exist(tmp_path):
    claim = next(c for c in sc.CLAIMS if c.key == "atas.no_collapse")
    assert sc.evaluate(claim, "gpu", tmp_path)["verdict"] == sc.NOT_RUN
    assert sc.metric_at(claim, "gpu") == "pgd-10"  # the gpu profile of ATAS runs PGD-10, not PGD-20
    _fake_records(tmp_path, "atas.atas", "gpu", [50, 51, 52], "pgd-10")
    assert sc.evaluate(claim, "gpu", tmp_path)["verdict"] == sc.NO_RECORDS  # one side only
    _fake_records(tmp_path, "atas.fgsm_rs_2eps", "gpu", [0, 1, 2], "pgd-10")
    row = sc.evaluate(claim, "gpu", tmp_path)
    assert row["verdict"] == sc.REPRODUCED and row["difference"] == 50.0 and row["seeds"] == 3


def test_render_links_every_row_to_its_chapter_section(tmp_path):
    rows = sc.scorecard({"cpu": tmp_path, "gpu": tmp_path})
    text = sc.render(rows)
    assert sc.RULE.text() in text
    for claim in sc.CLAIMS:
        assert f"](/notebooks/{claim.chapter}.ipynb#{sc.slug(claim.section)})" in text
    table = [line for line in text.splitlines() if line.startswith("| ") and "](/notebooks/" in line]
    assert len(table) == len(sc.CLAIMS) and all(line.count(" | ") == 4 for line in table)
    # one heading per chapter, its title linking to it (a {doc} role would show as a path in the page's contents)
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    assert headings == [f"### [{sc.chapter_title(c)}](/notebooks/{c}.ipynb)" for c in CHAPTERS]
    assert all("/" not in sc.chapter_title(c) for c in CHAPTERS)


# --------------------------------------------------- the landing page and the chapters agree
def _committed():
    path = sc.SCORECARD_JSON
    assert path.exists(), "no scorecard: run advlit book run (or python -m advlit.scorecard)"
    return {row["key"]: row for row in json.loads(path.read_text())}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_scorecard_verdicts_equal_the_chapter_verdicts(chapter):
    """The committed scorecard (the landing page) holds the verdicts chapter_verdicts gives
    now from the committed records; stale means: run advlit book run (or python -m advlit.scorecard)."""
    committed = _committed()
    table = sc.chapter_verdicts(chapter)
    for key, verdict in table["verdict"].items():
        assert committed[key]["cpu"]["verdict"] == verdict, \
            f"{key}: the scorecard says {committed[key]['cpu']['verdict']!r}, the chapter {verdict!r}"
    md = sc.SCORECARD_MD.read_text()
    for claim in sc.claims(chapter):
        line = next(line for line in md.splitlines() if f"/notebooks/{claim.chapter}.ipynb#{sc.slug(claim.section)}" in line
                    and sc._cell(claim.claim) in line)
        assert f"**{committed[claim.key]['cpu']['verdict']}**" in line


class _Table(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self._row, self._cell = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_prints_the_scorecard_verdicts(chapter):
    """The verdicts a chapter printed (its cell calling chapter_verdicts) are the scorecard's."""
    cells = json.loads((REPO / "notebooks" / f"{chapter}.ipynb").read_text())["cells"]
    printed = [c for c in cells if c["cell_type"] == "code" and "chapter_verdicts(" in "".join(c["source"])]
    if not printed:
        pytest.skip(f"{chapter} has no chapter_verdicts cell yet")
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for o in printed[0].get("outputs", []))
    parser = _Table()
    parser.feed(html)
    shown = {row[0]: row[-1] for row in parser.rows if row and row[0] in {c.key for c in sc.claims(chapter)}}
    committed = _committed()
    assert set(shown) == {c.key for c in sc.claims(chapter)}, f"{chapter} printed {sorted(shown)}"
    for key, verdict in shown.items():
        assert verdict == committed[key]["cpu"]["verdict"], f"{chapter} printed {verdict!r} for {key}"


def test_write_scorecard_writes_markdown_and_json(tmp_path):
    md, js = tmp_path / "s.md", tmp_path / "s.json"
    assert sc.write_scorecard({"cpu": tmp_path, "gpu": tmp_path}, md_path=md, json_path=js) == md
    assert md.read_text().startswith("<!-- written by advlit.scorecard") and json.loads(js.read_text())


def test_the_printed_table_is_read_back_as_printed():
    """What test_chapter_prints_the_scorecard_verdicts reads: the HTML a notebook stores for
    chapter_verdicts(...) (pandas' _repr_html_), claim id first and verdict last in each row."""
    table = sc.chapter_verdicts("04_las_at")
    parser = _Table()
    parser.feed(table._repr_html_())
    shown = {row[0]: row[-1] for row in parser.rows if row and row[0] in set(table.index)}
    assert shown == dict(table["verdict"])


def test_a_claim_at_twice_eps_needs_runs_evaluated_there(monkeypatch):
    """``metric_at`` refuses a "@2eps" metric when a run does not evaluate at 2 eps."""
    claim = next(c for c in sc.CLAIMS if "@" in c.metric)
    assert sc.metric_at(claim, "cpu") == claim.metric
    registry = experiments._load()
    name = claim.experiments[0]
    spec = registry[name]
    monkeypatch.setitem(registry, name, {**spec, "common": {**spec["common"], "final_eps_ratios": None}})
    with pytest.raises(ConfigError, match="does not evaluate every run at 2eps"):
        sc.metric_at(claim, "cpu")
