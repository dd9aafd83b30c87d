"""The reproduction scorecard: the claims the chapters test, each scored by one rule.

Every claim compares two rows of a chapter's experiments (``A`` and ``B``) on one metric,
as the paper compares them, and is scored by :func:`verdict` with :data:`RULE`; the rule
is written once (:meth:`Rule.text`) and printed above the scorecard. The landing page shows
the table that :func:`write_scorecard` writes (``book/_generated/scorecard.md``, called by
``advlit book run`` after the notebooks), and every chapter prints its own rows with
:func:`chapter_verdicts`: the same claims, records and function, so a chapter and the
scorecard cannot disagree.

The paper's numbers are quotes from ``book/paper_tables/*.csv``
(:func:`advlit.results.paper_table`), shown beside ours and never mixed with them. Our
numbers are read from the run records of a profile (``results/<profile>/``) and only when a
record is current (same configuration and code, :func:`advlit.results.is_current`): the
scorecard never trains. A claim whose records are missing or stale says so instead of a
verdict; at the ``gpu`` profile that reads "not run".
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from advlit import experiments
from advlit.evaluate import eps_ratio_key, split_eps_ratio_key
from advlit.results import REPO_DIR, is_current, load_record, mean_std, paper_table, run_name
from advlit.utils import ConfigError

#: where :func:`write_scorecard` writes the landing page's table (and its data, as JSON)
GENERATED_DIR = REPO_DIR / "book" / "_generated"
SCORECARD_MD = GENERATED_DIR / "scorecard.md"
SCORECARD_JSON = GENERATED_DIR / "scorecard.json"

REPRODUCED = "reproduced"
NOT_RESOLVABLE = "not resolvable at this scale"
CONTRADICTED = "contradicted"
TOO_FEW_SEEDS = "too few seeds"
NO_RECORDS = "no current records"
NOT_RUN = "not run"


@dataclass(frozen=True)
class Rule:
    """How a difference between our two rows becomes a verdict (see :meth:`text`)."""

    min_gap: float = 5.0   # points: the test set has 397 images (AutoAttack 50 or 100 of them)
    k_std: float = 2.0     # times the larger seed standard deviation of the two rows
    min_seeds: int = 3
    digits: int = 1        # d and the margin are compared as printed, rounded to 0.1 point

    def margin(self, spread: float) -> float:
        return max(self.min_gap, self.k_std * spread)

    def text(self) -> str:
        return (f"Let d = A − B, the difference of the mean over seeds of our two rows (at least "
                f"{self.min_seeds} seeds each), and margin = max({self.min_gap:g} points, "
                f"{self.k_std:g} × the larger seed standard deviation of the two rows); "
                f"{self.min_gap:g} points because the test set has 397 images, so smaller gaps are not "
                f"trusted; d and the margin are rounded to {10 ** -self.digits:g} point, as printed. "
                "A claim that A is above B (\"A > B\") is **reproduced** when d > margin, "
                "**contradicted** when d < −margin, and **not resolvable at this scale** otherwise. "
                "A claim that A is level with B or better (\"A ≥ B\", e.g. a fast method matching "
                "PGD-AT) is **reproduced** when d ≥ −margin and **contradicted** otherwise. "
                "The paper's own numbers are quoted for reference only; they do not enter the verdict "
                "(other data, model and budget).")


RULE = Rule()


@dataclass(frozen=True)
class Verdict:
    label: str
    difference: float | None = None
    margin: float | None = None
    seeds: int = 0


def verdict(ours_a, ours_b, direction: str = ">", rule: Rule = RULE) -> Verdict:
    """The verdict on "A > B" (``direction=">"``) or "A ≥ B" (``">="``) from our per-seed
    values of A and B, by ``rule`` (:meth:`Rule.text`). The only place a verdict is made."""
    if direction not in (">", ">="):
        raise ValueError(f"direction must be '>' or '>=', got {direction!r}")
    a, b = [float(v) for v in ours_a], [float(v) for v in ours_b]
    seeds = min(len(a), len(b))
    if seeds < rule.min_seeds:
        return Verdict(TOO_FEW_SEEDS, seeds=seeds)
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    d, margin = round(ma - mb, rule.digits), round(rule.margin(max(sa, sb)), rule.digits)
    if direction == ">":
        label = REPRODUCED if d > margin else CONTRADICTED if d < -margin else NOT_RESOLVABLE
    else:
        label = REPRODUCED if d >= -margin else CONTRADICTED
    return Verdict(label, d, margin, seeds)


@dataclass(frozen=True)
class Quote:
    """One number of a paper: the single row of ``book/paper_tables/<table>`` that ``filters`` select."""

    table: str
    label: str
    filters: dict

    def row(self):
        df = paper_table(self.table, **self.filters)
        if len(df) != 1:
            raise ConfigError(f"paper quote {self.label!r}: {self.table} has {len(df)} rows for {self.filters}")
        return df.iloc[0]


@dataclass(frozen=True)
class Claim:
    """One claim of a paper as a chapter tests it: row ``a`` against row ``b`` (labels and
    experiment names) on our ``metric`` at ``checkpoint``; ``quantity="gap"`` compares the
    per-seed gap best − last instead. ``quotes`` are the paper's numbers for the same rows."""

    key: str
    chapter: str           # notebook stem, e.g. "02_atas"
    section: str           # the heading (text as in the chapter) the row links to
    paper: str
    claim: str
    a: tuple[str, str]
    b: tuple[str, str]
    metric: str
    checkpoint: str = "last"
    direction: str = ">"
    quantity: str = "accuracy"
    quotes: tuple[Quote, ...] = field(default_factory=tuple)
    paper_setting: str = ""

    @property
    def experiments(self) -> tuple[str, str]:
        return self.a[1], self.b[1]


