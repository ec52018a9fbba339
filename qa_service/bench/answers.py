"""Answer benchmark: cited-sentence accuracy, short-answer EM/F1, abstention P/R, composition latency.

    qa-service bench answers [--limit N] [--top-k 5] [--out artifacts/bench/answers.json]

Pool: the XQuAD Arabic paragraphs plus the ARCD paragraphs (../shared/data), ingested with
the configured model into ``--index-dir`` (passage embeddings are cached, so a rerun is
cheap). Questions: XQuAD, asked in Arabic (AR→AR) and in English over the same Arabic
paragraphs (EN→AR), retrieved through the service's own retriever.

* **cited-sentence accuracy**: the first citation's quote contains a gold answer
  (after normalisation); an abstention on an answerable question is a miss.
* **short-answer EM / F1**: SQuAD's token metrics after the service's Arabic-aware
  normalisation (digits folded, alef/ya/ta-marbuta folded), punctuation and the articles
  "a/an/the" and "ال" removed; no short answer scores 0.
* **abstention**: each question is also asked with its gold paragraph removed from the
  results (unanswerable). The threshold on the composer's confidence is calibrated on
  the dev half of the XQuAD articles (maximising accuracy over answerable + unanswerable)
  and reported on the test half.
* **news** (``--news-index DIR``, an index of the news QA set's collection): the news QA set's
  dev and test questions are asked through the service too; its dev split joins the
  calibration, each dev set weighing the same (an answer counts there only when its first
  citation holds the evidence sentence), and both splits are reported.
* **latency**: composition time per question (p50/p95), next to the baseline
  "quote the first sentence of the top passage" measured in the same run.

The composer gets what ``/v1/ask`` gives it: the question's query vector and, with
``QA_SENTENCE_VECTORS`` on, the store's sentence vectors (ingesting the pool with it on
fills them in for an index folder ingested without). Set it to ``false`` to measure
without them over the same folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from qa_service.answer.base import ComposeInput, Composer, Composition
from qa_service.answer.pipeline import reader_composer
from qa_service.answer.question import question_kind
from qa_service.embedding.base import Encoder
from qa_service.errors import BadInputError
from qa_service.eval import metrics
from qa_service.eval.datasets import EvalItem, load_dataset
from qa_service.models import AskRequest, Document, Passage
from qa_service.reader.data import xquad_split
from qa_service.settings import Settings
from qa_service.text import detect_language, split_sentences

SHARED_DATA: Final = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NEWS_QA: Final = Path(__file__).resolve().parents[2] / "tests" / "data" / "news-qa"
XQUAD_AR: Final = "xquad/xquad.ar.json"
XQUAD_EN: Final = "xquad/xquad.en.json"
ARCD: Final = "arcd/arcd.json"
# Retrieval depth: top_k passages answer; extra ones stand in when the gold one is removed.
EXTRA_FOR_UNANSWERABLE: Final = 10


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    lang: str  # question language
    gold_doc: str
    answers: tuple[str, ...]
    split: str  # "dev" or "test"


# -- data ----------------------------------------------------------------------------------


def _doc_id(prefix: str, context: str) -> str:
    return f"{prefix}:{hashlib.sha256(context.encode()).hexdigest()[:16]}"


def load_pool_and_items(data: Path) -> tuple[list[Document], list[Item]]:
    """Pool documents (XQuAD-ar + ARCD paragraphs) and the XQuAD questions in both languages."""
    docs: dict[str, Document] = {}
    ar = json.loads((data / XQUAD_AR).read_text(encoding="utf-8"))
    en = json.loads((data / XQUAD_EN).read_text(encoding="utf-8"))
    english = {qa["id"]: qa["question"] for a in en["data"] for p in a["paragraphs"] for qa in p["qas"]}
    items: list[Item] = []
    for article in ar["data"]:
        split = xquad_split(article["title"])
        for para in article["paragraphs"]:
            context = para["context"]
            doc_id = _doc_id("xquad", context)
            docs.setdefault(doc_id, Document(id=doc_id, text=context, source="XQuAD", lang="ar"))
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                items.append(Item(qa["id"], qa["question"].strip(), "ar", doc_id, answers, split))
                if qa["id"] in english:
                    items.append(Item(qa["id"], english[qa["id"]].strip(), "en", doc_id, answers, split))
    arcd = json.loads((data / ARCD).read_text(encoding="utf-8"))
    for article in arcd["data"]:
        for para in article["paragraphs"]:
            doc_id = _doc_id("arcd", para["context"])
            docs.setdefault(doc_id, Document(id=doc_id, text=para["context"], source="ARCD", lang="ar"))
    return list(docs.values()), items


# -- metrics ---------------------------------------------------------------------------------


def exact_match(prediction: str | None, answers: Sequence[str]) -> float:
    return float(prediction is not None and metrics.exact_match(prediction, answers))


def f1(prediction: str | None, answers: Sequence[str]) -> float:
    return 0.0 if prediction is None else metrics.f1_score(prediction, answers)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    item: Item
    answerable: Composition
    unanswerable: Composition
    compose_ms: float
    baseline_ms: float
    baseline_hit: bool


def lead_sentence_baseline(passages: Sequence[Passage]) -> str | None:
    """The naive composer: quote the first sentence of the top passage."""
    if not passages:
        return None
    s, e = split_sentences(passages[0].text)[0]
    return passages[0].text[s:e]


def answer_all(items: Sequence[Item], service: Any, composer: Composer,
               top_k: int) -> list[Outcome]:
    """Retrieve once per question, compose with and without the gold paragraph."""
    outcomes: list[Outcome] = []
    for n, item in enumerate(items, start=1):
        passages, _ = service.search(item.question, top_k + EXTRA_FOR_UNANSWERABLE)
        # As /v1/ask does: the query vector (from the encoder's cache) and the sentence vectors.
        qvec = service.encoder.encode_queries([item.question])[0]
        lookup = service.sentence_lookup()
        answerable = passages[:top_k]
        without_gold = [p for p in passages if p.document_id != item.gold_doc][:top_k]
        t0 = time.perf_counter()
        with_gold = composer.compose(ComposeInput(item.question, item.lang, answerable,
                                                  query_vector=qvec, sentence_vectors=lookup))
        t1 = time.perf_counter()
        lead = lead_sentence_baseline(answerable)
        t2 = time.perf_counter()
        missing = composer.compose(ComposeInput(item.question, item.lang, without_gold,
                                                query_vector=qvec, sentence_vectors=lookup))
        outcomes.append(Outcome(item, with_gold, missing, (t1 - t0) * 1000, (t2 - t1) * 1000,
                                lead is not None and metrics.contains_answer(lead, item.answers)))
        if n % 200 == 0:
            print(f"  {n}/{len(items)} questions", file=sys.stderr)
    return outcomes


@dataclass(frozen=True)
class Decision:
    """One composition as calibration sees it: is answering right, is abstaining right."""

    confidence: float | None
    right_if_answered: bool
    right_if_refused: bool


def xquad_decisions(outcomes: Sequence[Outcome]) -> list[Decision]:
    """Each XQuAD question twice: with its paragraph it should answer, without it abstain."""
    return [d for o in outcomes for d in (Decision(o.answerable.confidence, True, False),
                                          Decision(o.unanswerable.confidence, False, True))]


def calibrate(*sets: Sequence[Decision]) -> float:
    """The confidence threshold with the best mean accuracy over ``sets`` (dev splits), each set
    weighing the same whatever its size."""
    sets = tuple(s for s in sets if s)
    if not sets:
        return -math.inf
    values = sorted({d.confidence for s in sets for d in s if d.confidence is not None})

    def accuracy(threshold: float) -> float:
        return statistics.fmean(
            statistics.fmean((d.right_if_answered if d.confidence is not None and d.confidence >= threshold
                              else d.right_if_refused) for d in s) for s in sets)

    best, best_acc = -math.inf, -1.0
    for threshold in [-math.inf, *values]:
        acc = accuracy(threshold)
        if acc > best_acc:
            best, best_acc = threshold, acc
    return best


def _answers(c: Composition, threshold: float) -> bool:
    return not c.abstained and c.confidence is not None and c.confidence >= threshold


def summarise(outcomes: Sequence[Outcome], threshold: float) -> dict[str, Any]:
    """Every metric for one set of questions at the calibrated threshold."""
    n = len(outcomes)
    if n == 0:
        return {"questions": 0}
    answered = [_answers(o.answerable, threshold) for o in outcomes]
    cited = [bool(o.answerable.citations) and metrics.contains_answer(o.answerable.citations[0].quote,
                                                                  o.item.answers) for o in outcomes]
    shorts = [o.answerable.short_answer for o in outcomes]
    refused = [not _answers(o.unanswerable, threshold) for o in outcomes]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for o, s in zip(outcomes, shorts, strict=True):
        by_kind[question_kind(o.item.question).value].append(f1(s, o.item.answers))
    tp_abstain = sum(refused)
    fp_abstain = sum(not a for a in answered)
    return {
        "questions": n,
        "cited_sentence_accuracy": sum(c and a for c, a in zip(cited, answered, strict=True)) / n,
        "cited_sentence_accuracy_no_abstention": sum(cited) / n,
        "baseline_lead_sentence_accuracy": sum(o.baseline_hit for o in outcomes) / n,
        "short_answer_em": 100 * statistics.fmean(exact_match(s, o.item.answers)
                                                  for s, o in zip(shorts, outcomes, strict=True)),
        "short_answer_f1": 100 * statistics.fmean(f1(s, o.item.answers)
                                                  for s, o in zip(shorts, outcomes, strict=True)),
        "short_answer_coverage": sum(s is not None for s in shorts) / n,
        "short_answer_f1_by_kind": {k: {"n": len(v), "f1": 100 * statistics.fmean(v)}
                                    for k, v in sorted(by_kind.items())},
        "abstain_precision": tp_abstain / (tp_abstain + fp_abstain) if tp_abstain + fp_abstain else 0.0,
        "abstain_recall": tp_abstain / n,
        "answer_precision": sum(answered) / (sum(answered) + n - tp_abstain)
        if sum(answered) + n - tp_abstain else 0.0,
        "answer_recall": sum(answered) / n,
        "compose_ms_p50": percentile([o.compose_ms for o in outcomes], 0.5),
        "compose_ms_p95": percentile([o.compose_ms for o in outcomes], 0.95),
        "baseline_compose_ms_p50": percentile([o.baseline_ms for o in outcomes], 0.5),
    }


# -- the news QA set ----------------------------------------------------------------------------


@dataclass
class NewsOutcome:
    item: EvalItem
    lang: str
    split: str
    confidence: float | None
    cited: bool  # the first citation holds the evidence sentence (never abstaining)
    short_answer: str | None


class _Recording:
    """The reader composer, keeping the last composition's confidence (service.ask drops it)."""

    def __init__(self, inner: Composer) -> None:
        self.inner = inner
        self.name = inner.name
        self.last: float | None = None

    def compose(self, request: ComposeInput) -> Composition:
        composition = self.inner.compose(request)
        self.last = composition.confidence
        return composition


