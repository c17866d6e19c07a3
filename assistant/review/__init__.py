"""The review queue: flagged answers judged by reviewers."""
