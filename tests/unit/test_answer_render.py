"""How a cited answer reads: the lead line, quotes, dates and sources, time awareness, abstention."""

from __future__ import annotations

import msgspec
import pytest

from qa_service.answer.base import ComposeInput
from qa_service.answer.question import Kind, question_kind
from qa_service.answer.reader import ReaderComposer
from qa_service.answer.render import format_day
from qa_service.answer.verify import verify_citations
from qa_service.models import Passage
from qa_service.text import figure_value
from tests.answer_fixtures import BBC, SEED, SEED_TEXT, passage
from tests.fakes import ScriptedReader

# The reader finds these figures wherever they are; the newer one scores a little lower.
composer = ReaderComposer(ScriptedReader({"2500": 5.0, "٢٬٥٠٠": 5.0, "522": 5.2}), min_score=0.0)


def ask(question: str, passages: list[Passage], lang: str) -> tuple[str, str | None, list[str]]:
    c = composer.compose(ComposeInput(question, lang, passages))
    verify_citations(c.answer, c.citations, passages)
    return c.answer, c.short_answer, [cit.document_id for cit in c.citations]


def test_quantity_in_arabic_cites_the_sentence_verbatim_with_document_offsets() -> None:
    c = composer.compose(ComposeInput("كم عدد العسكريين الأمريكيين في العراق؟", "ar", [SEED]))
    verify_citations(c.answer, c.citations, [SEED])
    assert c.short_answer == "2500" and c.answer_language == "ar" and not c.abstained
    cit = c.citations[0]
    assert cit.quote.startswith("وتنشر الولايات المتحدة 2500 عسكري")
    assert SEED_TEXT[cit.start - SEED.start:cit.end - SEED.start] == cit.quote  # document offsets
    # One plain line in the question's language, then the verbatim quote as its own paragraph.
    lead, quote = c.answer.split("\n\n")
    assert lead == "2500 — حتى 25 يناير 2024، عربي بوست [1]"
    assert quote == f"«{cit.quote}» [1]"
    assert c.answer[cit.answer_start:cit.answer_end] == "2500 — حتى 25 يناير 2024، عربي بوست"


def test_english_question_over_arabic_text_answers_in_english_with_the_arabic_quote() -> None:
    answer, short, _ = ask("How many US troops are in Iraq?", [SEED], "en")
    assert short == "2500"
    lead, quote = answer.split("\n\n")
    assert lead == "2,500 — as of 25 January 2024, عربي بوست [1]"
    assert quote.startswith("«وتنشر الولايات المتحدة 2500") and quote.endswith("» [1]")


def test_english_answers_name_the_outlet_in_latin_script_where_the_collection_has_it() -> None:
    seed = msgspec.structs.replace(SEED, source_latin="Arabi Post")
    c = composer.compose(ComposeInput("How many US troops are in Iraq?", "en", [seed]))
    assert c.answer.startswith("2,500 — as of 25 January 2024, Arabi Post [1]\n\n«")
    assert c.short_answer == "2500" and c.short_display == "2,500"
    assert c.citations[0].source == "عربي بوست" and c.citations[0].source_latin == "Arabi Post"
    arabic = composer.compose(ComposeInput("كم عدد الجنود الأمريكيين في العراق؟", "ar", [seed]))
    assert arabic.answer.startswith("2500 — حتى 25 يناير 2024، عربي بوست [1]")


def test_newest_figure_leads_as_of_its_date_and_the_older_one_keeps_its_citation() -> None:
    c = composer.compose(ComposeInput("How many US troops are in Iraq?", "en", [BBC, SEED]))
    verify_citations(c.answer, c.citations, [BBC, SEED])
    assert c.short_answer == "2500"
    paragraphs = c.answer.split("\n\n")
    assert paragraphs[0] == "2,500 — as of 25 January 2024, عربي بوست [1]"
    assert paragraphs[1].startswith("«وتنشر")
    assert paragraphs[2] == "Earlier: 522 — as of 16 March 2018, BBC [2]"
    assert paragraphs[3].startswith("«وتقر الولايات المتحدة") and paragraphs[3].endswith("» [2]")
    assert [(x.n, x.document_id, x.published_at[:10]) for x in c.citations] == [
        (1, "seed", "2024-01-25"), (2, "bbc", "2018-03-16")]
    older = c.citations[1]
    assert "522" in c.answer[older.answer_start:older.answer_end]


