"""Checks for what a client may set on a session (keyterms, prompt, language, endpointing).

Shared by every protocol edge: each turns :class:`OptionError` into its own error (the native
protocol's ``bad_request`` at connect, ``bad_message`` for ``configure``). Client values are
hostile until checked here: sizes are bounded, control characters refused, nothing echoed whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from wirescribe.asr.registry import ModelSet, UnknownModel
from wirescribe.asr.types import ModelBackend
from wirescribe.streaming.events import (
    MAX_ENDPOINTING_MS,
    MAX_KEYTERM_CHARS,
    MAX_KEYTERMS,
    MAX_PROMPT_CHARS,
    MIN_ENDPOINTING_MS,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class OptionError(ValueError):
    """A value a client sent for a session option is malformed or out of range."""


def shown(value: str, limit: int = 40) -> str:
    """``value`` quoted for an error message, cut so a big input is not echoed."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def keyterms(terms: Iterable[object]) -> tuple[str, ...]:
    """Words or phrases to favour: strings, stripped, none empty; at most 100 terms and 1,000
    characters in all; no control characters."""
    out: list[str] = []
    for term in terms:
        if not isinstance(term, str):
            raise OptionError("keyterms must be strings")
        term = term.strip()
        if not term:
            raise OptionError("keyterms must not be empty")
        if _CONTROL.search(term):
            raise OptionError("keyterms must not hold control characters")
        out.append(term)
    if len(out) > MAX_KEYTERMS:
        raise OptionError(f"at most {MAX_KEYTERMS} keyterms, not {len(out)}")
    if sum(len(t) for t in out) > MAX_KEYTERM_CHARS:
        raise OptionError(f"keyterms may hold at most {MAX_KEYTERM_CHARS} characters in all")
    return tuple(out)


def keyterms_from_query(raw: str) -> tuple[str, ...]:
    """``keyterms`` as a query parameter: comma-separated (empty: none)."""
    if not raw.strip():
        return ()
    return keyterms(raw.split(","))


def prompt(value: object) -> str:
    if not isinstance(value, str):
        raise OptionError("prompt must be a string")
    if len(value) > MAX_PROMPT_CHARS:
        raise OptionError(f"prompt may hold at most {MAX_PROMPT_CHARS} characters, not {len(value)}")
    if _CONTROL.search(value.replace("\n", " ").replace("\t", " ")):
        raise OptionError("prompt must not hold control characters")
    return value.strip()


def endpointing(value: object) -> int:
    """Milliseconds of silence that end an utterance, a whole number in 100–5000."""
    if isinstance(value, str):
        if not value.isdigit():
            raise OptionError(f"endpointing must be a whole number of milliseconds, not {shown(value)}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError("endpointing must be a whole number of milliseconds")
    if not MIN_ENDPOINTING_MS <= value <= MAX_ENDPOINTING_MS:
        raise OptionError(f"endpointing must be {MIN_ENDPOINTING_MS}-{MAX_ENDPOINTING_MS} ms, not {value}")
    return value


def language(value: object, languages: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in languages:
        text = shown(value) if isinstance(value, str) else "that"
        listed = ", ".join(list(languages)[:12]) + (", …" if len(languages) > 12 else "")
        raise OptionError(f"language {text} is not supported by this model ({listed})")
    return value


def flag(name: str, value: str) -> bool:
    """A ``true``/``false`` query parameter."""
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise OptionError(f"{name} must be true or false, not {shown(value)}")


AUTO = "auto"  # language=auto: detect it from the first seconds of speech
TASKS = ("transcribe", "translate")


def model_name(value: object, models: ModelSet) -> str:
    """A loaded model's name (``model=``); the default when empty."""
    if value is None or value == "":
        return models.default
    if not isinstance(value, str):
        raise OptionError("model must be a string")
    try:
        return models.resolve(value)
    except UnknownModel:
        loaded = ", ".join(models.names)
        raise OptionError(f"model {shown(value)} is not loaded here (loaded: {loaded})") from None


def session_language(value: object, model: ModelBackend, name: str) -> str | None:
    """The language a session of ``model`` (called ``name``) decodes in: ``auto`` or nothing is
    None (detect) for a multilingual model and English for an English-only one; a code the model
    does not know is refused, and an English-only model asked for another language says so."""
    if value is None or value == "" or value == AUTO:
        return model.default_language
    if not isinstance(value, str):
        raise OptionError("language must be a string")
    code = value.strip().lower()
    if model.default_language is not None and code != model.default_language and code.isalpha():
        raise OptionError(
            f"model {name} speaks English only, not {shown(value)}: ask for a multilingual model"
            " (GET /v1/models lists the loaded ones) or language=en"
        )
    return language(code, model.supported_languages)


def task(value: object, model: ModelBackend, name: str) -> str:
    """``transcribe`` (the default) or ``translate`` (English text from any language), the
    latter for a multilingual model only."""
    if value is None or value == "":
        return "transcribe"
    if not isinstance(value, str) or value not in TASKS:
        raise OptionError(f"task must be transcribe or translate, not {shown(str(value))}")
    if value == "translate" and model.default_language is not None:
        raise OptionError(f"model {name} speaks English only and cannot translate: use a multilingual one")
    return value
