"""What an evaluation run leaves behind: JSON for machines, Markdown and PNG plots for people.

Files in the output folder:

* ``results.json``   meta, overall metrics, breakdowns by language and question type,
                     threshold verdicts and deltas against ``--compare``
* ``records.jsonl``  one graded question a line (question, answer, citations, verdicts)
* ``report.md``      the report, with ``recall_at_k.png``, ``latency.png``, ``by_type.png``
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from qa_service.errors import BadInputError

from .metrics import LATENCY_PERCENTILES, QuestionRecord

RESULTS_FILE: Final = "results.json"
RECORDS_FILE: Final = "records.jsonl"
REPORT_FILE: Final = "report.md"
RECALL_PLOT: Final = "recall_at_k.png"
LATENCY_PLOT: Final = "latency.png"
TYPE_PLOT: Final = "by_type.png"

HEADLINE_RECALL_KS: Final = (1, 5, 10)
LATENCY_KEYS: Final = tuple(f"latency_p{q}_ms" for q in LATENCY_PERCENTILES)
MISSES_SHOWN: Final = 12
QUOTE_CHARS_SHOWN: Final = 160
PLOT_DPI: Final = 110
LATENCY_BINS: Final = 40
LEGEND_HEADROOM: Final = 1.15  # y-axis top of rate plots, leaving room for a legend above 1.0

LABELS: Final = {
    "mrr": "MRR", "em": "exact match", "f1": "F1", "short_answer_rate": "short answer given",
    "cited_accuracy": "cited-sentence accuracy", "citation_support": "citation support",
    "citation_validity": "citation validity", "abstain_rate": "abstained",
    "abstain_precision": "abstention precision", "abstain_recall": "abstention recall",
    **{k: f"latency p{q}" for k, q in zip(LATENCY_KEYS, LATENCY_PERCENTILES, strict=True)},
    **{f"evidence_recall@{k}": f"answer-bearing passage in top {k}" for k in HEADLINE_RECALL_KS},
    "compose_p50_ms": "reader / composer p50", "compose_p95_ms": "reader / composer p95",
}


def headline_keys(top_k: int) -> list[str]:
    """The metrics of the headline table, in order."""
    recalls = [f"recall@{k}" for k in HEADLINE_RECALL_KS if k <= top_k]
    evidence = [f"evidence_recall@{k}" for k in HEADLINE_RECALL_KS if k <= top_k]
    return [*recalls, "mrr", *evidence, "em", "f1", "short_answer_rate", "cited_accuracy", "citation_support",
            "citation_validity", "abstain_rate", "abstain_precision", "abstain_recall", *LATENCY_KEYS,
            "compose_p50_ms", "compose_p95_ms"]


def label(key: str) -> str:
    return LABELS.get(key, key)


def fmt(key: str, value: Any) -> str:
    """A metric value for people: rates as percentages, latencies in ms, counts as is."""
    if value is None:
        return "–"
    if key.endswith("_ms"):
        return f"{value:.1f} ms"
    if isinstance(value, float):
        return f"{100 * value:.1f}%" if key != "mrr" else f"{value:.3f}"
    return str(value)


def fmt_delta(key: str, delta: float) -> str:
    if key.endswith("_ms"):
        return f"{delta:+.1f} ms"
    if key == "mrr":
        return f"{delta:+.3f}"
    return f"{100 * delta:+.1f} pt"


# -- JSON -------------------------------------------------------------------------------------


def write_results(out: Path, result: Mapping[str, Any], records: Sequence[QuestionRecord]) -> None:
    (out / RESULTS_FILE).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n",
                                    encoding="utf-8")
    with (out / RECORDS_FILE).open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")


def load_previous(path: Path) -> dict[str, Any]:
    """A ``results.json`` of an earlier run (the file, or the run folder holding it)."""
    if path.is_dir():
        path = path / RESULTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"--compare: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"--compare: cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("overall"), dict):
        raise BadInputError(f"--compare: {path} is not a results.json written by `qa-service eval`")
    return data


def compare(current: Mapping[str, Any], previous: Mapping[str, Any],
            keys: Sequence[str]) -> list[dict[str, Any]]:
    """Per metric: previous value, current value and the change (metrics both runs have)."""
    rows = []
    for key in keys:
        now, before = current["overall"].get(key), previous["overall"].get(key)
        if isinstance(now, int | float) and isinstance(before, int | float):
            rows.append({"metric": key, "previous": before, "current": now,
                         "delta": round(now - before, 4)})
    return rows


# -- Markdown ---------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def headline_table(result: Mapping[str, Any]) -> list[str]:
    """Metrics as rows; columns: all questions, then each question language."""
    languages = list(result["by_language"])
    keys = headline_keys(result["meta"]["top_k"])
    groups = [result["overall"], *(result["by_language"][lang] for lang in languages)]
    header = ["metric", f"all ({result['overall']['questions']})",
              *(f"{lang} ({result['by_language'][lang]['questions']})" for lang in languages)]
    rows = [[label(k), *(fmt(k, g.get(k)) for g in groups)] for k in keys]
    return _table(header, rows)


def _type_table(result: Mapping[str, Any]) -> list[str]:
    top_k = result["meta"]["top_k"]
    recall = f"recall@{min(5, top_k)}"
    keys = [recall, "mrr", "em", "f1", "cited_accuracy", "citation_support", "abstain_rate",
            "latency_p50_ms"]
    rows = [[name, str(m["questions"]), *(fmt(k, m.get(k)) for k in keys)]
            for name, m in result["by_type"].items()]
    return _table(["question type", "n", *(label(k) for k in keys)], rows)


def _recall_table(result: Mapping[str, Any]) -> list[str]:
    languages = list(result["by_language"])
    groups = [result["overall"], *(result["by_language"][lang] for lang in languages)]
    rows = [[str(k), *(fmt(f"recall@{k}", g.get(f"recall@{k}")) for g in groups)]
            for k in range(1, result["meta"]["top_k"] + 1)]
    return _table(["k", "all", *languages], rows)


def _misses(records: Sequence[QuestionRecord]) -> list[str]:
    """Questions answered wrongly or not retrieved, for a first look (all are in records.jsonl)."""
    wrong = [r for r in records
             if r.error or (r.gold_document_ids and r.gold_rank is None)
             or (r.answerable and not r.supported) or (r.expect_abstain and not r.abstained)]
    lines = []
    for r in wrong[:MISSES_SHOWN]:
        first = r.citations[0].quote if r.citations else ""
        if len(first) > QUOTE_CHARS_SHOWN:
            first = first[:QUOTE_CHARS_SHOWN] + "…"
        gold = " / ".join(r.gold_answers) or r.evidence or ("(abstain)" if r.expect_abstain else "")
        rank = "error" if r.error else (str(r.gold_rank) if r.gold_rank else "not retrieved")
        got = r.error or ("(abstained)" if r.abstained else (r.short_answer or "(no short answer)"))
        lines.append(f"- **{r.id}** [{r.language}, {r.question_type}] {r.question}  \n"
                     f"  gold: {gold} · gold paragraph rank: {rank} · answer: {got}  \n"
                     f"  first citation: {first or '(none)'}")
    if len(wrong) > MISSES_SHOWN:
        lines.append(f"- … {len(wrong) - MISSES_SHOWN} more in `{RECORDS_FILE}`")
    return lines or ["None."]


def _meta_lines(meta: Mapping[str, Any]) -> list[str]:
    target = meta["url"] or f"in-process, index {meta['index_dir']}"
    lines = [
        f"- dataset: `{meta['dataset']}`"
        + (f", questions from `{meta['questions_from']}`" if meta.get("questions_from") else ""),
        f"- target: {target}; model `{meta.get('model') or 'unknown'}`; mode `{meta['mode']}`; "
        f"top_k {meta['top_k']}",
        f"- questions: {meta['questions']}"
        + (f" (limit {meta['limit']}" + (f", seed {meta['seed']}" if meta.get("seed") is not None
                                          else "") + ")" if meta.get("limit") else ""),
        f"- started {meta['started_at']}, took {meta['seconds']:.1f} s",
    ]
    if meta.get("ingested"):
        ing = meta["ingested"]
        lines.append(f"- ingested first: {ing['paragraphs']} paragraphs + {ing['distractors']} "
                     "distractor documents")
    return lines


HOW_TO_READ: Final = """\
- **recall@k / MRR**: the gold paragraph (document) is among the first k passages returned;
  MRR is the mean of 1/rank of its first passage (0 when not returned). Over questions with a
  known gold document.
