"""Type stubs of the seqbridge package (the native module seqbridge._seqbridge)."""

import os
from pathlib import Path
from typing import Iterator, Literal, Optional, Sequence, TypedDict, Union

from typing_extensions import Unpack

import numpy as np
import numpy.typing as npt

__version__: str

Ids = Sequence[int]
PathLike = Union[str, "os.PathLike[str]"]
EarlyStopping = Union[bool, Literal["never"]]

class Segment(TypedDict):
    start: float
    end: float
    text: str
    tokens: list[int]
    no_speech_prob: Optional[float]

class Word(TypedDict):
    word: str
    start: float
    end: float

class Transcript(TypedDict):
    language: str
    text: str
    tokens: list[int]
    segments: list[Segment]
    words: Optional[list[Word]]

class Generation:
    """The result of Model.generate."""

    sequences: list[list[list[int]]]
    """Per source, its hypotheses (best first): decoder start token first, through EOS."""
    texts: Optional[list[str]]
    """Per source, the best hypothesis decoded; None when the model has no tokenizer."""
    scores: Optional[list[list[float]]]
    """Beam search: per source and hypothesis, the length-penalised score."""
    no_speech_probs: Optional[list[float]]
    """Whisper: per source, the probability of <|nospeech|> after the start token."""
    stats: dict[str, int]
    """The call's counters: encoder_runs, decoder_steps, dispatches, submits, bytes..."""

class TokenStream(Iterator[int]):
    """New token ids of one source as they are chosen (beam search: all at the end)."""

    def __iter__(self) -> "TokenStream": ...
    def __next__(self) -> int: ...
    @property
    def generation(self) -> Optional[Generation]:
        """The whole result once the iterator is exhausted, else None."""

class GenerateOptions(TypedDict, total=False):
    """transformers' generate options; an option left out (or None) keeps the model's
    generation_config.json value."""

    num_beams: Optional[int]
    max_new_tokens: Optional[int]
    max_length: Optional[int]
    min_length: Optional[int]
    min_new_tokens: Optional[int]
    length_penalty: Optional[float]
    early_stopping: Optional[EarlyStopping]
    num_return_sequences: Optional[int]
    no_repeat_ngram_size: Optional[int]
    repetition_penalty: Optional[float]
    bad_words_ids: Optional[Sequence[Ids]]
    forced_bos_token_id: Optional[int]
    forced_eos_token_id: Optional[Union[int, Ids]]
    eos_token_id: Optional[Union[int, Ids]]
    decoder_start_token_id: Optional[int]
    decoder_prompt: Optional[Ids]
    language: Optional[str]
    """Whisper: "en", ..., or None / "auto" to detect."""
    task: Optional[Literal["transcribe", "translate"]]
    timestamps: Optional[bool]
    constrain: Optional[Union[str, Literal[False]]]
    """A regular expression the decoded output must fully match, or False for no constraint
    (not even the model directory's constraint.regex)."""

class Model:
    """A model directory loaded onto the GPU; shareable by threads."""

    def __init__(
        self,
        path: PathLike,
        *,
        backend: Optional[str] = None,
        adapter: Optional[str] = None,
        dtype: Literal["f32", "f16", "int8", "auto"] = "f32",
    ) -> None: ...
    @property
    def path(self) -> Path: ...
    @property
    def model_type(self) -> str: ...
    @property
    def adapter(self) -> str: ...
    @property
    def backend(self) -> str: ...
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Ids) -> str: ...
    def generate(
        self, ids_or_texts: Union[Sequence[str], Sequence[Ids]], **options: Unpack[GenerateOptions]
    ) -> Generation: ...
    def generate_sources(
        self, examples: Sequence[Sequence[Union[str, Ids, PathLike]]], **options: Unpack[GenerateOptions]
    ) -> Generation:
        """Each example: one item per source, in source_kinds() order: a text or ids for
        "text", an image path for "image"."""
    def source_kinds(self) -> list[Literal["text", "image", "audio"]]: ...
    def stream(self, source: Union[str, Ids], **options: Unpack[GenerateOptions]) -> TokenStream: ...
    def translate(
        self, texts: Sequence[str], *, batch_size: int = 64, **options: Unpack[GenerateOptions]
    ) -> list[str]: ...
    def score(
        self, sources: Union[Sequence[str], Sequence[Ids]], targets: Sequence[Ids]
    ) -> list[npt.NDArray[np.float32]]: ...
    def cross_attentions(
        self, source: Union[str, Ids], decoder_input_ids: Ids
    ) -> npt.NDArray[np.float32]:
        """float32 [layers, heads, T, S]."""
    def transcribe(
        self,
        audio: list[Union[PathLike, npt.NDArray[np.float32]]],
        *,
        word_timestamps: bool = False,
        batch_size: int = 8,
        **options: Unpack[GenerateOptions],
    ) -> list[Transcript]: ...
    def caption(self, images: Sequence[PathLike], **options: Unpack[GenerateOptions]) -> list[str]: ...
