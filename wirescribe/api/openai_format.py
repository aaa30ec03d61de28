"""OpenAI's transcription API in plain data: the form's fields checked, the responses built,
errors in OpenAI's shape. Pure — no I/O; :mod:`openai_api` is the HTTP edge around it.

Where OpenAI's behaviour is not written down, it follows what OpenAI's endpoint was observed to
do: word timestamps only with ``verbose_json`` (400 otherwise); ``verbose_json`` has segments
unless only ``word`` granularity was asked for, words only when asked for; ``language`` in
``verbose_json`` is a name ("english"), not a code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.responses import JSONResponse, PlainTextResponse, Response

from wirescribe import formats as transcript_formats
from wirescribe.asr.model import DecodeOptions, Transcript

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")


class ApiError(Exception):
    """An error answered as ``{"error": {"message", "type", "param", "code"}}``; ``metric`` is
    the protocol error code (PROTOCOL.md) it is counted under in ``stt_errors_total``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        kind: str = "invalid_request_error",
        metric: str = "bad_request",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.kind, self.metric, self.headers = kind, metric, headers

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def invalid(message: str, param: str, code: str = "invalid_value") -> ApiError:
    """400 for a bad form field."""
    return ApiError(400, message, param=param, code=code)


@dataclass(frozen=True)
class TranscriptionRequest:
    """The form's fields, checked (the ``file`` and ``model`` fields are the edge's business)."""

    response_format: str = "json"
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    words: bool = False  # word timestamps asked for
    segments: bool = True  # segments in verbose_json


def parse_request(form: FormData, languages: Sequence[str]) -> TranscriptionRequest:
    """Check the form's fields; :class:`ApiError` 400 naming the first bad one."""
    fmt = str(form.get("response_format") or "json").strip()
    if fmt not in RESPONSE_FORMATS:
        raise invalid(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, not {fmt!r}", "response_format"
        )
    if str(form.get("stream") or "false").strip().lower() not in ("false", "0"):
        raise invalid("streamed responses are not supported; live transcription is /ws/transcribe", "stream")
    granularities = [
        str(g).strip()
        for g in [*form.getlist("timestamp_granularities[]"), *form.getlist("timestamp_granularities")]
    ]
    for g in granularities:
        if g not in GRANULARITIES:
            raise invalid(
                f"timestamp_granularities are word and segment, not {g!r}", "timestamp_granularities"
            )
    if "word" in granularities and fmt != "verbose_json":
        raise invalid("word timestamps need response_format verbose_json", "timestamp_granularities")
    language = str(form.get("language") or "").strip().lower() or None
    if language is not None and language not in languages:
        shown = ", ".join(list(languages)[:12]) + (", …" if len(languages) > 12 else "")
        message = f"language {language!r} is not supported by this server's model ({shown})"
        raise invalid(message, "language", "unsupported_language")
    raw = str(form.get("temperature") or "0").strip()
    try:
        temperature = float(raw)
    except ValueError:
        temperature = math.nan
    if not 0.0 <= temperature <= 1.0:
        raise invalid(f"temperature must be a number from 0 to 1, not {raw!r}", "temperature")
    prompt = str(form.get("prompt") or "").strip() or None
    segments = not granularities or "segment" in granularities
    return TranscriptionRequest(fmt, language, prompt, temperature, "word" in granularities, segments)


def temperatures(temperature: float) -> tuple[float, ...]:
    """OpenAI's meaning: 0 lets the model raise the temperature when a decode fails its checks
    (Whisper's 0, 0.2 … 1 schedule); above 0, the schedule starts there."""
    if temperature == 0:
        return DecodeOptions().temperature
    steps = int((1.0 - temperature) / 0.2 + 1e-9)
    return tuple(round(temperature + 0.2 * i, 3) for i in range(steps + 1))


def render(transcript: Transcript, request: TranscriptionRequest, filename: str = "audio") -> Response:
    """The response in the requested format; text, SRT and WebVTT as the CLI writes them."""
    fmt = request.response_format
    usage = {"type": "duration", "seconds": math.ceil(transcript.duration)}
    if fmt == "json":
        return JSONResponse({"text": transcript.text, "usage": usage})
    if fmt == "verbose_json":
        return JSONResponse(verbose_json(transcript, request) | {"usage": usage})
    results = [transcript_formats.FileTranscript(filename, transcript)]
    return PlainTextResponse(transcript_formats.render(results, fmt))


def verbose_json(transcript: Transcript, request: TranscriptionRequest) -> dict[str, Any]:
    """OpenAI's ``verbose_json`` body (without ``usage``)."""
    out: dict[str, Any] = {
        "task": "transcribe",
        "language": language_name(transcript.language),
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
    }
    if request.segments:
        out["segments"] = [
            {
                "id": i,
                "seek": s.seek,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "tokens": list(s.tokens),
                "temperature": s.temperature,
                "avg_logprob": round(s.avg_logprob, 6),
                "compression_ratio": round(s.compression_ratio, 6),
                "no_speech_prob": round(s.no_speech_prob, 6),
            }
            for i, s in enumerate(transcript.segments)
        ]
    if request.words:
        out["words"] = [
            {"word": w.text.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for s in transcript.segments
            for w in s.words
        ]
    return out


# Whisper's language codes and the names OpenAI's verbose_json gives them.
_LANGUAGES = """en english zh chinese de german es spanish ru russian ko korean fr french ja japanese
pt portuguese tr turkish pl polish ca catalan nl dutch ar arabic sv swedish it italian id indonesian
hi hindi fi finnish vi vietnamese he hebrew uk ukrainian el greek ms malay cs czech ro romanian
da danish hu hungarian ta tamil no norwegian th thai ur urdu hr croatian bg bulgarian lt lithuanian
la latin mi maori ml malayalam cy welsh sk slovak te telugu fa persian lv latvian bn bengali
sr serbian az azerbaijani sl slovenian kn kannada et estonian mk macedonian br breton eu basque
is icelandic hy armenian ne nepali mn mongolian bs bosnian kk kazakh sq albanian sw swahili
gl galician mr marathi pa punjabi si sinhala km khmer sn shona yo yoruba so somali af afrikaans
oc occitan ka georgian be belarusian tg tajik sd sindhi gu gujarati am amharic yi yiddish lo lao
uz uzbek fo faroese ht haitian_creole ps pashto tk turkmen nn nynorsk mt maltese sa sanskrit
lb luxembourgish my myanmar bo tibetan tl tagalog mg malagasy as assamese tt tatar haw hawaiian
ln lingala ha hausa ba bashkir jw javanese su sundanese yue cantonese""".split()
LANGUAGE_NAMES = dict(zip(_LANGUAGES[::2], (n.replace("_", " ") for n in _LANGUAGES[1::2]), strict=True))


def language_name(code: str) -> str:
    """``en`` → ``english``; a code it does not know is returned as it is."""
    return LANGUAGE_NAMES.get(code, code)
