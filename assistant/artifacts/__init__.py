"""Artifacts shared between hosts: the fsspec store, and publishing and following pointers."""
