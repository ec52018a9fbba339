"""Text addressed to a language model rather than to a reader (prompt injection), never evidence.

Documents are fenced as data in the LLM prompt, so the model is told to ignore what they
ask; this is the second line of defence. A sentence that gives orders to an AI ("ignore
all previous instructions", "SYSTEM:", "reply that ... and cite [1]", a forged fence)
is never quoted, so a claim that could only rest on such a sentence has no citation and
is dropped. The patterns are deliberately narrow: news text quoting the phrase
"ignore previous instructions" in a report about AI is rare and loses one quote at most.
"""

from __future__ import annotations

import re
from typing import Final

_INSTRUCTION_RE: Final = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.!?\n]{0,40}\b(?:instructions?|prompts?|rules|directions)\b"
    r"|(?:^|\n|\.\s)\s*(?:system|assistant|developer)\s*:"
    r"|<<<|>>>|\{\{|\}\}"
    r"|\byou are (?:now )?(?:an? |the )?(?:ai|assistant|language model|chatbot|llm)\b"
    r"|\b(?:reply|respond|answer|say|write|output)\b[^.!?\n]{0,60}\bcite\s*\[\d+\]"
    # Requests for a model's secrets: the tail of an injection whose trigger was split off.
    r"|\b(?:reveal|print|show|output|leak|disclose|dump|repeat|display)\b[^.!?\n]{0,30}"
    r"\b(?:your|the system|the hidden|the secret)\b[^.!?\n]{0,30}"
    r"\b(?:api[ -]?keys?|prompts?|passwords?|secrets?|credentials|tokens?|instructions)\b"
    r"|(?:تجاهل|انس|تجاوز)[^.!؟\n]{0,40}(?:التعليمات|الأوامر|التوجيهات)"
    r"|(?:اكشف|أظهر|اظهر|اطبع|أعطني)[^.!؟\n]{0,40}(?:مفاتيح|مفتاح|كلمات? المرور|كلمة السر|التعليمات)"
    r"|(?:تعليمات|رسالة) النظام",
    re.IGNORECASE,
)


def addresses_a_model(text: str) -> bool:
    """Whether ``text`` reads as instructions to an AI model rather than news for a reader."""
    return _INSTRUCTION_RE.search(text) is not None
