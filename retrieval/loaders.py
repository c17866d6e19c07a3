"""Read documents from JSONL, plain text, Markdown, HTML and PDF files.

Each file is loaded on its own: a bad file yields an error message, the rest still load.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from retrieval.types import Document

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = {".jsonl", ".txt", ".md", ".markdown", ".html", ".htm", ".pdf"}


@dataclass(frozen=True)
class LoadError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def iter_files(paths: list[Path]) -> Iterator[Path]:
    """Files under the given paths (folders are walked), in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
            )
        else:
            yield path


def load_paths(
    paths: list[Path], collection: str | None, known: Collection[str] = ()
) -> Iterator[Document | LoadError]:
    """Documents from every file; ``collection`` overrides what the file or folder says.

    A JSONL record's own ``collection`` counts only when it is one of ``known`` (if given):
    datasets use the key for other things (MedQuAD names its source site there, e.g.
    "CancerGov"), and a document filed under an unknown collection could never be found.
    """
    for path in iter_files(paths):
        if not path.exists():
            yield LoadError(str(path), "no such file")
            continue
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            yield LoadError(str(path), f"unsupported file type {suffix or '(none)'}")
            continue
        default_collection = collection or _collection_from_path(path)
        try:
            if suffix == ".jsonl":
                yield from _load_jsonl(path, collection, default_collection, known)
            else:
                yield _load_single(path, default_collection)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            yield LoadError(str(path), str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad file never aborts the batch
            yield LoadError(str(path), f"could not be read ({type(exc).__name__})")


def _collection_from_path(path: Path) -> str:
    # data/corpus/<collection>/file.jsonl: the folder names the collection.
    return path.parent.name or "default"


def _load_jsonl(
    path: Path, override: str | None, default: str, known: Collection[str]
) -> Iterator[Document | LoadError]:
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield LoadError(where, f"invalid JSON ({exc.msg})")
                continue
            if not isinstance(record, dict):
                yield LoadError(where, "a record must be a JSON object")
                continue
            doc_id, text = record.get("id"), record.get("text")
            if not isinstance(doc_id, str) or not doc_id.strip():
                yield LoadError(where, "missing string field 'id'")
                continue
            if not isinstance(text, str) or not text.strip():
                yield LoadError(where, "missing non-empty string field 'text'")
                continue
            own = record.get("collection")
            if not isinstance(own, str) or not own or (known and own not in known):
                own = default
            yield Document(
                doc_id=doc_id.strip(),
                title=str(record.get("title") or doc_id).strip(),
                text=text,
                collection=override or own,
                source_url=str(record.get("source_url") or ""),
                aliases=record_aliases(record),
            )


# The most other names kept for one document, and their longest length: a record with a
# thousand "synonyms" must not turn every question into a match.
MAX_ALIASES = 20
MAX_ALIAS_LENGTH = 200


def record_aliases(record: dict[str, object]) -> tuple[str, ...]:
    """A JSONL record's other names: ``aliases`` or ``synonyms``, a list or a ';'-separated
    string; blanks, repeats and the title itself left out."""
    raw = record.get("aliases", record.get("synonyms"))
    if isinstance(raw, str):
        raw = raw.split(";")
    if not isinstance(raw, list):
        return ()
    title = str(record.get("title") or "").strip().casefold()
    seen = {title}
    aliases = []
    for value in raw:
        if not isinstance(value, str):
            continue
        alias = " ".join(value.split())
        if alias and len(alias) <= MAX_ALIAS_LENGTH and alias.casefold() not in seen:
            seen.add(alias.casefold())
            aliases.append(alias)
    return tuple(aliases[:MAX_ALIASES])


def _load_single(path: Path, collection: str) -> Document:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        title, text = _read_pdf(path)
    elif suffix in {".html", ".htm"}:
        title, text = _read_html(path.read_text(encoding="utf-8", errors="replace"))
    else:
        text = path.read_text(encoding="utf-8")
        title = _markdown_title(text) if suffix in {".md", ".markdown"} else ""
    if not text.strip():
        raise ValueError("no text found")
    return Document(
        doc_id=f"{collection}:{path.stem}",
        title=title or path.stem.replace("_", " ").replace("-", " "),
        text=text,
        collection=collection,
        source_url=path.resolve().as_uri(),
    )


def _markdown_title(text: str) -> str:
    match = re.search(r"^#\s+(.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else ""


_BLOCK_TAGS = frozenset(
    "p li h1 h2 h3 h4 h5 h6 pre td th dt dd blockquote div section article tr br".split()
)
MAX_HTML_CHARS = 5_000_000
MAX_PDF_BYTES = 50 * 1024 * 1024
MAX_PDF_PAGES = 1000


def _read_html(html: str) -> tuple[str, str]:
    """Title and readable text of an HTML page: a paragraph break at each block element.

    The text is read once, in document order (each text node once): reading each block's
    whole text re-read every nested block's text again, so 240 KB of nested blockquotes
    came out as 2 MB.
    """
    from selectolax.lexbor import LexborHTMLParser

    if len(html) > MAX_HTML_CHARS:
        raise ValueError(f"HTML page over {MAX_HTML_CHARS:,} characters")
    tree = LexborHTMLParser(html)
    for node in tree.css("script,style,noscript,nav,header,footer,aside,form,iframe,svg"):
        node.decompose()
    title_node = tree.css_first("title") or tree.css_first("h1")
    title = title_node.text(strip=True) if title_node else ""
    root = tree.body or tree.root
    blocks: list[str] = []
    current: list[str] = []
    if root is not None:
        for node in root.traverse(include_text=True):
            if node.tag == "-text":
                current.append(node.text_content or "")
            elif node.tag in _BLOCK_TAGS and current:
                blocks.append(" ".join(" ".join(current).split()))
                current = []
        blocks.append(" ".join(" ".join(current).split()))
    return title, "\n\n".join(b for b in blocks if b)


def _read_pdf(path: Path) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if path.stat().st_size > MAX_PDF_BYTES:
        raise ValueError(f"PDF over {MAX_PDF_BYTES >> 20} MiB")
    try:
        reader = PdfReader(str(path))
        if len(reader.pages) > MAX_PDF_PAGES:
            raise ValueError(f"PDF of {len(reader.pages)} pages; at most {MAX_PDF_PAGES}")
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata: dict[str, object] = dict(reader.metadata or {})
        title = str(metadata.get("/Title") or "")
    except ValueError:
        raise
    except (PdfReadError, Exception) as exc:  # any pypdf failure is this file's, not the batch's
        raise ValueError(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    return title, "\n\n".join(p.strip() for p in pages if p.strip())