def test_time_aware_answer_in_arabic() -> None:
    answer, short, docs = ask("كم عدد الجنود الأمريكيين في العراق؟", [BBC, SEED], "ar")
    assert short == "2500" and docs == ["seed", "bbc"]
    assert answer.startswith("2500 — حتى 25 يناير 2024، عربي بوست [1]\n\n«")
    assert "\n\nسابقًا: 522 — حتى 16 مارس 2018، BBC [2]\n\n«وتقر" in answer


def test_a_question_naming_a_year_prefers_evidence_from_then() -> None:
    answer, short, docs = ask("How many US troops were in Iraq in 2018?", [SEED, BBC], "en")
    assert short == "522" and docs[0] == "bbc"
    assert "As of" not in answer


def test_same_figure_in_other_digits_is_not_a_disagreement() -> None:
    # ٢٬٥٠٠ and 2500 are the same figure: no "as of", the second article corroborates.
    other = passage("other", "وتنشر الولايات المتحدة ٢٬٥٠٠ عسكري في العراق.", 0.86,
                    source="الجزيرة", published_at="2023-05-01")
    answer, short, docs = ask("كم عدد العسكريين الأمريكيين في العراق؟", [SEED, other], "ar")
    assert short in {"2500", "٢٬٥٠٠"} and "سابقًا" not in answer
    assert set(docs) == {"seed", "other"}
    # Both sources on the one lead line, then each quote.
    assert answer.split("\n\n")[0].endswith("[1]؛ وكذلك الجزيرة، 1 مايو 2023 [2]") or \
        answer.split("\n\n")[0].endswith("[1]؛ وكذلك عربي بوست، 25 يناير 2024 [2]")
    assert len(answer.split("\n\n")) == 3


@pytest.mark.parametrize(("question", "kind"), [
    ("How many troops are in Iraq?", Kind.QUANTITY),
    ("كم عدد الجنود؟", Kind.QUANTITY),
    ("ما عدد سكان القاهرة؟", Kind.QUANTITY),
    ("When did the war start?", Kind.DATE),
    ("In what year was it built?", Kind.DATE),
    ("متى بدأت الحرب؟", Kind.DATE),
    ("في أي عام تأسست الجامعة؟", Kind.DATE),
    ("Who founded the company?", Kind.PERSON),
    ("Which team won Super Bowl 50?", Kind.PERSON),
    ("من هو رئيس الوزراء؟", Kind.PERSON),
    ("Where is the Eiffel Tower?", Kind.PLACE),
    ("أين يقع البرج؟", Kind.PLACE),
    ("من أين جاء؟", Kind.PLACE),
    ("في أي مدينة ولد؟", Kind.PLACE),
    ("Is Baghdad the capital of Iraq?", Kind.YESNO),
    ("هل بغداد عاصمة العراق؟", Kind.YESNO),
    ("Why did they leave?", Kind.OTHER),
])
def test_question_kinds_in_english_and_arabic(question: str, kind: Kind) -> None:
    assert question_kind(question) is kind


def test_figures_compare_after_digit_folding_and_scale() -> None:
    assert figure_value("٢٥٠٠") == figure_value("2,500") == figure_value("2500") == 2500
    assert figure_value("2.5 مليون") == figure_value("2,500,000") == 2_500_000


def test_dates_are_localised() -> None:
    assert format_day("2024-01-25T15:41:00+00:00", "en") == "25 January 2024"
    assert format_day("2018-03-16", "ar") == "16 مارس 2018"
    assert format_day("sometime", "en") == "sometime"




def test_below_the_threshold_the_answer_says_plainly_that_the_collection_does_not_hold_it() -> None:
    strict = ReaderComposer(ScriptedReader({"2500": -1.0}), min_score=40.0)
    c = strict.compose(ComposeInput("ما هي عاصمة اليابان؟", "ar", [SEED]))
    assert c.abstained and c.citations == [] and c.short_answer is None
    assert c.answer == "لا تحتوي المجموعة على إجابة عن هذا السؤال."
    assert c.confidence is not None and c.confidence < 40.0
    empty = strict.compose(ComposeInput("Who won?", "en", []))
    assert empty.abstained and empty.answer == "The collection does not contain an answer to this question."
