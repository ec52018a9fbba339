"""Follow-up questions: reading a question that lacks its subject with the conversation before it.

"How many US troops are in Iraq?" then "When will they leave?", "And in Syria?" or «ومتى؟»:
the second question names nothing to search for. Each user turn of ``history`` is resolved in
order against the one before it (so a third turn builds on the second as resolved), and the
new question is resolved against the last. Deterministic rules, each with its reason:

* **No content word of its own** ("Why?", «ومتى؟»; "Who won?" has one): a follow-up.
* **A fragment** after an opener or on its own ("and in Syria?", "what about 2018?", "Syria?",
  «وفي سوريا؟», «وماذا عن سوريا؟»): the earlier question with the fragment in place of its matching
  part — a year for its year, "in Syria" for its last "in …", a name for its last place, a common
  noun for its subject ("And the US ambassador?" after "Who is Iraq's prime minister?" → "Who is
  the US ambassador?"). A fragment that is only a question word ("and when?") takes the earlier
  question's body.
* **A pronoun or demonstrative** pointing back (they, it, his, that …, "there" at the end; هم،
  هذه، هناك, suffixes such as «عددهم» «منها»; not "that" opening a relative clause, nor a pronoun
  inside one: «التي فازت بها») or an **opener** ("and …", «و…»): the earlier question's subject
  is added — its content words less what it asked (year, type, verb forms…) — ("When will they
  leave? US troops Iraq"), and, when the earlier question asked for a person or place, its short
  answer too ("When was he elected? برهم صالح").
* **Everything else is a new topic**, taken alone: a question that names something the
  conversation never mentioned (English capitals, checked against the earlier question, its answer
  and the articles it cited — across scripts by consonant skeleton, "Kurdistan" = «كردستان»), or
  that has several words of its own the conversation does not use. A question with no pronoun or
  opener follows up only with one content word, or when every content word it has is already in
  the conversation ("How many died?" after a question about the protests).

A follow-up also names the documents the previous answer cited (``Turn.document_ids``), which
retrieval prefers (a third ranking fused with dense and lexical search). It is string work: the
words of an article are read only when a rule needs them, and remembered (dev set histories:
p50 0.2 ms, p95 6.5 ms, on a busy core).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from qa_service.answer.question import Kind, question_kind, stem
from qa_service.models import Turn
from qa_service.retrieval.translit import MIN_SKELETON, arabic_skeletons, latin_skeleton, same_name
from qa_service.text import detect_language, normalize, tokenize, tokenize_with_spans

# Documents' text by id (the store's), for "are its words already in the conversation?".
DocumentText = Callable[[Sequence[str]], Sequence[str]]

# A question with an opener or a pronoun follows up when it has at most this many content words of
# its own, or when at least MIN_COVERED of them occur in the conversation.
OPENER_MAX_OWN: Final = 3
PRONOUN_MAX_OWN: Final = 3
MIN_COVERED: Final = 0.5
# A question with no marker at all follows up when it has one content word (not a new name), or
# when it is this short and every word of it is already in the conversation.
UNMARKED_SHORT: Final = 1
UNMARKED_MAX_OWN: Final = 3
# A question of at most this many words and no question word is a fragment ("Syria?", «وتحالف سائرون؟»).
FRAGMENT_MAX_WORDS: Final = 3
# Earlier content words carried into the query (the subject, not a paragraph).
MAX_CARRIED: Final = 8
# A short answer carried along is at most this long (a name, not a sentence).
MAX_CARRIED_ANSWER_CHARS: Final = 60
PRIOR_DOCUMENTS: Final = 3
# Texts (articles cited, earlier turns) whose words are remembered between questions.
KNOWN_TEXTS_CACHED: Final = 256


def _terms(*words: str) -> frozenset[str]:
    """Words as the tokenizer folds them (so "أيضاً" and "ايضا" meet); stopwords vanish, which is fine."""
    return frozenset(t for w in words for t in tokenize(w)) | frozenset(normalize(w) for w in words)


# Words that say nothing about the subject: question words the tokenizer keeps, and fillers.
_FILLERS: Final = _terms(
    "who", "whom", "number", "total", "exactly", "else", "also", "about", "now", "then", "today",
    "currently", "still", "so", "well", "other", "others", "again", "happen", "happened", "yet",
    "عدد", "ماذا", "أيضا", "الآن", "حاليا", "إذن", "كذلك", "اذا", "حين", "عندئذ", "ذلك", "وقتها",
)
_EN_QUESTION_WORDS: Final = frozenset({"who", "whom", "whose", "what", "which", "when", "where", "why",
                                       "how"})
_AR_QUESTION_WORDS: Final = _terms("من", "ما", "ماذا", "متى", "أين", "كم", "كيف", "لماذا", "هل", "أي",
                                   "لمن", "بكم", "ماهو", "ماهي")
_EN_AUX: Final = frozenset({"is", "are", "was", "were", "do", "does", "did", "has", "have", "had", "will",
                            "would", "can", "could", "should"})
# Pronouns and demonstratives that point back ("there" and "that" as a conjunction aside).
_EN_PRONOUNS: Final = frozenset({"they", "them", "their", "theirs", "it", "its", "he", "him", "his", "she",
                                 "her", "hers", "this", "these", "those", "that", "former", "latter"})
_AR_PRONOUNS: Final = _terms("هم", "هما", "هن", "هذا", "هذه", "ذلك", "تلك", "هؤلاء", "أولئك", "ذاك",
                             "هو", "هي")
_AR_PRONOUN_HOLDERS: Final = _terms("فيها", "منها", "عنها", "بها", "لها", "عليها", "إليها", "فيه", "منه",
                                    "عنه", "به", "له", "عليه", "إليه", "لهم", "منهم", "عليهم", "بينهم",
                                    "فيهم", "عنهم", "بهم")
# Arabic words ending like an attached pronoun that are not one.
_AR_NOT_SUFFIXED: Final = _terms("فهم", "مهم", "اهم", "أهم", "المهم", "وهم", "سهم", "الفهم", "الوهم",
                                 "المتهم", "متهم", "تهم", "التهم", "ابراهيم", "إبراهيم", "الدراهم")
_AR_SUFFIXES: Final = ("هما", "هم", "هن", "ها")
_AR_RELATIVES: Final = _terms("الذي", "التي", "الذين", "اللذان", "اللتان", "اللذين", "اللتين", "اللاتي",
                              "اللواتي")
_EN_IRREGULAR_PAST: Final = frozenset({"came", "won", "went", "took", "made", "said", "led", "left", "gave",
                                       "held", "became", "got", "saw", "began", "ran", "fell", "fought",
                                       "brought", "built", "sent", "spent", "told", "found", "lost", "met"})
_AR_MIN_SUFFIXED: Final = 4  # a word of at least this many letters ending in one of the suffixes
# Openers that continue the conversation. Arabic: و / ف glued to a question word, preposition or
# the article («وفي»، «ومتى»، «والرئيس»), and «ماذا عن».
_EN_OPENER_RE: Final = re.compile(
    r"^\s*(?:(?:and|but|so|also|then)\s+(?:what|how)\s+about|what\s+about|how\s+about|what\s+of|"
    r"and|but|so|also|then|same\s+for)\b[\s,]*", re.IGNORECASE)
_AR_OPENER_RE: Final = re.compile(r"^\s*(?:[وف]?ماذا عن|[وف]ما عن|[وف](?=\S))")
_AR_OPENER_NEXT: Final = _terms("في", "من", "عن", "على", "إلى", "خلال", "منذ", "بعد", "قبل", "مع", "ضد",
                                "داخل", "لدى", "عند", "بين") | _AR_QUESTION_WORDS
_EN_PREPOSITIONS: Final = ("in", "at", "on", "for", "during", "from", "of", "to", "by", "since",
                           "after", "before", "under", "with", "among", "inside", "outside")
_AR_PREPOSITIONS: Final = ("في", "من", "عن", "على", "إلى", "الى", "خلال", "منذ", "بعد", "قبل", "مع",
                           "ضد", "داخل", "لدى", "عند", "بين")
_AR_PREPOSITION_TERMS: Final = frozenset(normalize(p) for p in _AR_PREPOSITIONS)
_YEAR_RE: Final = re.compile(r"(?<![0-9٠-٩])(?:1[0-9]{3}|20[0-9]{2}|[١٢][٠-٩]{3})(?![0-9٠-٩])")
_TRAILING_RE: Final = re.compile(r"[\s?؟!.]+$")
_EN_WH_FRAME_RE: Final = re.compile(
    r"^\s*(?:how\s+(?:many|much|long|old|far)(?:\s+\w+)??|who|whom|what|which|when|where|why|how)"
    r"(?:\s+(?:is|are|was|were|do|does|did|has|have|had|will|would|can))?\s+", re.IGNORECASE)
_AR_WH_FRAME_RE: Final = re.compile(
    r"^\s*(?:كم\s+(?:عدد|كان\s+عدد|يبلغ\s+عدد|بلغ\s+عدد)?|ما\s+(?:هو|هي|عدد)?|من\s+(?:هو|هي|هم)?|متى|أين|"
    r"اين|ماذا|لماذا|كيف|هل|في\s+أي\s+\S+|أي)\s*")


@dataclass(frozen=True)
class Resolution:
    """How a question is read with its conversation."""

    question: str  # what the composer reads: the question, or its resolved form
    query: str  # what retrieval searches
    followup: bool  # whether earlier turns were used
    reason: str  # why, in words
    carried: tuple[str, ...] = ()  # words taken from earlier turns
    prior_documents: tuple[str, ...] = ()  # documents the previous answer cited (a retrieval prior)
    # The text whose query vector holds the subject: the question itself when it names it (taken
    # alone, or a fragment rewritten), else the anchor of the turn it points back to. A question that
    # points back is searched with its own vector plus its anchor's, which the encoder has cached
    # from that earlier turn, instead of embedding a longer text.
    anchor: str = ""

    def __post_init__(self) -> None:
        if not self.anchor:
            object.__setattr__(self, "anchor", self.query)


@dataclass(frozen=True)
class _Context:
    """What an earlier exchange leaves for the next question."""

    question: str  # the earlier question as the composer read it (a fragment: the question it stands for)
    anchor: str  # the text whose query vector holds its subject (see Resolution.anchor)
    carried: tuple[str, ...]  # the words it carried from before it (its subject, when it only pointed back)
    kind: Kind
    answer: str  # the reply's text ("" when none came)
    short: str | None  # the reply's short answer (its first line before " — ")
    documents: tuple[str, ...]  # the documents the reply cited


def alone(question: str, reason: str = "no earlier question") -> Resolution:
    return Resolution(question, question, False, reason)


def resolve(question: str, history: Sequence[Turn], document_text: DocumentText | None = None
            ) -> Resolution:
    """``question`` read with ``history`` (oldest first); see the module docstring."""
    context: _Context | None = None
    pending: str | None = None
    for turn in history:
        if turn.role == "user":
            if pending is not None:  # a question that got no reply still sets the subject
                context = _next_context(pending, context, None, document_text)
            pending = turn.content
        elif pending is not None:
            context = _next_context(pending, context, turn, document_text)
            pending = None
    if pending is not None:
        context = _next_context(pending, context, None, document_text)
    if context is None:
        return alone(question)
    return _resolve_one(question.strip(), context, document_text)


def _next_context(question: str, before: _Context | None, reply: Turn | None,
                  document_text: DocumentText | None) -> _Context:
    resolved = _resolve_one(question.strip(), before, document_text) if before else alone(question)
    answer = reply.content if reply is not None else ""
    documents = tuple(dict.fromkeys(reply.document_ids))[:PRIOR_DOCUMENTS] if reply is not None else ()
    return _Context(resolved.question, resolved.anchor, resolved.carried, question_kind(resolved.question),
                    answer, _short_of(answer), documents)


def _short_of(answer: str) -> str | None:
    """The short answer that leads a reply ("برهم صالح — as of …" → "برهم صالح")."""
    first = answer.strip().split("\n", 1)[0]
    if " — " not in first:
        return None
    short = re.sub(r"\s*\[\d+\]", "", first.split(" — ", 1)[0]).strip()
    return short if 0 < len(short) <= MAX_CARRIED_ANSWER_CHARS else None


def _resolve_one(question: str, context: _Context | None, document_text: DocumentText | None
                 ) -> Resolution:
    if context is None:
        return alone(question)
    lang = "ar" if detect_language(question) == "ar" else "en"
    opener, rest = _opener(question, lang)
    own = _content(question)
    stems = list(dict.fromkeys(s for s, _ in own))
    pronoun = _pronoun(rest, lang)
    fragment = _TRAILING_RE.sub("", rest).strip()
    bare = not opener and len(fragment.split()) <= FRAGMENT_MAX_WORDS
    is_fragment = (opener or bare) and fragment and not _has_question_word(fragment, lang) and not pronoun
    if is_fragment and (len(stems) <= PRONOUN_MAX_OWN
                        or _Known.of(context, document_text).covered(own) >= MIN_COVERED):
        resolved = _substitute(context.question, fragment, lang)
        why = f"fragment after “{opener.strip()}”" if opener else "a fragment without a question word"
        return _rewritten(question, resolved, context, why)
    if not stems:
        wh = _TRAILING_RE.sub("", rest or question)
        if opener and _has_question_word(wh, lang) and len(wh.split()) <= 2:
            resolved = _with_question_word(context.question, wh, lang)
            return _rewritten(question, resolved, context, f"only a question word: “{wh}”")
        return _carry(question, context, own, "no content word of its own")
    # What the conversation already holds is read only when a rule needs it (articles cost a few ms).
    lazy: list[_Known] = []

    def known() -> _Known:
        if not lazy:
            lazy.append(_Known.of(context, document_text))
        return lazy[0]

    names = _names(question) if lang == "en" else []
    # A name of its own that the conversation never mentioned marks a new topic (English: capitals).
    new_name = next((n for n in names if not known().has_name(n)), None) if names else None
    if pronoun and not (new_name and len(stems) > PRONOUN_MAX_OWN and known().covered(own) < MIN_COVERED):
        return _carry(question, context, own, f"refers back with “{pronoun}”")
    if opener and (len(stems) <= OPENER_MAX_OWN or (lang == "en" and not new_name)
                   or known().covered(own) >= MIN_COVERED):
        return _carry(question, context, own, f"continues with “{opener.strip()}”")
    if not pronoun and not opener:
        if len(stems) <= UNMARKED_SHORT and not new_name and not (
                lang == "ar" and _asks_about_a_name(question) and known().covered(own) == 0.0):
            return _carry(question, context, own, "one content word of its own")
        if len(stems) <= UNMARKED_MAX_OWN and known().covered(own) >= 1.0:
            return _carry(question, context, own, "every content word is already in the conversation")
    if new_name:
        return alone(question, f"a new topic: it names “{new_name}”")
    return alone(question, f"a new topic: {len(stems)} content word(s) of its own")


def _followup(question: str, resolved: str, query: str, context: _Context, reason: str,
              carried: tuple[str, ...] = ()) -> Resolution:
    return Resolution(resolved, query, True, reason, carried, context.documents)


def _rewritten(question: str, resolved: str, context: _Context, reason: str) -> Resolution:
    """A fragment read as a whole question; the subject the earlier question carried still searched."""
    have = {s for s, _ in _content(resolved)}
    carried = tuple(w for s, w in _content(" ".join(context.carried)) if s not in have)
    query = f"{resolved} {' '.join(carried)}" if carried else resolved
    return _followup(question, resolved, query, context, reason, carried)


def _carry(question: str, context: _Context, own: list[tuple[str, str]], reason: str) -> Resolution:
    """The question with the earlier question's content words (and entity answer) added."""
    have = {s for s, _ in own}
    carried: list[str] = []
    for s, surface in [*_content(context.question), *_content(" ".join(context.carried))]:
        if normalize(surface).lstrip("وف") in _AR_PREPOSITION_TERMS or surface.lower() in _EN_PREPOSITIONS:
            continue  # «ومنذ», "after": no subject
        if _asked_not_subject(surface):
            continue  # "year … born", "type … crashed": what was asked, not what it was about
        if s not in have:
            have.add(s)
            carried.append(surface)
    carried = carried[:MAX_CARRIED]
    if context.short and context.kind in (Kind.PERSON, Kind.PLACE) and context.short not in carried:
        carried.append(context.short)
    if not carried:
        return alone(question, "nothing to carry from the earlier question")
    # Retrieval searches with the subject and the composer reads it too (dev set: with the earlier
    # question's predicate words carried as well, reading them did not help; with the subject only,
    # it answers one more English follow-up in 16 and refuses less).
    extended = f"{question} {' '.join(carried)}"
    return Resolution(extended, extended, True, reason, tuple(carried), context.documents, context.anchor)


