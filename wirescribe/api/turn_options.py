"""Checks for the turn-taking settings a client may send (named as Deepgram Flux names them).

Shared by every protocol that speaks of turns (``/ws/transcribe`` with ``turns=true``,
``/v2/listen``, OpenAI's ``semantic_vad``): each turns :class:`OptionError` into its own error.
Values come as query strings or JSON numbers; both are hostile until checked here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from wirescribe.api.session_options import OptionError, shown
from wirescribe.streaming.events import (
    MAX_EAGER_EOT_THRESHOLD,
    MAX_EOT_THRESHOLD,
    MAX_EOT_TIMEOUT_MS,
    MIN_EAGER_EOT_THRESHOLD,
    MIN_EOT_THRESHOLD,
    MIN_EOT_TIMEOUT_MS,
    SessionConfig,
)

TURN_SETTINGS = ("eot_threshold", "eager_eot_threshold", "eot_timeout_ms")


def _number(name: str, value: object, low: float, high: float, whole: bool = False) -> float:
    if isinstance(value, str):
        text = value
        try:
            value = float(text)
        except ValueError as e:
            raise OptionError(f"{name} must be a number, not {shown(text)}") from e
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OptionError(f"{name} must be a number")
    if whole and value != int(value):
        raise OptionError(f"{name} must be a whole number, not {value:g}")
    if not low <= value <= high:
        raise OptionError(f"{name} must be {low:g}-{high:g}, not {value:g}")
    return float(value)


def turn_settings(config: SessionConfig, values: Mapping[str, object]) -> SessionConfig:
    """``config`` with the turn settings in ``values`` (any of :data:`TURN_SETTINGS`; others are
    ignored) applied and checked together: the eager threshold may not exceed the final one.
    ``eager_eot_threshold`` None (JSON null) turns the eager events off."""
    if "eot_threshold" in values:
        eot = _number("eot_threshold", values["eot_threshold"], MIN_EOT_THRESHOLD, MAX_EOT_THRESHOLD)
        config = replace(config, eot_threshold=eot)
    if "eager_eot_threshold" in values:
        raw = values["eager_eot_threshold"]
        eager = None
        if raw is not None:
            eager = _number("eager_eot_threshold", raw, MIN_EAGER_EOT_THRESHOLD, MAX_EAGER_EOT_THRESHOLD)
        config = replace(config, eager_eot_threshold=eager)
    if "eot_timeout_ms" in values:
        raw = values["eot_timeout_ms"]
        timeout = _number("eot_timeout_ms", raw, MIN_EOT_TIMEOUT_MS, MAX_EOT_TIMEOUT_MS, whole=True)
        config = replace(config, eot_timeout_ms=int(timeout))
    if config.eager_eot_threshold is not None and config.eager_eot_threshold > config.eot_threshold:
        raise OptionError(
            f"eager_eot_threshold ({config.eager_eot_threshold:g}) must not exceed eot_threshold"
            f" ({config.eot_threshold:g})"
        )
    return config
