"""Versioned prompt templates with declared variables (``prompts/NAME.vN.md``).

A template file starts with a header between ``---`` lines (``name``, ``version``,
``description``, ``variables``: a comma-separated list), then ``## system`` and
``## user`` sections. Placeholders are ``{{variable}}``. Loading checks that the
placeholders used are exactly the variables declared; rendering checks that exactly
those are given, and substitutes in one pass, so a value (a retrieved document, say)
that contains ``{{question}}`` is sent as written and never expanded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from qa_service.errors import BadInputError

PROMPTS_DIR: Final = Path(__file__).resolve().parents[2] / "prompts"
SECTIONS: Final = ("system", "user")
_HEADER_RE: Final = re.compile(r"\A---\n(?P<header>.*?)\n---\n(?P<body>.*)\Z", re.DOTALL)
_SECTION_RE: Final = re.compile(r"^## (system|user)[ \t]*$", re.MULTILINE)
_PLACEHOLDER_RE: Final = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded template: its identity, declared variables and message sections."""

    name: str
    version: str
    variables: frozenset[str]
    sections: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.name}.v{self.version}"

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with every placeholder replaced by its value (exactly the declared ones)."""
        given = set(values)
        if given != self.variables:
            missing, extra = sorted(self.variables - given), sorted(given - self.variables)
            raise ValueError(f"prompt {self.id}: missing {missing}, undeclared {extra}")
        return [{"role": role, "content": _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], text)}
                for role, text in self.sections.items()]


def load_prompt(name_or_path: str, directory: Path = PROMPTS_DIR) -> PromptTemplate:
    """Load ``prompts/<name>.md`` (e.g. "answer.v1") or a template file by path."""
    path = Path(name_or_path)
    if path.suffix != ".md":
        path = directory / f"{name_or_path}.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInputError(
            f"cannot read prompt template {path}: {exc.strerror}. Set QA_LLM_PROMPT to a name "
            f"in {directory} (e.g. answer.v1) or to a template file") from None
    return parse_prompt(text, str(path))


def parse_prompt(text: str, where: str = "<prompt>") -> PromptTemplate:
    """Parse a template (see the module docstring); errors name the file and the rule broken."""
    m = _HEADER_RE.match(text.replace("\r\n", "\n"))
    if m is None:
        raise BadInputError(f"prompt {where} must start with a '---' header block")
    header: dict[str, str] = {}
    for line in m.group("header").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            header[key.strip()] = value.strip()
    for key in ("name", "version", "variables"):
        if not header.get(key):
            raise BadInputError(f"prompt {where}: header lacks '{key}'")
    declared = frozenset(v.strip() for v in header["variables"].split(",") if v.strip())
    parts = _SECTION_RE.split(m.group("body"))
    sections = {role: body.strip() for role, body in zip(parts[1::2], parts[2::2], strict=True)}
    if tuple(sections) != SECTIONS:
        raise BadInputError(f"prompt {where}: needs '## system' then '## user' sections")
    used = {p for body in sections.values() for p in _PLACEHOLDER_RE.findall(body)}
    if used != declared:
        raise BadInputError(f"prompt {where}: placeholders {sorted(used)} differ from the declared "
                            f"variables {sorted(declared)}")
    return PromptTemplate(header["name"], header["version"], declared, sections)
