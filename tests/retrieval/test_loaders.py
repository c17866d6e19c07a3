from __future__ import annotations

import json
from pathlib import Path

from retrieval.loaders import MAX_ALIASES, LoadError, load_paths
from retrieval.types import Document


def test_jsonl_bad_records_are_reported_and_the_rest_loaded(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"id": "a", "title": "A", "text": "Alpha text."}),
                "{not json",
                json.dumps({"id": "b"}),
                json.dumps(["a list"]),
                json.dumps(
                    {"id": "c", "text": "Gamma text.", "source_url": "https://example.org/c"}
                ),
            ]
        )
    )
    results = list(load_paths([path], "medical"))
    documents = [r for r in results if isinstance(r, Document)]
    errors = [r for r in results if isinstance(r, LoadError)]
    assert [d.doc_id for d in documents] == ["a", "c"]
    assert documents[1].source_url == "https://example.org/c"
    assert all(d.collection == "medical" for d in documents)
    assert len(errors) == 3
    assert ":2" in errors[0].path and "invalid JSON" in errors[0].message


def test_html_text_comes_from_blocks_without_scripts(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Flu facts</title><script>alert('x')</script></head><body>"
        "<nav>Home | About</nav><h1>Influenza</h1><p>Flu is a <b>viral</b> infection.</p>"
        "<ul><li>Fever</li><li>Cough</li></ul></body></html>"
    )
    (document,) = list(load_paths([path], "medical"))
    assert isinstance(document, Document)
    assert document.title == "Flu facts"
    assert "Flu is a viral infection." in document.text
    assert "Fever" in document.text and "alert" not in document.text and "Home" not in document.text


def test_markdown_title_and_unsupported_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text("# Lease basics\n\nA lease is a contract.")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    results = list(
        load_paths(
            [tmp_path / "note.md", tmp_path / "image.png", tmp_path / "missing.txt"], "legal"
        )
    )
    assert isinstance(results[0], Document) and results[0].title == "Lease basics"
    assert isinstance(results[1], LoadError) and "unsupported" in results[1].message
    assert isinstance(results[2], LoadError) and "no such file" in results[2].message


def test_folder_collection_comes_from_its_name(tmp_path: Path) -> None:
    folder = tmp_path / "legal"
    folder.mkdir()
    (folder / "a.txt").write_text("Some contract text.")
    (document,) = list(load_paths([folder], None))
    assert isinstance(document, Document) and document.collection == "legal"


def test_a_records_own_collection_counts_only_when_known(tmp_path: Path) -> None:
    folder = tmp_path / "medical"
    folder.mkdir()
    records = [
        {"id": "a", "text": "Asthma care.", "collection": "CancerGov"},  # MedQuAD's source site
        {"id": "b", "text": "A lease clause.", "collection": "legal"},
        {"id": "c", "text": "No collection of its own."},
    ]
    path = folder / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    found = {d.doc_id: d.collection for d in load_paths([path], None, ("medical", "legal"))}
    assert found == {"a": "medical", "b": "legal", "c": "medical"}


def test_a_records_other_names_become_aliases(tmp_path: Path) -> None:
    records = [
        {
            "id": "a",
            "title": "Neuromyelitis optica",
            "text": "Text.",
            "synonyms": ["Devic disease", " Devic  disease ", "neuromyelitis optica", "", 7],
        },
        {"id": "b", "title": "B", "text": "Text.", "aliases": "NMO; Devic syndrome"},
        {"id": "c", "title": "C", "text": "Text.", "synonyms": [f"name {i}" for i in range(50)]},
        {"id": "d", "title": "D", "text": "Text.", "synonyms": {"not": "a list"}},
    ]
    path = tmp_path / "names.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    found = {d.doc_id: d.aliases for d in load_paths([path], "medical")}
    assert found["a"] == ("Devic disease",)  # repeats, blanks and the title itself dropped
    assert found["b"] == ("NMO", "Devic syndrome")
    assert len(found["c"]) == MAX_ALIASES
    assert found["d"] == ()


def test_nested_html_is_read_once_not_once_per_level(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from retrieval.loaders import _read_html

    depth = 5000
    html = "<body>" + "<blockquote>word " * depth + "</blockquote>" * depth + "</body>"
    _, text = _read_html(html)
    assert text.count("word") == depth  # each text once (it was depth * (depth + 1) / 2)


def test_a_broken_pdf_is_its_own_error_and_the_batch_goes_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from retrieval.loaders import load_paths
    from retrieval.types import Document

    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage")
    (tmp_path / "good.md").write_text("# Gout\n\nGout is a kind of arthritis.\n")
    results = list(load_paths([tmp_path], "medical"))
    documents = [r for r in results if isinstance(r, Document)]
    errors = [r for r in results if not isinstance(r, Document)]
    assert [d.title for d in documents] == ["Gout"]
    assert len(errors) == 1 and "broken.pdf" in str(errors[0])