# Words that say what the earlier question asked rather than what it was about: carried along, they
# pull retrieval back to the earlier answer's sentence ("When did he become oil minister? year Adel
# Abdul Mahdi born").
_ASKED: Final = _terms(
    "year", "years", "date", "time", "day", "days", "type", "kind", "size", "large", "big", "long", "old",
    "age", "percentage", "share", "price", "amount", "name", "called", "born", "die", "died", "first",
    "عام", "سنة", "تاريخ", "يوم", "نوع", "حجم", "نسبة", "سعر", "اسم", "عمر", "ولد", "ولدت", "توفي")


def _asked_not_subject(surface: str) -> bool:
    """An English lower-case verb form ("ratified", "crashed", "taken") or a word of what was asked."""
    folded = normalize(surface)
    if folded in _ASKED or stem(folded) in _ASKED:
        return True
    return surface.isascii() and surface.islower() and surface.endswith(("ed", "ing")) and len(surface) > 4


def _content(text: str) -> list[tuple[str, str]]:
    """(stem, surface form) of each content word of ``text``, in order."""
    out = []
    for term, start, end in tokenize_with_spans(text):
        if term in _FILLERS or term in _EN_AUX or _conjoined_function_word(term):
            continue
        out.append((stem(term), text[start:end]))
    return out