def _q(table, label, **filters):
    return Quote(table, label, filters)


_T1A = "atas_table1a.csv"
_SDI4 = "sdi_table4.csv"
_PGI1 = "pgi_slides_table1.csv"

#: the paper's metric and its name in ``paper_setting``, for each of our metrics in chapter 03
_INIT_PAPER_METRIC = {"pgd-20": ("pgd20", "PGD-20 accuracy"), "aa-fast": ("aa", "AutoAttack")}


def _init_claim(key, paper, claim, a, b, metric, quote_a, quote_b, model="", direction=">",
                section="Comparison: BP, EP, MEP, SDI, FGSM-RS, PGD-AT") -> Claim:
    """A claim of chapter 03 (``03_initialization``): ``quote_a`` and ``quote_b`` are
    ``(table, label, method)`` rows of the paper at the last checkpoint, on the paper's
    counterpart of ``metric``; ``model`` ends the paper setting when the paper names it."""
    paper_metric, what = _INIT_PAPER_METRIC[metric]
    quotes = tuple(_q(table, label, method=method, metric=paper_metric, checkpoint="last")
                   for table, label, method in (quote_a, quote_b))
    return Claim(key, "03_initialization", section, paper, claim, a, b, metric, direction=direction, quotes=quotes,
                 paper_setting=f"{what}, last checkpoint, CIFAR-10" + (f", {model}" if model else ""))


#: chapters of the book that test no paper's claim, and why (every other chapter has claims)
WITHOUT_CLAIMS = {"07_comparison": "puts every method under one protocol of the package's own; no paper makes "
                                   "a claim under it"}

