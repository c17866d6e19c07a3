"""The corpus: uploads, ingestion into the index, and the document registry."""
