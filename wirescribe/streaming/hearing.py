"""What the model heard in a window, as absolute-time words: its inventions left out (pure).

Whisper invents text where there is no speech (stock phrases, its prompt continued into a
pause, loops). A segment or word is kept only where voice activity saw speech. A closing pass
decoded without timestamps is one segment for the whole utterance, so dropping a segment there
drops the utterance: a retry (:attr:`Window.retry`) keeps every word that lies on speech and
drops only repetition loops, what the decoder itself calls silence and stock phrases said unsure.
"""

from __future__ import annotations

from wirescribe.asr.types import Segment, Transcript, Word
from wirescribe.audio.vad import VoiceActivity
from wirescribe.streaming.agreement import said_before, without_unsure_tail
from wirescribe.streaming.hallucinations import is_hallucination, is_retry_invention, normalize, phrase
from wirescribe.streaming.window import SR, Window

WORD_PAD = 0.3  # seconds around a word in which voice activity must have seen speech


def heard_words(vad: VoiceActivity, window: Window, result: Transcript) -> list[Word]:
    """The hypothesis as absolute-time words, hallucinations and words in silence out."""
    words: list[Word] = []
    previous = ""
    for seg in result.segments:
        text = phrase(seg.text)
        repeated, previous = text == previous, text
        invented = is_retry_invention(seg) if window.retry else is_hallucination(seg)
        if repeated or invented or not _on_speech(vad, window, seg):
            continue
        # A live window may end inside a word, which the model then guesses; the closing
        # window ends after the speech, so its last word is kept however unsure.
        for w in seg.words if window.closes_utterance else without_unsure_tail(seg.words):
            a = Word(w.start + window.offset, w.end + window.offset, w.text, w.probability)
            if normalize(a.text) and _spoken(vad, a):
                words.append(a)
    return words


def _on_speech(vad: VoiceActivity, window: Window, seg: Segment) -> bool:
    """Was there speech where the model put this segment? A sentence placed in a pause is the
    model continuing its prompt."""
    start, end = int((window.offset + seg.start) * SR), int((window.offset + seg.end) * SR)
    share = vad.speech_fraction(start, max(end, start + 1))
    return share is None or share >= 0.2 or end - start < 0.3 * SR


def _spoken(vad: VoiceActivity, word: Word) -> bool:
    """Did voice activity see speech around this word? Words in silence are inventions."""
    return vad.has_speech(int((word.start - WORD_PAD) * SR), int((word.end + WORD_PAD) * SR))


def uncovered_speech(
    vad: VoiceActivity, heard: list[Word], window: Window, min_speech: float, heard_to: float | None = None
) -> bool:
    """Did the window hold speech after the last word the model heard in it (at least
    ``min_speech`` seconds of it, starting over ``WORD_PAD`` after that word, or after
    ``heard_to`` seconds if given)? Whisper decoding without timestamps may stop at a pause
    inside its window: what comes after was not heard, and must not be taken as committed."""
    if heard_to is None:
        heard_to = heard[-1].end if heard else window.offset
    return vad.has_speech(int((heard_to + WORD_PAD) * SR), window.end, min_speech)


def stopped_short_of(words: list[Word], hypothesis: list[Word]) -> float | None:
    """Where the live passes (``hypothesis``: the utterance's last committed words and the
    tentative ones after them) heard this pass's last word end, when they heard more after it;
    None otherwise. A pass that stops early tends to stretch its last word over the
    speech it did not decode (the alignment has nowhere else to put it), so its own times
    cannot tell; the live hypothesis, which decoded on, can."""
    if not words or not hypothesis:
        return None
    last, key = words[-1], normalize(words[-1].text)
    same = [
        i for i, h in enumerate(hypothesis) if normalize(h.text) == key and abs(h.start - last.start) < 0.5
    ]
    if not same or same[-1] == len(hypothesis) - 1:
        return None
    return min(hypothesis[same[-1]].end, last.end)


def stopped_short(words: list[Word], known: list[Word]) -> float | None:
    """Where a pass that stopped early really heard its last word end (None: it did not stop
    early, as far as can be told): :func:`stopped_short_of`, else :func:`stretched_end`."""
    short = stopped_short_of(words, known)
    return short if short is not None else stretched_end(words)


def stretched_end(words: list[Word]) -> float | None:
    """Where a pass's last word would end were it not stretched over speech the pass did not
    decode: when it lasts over 0.8 s and over three times the pass's typical word (under load
    no live pass may have heard on to tell, see :func:`stopped_short_of`); None otherwise. A
    slow last word costs one more pass that hears nothing new."""
    if len(words) < 3:
        return None
    lengths = sorted(w.end - w.start for w in words[:-1])
    typical = lengths[len(lengths) // 2]
    last = words[-1]
    if last.end - last.start <= max(0.8, 3 * typical):
        return None
    return last.start + max(1.5 * typical, 0.25)  # a word a little longer than the others


def repeats_committed(words: list[Word], committed: list[Word], window: Window) -> bool:
    """Is the hypothesis the committed text said again (Whisper echoing its prompt) rather than
    new speech? Two or more words heard in the window that appear, in order and together, among
    the last committed words that ended before the window began (so the model could not have
    heard them there). Only a window with a prompt can echo one: its second pass has none."""
    keys = [k for k in (normalize(w.text) for w in words) if k]
    before = [normalize(w.text) for w in committed[-40:] if w.end <= window.offset + 0.05]
    return len(keys) >= 2 and said_before(keys, before) == len(keys)


def early_disagreements(own: list[Word], heard: list[Word], window: Window) -> tuple[int, int]:
    """Of an utterance's words committed early (by agreement), how many a closing pass re-read,
    and how many of those it heard differently (or not at all). They stay committed either way
    (committed text never changes): the count says how often committing early costs accuracy."""
    re_read = [w for w in own if w.start >= window.offset]
    disagreed = sum(
        not any(normalize(h.text) == normalize(w.text) and abs(h.start - w.start) <= 0.5 for h in heard)
        for w in re_read
    )
    return len(re_read), disagreed


SENTENCE_ENDS = (".", "?", "!", "。", "？", "！")


def ends_sentence(words: list[Word]) -> bool:
    """Do the words heard so far end a sentence (their last one ends with . ? or !)? None heard:
    nothing says the speaker goes on."""
    return not words or words[-1].text.rstrip().endswith(SENTENCE_ENDS)
