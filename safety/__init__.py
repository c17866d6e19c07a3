"""PII detection and scrubbing, input and output guards, and flag rules."""
