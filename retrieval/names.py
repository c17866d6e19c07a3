"""The names of each document (its title and its aliases) as sets of search words.

Pages are titled by their topic and questions name it, but people often use another name
than the page's title: "Devic's disease" for neuromyelitis optica, "Gorlin syndrome" for
nevoid basal cell carcinoma syndrome, an abbreviation such as "aHUS". Search matches a
question against every name of a document: the share of a name's words the question
contains scores the document, and a document one of whose names the question contains
whole becomes a candidate even when neither retriever proposed it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# A one-word alias counts only when it is distinctive: an abbreviation or code ("ALS",
# "aHUS", "AGS1") or a long word ("Acatalasia"). Short one-word aliases are mostly slang or
# everyday words ("Horse" and "Junk" are names of heroin) that would match unrelated questions.
LONG_WORD = 8

# An alias match counts for less than a title match: when a question names one page's title
# and another page's alias ("mucopolysaccharidosis type III" is an alias of the type IIIB
# page), the page with that title comes first.
ALIAS_WEIGHT = 0.8
_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")

Tokenizer = Callable[[Sequence[str]], list[list[str]]]


def distinctive(alias: str, words: Sequence[str]) -> bool:
    """Whether an alias may name its document (see LONG_WORD)."""
    if len(words) != 1:
        return bool(words)
    looks_like_code = any(c.isdigit() for c in alias) or sum(c.isupper() for c in alias) >= 2
    return looks_like_code or len(alias) >= LONG_WORD


def without_brackets(title: str) -> str:
    """The title without its bracketed parts, which abbreviate or qualify it: a question
    naming "Klippel-Trenaunay syndrome" names all of "Klippel-Trenaunay Syndrome (KTS)"."""
    bare = " ".join(_BRACKETED.sub(" ", title).split())
    return bare or title


@dataclass(frozen=True)
class DocumentNames:
    """Every name of every document, and which names contain which word."""

    words: list[frozenset[str]]  # per name
    name_doc: np.ndarray  # the document (index) each name belongs to
    weight: np.ndarray  # per name: 1 for a title, ALIAS_WEIGHT for an alias
    length: np.ndarray  # per name: its number of words
    by_word: dict[str, np.ndarray]  # word -> the names containing it
    title_words: list[frozenset[str]]  # per document

    @classmethod
    def build(
        cls, titles: Sequence[str], aliases: Sequence[Sequence[str]], tokenize: Tokenizer
    ) -> DocumentNames:
        entries = [  # (name, its document, whether it is the title)
            (name, doc, position == 0)
            for doc, (title, others) in enumerate(zip(titles, aliases, strict=True))
            for position, name in enumerate([without_brackets(title), title, *others])
            if position != 1 or name != without_brackets(title)
        ]
        tokens = tokenize([name for name, _, _ in entries]) if entries else []
        words: list[frozenset[str]] = []
        name_doc: list[int] = []
        weight: list[float] = []
        title_words: list[frozenset[str]] = []
        for (name, doc, is_title), name_tokens in zip(entries, tokens, strict=True):
            if is_title:
                title_words.append(frozenset(name_tokens))
            # A title always counts (search matched titles before aliases existed), and so
            # does the title with its bracketed part ("Klippel-Trenaunay Syndrome (KTS)").
            whole_title = is_title or name == titles[doc]
            if whole_title or distinctive(name, name_tokens):
                words.append(frozenset(name_tokens))
                name_doc.append(doc)
                weight.append(1.0 if whole_title else ALIAS_WEIGHT)
        by_word: dict[str, list[int]] = {}
        for index, name_words in enumerate(words):
            for word in name_words:
                by_word.setdefault(word, []).append(index)
        return cls(
            words,
            np.array(name_doc, dtype=np.int64),
            np.array(weight, dtype=np.float32),
            np.array([max(1, len(w)) for w in words], dtype=np.float32),
            {word: np.array(names, dtype=np.int64) for word, names in by_word.items()},
            title_words,
        )

    @property
    def vocabulary(self) -> dict[str, int]:
        """Each name word with the number of names holding it."""
        return {word: len(names) for word, names in self.by_word.items()}

    def _shares(self, query: set[str]) -> tuple[np.ndarray, np.ndarray]:
        """The names holding a word of ``query``, and the share of each one's words it holds."""
        lists = [self.by_word[word] for word in query if word in self.by_word]
        if not lists:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        names, hits = np.unique(np.concatenate(lists), return_counts=True)
        return names, (hits / self.length[names]).astype(np.float32)

    def coverage(self, query: set[str], docs: np.ndarray) -> np.ndarray:
        """Per document of ``docs``: the largest share of one of its names' words in ``query``."""
        best = np.zeros(len(self.title_words), dtype=np.float32)
        names, shares = self._shares(query)
        np.maximum.at(best, self.name_doc[names], shares * self.weight[names])
        return best[docs]

    def named(self, query: set[str], limit: int) -> list[int]:
        """Documents one of whose names ``query`` contains whole, longest names first."""
        names, shares = self._shares(query)
        whole = names[shares >= 1.0]
        whole = whole[np.lexsort((whole, -self.length[whole]))]
        docs: list[int] = []
        for doc in self.name_doc[whole].tolist():
            if doc not in docs:
                docs.append(doc)
                if len(docs) >= limit:
                    break
        return docs
