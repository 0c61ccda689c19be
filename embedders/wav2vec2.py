"""wav2vec 2.0 encoders (Baevski et al., 2020) through `transformers`: every hidden layer pooled.

Default weights: ``facebook/wav2vec2-base`` (Apache-2.0), self-supervised on LibriSpeech 960 h;
any `Wav2Vec2Model` folder works (``weights_dir``). Read from its config, never from a model list:
group-norm feature extractors (base) change their output with zero padding, so they only see
batches of equal-length windows; layer-norm ones (large) get padded batches and an attention mask.
"""

from __future__ import annotations


import torch
from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

from embedders.base import TorchEmbedder


class Wav2Vec2Embedder(TorchEmbedder):
    """``(N, num_hidden_layers + 1, 2 * hidden_size)``: mean + std of the transformer input and of
    every layer's output. Each window is normalised to zero mean and unit variance first when the
    model's ``preprocessor_config.json`` says ``do_normalize`` (the default when it is absent)."""

    name = "wav2vec2"
    default_weights = "wav2vec2-base"

    def __init__(self, window_seconds: float = 20.0, **settings):
        super().__init__(window_seconds=window_seconds, **settings)
        self.normalize = True

    def load(self):
        folder = self.weights_folder()
        self.model = Wav2Vec2Model.from_pretrained(folder).to(self.device).eval()
        self.pads_safely = self.model.config.feat_extract_norm == "layer"
        if (folder / "preprocessor_config.json").is_file():
            self.normalize = Wav2Vec2FeatureExtractor.from_pretrained(folder).do_normalize

    def encode(self, batch, lengths):
        valid = torch.arange(batch.shape[1], device=batch.device)[None, :] < lengths[:, None]
        if self.normalize:  # as Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm, over valid samples
            count = lengths[:, None].to(batch.dtype)
            mean = (batch * valid).sum(dim=1, keepdim=True) / count
            var = (((batch - mean) * valid) ** 2).sum(dim=1, keepdim=True) / count
            batch = (batch - mean) / torch.sqrt(var + 1e-7) * valid
        out = self.model(batch, attention_mask=valid.long() if self.pads_safely else None,
                         output_hidden_states=True)
        return torch.stack(out.hidden_states, dim=1), self.model._get_feat_extract_output_lengths(lengths)

    def split_encoder(self, n_top: int):
        """``(frozen, blocks, norm)`` for partial fine-tuning of the last ``n_top`` layers, as
        `embedders.whisper.WhisperEmbedder.split_encoder` (``norm`` is the identity here: the hidden
        states are taken before any final layer norm)."""
        from embedders.base import mean_std_pool

        if self.model is None:
            self.load()
        layers = self.model.encoder.layers
        cut = len(layers) - n_top
        if not 0 < cut < len(layers):
            raise ValueError(f"n_top must be in 1..{len(layers) - 1}, got {n_top}")

        @torch.no_grad()
        def frozen(batch, lengths):
            self.model.encoder.layers = layers[:cut]  # `encode` through the bottom layers only
            try:
                hidden, frame_lengths = self.encode(batch, lengths)
            finally:
                self.model.encoder.layers = layers
            return hidden[:, -1], frame_lengths, mean_std_pool(hidden.float(), frame_lengths)

        return frozen, layers[cut:], torch.nn.Identity()
