"""Prefect flows composing the tasks, plus the `evalcore` command line."""
