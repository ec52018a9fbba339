"""Extractive composer: evidence choice, short answers, time awareness, abstention, offsets."""

from __future__ import annotations

import msgspec
import pytest

from qa_service.answer.base import ComposeInput
from qa_service.answer.extractive import ExtractiveComposer, format_day
from qa_service.answer.question import Kind, analyse, question_kind
from qa_service.answer.short import figure_value, short_answer
from qa_service.answer.verify import verify_citations
from qa_service.models import Passage
from tests.answer_fixtures import BBC, SEED, SEED_TEXT, passage

composer = ExtractiveComposer(min_score=0.5)


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


def test_low_evidence_abstains_in_the_question_language_without_citations() -> None:
    strict = ExtractiveComposer(min_score=0.95)
    c = strict.compose(ComposeInput("ما هي عاصمة اليابان؟", "ar", [SEED]))
    assert c.abstained and c.citations == [] and c.short_answer is None
    assert c.answer == "لا تحتوي المجموعة على إجابة عن هذا السؤال."
    assert c.confidence is not None and c.confidence < 0.95
    empty = strict.compose(ComposeInput("Who won?", "en", []))
    assert empty.abstained and "does not contain" in empty.answer


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


@pytest.mark.parametrize(("question", "sentence", "expected"), [
    ("How many points did the Panthers give up?",
     "The Panthers defense gave up just 308 points, ranking sixth in the league.", "308"),
    ("كم نقطة تخلى عنها دفاع البانثرز؟", "لم يتخلى فريق بانثرز سوى عن ٣٠٨ نقطة، ليحتل المركز السادس.", "٣٠٨"),
    ("كم عدد سكان المدينة؟", "يبلغ عدد سكان المدينة 2.5 مليون نسمة منذ عام 2010.", "2.5 مليون"),
    ("How many people were hired?", "In 2019, the firm hired 1,200 people.", "1,200"),
    ("كم كان عدد سكان وارسو في 1901؟", "بلغ عدد السكان 711,988 نسمة (1901).", "711,988"),
    ("ما نسبة الأراضي المزروعة؟", "تغطي الغابات 30 ألف كيلومتر، منها 91% مزروعة.", "91%"),
    ("كم اختياراً حصل عليه؟", "ومتمتعاً بـ أربعة اختيارات في قائمة برو بول.", "أربعة"),
    ("When did Baghdad announce the agreement?",
     "أعلنت بغداد، الخميس 25 يناير/كانون الثاني 2024، توصلها إلى اتفاق مع واشنطن.",
     "25 يناير/كانون الثاني 2024"),
    ("متى تأسست الجامعة؟", "تأسست الجامعة عام 1908 في القاهرة.", "1908"),
    ("When was the treaty signed?", "The treaty was signed on March 3, 1918 at Brest.", "March 3, 1918"),
    ("أين تقع جامعة القاهرة؟", "تقع جامعة القاهرة في الجيزة قرب النيل.", "الجيزة"),
    ("Who led the team in sacks?", "Kawann Short led the team in sacks with 11.", "Kawann Short"),
])
def test_short_answers_are_spans_of_the_sentence(question: str, sentence: str, expected: str) -> None:
    q = analyse(question, "ar" if "؟" in question else "en")
    found = short_answer(q, sentence)
    assert found is not None
    text, span = found
    assert text == expected and span is not None and sentence[span[0]:span[1]] == text


def test_yes_no_only_when_the_evidence_is_explicit() -> None:
    q = analyse("Is Baghdad the capital of Iraq?", "en")
    assert short_answer(q, "Baghdad is the capital of Iraq.") == ("Yes", None)
    assert short_answer(q, "Baghdad is not the capital of Iraq.") == ("No", None)
    assert short_answer(q, "Basra is a port city.") is None
    ar = analyse("هل بغداد عاصمة العراق؟", "ar")
    assert short_answer(ar, "بغداد هي عاصمة العراق.") == ("نعم", None)


def test_arabic_gives_no_person_short_answer_rather_than_a_guess() -> None:
    # Without capitals a name cannot be told from a verb: the sentence is cited, no short answer.
    q = analyse("من قاد الفريق في الاستحواذ؟", "ar")
    assert short_answer(q, "قاد كاوان شورت الفريق في الاستحواذ مع 11 استحواذاً.") is None
    place = analyse("أين تقع الجامعة؟", "ar")
    assert short_answer(place, "تقع الجامعة وسط العاصمة.") is None  # no place preposition


def test_a_year_is_not_a_quantity_and_names_need_the_question_words() -> None:
    q = analyse("How many soldiers died?", "en")
    assert short_answer(q, "The war ended in 1918 after four years.") == ("four", (28, 32))
    who = analyse("Who won the match?", "en")
    assert short_answer(who, "فاز الفريق بالمباراة.") is None  # no anchor across languages


def test_figures_compare_after_digit_folding_and_scale() -> None:
    assert figure_value("٢٥٠٠") == figure_value("2,500") == figure_value("2500") == 2500
    assert figure_value("2.5 مليون") == figure_value("2,500,000") == 2_500_000


def test_dates_are_localised() -> None:
    assert format_day("2024-01-25T15:41:00+00:00", "en") == "25 January 2024"
    assert format_day("2018-03-16", "ar") == "16 مارس 2018"
    assert format_day("sometime", "en") == "sometime"


def test_evidence_of_the_lower_ranked_passage_wins_when_it_holds_the_question() -> None:
    noise = passage("noise", "أعلنت الحكومة اليوم عن خطط جديدة للتعليم.", 0.87)
    _, short, docs = ask("كم عدد العسكريين الأمريكيين في العراق؟", [noise, SEED], "ar")
    assert docs == ["seed"] and short == "2500"