def _conjoined_function_word(term: str) -> bool:
    """«ومتى»، «وكم»، «فماذا»: a conjunction glued to a stopword or question word."""
    if len(term) < 2 or term[0] not in "وف":
        return False
    rest = term[1:]
    return rest in _AR_QUESTION_WORDS or rest in _FILLERS or not tokenize(rest)


def _opener(question: str, lang: str) -> tuple[str, str]:
    """(the opener, the rest of the question); ("", question) when there is none."""
    if lang == "en":
        m = _EN_OPENER_RE.match(question)
        return (m.group(0), question[m.end():]) if m else ("", question)
    m = _AR_OPENER_RE.match(question)
    if not m:
        return "", question
    rest = question[m.end():]
    if m.group(0).strip() in ("و", "ف"):
        first = re.match(r"[^\W\d_]*", rest.lstrip())
        folded = normalize(first.group(0) if first else "")
        if not (folded in _AR_OPENER_NEXT or folded.startswith("ال") or _is_question(folded)):
            return "", question  # «وزير», «وصل»: a word that starts with و
    return m.group(0), rest


def _is_question(folded: str) -> bool:
    return folded in _AR_QUESTION_WORDS or any(folded == normalize(w) for w in ("ماذا", "متى", "أين", "كم"))


def _has_question_word(text: str, lang: str) -> bool:
    words = re.findall(r"[^\W\d_]+", text.lower())
    if lang == "en":
        return bool(words) and (words[0] in _EN_AUX or any(w in _EN_QUESTION_WORDS for w in words))
    return any(normalize(w) in _AR_QUESTION_WORDS or normalize(w).lstrip("وف") in _AR_QUESTION_WORDS
               for w in words)