def answer_news(settings: Settings, encoder: Encoder, index_dir: Path, questions: Path) -> list[NewsOutcome]:
    """Ask the news QA set's dev and test questions over its collection, never abstaining."""
    from qa_service.service import QAService

    composer = _Recording(reader_composer(settings, abstain=False))
    service = QAService(settings.replace(index_dir=index_dir), encoder, composer=composer)
    outcomes: list[NewsOutcome] = []
    try:
        if service.store.counts()[1] == 0:
            raise BadInputError(f"{index_dir} holds no news collection: build it as "
                                "tests/data/news-qa/README.md says")
        for split in ("dev", "test"):
            for item in load_dataset(questions / f"{split}.jsonl").items:
                answer = service.ask(AskRequest(question=item.question))
                cited = bool(answer.citations) and metrics.contains_answer(
                    answer.citations[0].quote, metrics.citation_targets(item))
                outcomes.append(NewsOutcome(item, detect_language(item.question), split, composer.last,
                                            cited and not item.abstain, answer.short_answer))
    finally:
        service.close()
    return outcomes


def news_decisions(outcomes: Sequence[NewsOutcome]) -> list[Decision]:
    """Answering is right when it cites the evidence; abstaining only where the set says so."""
    return [Decision(o.confidence, o.cited, o.item.abstain) for o in outcomes]


