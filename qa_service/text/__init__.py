"""Text layer: matching-only normalisation, numbers, tokens, language and sentence spans.

Stored text is never changed here; every function that finds something in normalised
text reports code-point offsets into the original string.
"""

from qa_service.text.lang import detect_language, script_ratio
from qa_service.text.normalize import (
    extract_numbers,
    figure_value,
    fold_digits,
    has_letters_or_digits,
    light_stem,
    normalize,
    normalize_with_offsets,
    strip_number_grouping,
    tokenize,
    tokenize_with_spans,
)
from qa_service.text.sentences import split_sentences

__all__ = [
    "detect_language",
    "extract_numbers",
    "figure_value",
    "fold_digits",
    "has_letters_or_digits",
    "light_stem",
    "normalize",
    "normalize_with_offsets",
    "script_ratio",
    "split_sentences",
    "strip_number_grouping",
    "tokenize",
    "tokenize_with_spans",
]