- **exact match / F1**: the service's `short_answer` against the gold answers, SQuAD-style
  (lower case, punctuation and articles removed) plus Arabic normalisation (diacritics,
  alef/yeh/ta marbuta variants, the "ال" article) and digit folding (٢٥٠٠ = 2500). No short
  answer, or an abstention, scores 0. Over answerable questions with gold answers.
- **cited-sentence accuracy**: the first citation's quote contains a gold answer (or the
  item's `evidence`), compared normalised. **citation support**: some citation does. Over
  answerable questions; an abstention counts as a miss.
- **citation validity**: citations whose quote is verbatim at its offsets in the stored
  document (read from the store, or `GET /v1/documents/{id}` over HTTP), over the
  citations that could be checked.
- **abstention precision / recall**: of the abstentions, the share on unanswerable items;
  of the unanswerable items, the share abstained on (only when the dataset has some).
- **latency**: wall time per question as the evaluator saw it (HTTP round trip, or the
  in-process call); with `--concurrency` above 1 it includes queueing at the server."""


def render_markdown(result: Mapping[str, Any], records: Sequence[QuestionRecord]) -> str:
    meta = result["meta"]
    lines = [f"# Evaluation: {meta['name']}", "", *_meta_lines(meta), ""]
    if result["overall"]["errors"]:
        lines += [f"**{result['overall']['errors']} question(s) failed with an error** and are left "
                  f"out of every metric; see `error` in `{RECORDS_FILE}`.", ""]
    lines += ["## Headline", "", *headline_table(result), ""]
    unchecked = result["overall"]["citations_unchecked"]
    if unchecked:
        reason = next((c.problem for r in records for c in r.citations if c.valid is None), None)
        lines += [f"**{unchecked} of {result['overall']['citations']} citations could not be "
                  f"checked** against the stored document (first reason: {reason}); citation "
                  "validity covers the others only.", ""]
    if result.get("comparison"):
        cmp = result["comparison"]
        lines += [f"## Compared with `{cmp['previous']}`", "",
                  *_table(["metric", "previous", "now", "change"],
                          [[label(r["metric"]), fmt(r["metric"], r["previous"]),
                            fmt(r["metric"], r["current"]), fmt_delta(r["metric"], r["delta"])]
                           for r in cmp["rows"]]), ""]
    if result.get("thresholds"):
        lines += ["## Thresholds", "",
                  *_table(["metric", "limit", "value", "verdict"],
                          [[label(t["metric"]), f"{t['kind']} {fmt(t['metric'], t['limit'])}",
                            fmt(t["metric"], t["value"]), "pass" if t["passed"] else "**FAIL**"]
                           for t in result["thresholds"]]), ""]
    lines += ["## Retrieval", "", f"![recall@k]({RECALL_PLOT})", "", *_recall_table(result), "",
              "## By question type", "", f"![by question type]({TYPE_PLOT})", "",
              *_type_table(result), "",
              "## Latency", "", f"![latency]({LATENCY_PLOT})", "",
              " · ".join(f"{label(k)} {fmt(k, result['overall'].get(k))}" for k in LATENCY_KEYS), "",
              "## Misses to look at", "", *_misses(records), "",
              "## How to read these numbers", "", HOW_TO_READ, ""]
    return "\n".join(lines)


# -- plots ------------------------------------------------------------------------------------


def write_plots(out: Path, result: Mapping[str, Any], records: Sequence[QuestionRecord]) -> None:
    """recall@k curve, latency histogram, per-type bars (matplotlib, Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def save(fig: Figure, name: str) -> None:
        FigureCanvasAgg(fig)
        fig.tight_layout()
        fig.savefig(out / name, dpi=PLOT_DPI)

    top_k = result["meta"]["top_k"]
    ks = list(range(1, top_k + 1))
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    # One line per question language, plus "all" when there are several.
    languages = result["by_language"]
    groups = {"all": result["overall"], **languages} if len(languages) > 1 else dict(languages)
    for name, metrics in groups.items():
        values = [metrics.get(f"recall@{k}") for k in ks]
        if all(v is not None for v in values):
            ax.plot(ks, values, marker="o", label=f"{name} ({metrics['with_gold_document']})")
    ax.set(xlabel="k (passages)", ylabel="recall@k", ylim=(0, 1.02), xticks=ks,
           title=f"Gold paragraph in the top k — {result['meta']['name']}")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(loc="lower right")
    save(fig, RECALL_PLOT)

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    latencies = [r.latency_ms for r in records if r.latency_ms is not None]
    if latencies:
        ax.hist(latencies, bins=LATENCY_BINS, color="#4c72b0")
        for key, style in zip(LATENCY_KEYS, (":", "--", "-."), strict=True):
            value = result["overall"].get(key)
            if value is not None:
                ax.axvline(value, color="black", linestyle=style, label=f"{label(key)} {value:.0f} ms")
        ax.legend()
    ax.set(xlabel="latency per question (ms)", ylabel="questions", title="Latency")
    save(fig, LATENCY_PLOT)

    recall = f"recall@{min(5, top_k)}"
    bars = [(recall, recall), ("f1", "F1"), ("cited_accuracy", "cited-sentence acc."),
            ("citation_support", "citation support")]
    types = list(result["by_type"])
    fig = Figure(figsize=(max(6.0, 1.1 * len(types) + 2), 4))
    ax = fig.subplots()
    width = 0.8 / len(bars)
    for b, (key, name) in enumerate(bars):
        values = [result["by_type"][t].get(key) or 0.0 for t in types]
        ax.bar([i + (b - (len(bars) - 1) / 2) * width for i in range(len(types))], values,
               width=width, label=name)
    ax.set_xticks(range(len(types)),
                  [f"{t}\n({result['by_type'][t]['questions']})" for t in types], fontsize=8)
    ax.set(ylabel="rate", ylim=(0, LEGEND_HEADROOM), title="By question type")
    ax.legend(fontsize=8, ncols=len(bars), loc="upper center")
    ax.grid(axis="y", alpha=0.3)
    save(fig, TYPE_PLOT)
