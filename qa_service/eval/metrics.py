"""Grading one answer against its gold item, and summarising many gradings.

Answer comparison follows the SQuAD v1.1 evaluation script (lower case, punctuation
removed, articles removed, whitespace collapsed; EM and token F1, best over the gold
answers) extended for Arabic and digits:

* ``qa_service.text.normalize`` first: diacritics and tatweel removed, alef/yeh/ta
  marbuta variants folded, Arabic-Indic digits to ASCII, ؟ ، ؛ to ASCII punctuation.
* Every Unicode punctuation and symbol character is removed, except a ``.`` between two
  digits (so "2.5" stays a decimal, while "٢٬٥٠٠", "2,500" and "2500" all become "2500").
* The Arabic definite article is the equivalent of SQuAD's a/an/the removal: a leading
  "ال" is stripped from each token that keeps at least two letters ("الجيش" → "جيش").

Citations are graded against *targets*: the item's ``evidence`` when given, otherwise its
gold answers. A quote contains a target when the normalised target occurs in the
normalised quote, not glued to a digit (gold "5" is not in "15") or, for Latin letters,
inside another word ("car" is not in "cargo"); Arabic clitics around the target are fine.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from qa_service.models import Answer
from qa_service.text import detect_language, normalize

from .datasets import EvalItem

ENGLISH_ARTICLES: Final = frozenset({"a", "an", "the"})
ARABIC_ARTICLE: Final = "ال"
MIN_STEM_AFTER_ARTICLE: Final = 2
LATENCY_PERCENTILES: Final = (50, 95, 99)

# -- answer normalisation --------------------------------------------------------------------


def _strip_punctuation(text: str) -> str:
    """Drop Unicode punctuation and symbols, keeping a decimal point between digits."""
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if unicodedata.category(ch)[0] in "PS":
            if ch == "." and 0 < i < last and text[i - 1].isdigit() and text[i + 1].isdigit():
                out.append(ch)
            continue
        out.append(ch)
    return "".join(out)


def _drop_article(token: str) -> str | None:
    if token in ENGLISH_ARTICLES:
        return None
    if token.startswith(ARABIC_ARTICLE) and len(token) - len(ARABIC_ARTICLE) >= MIN_STEM_AFTER_ARTICLE:
        return token[len(ARABIC_ARTICLE):]
    return token


def answer_tokens(text: str) -> list[str]:
    """Comparison tokens of an answer (see the module docstring)."""
    tokens = (_drop_article(t) for t in _strip_punctuation(normalize(text)).split())
    return [t for t in tokens if t]


def normalize_answer(text: str) -> str:
    """SQuAD-style answer normalisation extended for Arabic and digits."""
    return " ".join(answer_tokens(text))


def exact_match(prediction: str, golds: Iterable[str]) -> bool:
    """The normalised prediction equals one normalised gold answer (an empty prediction never does)."""
    predicted = normalize_answer(prediction)
    return bool(predicted) and any(predicted == normalize_answer(g) for g in golds)


def f1_score(prediction: str, golds: Iterable[str]) -> float:
    """Best token-overlap F1 of the prediction against the gold answers."""
    predicted = answer_tokens(prediction)
    best = 0.0
    for gold in golds:
        expected = answer_tokens(gold)
        common = sum((Counter(predicted) & Counter(expected)).values())
        if common:
            precision, recall = common / len(predicted), common / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def _glued(neighbour: str, edge: str, beyond: str) -> bool:
    """Whether ``neighbour`` continues the needle's ``edge`` character into a longer token."""
    if edge.isdigit():  # "5" inside "15", or after the "." of "1.5"
        return neighbour.isdigit() or (neighbour == "." and beyond.isdigit())
    if edge.isascii() and edge.isalpha():
        return neighbour.isascii() and neighbour.isalnum()
    return False


def _bounded_find(haystack: str, needle: str) -> bool:
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = haystack[start - 1] if start else " "
        before2 = haystack[start - 2] if start > 1 else " "
        after = haystack[end] if end < len(haystack) else " "
        after2 = haystack[end + 1] if end + 1 < len(haystack) else " "
        if not _glued(before, needle[0], before2) and not _glued(after, needle[-1], after2):
            return True
        start = haystack.find(needle, start + 1)
    return False