def _pronoun(text: str, lang: str) -> str | None:
    """The first pronoun or demonstrative pointing back, if any."""
    if lang == "en":
        words: list[str] = re.findall(r"[a-z']+", text.lower())
        for i, w in enumerate(words):
            following = words[i + 1] if i + 1 < len(words) else ""
            if w == "that" and (following in _EN_AUX | {"the", "a", "an"} or _verb_like(following)):
                continue  # "is it true that the …", "the protests that started …": not pointing back
            if w in _EN_PRONOUNS:
                return w
            if w == "there" and i == len(words) - 1 and i > 0 and words[i - 1] not in _EN_AUX:
                return w  # "Who is the prime minister there?" (not "How many are there?")
        return None
    arabic: list[str] = re.findall(r"[^\W\d_]+", text)
    relative = False
    for i, w in enumerate(arabic):
        folded = normalize(w)
        if folded in _AR_RELATIVES:
            relative = True  # «التي فازت بها»: a pronoun inside a relative clause points to its noun
            continue
        if folded in _AR_PRONOUNS:
            if folded in _terms("هو", "هي", "هم") and i > 0 and _is_question(normalize(arabic[i - 1])):
                continue  # «من هو»، «ما هي»: a copula
            return w
        if folded in _AR_PRONOUN_HOLDERS and not relative:
            return w
        if folded == "هناك" and i == len(arabic) - 1 and i > 0 and normalize(arabic[0]) != "هل":
            return w  # «ومن السفير الأمريكي هناك؟» (not «هل هناك …»)
        if (len(folded) >= _AR_MIN_SUFFIXED and folded.endswith(_AR_SUFFIXES)
                and folded not in _AR_NOT_SUFFIXED and not _is_question(folded)):
            return w
    return None


