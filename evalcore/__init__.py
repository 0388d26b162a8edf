"""Domain library for video-QA evaluation. Never imports prefect."""

__version__ = "0.1.0"