#: the claims the chapters test, in book order
CLAIMS: tuple[Claim, ...] = (
    # 01: the baselines every later chapter builds on
    Claim("basics.pgd_at_robust", "01_basics", "All five models, three seeds", "PGD-AT (Madry et al.)",
          "Adversarial training with PGD makes the model robust where standard training does not.",
          ("PGD-AT (60 epochs)", "basics.pgd_at_long"), ("standard", "basics.standard"), "pgd-20",
          quotes=(_q(_T1A, "PGD-10 AT", method="PGD10", model="resnet18", metric="pgd10", checkpoint="last"),),
          paper_setting="PGD-10 accuracy, CIFAR-10, ResNet-18; no standard-training row"),
    Claim("basics.fgsm_rs_collapse", "01_basics", "Fast adversarial training and catastrophic overfitting",
          "FGSM-RS (Wong et al.)",
          "FGSM-RS trains with α = ε but overfits catastrophically with α = 2ε (PGD accuracy collapses).",
          ("FGSM-RS, α = ε", "basics.fgsm_rs_small_step"), ("FGSM-RS, α = 2ε", "basics.fgsm_rs_large_step"), "pgd-20",
          quotes=(_q(_SDI4, "FGSM-RS best", method="FGSM-RS", metric="pgd10", checkpoint="best"),
                  _q(_SDI4, "FGSM-RS last", method="FGSM-RS", metric="pgd10", checkpoint="last")),
          paper_setting="PGD-10 accuracy of one collapsing run, CIFAR-10, ResNet-18"),
    # 02: ATAS
    Claim("atas.no_collapse", "02_atas", "Motivation: the same step is too large for some examples only", "ATAS",
          "With the same maximum step (2ε) ATAS avoids the catastrophic overfitting of FGSM-RS.",
          ("ATAS", "atas.atas"), ("FGSM-RS, α = 2ε", "atas.fgsm_rs_2eps"), "pgd-20",
          quotes=(_q(_T1A, "ATAS", method="ATAS", model="wrn28_10", metric="pgd10", checkpoint="last"),
                  _q(_T1A, "FGSM-RS", method="FGSM-RS", model="wrn28_10", metric="pgd10", checkpoint="last")),
          paper_setting="PGD-10 accuracy, last checkpoint, CIFAR-10, WRN-28-10"),
    Claim("atas.matches_pgd_at", "02_atas", "Experiment 3 (Table I): accuracy and cost of the fast methods", "ATAS",
          "ATAS is as robust as PGD-AT (AutoAttack) at the cost of FGSM.",
          ("ATAS", "atas.atas"), ("PGD-AT (10 steps)", "atas.pgd_at"), "aa-fast", direction=">=",
          quotes=(_q(_T1A, "ATAS", method="ATAS", model="resnet18", metric="aa", checkpoint="last"),
                  _q(_T1A, "PGD-10 AT", method="PGD10", model="resnet18", metric="aa", checkpoint="last")),
          paper_setting="AutoAttack, last checkpoint, CIFAR-10, ResNet-18"),
    *(Claim(f"atas.above_{key}", "02_atas", "Experiment 3 (Table I): accuracy and cost of the fast methods", "ATAS",
            f"ATAS has a higher AutoAttack accuracy than {label}.",
            ("ATAS", "atas.atas"), (ours, name), "aa-fast",
            quotes=(_q(_T1A, "ATAS", method="ATAS", model="resnet18", metric="aa", checkpoint="last"),
                    _q(_T1A, label, method=method, model="resnet18", metric="aa", checkpoint="last")),
            paper_setting="AutoAttack, last checkpoint, CIFAR-10, ResNet-18")
      for key, label, ours, name, method in (
          ("fgsm_rs", "FGSM-RS", "FGSM-RS (α = 1.25ε)", "atas.fgsm_rs", "FGSM-RS"),
          ("gradalign", "GradAlign", "GradAlign", "atas.gradalign", "FGSM-GA"),
          ("free_at", "Free-AT", "Free-AT", "atas.free_at", "FreeAT"),
          ("atta", "ATTA", "ATTA", "atas.atta", "ATTA"))),
    # 03: FGSM-SDI and FGSM-PGI (paper quotes: last checkpoint, CIFAR-10)
    _init_claim("sdi.no_collapse", "FGSM-SDI",
                "A learned initialisation (FGSM-SDI) prevents the catastrophic overfitting of FGSM-RS.",
                ("FGSM-SDI", "init.fgsm_sdi"), ("FGSM-RS (α = 2ε)", "init.fgsm_rs"), "pgd-20",
                (_SDI4, "FGSM-SDI", "FGSM-SDI"), (_SDI4, "FGSM-RS", "FGSM-RS"), model="ResNet-18"),
    _init_claim("sdi.matches_pgd_at", "FGSM-SDI", "FGSM-SDI is as robust as PGD-AT (AutoAttack) at single-step cost.",
                ("FGSM-SDI", "init.fgsm_sdi"), ("PGD-AT", "init.pgd_at"), "aa-fast",
                (_SDI4, "FGSM-SDI", "FGSM-SDI"), (_SDI4, "PGD-AT", "PGD-AT"), model="ResNet-18", direction=">="),
    _init_claim("sdi.needs_gradient", "FGSM-SDI",
                "The generator needs the signed gradient: fed the image only, it does not prevent the collapse.",
                ("image + signed gradient", "init.fgsm_sdi"), ("image only", "init.sdi_benign"), "pgd-20",
                ("sdi_table2.csv", "image + gradient", "FGSM-SDI (input: Benign+Grad)"),
                ("sdi_table2.csv", "image only", "FGSM-SDI (input: Benign)"),
                section="The generator's input (FGSM-SDI, Table II)"),
    _init_claim("pgi.no_collapse", "FGSM-PGI",
                "A prior-guided initialisation (FGSM-MEP) prevents the catastrophic overfitting of FGSM-RS.",
                ("FGSM-MEP", "init.fgsm_mep"), ("FGSM-RS (α = 2ε)", "init.fgsm_rs"), "pgd-20",
                (_PGI1, "FGSM-MEP", "FGSM-MEP"), (_SDI4, "FGSM-RS", "FGSM-RS")),
    _init_claim("pgi.matches_pgd_at", "FGSM-PGI", "FGSM-MEP is as robust as PGD-AT (AutoAttack) at FGSM-RS-like cost.",
                ("FGSM-MEP", "init.fgsm_mep"), ("PGD-AT", "init.pgd_at"), "aa-fast",
                (_PGI1, "FGSM-MEP", "FGSM-MEP"), (_SDI4, "PGD-AT", "PGD-AT"), direction=">="),
    _init_claim("pgi.mep_above_bp", "FGSM-PGI",
                "The momentum prior (FGSM-MEP) is more robust than the previous batch's (FGSM-BP).",
                ("FGSM-MEP", "init.fgsm_mep"), ("FGSM-BP", "init.fgsm_bp"), "pgd-20",
                (_PGI1, "FGSM-MEP", "FGSM-MEP"), (_PGI1, "FGSM-BP", "FGSM-BP")),
    # 04: LAS-AT
    *(Claim(f"las.above_pgd_at_{key}", "04_las_at", "PGD-AT against LAS-PGD-AT", "LAS-AT",
            f"A learned attack strategy makes PGD-AT more robust ({what}).",
            ("LAS-PGD-AT", "las.las_pgd_at"), ("PGD-AT", "las.pgd_at"), metric, checkpoint="best",
            quotes=(_q("lasat_table2.csv", "LAS-AT", method="LAS-AT", metric=paper_metric),
                    _q("lasat_table2.csv", "PGD-AT", method="PGD-AT", metric=paper_metric)),
            paper_setting=f"{what}, CIFAR-10, WRN-34-10")
      for key, what, metric, paper_metric in (("pgd20", "PGD-20", "pgd-20", "pgd20"),
                                              ("aa", "AutoAttack", "aa-fast", "aa"))),
    # 05: LAST
    *(Claim(f"last.{key}", "05_last", section, "LAST", text, a, b, metric, checkpoint="best",
            quotes=(_q(table, a_paper, method=a_paper, dataset="cifar10", metric=paper_metric, checkpoint="best"),
                    _q(table, b_paper, method=b_paper, dataset="cifar10", metric=paper_metric, checkpoint="best")),
            paper_setting=f"PGD-10 accuracy at {budget}, best checkpoint, CIFAR-10, PreActResNet-18")
      for key, section, text, a, b, metric, table, a_paper, b_paper, paper_metric, budget in (
          ("lf_at_above_fast_at", "Table I at this scale: FGSM-RS (Fast-AT) against LF-AT",
           "LAST improves the robustness of Fast-AT (LF-AT > FGSM-RS) at ε.",
           ("LF-AT", "last.lf_at"), ("FGSM-RS", "last.fgsm_rs"), "pgd-10", "last_table1.csv", "LF-AT", "Fast-AT",
           "pgd10", "8/255"),
          ("lf_at_above_fast_at_2eps", "Table I at this scale: FGSM-RS (Fast-AT) against LF-AT",
           "LAST improves the robustness of Fast-AT at the larger budget 2ε (the paper's 16/255: the models "
           "trained at ε, attacked at 2ε).",
           ("LF-AT", "last.lf_at"), ("FGSM-RS", "last.fgsm_rs"), "pgd-10@2eps", "last_table1.csv", "LF-AT",
           "Fast-AT", "pgd10_eps16", "16/255"),
          ("lpgd_at_above_pgd_at", "The other bases: PGD-AT, GradAlign and Fast-BAT (Tables I and IV)",
           "LAST improves the robustness of PGD-AT (LPGD-AT > PGD-AT).",
           ("LPGD-AT", "last.lpgd_at"), ("PGD-AT(-2)", "last.pgd_at"), "pgd-10", "last_table4.csv", "LPGD-AT",
           "PGD-AT", "pgd10", "8/255"))),
    # 06: PIAT
    Claim("piat.smaller_gap", "06_piat", "Experiments on digits16", "PIAT",
          "PIAT+NMSE has a smaller gap between the best and the final checkpoint than PGD-AT (PGD-20).",
          ("PGD-AT", "piat.pgd_at"), ("PIAT+NMSE", "piat.piat_nmse"), "pgd-20", quantity="gap",
          quotes=(_q("piat_table1.csv", "PGD-AT", method="PGD-AT", dataset="cifar10", metric="pgd20",
                     checkpoint="diff"),
                  _q("piat_table1.csv", "PIAT+NMSE", method="PIAT+NMSE", dataset="cifar10", metric="pgd20",
                     checkpoint="diff")),
          paper_setting="best − final PGD-20 accuracy, CIFAR-10, ResNet-18"),
    Claim("piat.final_above_pgd_at", "06_piat", "Experiments on digits16", "PIAT",
          "PIAT+NMSE ends with a higher PGD-20 accuracy than PGD-AT (final checkpoint).",
          ("PIAT+NMSE", "piat.piat_nmse"), ("PGD-AT", "piat.pgd_at"), "pgd-20",
          quotes=(_q("piat_table1.csv", "PIAT+NMSE", method="PIAT+NMSE", dataset="cifar10", metric="pgd20",
                     checkpoint="last"),
                  _q("piat_table1.csv", "PGD-AT", method="PGD-AT", dataset="cifar10", metric="pgd20",
                     checkpoint="last")),
          paper_setting="PGD-20 accuracy, final checkpoint, CIFAR-10, ResNet-18"),
    *(Claim(f"piat.on_top_{key}", "06_piat", "PIAT on top of each base method (Fig. 6)", "PIAT",
            f"PIAT on top of {label} raises its final PGD-20 accuracy.",
            (f"PIAT + {label}", f"piat.piat_{key}"), (label, f"piat.{key}"), "pgd-20",
            quotes=(_q("piat_table3.csv", f"PIAT+{label}", method="PIAT" if key == "pgd_at" else f"PIAT+{label}",
                       dataset="cifar10", metric="pgd20"),
                    _q("piat_table3.csv", label, method=label, dataset="cifar10", metric="pgd20")),
            paper_setting="PGD-20 accuracy, CIFAR-10, WRN-32-10")
      for key, label in (("pgd_at", "PGD-AT"), ("alp", "ALP"), ("trades", "TRADES"), ("mart", "MART"))),
    Claim("piat.vit_above_base", "06_piat", "Vision transformers (Table IV)", "PIAT",
          "PIAT on top of its base raises the PGD-20 accuracy of an adversarially fine-tuned ViT "
          "(the paper's base is PGD-AT with ARD & PRM, ours plain PGD-AT).",
          ("PIAT + PGD-AT", "piat.vit_piat"), ("PGD-AT", "piat.vit_pgd_at"), "pgd-20",
          quotes=(_q("piat_table4.csv", "PGD-AT+A&P+PIAT", method="PGD-AT+A&P+PIAT", model="vit_base",
                     metric="pgd20"),
                  _q("piat_table4.csv", "PGD-AT+A&P", method="PGD-AT+A&P", model="vit_base", metric="pgd20")),
          paper_setting="PGD-20 accuracy, CIFAR-10, ViT-B pre-trained on ImageNet-1K; ours: the tiny ViT "
                        "pre-trained on clean digits16, at 8/255"),
)


