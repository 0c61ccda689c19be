"""ECAPA-TDNN speaker embeddings (Desplanques et al., 2020) through SpeechBrain: 192-d per clip.

Default weights: ``speechbrain/spkrec-ecapa-voxceleb`` (Apache-2.0), trained for speaker
identification on VoxCeleb 1 + 2; any folder in that layout works (``weights_dir``): a
``hyperparams.yaml`` whose ``pretrained_path`` is pointed at the folder, plus the files it names.
"""

from __future__ import annotations

import importlib
import logging
import sys

from embedders.base import TorchEmbedder

log = logging.getLogger(__name__)


def _import_torchaudio() -> None:
    """Import torchaudio, without its compiled ops where they cannot load.

    PyPI's torchaudio wheels for Linux are CUDA builds: beside a CPU torch their compiled library
    fails to load (``OSError: libc10_cuda.so``) and so does ``import torchaudio``, which SpeechBrain
    needs. SpeechBrain only uses torchaudio's pure-Python parts, so the import is retried the way
    torchaudio runs when no compiled library is shipped. Raises ImportError if that fails too.
    """
    try:
        importlib.import_module("torchaudio")
    except OSError as error:
        loader = sys.modules.get("torchaudio._extension.utils")
        if loader is None:
            raise ImportError(f"torchaudio cannot be imported: {error}") from error
        log.info("torchaudio's compiled ops do not load beside this torch (%s); using its Python parts",
                 error)
        loader._load_lib = lambda lib: False
        try:
            importlib.import_module("torchaudio")
        except OSError as again:
            raise ImportError(f"torchaudio cannot be imported: {again}") from again


_import_torchaudio()
from speechbrain.inference.speaker import EncoderClassifier  # noqa: E402
from speechbrain.utils.fetching import LocalStrategy  # noqa: E402


class EcapaEmbedder(TorchEmbedder):
    """``(N, 1, 192)`` ECAPA-TDNN embeddings (the layer before the speaker classifier).

    Zero padding changes the embedding even with SpeechBrain's relative lengths (the dilated Res2Net
    convolutions see some 60 frames past a clip's end, and relative lengths round to whole frames),
    so windows are only batched with windows of equal length, and a clip's embedding never depends
    on the other clips of its batch.
    """

    name = "ecapa"
    pads_safely = False
    pools_itself = True
    min_samples = 1600  # the dilated convolutions' reflect padding needs more than 4 frames

    default_weights = "ecapa-voxceleb"

    def __init__(self, window_seconds: float = 10.0, **settings):
        super().__init__(window_seconds=window_seconds, **settings)

    def load(self):
        folder = str(self.weights_folder().resolve())
        self.model = EncoderClassifier.from_hparams(
            source=folder, savedir=folder, overrides={"pretrained_path": folder},
            local_strategy=LocalStrategy.NO_LINK, run_opts={"device": str(self.device)})

    def encode(self, batch, lengths):
        return self.model.encode_batch(batch, lengths / batch.shape[1]), None  # (B, 1, 192)
