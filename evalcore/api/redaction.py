"""Keeping API keys out of every text the project writes.

A key can come back inside a server's text: an error body quoting the Authorization
header, or an answer that echoes it (a careless or prompt-injected server). Records, the
response cache, reports and judgements are all built from those texts, so each request's
outcome is scrubbed where it is made (`redact`). Logs are scrubbed once more at the
record: every key this process has resolved (`remember`) is replaced in every log
record's message and traceback, whichever library logs it.
"""

from __future__ import annotations

import logging
import threading
import traceback

from pydantic import SecretStr

REDACTED = "[redacted]"
# A shorter "key" cannot be scrubbed without destroying answers (a one-letter key would
# erase that letter everywhere); real keys are far longer.
MIN_SECRET_LENGTH = 8

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_installed = False


def redact(text: str, api_key: SecretStr | None) -> str:
    """`text` without the key's value (and without any key this process resolved)."""
    if api_key is not None:
        secret = api_key.get_secret_value()
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    return scrub(text)


def scrub(text: str) -> str:
    """`text` without any key this process has resolved."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def remember(api_key: SecretStr | None) -> None:
    """Scrub this key from every log record this process makes from now on."""
    if api_key is None:
        return
    secret = api_key.get_secret_value()
    if len(secret) < MIN_SECRET_LENGTH:
        return
    global _installed
    with _LOCK:
        _SECRETS.add(secret)
        if not _installed:
            _install_record_factory()
            _installed = True


def _install_record_factory() -> None:
    make = logging.getLogRecordFactory()

    def scrubbed_record(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        _scrub_record(record)
        return record

    logging.setLogRecordFactory(scrubbed_record)


def _scrub_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record: the handler will say so
        return
    clean = scrub(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[1] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        clean = scrub(text)
        if clean != text:  # formatters use exc_text when it is set
            record.exc_text = clean
