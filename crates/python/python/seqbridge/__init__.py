"""seqbridge: encoder-decoder transformers (Marian, BART, T5, Whisper, image captioning, ...)
on the GPU through wgpu compute shaders, from Python.

    >>> import seqbridge
    >>> model = seqbridge.Model("assets/date-normalizer")
    >>> model.translate(["Saturday, 28 November 2026"])
    ['2026-11-28']

Every call releases the GIL while the GPU works; a Model can be shared by threads.
Errors are exceptions carrying the engine's one-line message: OSError (and
FileNotFoundError) for files, ValueError for input and options, TypeError for arguments
of the wrong type, RuntimeError for the GPU.
"""

from ._seqbridge import Generation, Model, TokenStream, __version__

__all__ = ["Generation", "Model", "TokenStream", "__version__"]