def summarise_news(outcomes: Sequence[NewsOutcome], threshold: float) -> dict[str, Any]:
    """The news set's answers at the calibrated threshold: what a reader of the service sees."""
    n, answerable = len(outcomes), [o for o in outcomes if not o.item.abstain]
    if not answerable:
        return {"questions": n, "answerable": 0}

    def answers(o: NewsOutcome) -> bool:
        return o.confidence is not None and o.confidence >= threshold

    refused = sum(not answers(o) for o in outcomes)
    refused_right = sum(not answers(o) for o in outcomes if o.item.abstain)
    return {
        "questions": n, "answerable": len(answerable),
        "cited_sentence_accuracy": sum(o.cited and answers(o) for o in answerable) / len(answerable),
        "cited_sentence_accuracy_no_abstention": sum(o.cited for o in answerable) / len(answerable),
        "short_answer_f1": 100 * statistics.fmean(f1(o.short_answer if answers(o) else None, o.item.answers)
                                                  for o in answerable),
        "abstained": refused / n,
        "abstain_precision": refused_right / refused if refused else 0.0,
        "abstain_recall": refused_right / (n - len(answerable)) if n > len(answerable) else 0.0,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of this benchmark (also usable as a ``qa-service bench`` subcommand)."""
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="folder with xquad/ and arcd/")
    parser.add_argument("--index-dir", type=Path, default=Path("artifacts/bench/answers-index"),
                        help="where the paragraph pool is ingested (reused across runs)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="questions per language and split")
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench/answers.json"))
    parser.add_argument("--news-index", type=Path, default=None, metavar="DIR",
                        help="an index of the news collection (tests/data/news-qa/README.md): its dev "
                             "split joins the calibration, each dev set weighing the same, and both "
                             "splits are reported")
    parser.add_argument("--news-qa", type=Path, default=NEWS_QA, metavar="DIR",
                        help="the news QA set's folder (dev.jsonl, test.jsonl)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa_service.bench.answers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Ingest the pool, answer every question with and without its gold paragraph, report."""
    if not (args.data / XQUAD_AR).exists():
        print(f"error: the benchmark needs {args.data / XQUAD_AR} (and arcd/ beside it); pass --data DIR",
              file=sys.stderr)
        return 1
    if args.news_index and not Settings(index_dir=args.news_index).store_path.exists():
        print(f"error: --news-index {args.news_index} is not an index folder: build the news collection's "
              "index as tests/data/news-qa/README.md says", file=sys.stderr)
        return 1
    from qa_service.embedding import load_encoder
    from qa_service.service import QAService

    settings = Settings.from_env().replace(index_dir=args.index_dir)
    encoder = load_encoder(settings)
    try:  # the news set first: a wrong folder fails in seconds, not after the XQuAD run
        news = answer_news(settings, encoder, args.news_index, args.news_qa) if args.news_index else []
    except BadInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    docs, items = load_pool_and_items(args.data)
    if args.limit:
        groups: dict[tuple[str, str], list[Item]] = defaultdict(list)
        for item in items:
            groups[(item.lang, item.split)].append(item)
        items = [i for group in groups.values() for i in group[:args.limit]]
    service = QAService(settings, encoder)
    try:
        report = service.ingest(docs)
        print(f"pool: {len(docs)} paragraphs ({report.added} newly ingested); {len(items)} questions",
              file=sys.stderr)
        # Thresholds are applied here, after calibration, so the composer never abstains itself.
        composer = reader_composer(settings, abstain=False)
        composer.warm_up()
        outcomes = answer_all(items, service, composer, args.top_k)
    finally:
        service.close()
    # Arabic questions over Arabic passages calibrate QA_MIN_READER_SCORE; English ones
    # QA_MIN_READER_SCORE_CROSS_LINGUAL (cross-language spans score lower).
    thresholds = {lang: calibrate(
        xquad_decisions([o for o in outcomes if o.item.split == "dev" and o.item.lang == lang]),
        news_decisions([o for o in news if o.split == "dev" and o.lang == lang])) for lang in ("ar", "en")}
    results: dict[str, Any] = {
        "composer": "reader",
        "settings": {"QA_MIN_READER_SCORE": thresholds["ar"],
                     "QA_MIN_READER_SCORE_CROSS_LINGUAL": thresholds["en"]},
        "calibrated_on": ["XQuAD dev", *(["news QA dev"] if news else [])],
        "top_k": args.top_k, "pool_documents": len(docs), "model": settings.embedding_model,
        "sentence_vectors": settings.sentence_vectors,
        "questions_per_set_limit": args.limit, "sets": {}, "news": {}}
    for lang, name in (("ar", "AR→AR"), ("en", "EN→AR")):
        for split in ("dev", "test"):
            chosen = [o for o in outcomes if o.item.lang == lang and o.item.split == split]
            results["sets"][f"{name} {split}"] = summarise(chosen, thresholds[lang])
            if news:
                asked = [o for o in news if o.lang == lang and o.split == split]
                results["news"][f"{lang.upper()} {split}"] = summarise_news(asked, thresholds[lang])
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


def print_table(results: dict[str, Any]) -> None:
    calibrated = ", ".join(f"{k}={v:.4f}" for k, v in results["settings"].items())
    calibrated += f" ({' + '.join(results.get('calibrated_on', ['XQuAD dev']))})"
    vectors = "on" if results.get("sentence_vectors") else "off"
    print(f"\nAnswer benchmark, {results['composer']} composer (pool {results['pool_documents']} paragraphs, "
          f"top_k {results['top_k']}, QA_SENTENCE_VECTORS={vectors}); "
          f"abstention thresholds calibrated: {calibrated}\n")
    print("| set | n | cited-sent acc | (no abstention) | lead-sentence baseline | short EM | short F1 "
          "| short coverage | abstain P | abstain R | answer P | answer R | compose p50 ms | p95 ms |")
    print("|---|" + "---|" * 13)
    for name, m in results["sets"].items():
        if not m["questions"]:
            continue
        print(f"| {name} | {m['questions']} | {m['cited_sentence_accuracy']:.3f} | "
              f"{m['cited_sentence_accuracy_no_abstention']:.3f} | "
              f"{m['baseline_lead_sentence_accuracy']:.3f} | "
              f"{m['short_answer_em']:.1f} | {m['short_answer_f1']:.1f} | {m['short_answer_coverage']:.2f} | "
              f"{m['abstain_precision']:.3f} | {m['abstain_recall']:.3f} | {m['answer_precision']:.3f} | "
              f"{m['answer_recall']:.3f} | {m['compose_ms_p50']:.2f} | {m['compose_ms_p95']:.2f} |")
    if results.get("news"):
        print("\nNews QA set over its collection, same thresholds:\n")
        print("| set | n | answerable | cited-sent acc | (no abstention) | short F1 | abstained "
              "| abstain P | abstain R |")
        print("|---|" + "---|" * 8)
        for name, m in results["news"].items():
            if not m["answerable"]:
                continue
            print(f"| {name} | {m['questions']} | {m['answerable']} | {m['cited_sentence_accuracy']:.3f} | "
                  f"{m['cited_sentence_accuracy_no_abstention']:.3f} | {m['short_answer_f1']:.1f} | "
                  f"{m['abstained']:.2f} | {m['abstain_precision']:.3f} | {m['abstain_recall']:.3f} |")
    print("\nshort-answer F1 by question kind (test sets):")
    for name, m in results["sets"].items():
        if name.endswith("test") and m["questions"]:
            kinds = ", ".join(f"{k} {v['f1']:.1f} (n={v['n']})"
                              for k, v in m["short_answer_f1_by_kind"].items())
            print(f"  {name}: {kinds}")


if __name__ == "__main__":
    raise SystemExit(main())