def claims(chapter: str | None = None) -> list[Claim]:
    """The claims of ``chapter`` (a notebook stem such as ``"02_atas"``, or its name after
    the number, ``"atas"``), or all of them."""
    if chapter is None:
        return list(CLAIMS)
    chosen = [c for c in CLAIMS if chapter in (c.chapter, c.chapter.split("_", 1)[1])]
    if not chosen:
        raise ConfigError(f"no scorecard claims for chapter {chapter!r}; chapters: "
                          f"{', '.join(dict.fromkeys(c.chapter for c in CLAIMS))}")
    return chosen


def current_records(name: str, profile: str = "cpu", seeds=None, results_dir=None) -> list[dict] | None:
    """The records of experiment ``name`` for ``seeds`` (the profile's default seeds) at
    the profile's default settings, as :func:`advlit.experiments.run` would return them,
    but read only: ``None`` when any of them is missing or not current. Never trains."""
    seeds = experiments.DEFAULT_SEEDS[experiments.check_profile(profile)] if seeds is None else list(seeds)
    out = experiments.results_dir_for(profile, results_dir)
    records = []
    for seed in seeds:
        config = experiments.get_config(name, profile, seed=seed)
        record = load_record(out / run_name(config))
        if not is_current(record, config):
            return None
        records.append(record)
    return records


