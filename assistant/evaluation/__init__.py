"""Evaluation commands and quality figures, measured on labelled data."""