def contains_answer(text: str, targets: Iterable[str]) -> bool:
    """A normalised target occurs in the normalised ``text`` as a whole token sequence."""
    haystack = normalize_answer(text)
    return any(needle and _bounded_find(haystack, needle)
               for needle in (normalize_answer(t) for t in targets))


# -- question types ---------------------------------------------------------------------------

QUESTION_TYPES: Final = ("how many", "when", "who", "where", "why", "how", "which", "what",
                         "yes/no", "other")

_EN_QUANTITY_AFTER_HOW: Final = frozenset({"many", "much", "long", "old", "far", "big", "large",
                                           "tall", "high", "often", "fast", "heavy"})
_EN_TIME_NOUNS: Final = frozenset({"year", "years", "month", "day", "date", "century", "decade",
                                   "time", "period", "era", "age"})
_EN_YES_NO_START: Final = frozenset({"is", "are", "was", "were", "do", "does", "did", "can", "could",
                                     "has", "have", "had", "will", "would", "should", "may", "might",
                                     "must", "shall"})
_EN_WORDS: Final = {"when": "when", "who": "who", "whom": "who", "whose": "who", "where": "where",
                    "why": "why", "which": "which", "what": "what"}


def _folded(words: Iterable[str]) -> frozenset[str]:
    return frozenset(normalize(w) for w in words)


# Arabic question words, compared after the matching fold (أين → اين, متى → متي, أي → اي).
# Anywhere in the question: words that are only ever interrogative (with clitics).
_AR_ANYWHERE: Final = {
    **dict.fromkeys(_folded(["كم", "بكم", "وكم"]), "how many"),
    **dict.fromkeys(_folded(["متى", "ومتى"]), "when"),
    **dict.fromkeys(_folded(["أين", "وأين"]), "where"),
    **dict.fromkeys(_folded(["لماذا", "ولماذا", "لمَ"]), "why"),
    **dict.fromkeys(_folded(["كيف", "وكيف"]), "how"),
    **dict.fromkeys(_folded(["ماذا", "وماذا"]), "what"),
    **dict.fromkeys(_folded(["لمن", "ممن", "بمن"]), "who"),
}
# Only near the start (word → type, last position allowed), because they are also common
# non-question words: من ("from"), ما (negation), أي ("i.e."); هل only opens a question.
_AR_OPENING: Final = {
    **dict.fromkeys(_folded(["من", "ومن"]), ("who", 0)),
    **dict.fromkeys(_folded(["هل", "وهل", "أهل"]), ("yes/no", 0)),
    **dict.fromkeys(_folded(["ما", "وما"]), ("what", 1)),  # "في ما"
    **dict.fromkeys(_folded(["أي", "بأي", "لأي", "وأي", "فأي"]), ("which", 2)),  # "إلى أي مدى"
}
_AR_QUANTITY_NOUNS: Final = _folded(["عدد", "كمية", "مقدار", "نسبة"])
_AR_TIME_NOUNS: Final = _folded(["عام", "سنة", "العام", "السنة", "يوم", "شهر", "قرن", "القرن",
                                 "تاريخ", "وقت", "عقد", "فترة"])
_AR_COPULAS: Final = _folded(["هو", "هي", "هم"])
_WORD_RE: Final = re.compile(r"[^\W_]+")
_LOOKAHEAD: Final = 3  # how far after "what/which/ما/أي" a time or quantity noun refines the type


def _refine(kind: str, following: Sequence[str], lang: str) -> str:
    """'what year' → when, 'ما عدد' → how many; otherwise ``kind``."""
    if kind not in ("what", "which"):
        return kind
    window = following[:_LOOKAHEAD]
    if lang == "ar":
        words = [w for w in window if w not in _AR_COPULAS]
        if words and words[0] in _AR_QUANTITY_NOUNS:
            return "how many"
        if words and words[0] in _AR_TIME_NOUNS:
            return "when"
        return kind
    if window and window[0] in _EN_TIME_NOUNS:
        return "when"
    return kind


def _english_type(words: list[str]) -> str:
    if words and words[0] in _EN_YES_NO_START:
        return "yes/no"
    for i, w in enumerate(words):
        if w == "how":
            following = words[i + 1:]
            return "how many" if following and following[0] in _EN_QUANTITY_AFTER_HOW else "how"
        if w in _EN_WORDS:
            return _refine(_EN_WORDS[w], words[i + 1:], "en")
    return "other"