_MONTH_AND_DAY_NAMES: Final = frozenset({
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"})


def _verb_like(word: str) -> bool:
    """A past or present verb form after "that" (a relative clause: "the alliance that came second")."""
    return word.endswith("ed") or word in _EN_IRREGULAR_PAST or word in _EN_AUX


def _names(question: str) -> list[str]:
    """Capitalised words after the first (English names), months and days aside."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", question)
    return [w for w in words[1:] if w[0].isupper() and w.lower() not in _MONTH_AND_DAY_NAMES
            and w.lower() not in _EN_PRONOUNS and w != "I"]


def _asks_about_a_name(question: str) -> bool:
    """«من هو نوري المالكي؟»: an Arabic question about a name of its own."""
    return bool(re.match(r"^\s*(?:ما|من)\s+(?:هو|هي|هم)\s+\S+", question))


@lru_cache(maxsize=KNOWN_TEXTS_CACHED)
def _words_of(text: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(stems, Latin words, Arabic consonant skeletons) of a text; articles recur turn after turn."""
    terms = set(tokenize(text))
    skeletons = {s for t in terms if not t.isascii() for s in arabic_skeletons(t)}
    return (frozenset(stem(t) for t in terms), frozenset(t for t in terms if t.isascii()),
            frozenset(skeletons))


@dataclass(frozen=True)
class _Known:
    """The words of the conversation so far (question, reply, cited articles), for "already there?"."""

    stems: frozenset[str]
    latin: frozenset[str]  # lower-case Latin words
    skeletons: frozenset[str]  # consonant skeletons of the Arabic words (names across scripts)

    @classmethod
    def of(cls, context: _Context, document_text: DocumentText | None) -> _Known:
        texts = [context.question, " ".join(context.carried), context.answer]
        if document_text is not None and context.documents:
            texts += list(document_text(context.documents))
        parts = [_words_of(text) for text in texts]
        return cls(frozenset().union(*(p[0] for p in parts)), frozenset().union(*(p[1] for p in parts)),
                   frozenset().union(*(p[2] for p in parts)))

    def has_name(self, name: str) -> bool:
        """A Latin-script name found as is, or transliterated ("Kurdistan" / «كردستان»)."""
        if name.lower().strip("'") in self.latin:
            return True
        skeleton = latin_skeleton(name)
        if len(skeleton) < MIN_SKELETON:
            return True  # too short to tell ("EU", "UN"): no evidence of a new topic
        return same_name(skeleton, self.skeletons)

    def covered(self, own: Sequence[tuple[str, str]]) -> float:
        """Share of the question's content words already in the conversation."""
        if not own:
            return 1.0
        found = sum(1 for s, surface in own
                    if s in self.stems or (surface[:1].isupper() and self.has_name(surface)))
        return found / len(own)


# -- fragments ("and in Syria?") ------------------------------------------------------------------


def _substitute(earlier: str, fragment: str, lang: str) -> str:
    """The earlier question with ``fragment`` in place of its matching part (or added to it)."""
    body = _TRAILING_RE.sub("", earlier)
    mark = "؟" if lang == "ar" or detect_language(earlier) == "ar" else "?"
    fragment = fragment.strip()
    if lang == "ar" and re.match(r"^[وف][^\sال]\S{2,}", fragment) and not normalize(fragment).startswith(
            ("وزير", "وزار", "ولاي", "وكال", "وفد")):
        fragment = fragment[1:]  # «وتحالف سائرون» → «تحالف سائرون»
    if not fragment:
        return earlier
    year = _YEAR_RE.search(fragment)
    if year and len(_content(fragment)) <= 1:
        old = _YEAR_RE.search(body)
        if old:
            return f"{body[:old.start()]}{year.group(0)}{body[old.end():]}{mark}"
        return f"{body} {fragment}{mark}"
    prepositions = _AR_PREPOSITIONS if detect_language(fragment) == "ar" or lang == "ar" else _EN_PREPOSITIONS
    head = fragment.split(maxsplit=1)[0]
    spans = _object_spans(body, prepositions)
    if head.lower() in prepositions:
        same = [s for s in spans if s[0].lower() == head.lower() and not _YEAR_RE.fullmatch(s[3].strip())]
        if same:
            _, start, _, _ = same[-1]
            end = same[-1][2]
            return f"{body[:start]}{fragment}{body[end:]}{mark}"
        return f"{body} {fragment}{mark}"
    places = [s for s in spans if not _YEAR_RE.search(s[3])]
    arabic = lang == "ar" or detect_language(fragment) == "ar"
    common = normalize(head).startswith("ال") if arabic else not fragment[:1].isupper()
    if places and (not common or (arabic and normalize(places[-1][3].strip()).startswith("ال")
                                  and len(places[-1][3].split()) == 1)):
        # "What about Syria?" after "… in Iraq?": the place; «والكويت؟» after «… في العراق؟» too.
        _, start, end, _ = places[-1]
        preposition = body[start:].split(maxsplit=1)[0]
        return f"{body[:start]}{preposition} {fragment}{body[end:]}{mark}"
    if common:
        # "And the US ambassador?" after "Who is Iraq's prime minister?": the same question of it.
        frame = (_AR_WH_FRAME_RE if detect_language(earlier) == "ar" else _EN_WH_FRAME_RE).match(body)
        if frame and frame.end() < len(body):
            tail = f" {body[spans[-1][1]:spans[-1][2]]}" if spans and spans[-1][1] >= frame.end() else ""
            return f"{body[:frame.end()].rstrip()} {fragment}{tail}{mark}"
    return f"{body} {fragment}{mark}"


def _object_spans(body: str, prepositions: Sequence[str]) -> list[tuple[str, int, int, str]]:
    """(preposition, start, end, object) of each prepositional phrase; an object runs to the next one."""
    words = list(re.finditer(r"\S+", body))
    starts = [i for i, w in enumerate(words) if w.group(0).lower() in prepositions]
    out = []
    for n, i in enumerate(starts):
        last = (starts[n + 1] - 1) if n + 1 < len(starts) else len(words) - 1
        if last <= i:
            continue
        start, end = words[i].start(), words[last].end()
        out.append((words[i].group(0), start, end, body[words[i].end():end]))
    return out


def _with_question_word(earlier: str, wh: str, lang: str) -> str:
    """"And when?" after "How many US troops are in Iraq?" → "when US troops are in Iraq?"."""
    body = _TRAILING_RE.sub("", earlier)
    frame = _AR_WH_FRAME_RE if detect_language(earlier) == "ar" else _EN_WH_FRAME_RE
    m = frame.match(body)
    rest = body[m.end():] if m else body
    mark = "؟" if lang == "ar" else "?"
    word = re.sub(r"^[وف](?=\S)", "", wh.strip()) if lang == "ar" else re.sub(
        r"^(?:and|but|so)\s+", "", wh.strip(), flags=re.IGNORECASE)
    return f"{word} {rest}{mark}"
