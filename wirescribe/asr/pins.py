"""What the adapter (``adapter.py``) relies on in faster-whisper and CTranslate2, and the versions
it was tested with: read by ``tests/asr/test_adapter_contract.py``, which fails loudly when an
upgrade moves any of it. Change these together with the adapter, never to make the test pass.
"""

from __future__ import annotations

# [lowest, below): the range requirements.txt should pin. The adapter's tests passed with
# faster-whisper 1.1.1, 1.2.0 and 1.2.1 (on ctranslate2 4.8.5) and with ctranslate2 4.6.3 (on
# faster-whisper 1.2.1); faster-whisper 1.0.3 fails them (``_split_segments_by_timestamps``).
TESTED_VERSIONS = {"faster-whisper": ("1.1.1", "1.3"), "ctranslate2": ("4.6.3", "4.9")}

# faster-whisper: WhisperModel's methods (with the parameters the adapter passes) and attributes,
# the feature extractor, the tokenizer, and the module functions the adapter imports.
# CTranslate2 (through ``WhisperModel.model``): the Whisper methods and the keywords the adapter
# passes, and the fields of a generation result.
RELIES_ON: dict[str, tuple[str, ...]] = {
    "WhisperModel.encode": ("features",),
    "WhisperModel.get_prompt": ("tokenizer", "previous_tokens", "without_timestamps"),
    "WhisperModel._split_segments_by_timestamps": (
        "tokenizer", "tokens", "time_offset", "segment_size", "segment_duration", "seek",
    ),
    "WhisperModel.find_alignment": ("tokenizer", "text_tokens", "encoder_output", "num_frames"),
    "FeatureExtractor.__call__": ("waveform",),
    "Tokenizer.__init__": ("tokenizer", "multilingual", "task", "language"),
    "Tokenizer.encode": ("text",),
    "Tokenizer.decode": ("tokens",),
    "get_compression_ratio": ("text",),
    "get_suppressed_tokens": ("tokenizer", "suppress_tokens"),
    "merge_punctuations": ("alignment", "prepended", "appended"),
}  # fmt: skip
MODEL_ATTRIBUTES = (
    "feature_extractor", "hf_tokenizer", "max_length", "time_precision", "frames_per_second",
    "supported_languages", "model",
)  # fmt: skip
FEATURE_ATTRIBUTES = ("time_per_frame",)
TOKENIZER_ATTRIBUTES = ("eot",)
CTRANSLATE2_RELIES_ON: dict[str, tuple[str, ...]] = {
    "Whisper.generate": (
        "beam_size", "patience", "num_hypotheses", "length_penalty", "repetition_penalty",
        "no_repeat_ngram_size", "max_length", "return_scores", "return_no_speech_prob",
        "max_initial_timestamp_index", "suppress_blank", "suppress_tokens", "sampling_topk",
        "sampling_temperature",
    ),
    "Whisper.detect_language": ("features",),
    "Whisper.align": ("features", "start_sequence", "text_tokens", "num_frames"),
}  # fmt: skip
CTRANSLATE2_ATTRIBUTES = {
    "Whisper": ("is_multilingual",),
    "WhisperGenerationResult": ("sequences_ids", "scores", "no_speech_prob"),
}