#: the attack a profile evaluates in place of a claim's ``cpu`` metric, in order of preference
EQUIVALENT = {"aa-fast": ("aa",), "pgd-20": ("pgd-10",), "pgd-50": ("pgd-50x10",)}


def metric_at(claim: Claim, profile: str = "cpu") -> str:
    """The final attack that scores ``claim`` at ``profile``: its metric, or the profile's
    counterpart (the ``gpu`` profile runs standard AutoAttack, not ``aa-fast``, for example)."""
    configs = [experiments.get_config(name, profile) for name in claim.experiments]
    attacks = set.intersection(*(set(config.final_attacks) for config in configs))
    base, ratio = split_eps_ratio_key(claim.metric)  # "pgd-10@2eps": pgd-10 at twice the training eps
    if ratio is not None and not all(ratio in (config.final_eps_ratios or []) for config in configs):
        raise ConfigError(f"claim {claim.key}: the {profile} profile does not evaluate every run at {ratio:g}eps")
    for metric in (base, *EQUIVALENT.get(base, ())):
        if metric in attacks:
            return metric if ratio is None else eps_ratio_key(metric, ratio)
    raise ConfigError(f"claim {claim.key}: the {profile} profile evaluates none of "
                      f"{[base, *EQUIVALENT.get(base, ())]}")


