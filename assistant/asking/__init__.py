"""Asking: one chat turn from question to a checked, cited, stored answer."""
