"""Accounts: users, roles, API tokens and account removal."""
