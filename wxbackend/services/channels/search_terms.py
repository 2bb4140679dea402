"""Search that works for Chinese text without a word segmenter: every CJK character and every
pair of neighbouring characters is a term (as Lucene's CJK analyser does), every Latin word or
number is one. A query's terms must all be present (a GIN index answers that), and the query,
as written, must appear in the text (which drops pairs found apart)."""

from __future__ import annotations

import re
import unicodedata

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[0-9a-z]+")
MAX_QUERY = 40


def normalise(text: str) -> str:
    """Full-width letters and digits to half-width, lower case: what is stored and compared."""
    return unicodedata.normalize("NFKC", text).lower()


def document_terms(text: str) -> list[str]:
    text = normalise(text)
    terms: set[str] = set()
    for run in _CJK.findall(text):
        terms.update(run)
        terms.update(run[i:i + 2] for i in range(len(run) - 1))
    terms.update(_WORD.findall(text))
    return sorted(terms)


def query_terms(query: str) -> tuple[list[str], list[str]]:
    """(terms every match holds, phrases every match contains), from what a reader typed."""
    phrases = [p for p in normalise(query[:MAX_QUERY]).split() if p]
    terms: set[str] = set()
    for phrase in phrases:
        for run in _CJK.findall(phrase):
            terms.update([run] if len(run) == 1 else (run[i:i + 2] for i in range(len(run) - 1)))
        terms.update(_WORD.findall(phrase))
    return sorted(terms), phrases