def values(claim: Claim, records: list[dict], metric: str | None = None) -> list[float]:
    """Our per-seed values of ``claim``'s quantity in ``records`` (of ``metric``, default the claim's)."""
    metric = metric or claim.metric
    if claim.quantity == "gap":
        return [r["final"]["best"][metric] - r["final"]["last"][metric] for r in records]
    return [r["final"][claim.checkpoint][metric] for r in records]


def _what(claim: Claim, metric: str) -> str:
    name = {"aa-fast": "AutoAttack (fast)", "aa": "AutoAttack"}.get(metric, metric.upper())
    return f"best − last {name}" if claim.quantity == "gap" else f"{name}, {claim.checkpoint}"


def evaluate(claim: Claim, profile: str = "cpu", results_dir=None) -> dict:
    """One row of the scorecard for ``claim`` at ``profile``: our numbers and the verdict."""
    recs = [current_records(name, profile, results_dir=results_dir) for name in claim.experiments]
    row = {"key": claim.key, "profile": profile}
    if any(r is None for r in recs):
        label = NOT_RUN if profile != "cpu" and all(r is None for r in recs) else NO_RECORDS
        return {**row, "verdict": label, "ours": "", "difference": None, "margin": None, "seeds": 0}
    metric = metric_at(claim, profile)
    a, b = values(claim, recs[0], metric), values(claim, recs[1], metric)
    v = verdict(a, b, claim.direction)
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    ours = (f"{claim.a[0]} {ma:.1f} ± {sa:.1f} vs {claim.b[0]} {mb:.1f} ± {sb:.1f}"
            + (f"; d = {v.difference:+.1f}, margin {v.margin:.1f}" if v.difference is not None else "")
            + f" ({v.seeds} seeds; {_what(claim, metric)})")
    return {**row, "verdict": v.label, "ours": ours, "difference": v.difference, "margin": v.margin,
            "seeds": v.seeds, "a": [ma, sa], "b": [mb, sb], "what": _what(claim, metric)}


