"""The README and docs/ stay true: the commands they show exist, their links lead somewhere,
and the README stays a short user's guide.

Commands: every ``qa-service …`` line in a fenced code block (after optional ``VAR=value``
assignments; ``.venv/bin/qa-service`` too) is parsed by the real CLI parser, so a renamed
command or option fails here. Inline code spans in prose and tables (``qa-service ask "question"
[--json] [--top-k K]``) hold placeholders, so for them only the command words and the option
names are checked against the parser.
"""

from __future__ import annotations

import argparse
import re
import shlex
import unicodedata
from pathlib import Path

import pytest

from qa_service.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_BYTES = 16 * 1024

_FENCE = re.compile(r"^(```|~~~)")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<(?:img|a)\s[^>]*?(?:src|href)=\"([^\"]+)\"")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")


def _split(path: Path) -> tuple[list[str], list[str]]:
    """(lines inside fenced code blocks, lines outside them)."""
    code: list[str] = []
    prose: list[str] = []
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        (code if fenced else prose).append(line)
    return code, prose


def _shell_commands(lines: list[str]) -> list[str]:
    """The code lines, with backslash continuations joined."""
    joined: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return joined


def cli_invocations(path: Path) -> list[list[str]]:
    """The arguments of every ``qa-service`` command in the fenced code blocks of ``path``."""
    found = []
    for line in _shell_commands(_split(path)[0]):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # not shell (JSON, HTML, a diagram)
            continue
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
            words.pop(0)
        if words and Path(words[0]).name == "qa-service":
            args = []
            for word in words[1:]:
                if word in {"&&", "||", "|", ";", ">", "2>&1"}:
                    break
                args.append(word)
            found.append(args)
    return found


def inline_invocations(path: Path) -> list[str]:
    """``qa-service …`` code spans in the prose and tables of ``path``."""
    spans = []
    for line in _split(path)[1]:
        spans += [m.group(1) for m in _INLINE_CODE.finditer(line) if m.group(1).startswith("qa-service ")]
    return spans


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _check_inline(span: str) -> None:
    """The command words name a real (sub)command and every ``--option`` belongs to it."""
    parser = build_parser()
    words = span.replace("\\|", "|").split()[1:]
    commands = _subparsers(parser)
    while words and commands:
        # ``bench encoder|ingest|…`` lists alternatives: each must be a command
        names = words[0].split("|")
        unknown = [name for name in names if name not in commands]
        assert not unknown, f"`{span}`: no command {unknown} (have {sorted(commands)})"
        parser = commands[names[0]]
        words = words[1:]
        commands = _subparsers(parser)
    options = set(parser._option_string_actions)
    for option in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w@-]*)", " ".join(words)):
        assert option in options, f"`{span}`: no option {option} (have {sorted(options)})"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in _split(path)[1]:
        match = re.match(r"^(#{1,6})\s+(.*?)\s*#*$", line)
        if match:
            slug = _slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def relative_links(path: Path) -> list[str]:
    links = []
    for line in _split(path)[1]:
        for match in _LINK.finditer(line):
            target = match.group(1) or match.group(2)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: …
                links.append(target)
    return links


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_commands_in_code_blocks_parse(path: Path) -> None:
    for args in cli_invocations(path):
        try:
            build_parser().parse_args(args)
        except SystemExit as exc:
            pytest.fail(f"{path.name}: `qa-service {shlex.join(args)}` is not a valid command ({exc})")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_inline_commands_name_real_commands_and_options(path: Path) -> None:
    for span in inline_invocations(path):
        _check_inline(span)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    for link in relative_links(path):
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.exists(), f"{path.name}: link {link!r}: {file} does not exist"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), f"{path.name}: link {link!r}: no heading #{anchor} in {file.name}"


def test_readme_is_short() -> None:
    size = len((REPO / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes, over {README_MAX_BYTES}: move depth to docs"


def test_the_checks_see_what_they_check() -> None:
    readme = REPO / "README.md"
    assert ["ask", "How many US troops are in Iraq?", "--json"] in cli_invocations(readme)
    assert any(span.startswith("qa-service ingest") for span in inline_invocations(readme))
    assert "docs/api.md" in relative_links(readme)
    assert {"plug-an-llm", "the-api-at-a-glance"} <= anchors(readme)
    with pytest.raises(AssertionError):
        _check_inline("qa-service ask --no-such-option")
    with pytest.raises(AssertionError):
        _check_inline("qa-service no-such-command")
    assert _slug("Answers: the heuristic composer") == "answers-the-heuristic-composer"
