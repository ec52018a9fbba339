"""Reading-comprehension examples for the reader: SQuAD-style files to training and held-out items.

Training uses English SQuAD train and ``arcd-train.json`` only; XQuAD and ``arcd-test.json``
are held out (XQuAD's dev half of articles picks checkpoints, its test half is reported).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from qa_service.text import tokenize

SQUAD_TRAIN: Final = "squad-train-en/train-v1.1.reconstructed.json.gz"
ARCD_TRAIN: Final = "arcd/arcd-train.json"
ARCD_TEST: Final = "arcd/arcd-test.json"
XQUAD_AR: Final = "xquad/xquad.ar.json"
XQUAD_EN: Final = "xquad/xquad.en.json"


@dataclass(frozen=True)
class Example:
    id: str
    question: str
    context: str
    answer_start: int  # code points into context; -1 for a question the context does not answer
    answer: str
    article: int  # index of the article, for same-article negatives
    lang: str


@dataclass(frozen=True)
class HeldOut:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    lang: str  # question language
    split: str  # "dev" or "test"


def _load(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        data: list[dict[str, Any]] = json.load(fh)["data"]
    return data


def _realign(context: str, answer: str, start: int) -> int:
    """The answer's start in the context: as given, else the nearest whitespace-tolerant match."""
    if context[start : start + len(answer)] == answer:
        return start
    stripped = answer.strip()
    hits = [i for i in range(len(context)) if context.startswith(stripped, i)]
    if not hits:
        return -1
    return min(hits, key=lambda i: abs(i - start))


def training_examples(data_dir: Path) -> list[Example]:
    """SQuAD train + ARCD train, answers realigned to the context (unalignable ones dropped)."""
    out: list[Example] = []
    article = 0
    for rel, lang in ((SQUAD_TRAIN, "en"), (ARCD_TRAIN, "ar")):
        for art in _load(data_dir / rel):
            for para in art["paragraphs"]:
                context = para["context"]
                for qa in para["qas"]:
                    ans = qa["answers"][0]
                    start = _realign(context, ans["text"], ans["answer_start"])
                    if start < 0:
                        continue
                    text = ans["text"].strip()
                    out.append(Example(qa["id"], qa["question"].strip(), context, start, text, article, lang))
            article += 1
    return out


def xquad_split(title: str) -> str:
    """The answer benchmark's split of XQuAD articles: by the parity of the title's SHA-256."""
    return "dev" if int(hashlib.sha256(title.encode()).hexdigest(), 16) % 2 == 0 else "test"


def held_out(data_dir: Path) -> list[HeldOut]:
    """XQuAD Arabic questions and English questions over the Arabic paragraphs, plus arcd-test."""
    english = {
        qa["id"]: qa["question"]
        for a in _load(data_dir / XQUAD_EN)
        for p in a["paragraphs"]
        for qa in p["qas"]
    }
    out: list[HeldOut] = []
    for art in _load(data_dir / XQUAD_AR):
        split = xquad_split(art["title"])
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                out.append(HeldOut(qa["id"], qa["question"].strip(), para["context"], answers, "ar", split))
                if qa["id"] in english:
                    out.append(
                        HeldOut(qa["id"], english[qa["id"]].strip(), para["context"], answers, "en", split)
                    )
    for art in _load(data_dir / ARCD_TEST):
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                out.append(HeldOut(qa["id"], qa["question"].strip(), para["context"], answers, "ar", "arcd"))
    return out


def sample(items: Sequence[HeldOut], *, lang: str, split: str, n: int, seed: int = 0) -> list[HeldOut]:
    """A fixed random sample of one language and split (stable across runs)."""
    pool = [i for i in items if i.lang == lang and i.split == split]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def curriculum(examples: Sequence[Example], *, seed: int, arabic_weight: int) -> list[int]:
    """Training order: each round takes one unseen question from every paragraph, paragraphs shuffled.

    A partial epoch then covers as many distinct contexts as it can. Arabic examples are repeated
    ``arabic_weight`` times, spread over the epoch.
    """
    rng = random.Random(seed)
    by_context: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        by_context[ex.context].append(i)
    groups = list(by_context.values())
    for g in groups:
        rng.shuffle(g)
    order: list[int] = []
    depth = 0
    while True:
        layer = [g[depth] for g in groups if depth < len(g)]
        if not layer:
            break
        rng.shuffle(layer)
        order.extend(layer)
        depth += 1
    arabic = [i for i in order if examples[i].lang == "ar"]
    for _ in range(arabic_weight - 1):
        extra = arabic[:]
        rng.shuffle(extra)
        for i in extra:
            order.insert(rng.randrange(len(order) + 1), i)
    return order


def negatives_by_article(examples: Sequence[Example]) -> dict[int, list[str]]:
    """Each article's distinct paragraphs: contexts that do not answer another paragraph's question."""
    out: dict[int, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for ex in examples:
        if ex.context not in seen:
            seen.add(ex.context)
            out[ex.article].append(ex.context)
    return out


class Distractors:
    """For a question, the paragraphs of other articles that share the most of its words.

    These are the negatives retrieval hands the reader in service: passages about something
    else that a lexical ranking puts near the question. Ranked by TF-IDF over BM25's terms
    (``qa_service.text.tokenize``), sublinear term frequency, rows of unit length.
    """

    def __init__(self, examples: Sequence[Example]) -> None:
        from scipy import sparse  # training only: not imported by the service

        self._contexts: list[str] = []
        self._articles: list[int] = []
        for article, contexts in negatives_by_article(examples).items():
            self._contexts.extend(contexts)
            self._articles.extend([article] * len(contexts))
        self._vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        counts: list[int] = []
        for row, context in enumerate(self._contexts):
            terms: dict[int, int] = defaultdict(int)
            for term in tokenize(context):
                terms[self._vocab.setdefault(term, len(self._vocab))] += 1
            rows.extend([row] * len(terms))
            cols.extend(terms)
            counts.extend(terms.values())
        tf = sparse.csr_matrix(
            (1 + np.log(np.asarray(counts, dtype=np.float32)), (rows, cols)),
            shape=(len(self._contexts), len(self._vocab)),
        )
        df = np.bincount(np.asarray(cols), minlength=len(self._vocab))
        self._idf = np.log(len(self._contexts) / df).astype(np.float32)
        weighted = tf.multiply(self._idf).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        # by term, so a question's few terms select their rows instead of scanning every paragraph
        self._by_term = sparse.csr_matrix(weighted.multiply(1 / np.maximum(norms, 1e-9)[:, None]).T)

    def __call__(self, question: str, article: int, answer: str, n: int = 3) -> list[str]:
        """Up to ``n`` best-matching paragraphs of other articles that do not contain ``answer``."""
        terms = sorted({self._vocab[t] for t in tokenize(question) if t in self._vocab})
        if not terms:
            return []
        scores = np.asarray(self._by_term[terms].T @ self._idf[terms]).ravel()
        out: list[str] = []
        for row in np.argsort(-scores)[: 8 * n]:
            if scores[row] <= 0 or len(out) == n:
                break
            context = self._contexts[row]
            if self._articles[row] != article and answer not in context:
                out.append(context)
        return out