def paper_numbers(claim: Claim) -> tuple[str, str]:
    """The paper's numbers of ``claim`` and where they are from: ``("53.43 vs 0.01",
    "PGD-10 accuracy, ...; ATAS, Table Ia")`` (each number names its table when they differ)."""
    rows = [(quote, quote.row()) for quote in claim.quotes]
    sources = list(dict.fromkeys(row["source"] for _, row in rows))
    parts = []
    for quote, row in rows:
        std = row.get("std")
        text = f"{quote.label} {row['value']:g}" + (f" ± {std:g}" if std == std and std is not None else "")
        parts.append(text + (f" ({row['source']})" if len(sources) > 1 else ""))
    return " vs ".join(parts), claim.paper_setting + (f"; {sources[0]}" if len(sources) == 1 else "")


def paper_text(claim: Claim) -> str:
    """The paper's numbers of ``claim``, quoted with their source, in one line."""
    numbers, where = paper_numbers(claim)
    return f"{numbers} ({where})"


def chapter_verdicts(chapter_key: str, profile: str = "cpu", results_dir=None):
    """The scorecard's rows of one chapter as a small table (what the chapter prints): the
    claim, our numbers at ``profile`` and the verdict, by :func:`verdict` with :data:`RULE`.
    A chapter calls it after its experiments, at the profile's default settings as the
    scorecard does (so the two agree even when the chapter ran with other seeds)::

        chapter_verdicts("02_atas", profile=chapter.profile, results_dir=chapter.results_dir)
    """
    import pandas as pd

    rows = []
    for claim in claims(chapter_key):
        r = evaluate(claim, profile, results_dir)
        rows.append({"claim": claim.claim, "paper": claim.paper, f"ours ({profile})": r["ours"] or "-",
                     "verdict": r["verdict"]})
    return pd.DataFrame(rows, index=pd.Index([c.key for c in claims(chapter_key)], name="claim id"))


def slug(heading: str) -> str:
    """The anchor MyST gives a heading (``myst_heading_anchors``; GitHub's rule)."""
    return re.sub(r"[^\w\u4e00-\u9fff\- ]", "", heading.lower().replace(" ", "-"))


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def scorecard(results_dirs: dict | None = None) -> list[dict]:
    """Every claim's row at the ``cpu`` and the ``gpu`` profile (records under
    ``results_dirs[profile]``, default ``results/<profile>``)."""
    results_dirs = results_dirs or {}
    rows = []
    for claim in CLAIMS:
        cpu = evaluate(claim, "cpu", results_dirs.get("cpu"))
        gpu = evaluate(claim, "gpu", results_dirs.get("gpu"))
        rows.append({"key": claim.key, "chapter": claim.chapter, "section": claim.section, "paper": claim.paper,
                     "claim": claim.claim, "direction": claim.direction, "paper_numbers": paper_text(claim),
                     "cpu": cpu, "gpu": gpu})
    return rows