def _arabic_type(words: list[str]) -> str:
    for i, w in enumerate(words):
        kind = _AR_ANYWHERE.get(w)
        if kind is None and w in _AR_OPENING:
            opening, last_position = _AR_OPENING[w]
            kind = opening if i <= last_position else None
        if kind is not None:
            return _refine(kind, words[i + 1:], "ar")
    return "other"


def question_type(question: str) -> str:
    """Coarse type of a question from its English or Arabic question word (one of QUESTION_TYPES)."""
    words = _WORD_RE.findall(normalize(question))
    if detect_language(question) == "ar":
        return _arabic_type(words)
    return _english_type(words)


# -- grading one question ---------------------------------------------------------------------


@dataclass
class CitationVerdict:
    """One citation of an answer and what the grader found about it."""

    n: int
    document_id: str
    start: int
    end: int
    quote: str
    valid: bool | None  # None: the stored document could not be read to check it
    contains_answer: bool
    problem: str | None = None


@dataclass
class QuestionRecord:
    """One graded question: the item, the service's answer and every verdict."""

    id: str
    question: str
    language: str
    question_type: str
    gold_answers: list[str]
    gold_document_ids: list[str]
    expect_abstain: bool
    evidence: str | None = None
    error: str | None = None
    answer: str | None = None
    short_answer: str | None = None
    abstained: bool | None = None
    retrieved_document_ids: list[str] = field(default_factory=list)
    gold_rank: int | None = None  # 1-based rank of the first passage of a gold document
    evidence_rank: int | None = None  # 1-based rank of the first passage holding a citation target
    citations: list[CitationVerdict] = field(default_factory=list)
    exact_match: bool | None = None
    f1: float | None = None
    cited_correct: bool | None = None  # the first citation holds a target
    supported: bool | None = None  # some citation holds a target
    latency_ms: float | None = None
    server_ms: float | None = None
    compose_ms: float | None = None  # the composer's (reader's) own time, as the service reports it

    @property
    def answerable(self) -> bool:
        return not self.expect_abstain and bool(self.gold_answers or self.evidence)


def citation_targets(item: EvalItem) -> list[str]:
    """What a citation must contain: the evidence when given, otherwise the gold answers."""
    return [item.evidence] if item.evidence else list(item.answers)


def retrieval_rank(document_ids: Sequence[str], gold: Iterable[str]) -> int | None:
    """1-based rank of the first passage that belongs to a gold document."""
    wanted = set(gold)
    return next((rank for rank, d in enumerate(document_ids, start=1) if d in wanted), None)


def quote_is_verbatim(text: str, start: int, end: int, quote: str) -> bool:
    """The quote is exactly the stored text at its code-point offsets."""
    return 0 <= start < end <= len(text) and text[start:end] == quote


def new_record(item: EvalItem) -> QuestionRecord:
    """A record for ``item`` before it is asked."""
    return QuestionRecord(
        id=item.id, question=item.question, language=detect_language(item.question),
        question_type=question_type(item.question), gold_answers=list(item.answers),
        gold_document_ids=list(item.gold_document_ids), expect_abstain=item.abstain,
        evidence=item.evidence,
    )


def grade(item: EvalItem, answer: Answer, latency_ms: float, texts: Mapping[str, str],
          unreadable: Mapping[str, str] | None = None) -> QuestionRecord:
    """Grade one answer.

    ``texts`` holds the stored text of cited documents; ``unreadable`` says, per document,
    why it could not be read (its citations stay unchecked). A cited document in neither
    does not exist, so its citations are invalid.
    """
    record = new_record(item)
    targets = citation_targets(item)
    record.answer = answer.answer
    record.short_answer = answer.short_answer
    record.abstained = answer.abstained
    record.latency_ms = round(latency_ms, 2)
    record.server_ms = answer.timings_ms.total
    record.compose_ms = answer.timings_ms.compose
    record.retrieved_document_ids = [p.document_id for p in answer.passages]
    if item.gold_document_ids:
        record.gold_rank = retrieval_rank(record.retrieved_document_ids, item.gold_document_ids)
    if record.answerable:
        record.evidence_rank = next((rank for rank, p in enumerate(answer.passages, start=1)
                                     if contains_answer(p.text, targets)), None)
    for c in answer.citations:
        reason = (unreadable or {}).get(c.document_id)
        text = texts.get(c.document_id)
        valid: bool | None
        problem: str | None
        if reason is not None:
            valid, problem = None, reason
        elif text is None:
            valid, problem = False, "the cited document is not in the collection"
        else:
            valid = quote_is_verbatim(text, c.start, c.end, c.quote)
            problem = None if valid else "the quote is not verbatim at its offsets"
        record.citations.append(CitationVerdict(
            n=c.n, document_id=c.document_id, start=c.start, end=c.end, quote=c.quote,
            valid=valid, contains_answer=contains_answer(c.quote, targets), problem=problem))
    if item.answers and not item.abstain:
        prediction = "" if answer.abstained else (answer.short_answer or "")
        record.exact_match = exact_match(prediction, item.answers)
        record.f1 = round(f1_score(prediction, item.answers), 4)
    if record.answerable:
        cited = [] if answer.abstained else record.citations
        record.cited_correct = bool(cited) and cited[0].contains_answer
        record.supported = any(c.contains_answer for c in cited)
    return record


