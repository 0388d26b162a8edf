"""Thin Prefect tasks: each names a unit of retry and caching around one evalcore stage."""
