"""The OpenVINO encoder must embed as ``SentenceTransformer.encode`` does, with the real model.

Token ids and counts are compared exactly (prompts, whitespace, Arabic, truncation at 512);
embeddings by cosine: questions (f32) >= 0.9999, passages (int8 by default, computed in bf16
where the CPU has it) >= 0.999, and without int8 >= 0.9999.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qa_service.embedding.openvino import PASSAGE_WIDTHS, OpenVINOEncoder, _tokenize
from qa_service.embedding.provision import load_model_encoder, resolve_model_path
from qa_service.embedding.sentence_transformer import cpu_has_amx, cpu_has_fast_bf16, cpu_has_int8_dot
from qa_service.settings import Settings

pytestmark = pytest.mark.integration

TEXTS = [
    "أعلنت بغداد توصلها إلى اتفاق مع واشنطن لإنهاء مهمة التحالف، وتنشر الولايات المتحدة ٢٥٠٠ عسكري.",
    "  The Panthers defense gave up just 308 points.  ",
    "\nسؤال؟ نعم؛ لا، ربما",
    "كلمة " * 700,  # longer than the model's 512 tokens: truncated alike
]
QUESTIONS = ["كم عدد الجنود الأمريكيين في العراق؟", "How many US troops are in Iraq?", "x"]


@pytest.fixture(scope="module")
def encoders() -> tuple[OpenVINOEncoder, Any]:
    pytest.importorskip("openvino", reason="the OpenVINO backend needs `pip install openvino`")
    from sentence_transformers import SentenceTransformer

    settings = Settings.from_env().replace(encoder_backend="openvino")
    ours = load_model_encoder(settings)
    assert isinstance(ours, OpenVINOEncoder)
    plain = SentenceTransformer(resolve_model_path(settings)[0], device="cpu")
    return ours, plain


def test_token_ids_and_counts_match_the_model_tokenizer(encoders: tuple[OpenVINOEncoder, Any]) -> None:
    ours, plain = encoders
    assert ours.count_tokens(TEXTS) == [len(ids) for ids in plain.tokenizer(TEXTS, add_special_tokens=False)
                                        ["input_ids"]]
    prompt = ours.info.document_prompt
    want = plain.tokenizer([prompt + t for t in TEXTS], truncation=True, max_length=512)["input_ids"]
    assert [e.ids for e in _tokenize(ours._tokenizer, ours.info, [prompt + t for t in TEXTS])] == want


def test_embeddings_match_sentence_transformers(encoders: tuple[OpenVINOEncoder, Any]) -> None:
    ours, plain = encoders
    questions = ours.encode_queries(QUESTIONS)
    ref_q = plain.encode(QUESTIONS, prompt_name="query", normalize_embeddings=True)
    assert np.sum(questions * ref_q, axis=1).min() >= 0.9999
    passages = ours.encode_passages(TEXTS)
    ref_p = plain.encode(TEXTS, prompt_name="document", normalize_embeddings=True)
    assert np.sum(passages * ref_p, axis=1).min() >= 0.999
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    # Batching and order must not change a text's vector.
    single = ours.encode_passages(TEXTS[1:2])
    assert float(single[0] @ passages[1]) >= 0.9999


def test_passages_are_int8_by_default_where_the_cpu_has_vnni_but_no_amx_and_as_asked_otherwise(
        encoders: tuple[OpenVINOEncoder, Any]) -> None:
    pytest.importorskip("nncf", reason="the int8 conversion needs `pip install nncf`")
    ours, plain = encoders
    # int8 by default where the CPU has int8 dot products (AVX2-only CPUs lose accuracy with it)
    # and no AMX (whose bf16 is as fast).
    assert (ours.passage_variant == "int8") == (cpu_has_int8_dot() and not cpu_has_amx())
    asked = Settings.from_env().replace(encoder_backend="openvino", passage_precision="int8")
    assert load_model_encoder(asked).passage_variant == "int8"
    settings = Settings.from_env().replace(encoder_backend="openvino", passage_precision="bfloat16")
    unquantized = load_model_encoder(settings)
    assert unquantized.passage_variant == ("bf16" if cpu_has_fast_bf16() else "fp32")
    ref = plain.encode(TEXTS, prompt_name="document", normalize_embeddings=True)
    assert np.sum(unquantized.encode_passages(TEXTS) * ref, axis=1).min() >= 0.9999


def test_passage_batches_take_a_few_widths_and_keep_their_vectors(
        encoders: tuple[OpenVINOEncoder, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every input shape costs OpenVINO memory: batches are padded to a few widths, which must not
    change a vector."""
    ours, _ = encoders
    texts = [" ".join(["كلمة"] * n) for n in (3, 9, 17, 33, 70, 101, 150, 333)]
    alone = np.stack([ours.encode_passages([t])[0] for t in texts])
    model = ours._passage_model()
    widths: list[int] = []
    infer = model.infer

    def spy(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        widths.append(ids.shape[1])
        return infer(ids, mask)

    monkeypatch.setattr(model, "infer", spy)
    together = ours.encode_passages(texts)
    assert widths and set(widths) <= set(PASSAGE_WIDTHS)
    assert np.sum(together * alone, axis=1).min() >= 0.9999
