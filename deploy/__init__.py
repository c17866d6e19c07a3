"""Deployment tooling that runs the product's roles as separate hosts (see topology.py)."""
