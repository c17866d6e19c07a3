"""Ingestion, chunking, embedding, indexing and hybrid search over the document corpus."""
