"""Follow-up questions read with the conversation; English forms; answer blocks; the retrieval prior."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from litestar.testing import TestClient

from qa_service.answer.followup import resolve
from qa_service.answer.forms import english_form
from qa_service.answer.layout import answer_blocks
from qa_service.api.app import create_app
from qa_service.models import AskRequest, Citation, Document, Turn
from qa_service.service import QAService
from qa_service.settings import Settings
from tests.fakes import FakeEncoder

TROOPS_EN = "How many US troops are in Iraq?"
TROOPS_AR = "كم عدد الجنود الأمريكيين في العراق؟"
TROOPS_2018 = "How many US troops were in Iraq in 2018?"


def history(*questions: str, reply: str = "2,500 — as of 25 January 2024, Arabi Post [1]",
            documents: Sequence[str] = ("seed",)) -> list[Turn]:
    turns = []
    for q in questions:
        turns += [Turn(role="user", content=q),
                  Turn(role="assistant", content=reply, document_ids=list(documents))]
    return turns


# -- resolution -------------------------------------------------------------------------------


@pytest.mark.parametrize(("earlier", "question", "query"), [
    (TROOPS_EN, "And in Syria?", "How many US troops are in Syria?"),
    (TROOPS_EN, "What about Syria?", "How many US troops are in Syria?"),
    (TROOPS_EN, "and in 2018?", "How many US troops are in Iraq in 2018?"),
    (TROOPS_2018, "And in Syria?", "How many US troops were in Syria in 2018?"),
    (TROOPS_2018, "And in 2017?", "How many US troops were in Iraq in 2017?"),
    (TROOPS_AR, "وفي سوريا؟", "كم عدد الجنود الأمريكيين في سوريا؟"),
    (TROOPS_AR, "وماذا عن سوريا؟", "كم عدد الجنود الأمريكيين في سوريا؟"),
    (TROOPS_AR, "ومتى؟", "متى الجنود الأمريكيين في العراق؟"),
    (TROOPS_EN, "And when?", "when US troops are in Iraq?"),
])
def test_a_fragment_takes_the_place_of_the_matching_part_of_the_earlier_question(
        earlier: str, question: str, query: str) -> None:
    r = resolve(question, history(earlier))
    assert r.followup and r.query == query == r.question
    assert r.prior_documents == ("seed",)


@pytest.mark.parametrize(("earlier", "question", "carried"), [
    (TROOPS_EN, "When will they leave?", ("US", "troops", "Iraq")),
    (TROOPS_EN, "Who won?", ("US", "troops", "Iraq")),
    (TROOPS_AR, "متى سيغادرون؟", ("الجنود", "الأمريكيين", "العراق")),
    (TROOPS_AR, "ومتى بدأت المفاوضات؟", ("الجنود", "الأمريكيين", "العراق")),
    (TROOPS_AR, "كم عددهم في سوريا؟", ("الجنود", "الأمريكيين", "العراق")),
    (TROOPS_AR, "ومن أعلن ذلك؟", ("الجنود", "الأمريكيين", "العراق")),
])
def test_a_question_that_refers_back_gets_the_earlier_subject(earlier: str, question: str,
                                                              carried: tuple[str, ...]) -> None:
    r = resolve(question, history(earlier))
    assert r.followup and r.carried == carried
    assert r.query == f"{question} {' '.join(carried)}" and r.question == r.query
    assert r.reason  # explainable


@pytest.mark.parametrize(("earlier", "question"), [
    (TROOPS_EN, "Who won the 2018 Formula 1 race in Bahrain?"),
    (TROOPS_EN, "What is the capital of Japan?"),
    (TROOPS_EN, "What is Hezbollah?"),
    (TROOPS_AR, "من فاز بكأس العالم لكرة القدم 2018؟"),
    (TROOPS_AR, "ما هي عاصمة اليابان؟"),
    (TROOPS_AR, "من هو رئيس الوزراء الكندي؟"),
])
def test_a_new_topic_is_not_dragged_back(earlier: str, question: str) -> None:
    r = resolve(question, history(earlier))
    assert not r.followup and r.query == question == r.question
    assert r.prior_documents == () and r.carried == ()
    assert "new topic" in r.reason


def test_a_question_whose_words_the_cited_article_already_holds_follows_up() -> None:
    article = "Eleven people died in Basra as demonstrators stormed offices."
    turns = history("What happened in Basra in July?", reply="Protests — as of 15 July 2018, BBC [1]",
                    documents=["basra"])
    r = resolve("How many people died?", turns, lambda ids: [article] if "basra" in ids else [])
    assert r.followup and "Basra" in r.carried and r.prior_documents == ("basra",)
    alone = resolve("How many people died in the Hajj stampede?", turns, lambda ids: [article])
    assert not alone.followup


def test_a_third_turn_builds_on_the_second_as_resolved() -> None:
    r = resolve("When will they leave?", history(TROOPS_EN, "And in Syria?"))
    assert r.carried == ("US", "troops", "Syria")
    ar = resolve("ومتى سيغادرونها؟", history(TROOPS_AR, "وفي سوريا؟"))
    assert ar.followup and "سوريا" in ar.carried and "العراق" not in ar.carried


def test_a_person_answer_is_carried_for_he_and_she() -> None:
    turns = history("Who is the president of Iraq?", reply="برهم صالح — as of 2 October 2018, BBC [1]")
    r = resolve("When was he elected?", turns)
    assert r.followup and "برهم صالح" in r.carried and "president" in r.carried


def test_what_the_earlier_question_asked_is_not_carried_only_what_it_was_about() -> None:
    r = resolve("When did he become oil minister?", history("In what year was Adel Abdul Mahdi born?"))
    assert r.carried == ("Adel", "Abdul", "Mahdi")
    r = resolve("Near which town did it crash?",
                history("What type of US helicopter crashed in western Iraq in March 2018?"))
    assert "type" not in r.carried and "crashed" not in r.carried and "helicopter" in r.carried


def test_without_history_or_with_only_assistant_turns_the_question_stands_alone() -> None:
    assert not resolve("When will they leave?", []).followup
    assert not resolve("When will they leave?", [Turn(role="assistant", content="hello")]).followup
    # A user turn that got no reply still sets the subject.
    assert resolve("When will they leave?", [Turn(role="user", content=TROOPS_EN)]).carried == (
        "US", "troops", "Iraq")


# -- English forms ----------------------------------------------------------------------------


@pytest.mark.parametrize(("arabic", "english"), [
    ("٢٥٠٠", "2,500"), ("2500", "2,500"), ("٢٬٥٠٠", "2,500"), ("٢٠١٨", "2018"),
    ("أغسطس/آب 2023", "August 2023"), ("25 يناير/كانون الثاني 2024", "25 January 2024"),
    ("آب 2018", "August 2018"), ("14 مايو", "14 May"),
    ("95 بالمئة", "95%"), ("٩٥٪", "95%"), ("في المئة", None),
    ("عدة أشهر", "several months"), ("ثلاثة أشهر", "three months"), ("12 يوما", "12 days"),
    ("2.5 مليون", "2.5 million"), ("نحو 30 مليار دولار", "about 30 billion dollars"),
    ("أكثر من 90 ألف", "more than 90 thousand"), ("في عام 2014", "in 2014"),
    ("2500 عسكري", "2,500"), ("أربعة", "four"),
    ("برهم صالح", None), ("مايك بومبيو", None), ("2018", None), ("Kawann Short", None), ("308", None),
])
def test_english_forms_of_arabic_figures_and_dates_and_names_verbatim(arabic: str,
                                                                     english: str | None) -> None:
    assert english_form(arabic) == english


# -- blocks -----------------------------------------------------------------------------------


def _citation(n: int, quote: str) -> Citation:
    return Citation(n=n, document_id="d", chunk_id="c", title=None, url=None, source=None,
                    published_at=None, lang="ar", quote=quote, start=0, end=len(quote),
                    answer_start=None, answer_end=None, score=0.0)


def test_blocks_give_each_paragraph_its_direction() -> None:
    quote = "وتنشر الولايات المتحدة 2500 عسكري في العراق."
    answer = f"2,500 — as of 25 January 2024, Arabi Post [1]\n\n«{quote}» [1]"
    blocks = answer_blocks(answer, [_citation(1, quote)], "en")
    assert [(b.kind, b.lang, b.dir, b.citations) for b in blocks] == [
        ("lead", "en", "ltr", [1]), ("quote", "ar", "rtl", [1])]
    assert all(answer[b.start:b.end] == b.text for b in blocks)
    # Prose without quotes (an LLM's, an abstention) is text in the answer's language.
    llm = answer_blocks("Baghdad announced it [1].", [_citation(1, quote)], "en")
    assert [(b.kind, b.dir) for b in llm] == [("text", "ltr")]
    assert [b.kind for b in answer_blocks("لا تحتوي المجموعة على إجابة.", [], "ar")] == ["text"]


# -- the service: history feeds retrieval and reading -----------------------------------------

SEED = Document(
    id="seed", title="العراق يعلن اتفاقاً مع أمريكا", source="عربي بوست", lang="ar",
    published_at="2024-01-25T15:41:00+00:00", metadata={"outlet_en": "Arabi Post"},
    text=("أعلنت بغداد توصلها إلى اتفاق مع واشنطن لإنهاء مهمة التحالف.\n\n"
          "وتنشر الولايات المتحدة 2500 عسكري في العراق لتقديم المشورة. "
          "ومن المتوقع أن تستغرق المحادثات عدة أشهر قبل انسحاب القوات."),
)
SYRIA = Document(id="syria", title="القوات الأمريكية في سوريا", source="BBC", lang="ar",
                 published_at="2018-04-01",
                 text="وتنشر الولايات المتحدة نحو 2000 عسكري في سوريا لمحاربة تنظيم الدولة.")
OTHER = Document(id="cinema", title="مهرجان", source="CNN", lang="ar", published_at="2018-05-01",
                 text=("افتتح مهرجان كان السينمائي دورته الجديدة بمشاركة أفلام عربية. "
                       "وسيستمر المهرجان عدة أيام."))


def test_history_feeds_retrieval_and_the_composer(fake_service: QAService) -> None:
    fake_service.ingest([SEED, SYRIA, OTHER])
    first = fake_service.ask(AskRequest(question=TROOPS_AR))
    assert first.short_answer == "2500" and first.followup is None
    turns = [Turn(role="user", content=TROOPS_AR),
             Turn(role="assistant", content=first.answer,
                  document_ids=[c.document_id for c in first.citations])]
    syria = fake_service.ask(AskRequest(question="وفي سوريا؟", history=turns))
    assert syria.followup is not None and syria.followup.resolved
    assert syria.followup.question == "كم عدد الجنود الأمريكيين في سوريا؟"
    assert syria.citations[0].document_id == "syria" and syria.short_answer == "2000"
    assert syria.timings_ms.followup >= 0
    # A new topic with the same history is answered as if asked alone.
    switch = fake_service.ask(AskRequest(question="متى افتتح مهرجان كان السينمائي دورته الجديدة؟",
                                         history=turns))
    assert switch.followup is not None and not switch.followup.resolved
    assert switch.citations[0].document_id == "cinema"


def test_english_answers_use_the_latin_outlet_name_from_the_metadata(fake_service: QAService) -> None:
    fake_service.ingest([SEED])
    answer = fake_service.ask(AskRequest(question="كم عدد الجنود في العراق 2500 عسكري؟"))
    assert answer.citations[0].source_latin == "Arabi Post"
    assert answer.passages[0].source_latin == "Arabi Post"


def test_documents_cited_before_are_preferred_by_a_follow_up(fake_service: QAService) -> None:
    fake_service.ingest([SEED, SYRIA, OTHER])
    question = "ومتى سيغادرون؟"
    alone = fake_service.ask(AskRequest(question=question, top_k=1))
    turns = [Turn(role="user", content=TROOPS_AR),
             Turn(role="assistant", content="2500 — حتى 25 يناير 2024، عربي بوست [1]", document_ids=["seed"])]
    followup = fake_service.ask(AskRequest(question=question, top_k=1, history=turns))
    assert followup.followup is not None and followup.followup.prior_documents == ["seed"]
    assert followup.passages[0].document_id == "seed"
    assert alone.followup is None


# -- over HTTP ---------------------------------------------------------------------------------


def test_the_schema_documents_the_layout_and_the_conversation(settings: Settings) -> None:
    app = create_app(settings, lambda s: QAService(s, FakeEncoder()), wait_ready=True)
    with TestClient(app=app) as client:
        schema = client.get("/schema/openapi.json").json()
        components = schema["components"]["schemas"]
        answer = components["Answer"]["properties"]
        for name in ("blocks", "short_answer_display", "followup"):
            assert name in answer and "description" in json.dumps(answer[name]), name
        block = components["AnswerBlock"]["properties"]
        assert block["kind"]["enum"] == ["lead", "quote", "text"] and block["dir"]["enum"] == ["ltr", "rtl"]
        assert "description" in components["Turn"]["properties"]["document_ids"]
        assert "description" in components["Citation"]["properties"]["source_latin"]
        assert "followup" in components["Timings"]["properties"]
        # The widget's history: assistant turns carry the documents they cited.
        doc = {"id": "seed", "text": SEED.text, "source": "عربي بوست", "published_at": "2024-01-25",
               "metadata": {"outlet_en": "Arabi Post"}}
        assert client.post("/v1/documents", json=doc).status_code == 201
        turns = [{"role": "user", "content": TROOPS_AR},
                 {"role": "assistant", "content": "2500 — حتى 25 يناير 2024، عربي بوست [1]",
                  "document_ids": ["seed"]}]
        r = client.post("/v1/ask", json={"question": "ومتى سيغادرون؟", "history": turns})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["followup"]["resolved"] and body["followup"]["prior_documents"] == ["seed"]
        assert [(b["kind"], b["dir"]) for b in body["blocks"]] == [("lead", "rtl"), ("quote", "rtl")]
        too_many = [{**turns[1], "document_ids": [f"d{i}" for i in range(51)]}]
        assert client.post("/v1/ask", json={"question": "q?", "history": too_many}).status_code == 400


@pytest.mark.parametrize(("earlier", "question", "resolved"), [
    ("Who is Iraq's prime minister?", "And the US ambassador?", "Who is the US ambassador?"),
    ("Who is the president of Iraq?", "And the prime minister?", "Who is the prime minister of Iraq?"),
    (TROOPS_EN, "Syria?", "How many US troops are in Syria?"),
    (TROOPS_AR, "والكويت؟", "كم عدد الجنود الأمريكيين في الكويت؟"),
    ("من هو رئيس الوزراء العراقي؟", "والسفير الأمريكي؟", "من هو السفير الأمريكي؟"),
])
def test_a_bare_fragment_asks_the_earlier_question_of_something_else(earlier: str, question: str,
                                                                     resolved: str) -> None:
    r = resolve(question, history(earlier))
    assert r.followup and r.question == resolved


@pytest.mark.parametrize(("earlier", "question", "followup"), [
    # "that" opening a relative clause, and a pronoun inside one, point to their own noun.
    (TROOPS_EN, "How many people were killed in the protests that started in Basra in July 2018?", False),
    (TROOPS_EN, "Who leads the Fatah alliance that came second in the 2018 Iraqi election?", False),
    ("في أي سنة توفي تسلا؟", "كم عدد جوائز غرامي التي فازت بها ليدي غاغا؟", False),
    ("في أي سنة توفي تسلا؟", "وأين عاش؟", True),
    # "there" at the end points back; "are there" does not.
    ("Who is the president of Iraq?", "Who is the prime minister there?", True),
    ("كم عدد الجنود الأمريكيين في العراق؟", "ومن السفير الأمريكي هناك؟", True),
    # A name the conversation already holds (in Arabic script) is no new topic; one it lacks is.
    ("How large is Iraq's 2018 federal budget?", "And what share goes to the Kurdistan region?", True),
    ("How large is Iraq's 2018 federal budget?", "And who won the World Cup final in Moscow?", False),
])
def test_pronouns_openers_and_names_decide_with_the_conversation(earlier: str, question: str,
                                                                 followup: bool) -> None:
    article = "وتبلغ حصة إقليم كردستان من الموازنة 12.6 في المئة، وأقرها البرلمان."
    r = resolve(question, history(earlier), lambda ids: [article])
    assert r.followup is followup, r.reason


def test_a_question_that_points_back_is_searched_with_its_anchor() -> None:
    r = resolve("When will they leave?", history(TROOPS_EN))
    assert r.anchor == TROOPS_EN  # the earlier question's vector is cached: no longer text is embedded
    third = resolve("Why?", history(TROOPS_EN, "When will they leave?"))
    assert third.followup and third.anchor == TROOPS_EN  # the subject's anchor carries on
    fragment = resolve("And in Syria?", history(TROOPS_EN))
    assert fragment.anchor == fragment.query == "How many US troops are in Syria?"
    japan = "What is the capital of Japan?"
    assert resolve(japan, history(TROOPS_EN)).anchor == japan
