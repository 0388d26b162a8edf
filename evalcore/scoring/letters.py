"""Turn a model's free-form answer into an option letter, or None when it names none."""

from __future__ import annotations

import re

from evalcore.dataset.sample import LETTERS

_BARE = re.compile(r"\s*\(?([A-Z])\)?[.):]?\s*")
_LEADING = re.compile(r"\s*\(?([A-Z])(?:\)|[.):])\s")
_ANSWER_IS = re.compile(r"answer(?:\s+is)?\s*[:\-]?\s*\(?([A-Z])\)?(?![A-Za-z])", re.IGNORECASE)
_PARENS = re.compile(r"\(([A-Z])\)")


def extract_option_letter(text: str | None, options: tuple[str, ...] | list[str]) -> str | None:
    """Accept "B", "(B)", "B.", "B) red", "Answer: B", or the option's text.

    Order matters: explicit letters first, then the option text, so "A red circle" is
    not mistaken for option A unless nothing better matches.
    """
    if not text or not text.strip():
        return None
    valid = LETTERS[: len(options)]
    for pattern in (_BARE, _LEADING):
        m = pattern.fullmatch(text) if pattern is _BARE else pattern.match(text)
        if m and m.group(1) in valid:
            return m.group(1)
    m = _ANSWER_IS.search(text)
    if m and m.group(1).upper() in valid and m.group(1).isupper():
        return m.group(1)
    by_text = _match_option_text(text, options)
    if by_text is not None:
        return by_text
    found = {g for g in _PARENS.findall(text) if g in valid}
    if len(found) == 1:
        return found.pop()
    return None


def _words(text: str) -> str:
    """Lower-case words separated by single spaces, punctuation dropped."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _match_option_text(text: str, options: tuple[str, ...] | list[str]) -> str | None:
    said = _words(text)
    for i, opt in enumerate(options):
        if said == _words(opt):
            return LETTERS[i]
    padded = f" {said} "
    hits = [LETTERS[i] for i, opt in enumerate(options) if f" {_words(opt)} " in padded]
    return hits[0] if len(hits) == 1 else None
