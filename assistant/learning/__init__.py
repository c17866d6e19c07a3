"""The learning loop: reviewed feedback -> datasets -> training runs -> gated candidates."""
