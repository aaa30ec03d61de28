"""Model, language and task of a session, the same for every protocol: which loaded model, which
language (or ``auto``), transcribe or translate; and how the native protocol reports them.

Every protocol edge reads its own parameters (``model=``, ``language=``, ``task=`` on
``/ws/transcribe``; Deepgram's ``model``/``language``/``detect_language``; OpenAI's
``model``/``language``) and hands them to :func:`choose`, which checks them against the loaded
models (:class:`~wirescribe.asr.registry.ModelSet`): an unknown model, a language the model does
not know, an English-only model asked for another language or for a translation are each an
:class:`~wirescribe.api.session_options.OptionError` the edge turns into its own error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from wirescribe.api import session_options
from wirescribe.api.protocol import ProtocolError, SessionParams
from wirescribe.api.session_options import AUTO, OptionError
from wirescribe.asr.registry import models_of
from wirescribe.asr.types import ModelBackend
from wirescribe.streaming.events import LanguageDetected, SessionConfig

__all__ = ["Choice", "LanguageDetected", "LanguageReport", "choose", "choose_native"]


@dataclass(frozen=True)
class Choice:
    """A session's model (its loaded name and the model), language (None: detect) and task."""

    name: str
    model: ModelBackend
    language: str | None
    task: str

    @property
    def multilingual(self) -> bool:
        return self.model.default_language is None

    def configure(self, config: SessionConfig) -> SessionConfig:
        return replace(config, model=self.name, language=self.language, task=self.task)


def choose(
    backend: ModelBackend, model: object = None, language: object = None, task: object = None
) -> Choice:
    """Check a session's ``model``, ``language`` (``auto``, empty or None: the model's default)
    and ``task`` against the loaded models; :class:`OptionError` says what is wrong."""
    models = models_of(backend)
    name = session_options.model_name(model, models)
    chosen = models.get(name)
    return Choice(
        name,
        chosen,
        session_options.session_language(language, chosen, name),
        session_options.task(task, chosen, name),
    )


def choose_native(query: Mapping[str, str], backend: ModelBackend) -> tuple[Choice, dict[str, str]]:
    """``/ws/transcribe``'s ``model``, ``language``, ``task``: the choice, and the query as
    :func:`~wirescribe.api.protocol.parse_params` then reads it (its language the chosen one)."""
    try:
        choice = choose(backend, query.get("model"), query.get("language"), query.get("task"))
    except OptionError as e:
        raise ProtocolError("bad_request", str(e)) from e
    rest = {k: v for k, v in query.items() if k not in ("model", "language", "task")}
    if choice.language is not None:
        rest["language"] = choice.language
    return choice, rest


def native_params(params: SessionParams, choice: Choice) -> SessionParams:
    """``params`` with the choice in its config (the model and task travel to every window)."""
    return replace(params, language=choice.language, config=choice.configure(params.config))


class LanguageReport:
    """What the native protocol says of a session's language: a multilingual model's session
    gets a ``language`` message once it is detected, and ``language`` in ``utterance_end`` and
    ``final``; an English-only model's messages stay exactly as they were."""

    def __init__(self, choice: Choice | None = None) -> None:
        self.report = choice is not None and choice.multilingual
        self.language = choice.language if choice is not None else None
        self.task = choice.task if choice is not None else "transcribe"
        self.languages = tuple(choice.model.supported_languages) if choice is not None else ()

    def known(self, fallback: Sequence[str]) -> Sequence[str]:
        """The languages ``configure`` may switch to: the session's model's (``fallback``: the
        default model's, as the edge has them, before a choice)."""
        return self.languages or fallback

    def detected(self, event: LanguageDetected) -> tuple[dict[str, Any], ...]:
        self.language = event.language
        return ({"type": "language", "language": event.language, "at": event.at},)

    def tag(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.report:
            message["language"] = self.language
            if self.task != "transcribe":
                message["task"] = self.task
        return message


# The model names OpenAI's clients send: they stand for this server's default model, or for a
# multilingual one when the default cannot do what is asked (another language, a translation).
OPENAI_ALIASES = (  # and those frameworks send by default (Pipecat: gpt-realtime-whisper)
    "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-realtime-whisper", "gpt-transcribe",
    "gpt-live-transcribe",
)


def choose_openai(backend: ModelBackend, model: object, language: object, task: str = "transcribe") -> Choice:
    """OpenAI's ``model`` (a loaded name, or one of :data:`OPENAI_ALIASES`), ``language`` and
    ``task``; :class:`OptionError` as :func:`choose`, :class:`UnknownModelName` for an unknown model."""
    models = models_of(backend)
    name = model.strip() if isinstance(model, str) else None
    if not name or name in OPENAI_ALIASES:
        default = models.get(None)
        english_only = default.default_language is not None
        wants_other = task == "translate" or (
            isinstance(language, str) and language.strip().lower() not in ("", "en")  # auto: detect
        )
        multilingual = [n for n in models.names if models.get(n).default_language is None]
        name = multilingual[0] if english_only and wants_other and multilingual else models.default
    elif name not in models.names:
        raise UnknownModelName(f"The model '{name[:60]}' does not exist (loaded: {', '.join(models.names)})")
    return choose(backend, name, language, task)


class UnknownModelName(OptionError):
    """A client named a model that is not loaded here."""


def model_list(backend: ModelBackend) -> dict[str, Any]:
    """``GET /v1/models`` as OpenAI's clients read it (``client.models.list()``), with what
    each model speaks beside OpenAI's fields."""
    models = models_of(backend)
    data = []
    for name in models.names:
        model = models.get(name)
        data.append({
            "id": name, "object": "model", "created": 0, "owned_by": "wirescribe",
            "default": name == models.default,
            "multilingual": model.default_language is None,
            "languages": list(model.supported_languages),
            "tasks": ["transcribe", "translate"] if model.default_language is None else ["transcribe"],
        })  # fmt: skip
    return {"object": "list", "data": data}


def _deepgram_tier(name: str) -> bool:
    """A Deepgram model name (nova-3, nova-2-general, enhanced, whisper-large, …): this server
    answers it with its own models, as OpenAI's names."""
    return name.split("-")[0] in ("nova", "enhanced", "whisper", "general", "phonecall", "meeting", "base")


def choose_deepgram(backend: ModelBackend, model: object, language: object, detect: bool) -> Choice:
    """Deepgram's ``model``, ``language`` (``fr``, ``fr-FR``, ``multi``) and ``detect_language``:
    a loaded model by name, or a Deepgram name for the default (a multilingual model when the
    default speaks English only and another language, ``multi`` or detection is asked for)."""
    models = models_of(backend)
    code = language.split("-")[0].strip().lower() if isinstance(language, str) else ""
    auto = detect or code in ("", "multi")
    code = "auto" if auto and (detect or code == "multi") else code
    name = model.strip() if isinstance(model, str) else ""
    if name in models.names:
        return choose(backend, name, code or None)
    if name and not _deepgram_tier(name):
        loaded = ", ".join(models.names)
        raise OptionError(f"model {session_options.shown(name)} is not served here (loaded: {loaded})")
    return choose_openai(backend, None, code or None)


def known_languages(backend: ModelBackend) -> list[str]:
    """Every language one of the loaded models knows, and ``auto`` (detect)."""
    models = models_of(backend)
    return [*sorted({code for n in models.names for code in models.get(n).supported_languages}), AUTO]
