"""The product core: settings, storage, the answer pipeline, LLM backends, workers and the CLI."""