# -- summaries --------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _ratio(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def summarize(records: Sequence[QuestionRecord], ks: Sequence[int]) -> dict[str, Any]:
    """Every metric over ``records`` (questions that failed with an error are only counted).

    Rates are fractions in [0, 1]; a metric with nothing to measure is None.
    """
    graded = [r for r in records if r.error is None]
    retrieval = [r for r in graded if r.gold_document_ids]
    qa = [r for r in graded if r.exact_match is not None]
    cited = [r for r in graded if r.answerable]
    citations = [c for r in graded for c in r.citations]
    checked = [c for c in citations if c.valid is not None]
    abstained = [r for r in graded if r.abstained]
    unanswerable = [r for r in graded if r.expect_abstain]
    latencies = [r.latency_ms for r in graded if r.latency_ms is not None]
    summary: dict[str, Any] = {
        "questions": len(records),
        "errors": len(records) - len(graded),
        "with_gold_document": len(retrieval),
        "answerable": len(cited),
        "unanswerable": len(unanswerable),
    }
    for k in ks:
        summary[f"recall@{k}"] = _ratio(
            sum(1 for r in retrieval if r.gold_rank is not None and r.gold_rank <= k), len(retrieval))
    summary["mrr"] = _mean([1.0 / r.gold_rank if r.gold_rank else 0.0 for r in retrieval])
    # The passage that holds the answering sentence (or a gold answer), whatever its document.
    for k in ks:
        summary[f"evidence_recall@{k}"] = _ratio(
            sum(1 for r in cited if r.evidence_rank is not None and r.evidence_rank <= k), len(cited))
    summary["em"] = _mean([float(bool(r.exact_match)) for r in qa])
    summary["f1"] = _mean([r.f1 or 0.0 for r in qa])
    summary["short_answer_rate"] = _ratio(
        sum(1 for r in graded if r.short_answer and not r.abstained), len(graded))
    summary["cited_accuracy"] = _ratio(sum(1 for r in cited if r.cited_correct), len(cited))
    summary["citation_support"] = _ratio(sum(1 for r in cited if r.supported), len(cited))
    summary["citations"] = len(citations)
    summary["citations_unchecked"] = len(citations) - len(checked)
    summary["citation_validity"] = _ratio(sum(1 for c in checked if c.valid), len(checked))
    summary["abstain_rate"] = _ratio(len(abstained), len(graded))
    summary["abstain_precision"] = (
        _ratio(sum(1 for r in abstained if r.expect_abstain), len(abstained)) if unanswerable else None)
    summary["abstain_recall"] = _ratio(sum(1 for r in unanswerable if r.abstained), len(unanswerable))
    composing = [r.compose_ms for r in graded if r.compose_ms is not None]
    for q in LATENCY_PERCENTILES:
        summary[f"latency_p{q}_ms"] = (
            round(float(np.percentile(latencies, q)), 1) if latencies else None)
        summary[f"compose_p{q}_ms"] = (
            round(float(np.percentile(composing, q)), 1) if composing else None)
    return summary


def breakdown(records: Sequence[QuestionRecord], key: Callable[[QuestionRecord], str],
              ks: Sequence[int], order: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """``summarize`` per group of ``key`` (groups in ``order`` first, then by size)."""
    groups: dict[str, list[QuestionRecord]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    rank = {name: i for i, name in enumerate(order)}
    names = sorted(groups, key=lambda g: (rank.get(g, len(rank)), -len(groups[g]), g))
    return {name: summarize(groups[name], ks) for name in names}
