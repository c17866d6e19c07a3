from __future__ import annotations

from retrieval.chunking import chunk_document, split_units
from retrieval.types import Document


def words(texts):  # a crude counter for structure tests that need no model
    return [len(t.split()) for t in texts]


def test_units_keep_exact_offsets() -> None:
    text = "First sentence here. Second one!\n\nA heading\nThird line? Yes."
    for unit in split_units(text):
        piece = text[unit.start : unit.end]
        assert piece == piece.strip() and piece
    assert [text[u.start : u.end] for u in split_units(text)] == [
        "First sentence here.",
        "Second one!",
        "A heading",
        "Third line?",
        "Yes.",
    ]


def test_chunks_fit_budget_and_slice_the_source() -> None:
    text = " ".join(f"Sentence number {i} talks about asthma." for i in range(200))
    document = Document("d1", "Asthma", text, "medical")
    chunks = chunk_document(document, words, budget=40, overlap_sentences=1)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert len(chunk.text.split()) + len(document.title.split()) + 2 <= 40
    # Every sentence of the document is in some chunk.
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_overlap_repeats_the_last_sentence() -> None:
    text = " ".join(f"Fact {i} is here." for i in range(30))
    chunks = chunk_document(Document("d", "T", text, "m"), words, budget=20, overlap_sentences=1)
    for previous, following in zip(chunks, chunks[1:], strict=False):
        assert following.start < previous.end  # the boundary sentence appears in both


def test_a_new_section_starts_a_new_chunk() -> None:
    text = (
        "Intro sentence one. Intro sentence two. Intro sentence three. Intro four here.\n\n"
        "Treatment\nTreatment sentence one. Treatment sentence two."
    )
    # 19 words fit one 27-word chunk; the section break still starts a second one.
    chunks = chunk_document(Document("d", "T", text, "m"), words, budget=30, overlap_sentences=1)
    assert len(chunks) == 2
    assert chunks[1].text.startswith("Treatment\n")


def test_a_sentence_longer_than_the_budget_is_split_at_words() -> None:
    text = " ".join(["word"] * 100) + "."
    chunks = chunk_document(Document("d", "T", text, "m"), words, budget=30, overlap_sentences=0)
    assert len(chunks) >= 4
    assert all(len(c.text.split()) <= 27 for c in chunks)