def chapter_title(chapter: str) -> str:
    """The title of a chapter (the first heading of ``notebooks/src/<chapter>.py``), for the
    scorecard's headings: a ``{doc}`` role in a heading shows as a path in the page's
    table of contents."""
    from advlit.results import REPO_DIR

    for line in (REPO_DIR / "notebooks" / "src" / f"{chapter}.py").read_text().splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    raise ValueError(f"chapter {chapter} has no title line")


def render(rows: list[dict]) -> str:
    """The scorecard as MyST markdown (included by ``book/intro.md``): the rule, a count of
    the verdicts, and one table per chapter, each row linking to the chapter's section."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["cpu"]["verdict"]] = counts.get(row["cpu"]["verdict"], 0) + 1
    summary = ", ".join(f"{n} {label}" for label, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    lines = [
        "<!-- written by advlit.scorecard.write_scorecard (advlit book run); do not edit by hand -->",
        "",
        f"**The rule.** {RULE.text()}",
        "",
        f"**At the `cpu` profile:** {len(rows)} claims: {summary}. The `gpu` column says \"{NOT_RUN}\" until "
        "the chapters have been run at the paper's scale (records under `results/gpu/`).",
    ]
    for chapter in dict.fromkeys(row["chapter"] for row in rows):
        lines += ["", f"### [{_cell(chapter_title(chapter))}](/notebooks/{chapter}.ipynb)", "",
                  "| Claim (A vs B) | Verdict (`cpu`) | Ours (`cpu`): A vs B, mean ± std "
                  "| Paper: A vs B (quoted; other data, model) | `gpu` |",
                  "|---|---|---|---|---|"]
        for row in (r for r in rows if r["chapter"] == chapter):
            claim = next(c for c in CLAIMS if c.key == row["key"])
            link = f"[{_cell(row['section'])}](/notebooks/{row['chapter']}.ipynb#{slug(row['section'])})"
            sign = "≥" if row["direction"] == ">=" else ">"
            first = (f"{_cell(row['claim'])}<br>*A* = {_cell(claim.a[0])}, *B* = {_cell(claim.b[0])}; "
                     f"claim A {sign} B; see {link}")
            cpu = row["cpu"]
            ours = (f"{cpu['a'][0]:.1f} ± {cpu['a'][1]:.1f} vs {cpu['b'][0]:.1f} ± {cpu['b'][1]:.1f}<br>"
                    + (f"d = {cpu['difference']:+.1f}, margin {cpu['margin']:.1f}; " if cpu["difference"] is not None
                       else "") + f"{cpu['seeds']} seeds; {cpu['what']}") if "a" in cpu else "-"
            numbers, where = paper_numbers(claim)
            gpu = row["gpu"]["verdict"] if row["gpu"]["verdict"] != NO_RECORDS else "not run (records stale)"
            lines.append(f"| {first} | **{cpu['verdict']}** | {_cell(ours)} | {_cell(numbers)}<br>"
                         f"<small>{_cell(where)}</small> | {_cell(gpu)} |")
    return "\n".join(lines) + "\n"


def write_scorecard(results_dirs: dict | None = None, md_path: Path | None = None,
                    json_path: Path | None = None) -> Path:
    """Write the landing page's scorecard (markdown, default :data:`SCORECARD_MD`) and its
    rows (JSON, default :data:`SCORECARD_JSON`); never trains."""
    md_path = Path(md_path or SCORECARD_MD)
    json_path = Path(json_path or SCORECARD_JSON)
    rows = scorecard(results_dirs)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(render(rows))
    json_path.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    return md_path


if __name__ == "__main__":  # python -m advlit.scorecard: rewrite the scorecard from the records, run nothing
    print(write_scorecard())
