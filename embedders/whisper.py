"""Whisper's audio encoder (transformers) as an embedder: the embedding output and every layer,
mean + std pooled over frames.

Whisper's stock encoder only takes 30 s of log-mel (3000 frames) and costs as much for a 0.5 s
clip as for 30 s. Here each window runs on its own frames: the positional embeddings are sliced to
its length, frames past a row's end are zeroed before each convolution and masked out of attention,
so a padded batch gives what one clip at a time gives. Weights: ``weights/whisper-*`` (see
``weights/README.md``); any transformers Whisper checkpoint folder also loads.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import torch
from torch.nn import functional as F
from transformers.audio_utils import mel_filter_bank

from embedders.base import SAMPLE_RATE, TorchEmbedder, mean_std_pool, run_blocks

N_FFT, HOP = 400, 160
log = logging.getLogger(__name__)


def load_encoder(folder):
    """The float32 `WhisperEncoder` of a transformers checkpoint folder: encoder-only (as written by
    `embedders.ctranslate2_whisper`) or a whole WhisperModel / WhisperForConditionalGeneration."""
    from transformers import WhisperConfig, WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    encoder_only = "WhisperEncoder" in (WhisperConfig.from_pretrained(folder).architectures or [])
    cls = WhisperEncoder if encoder_only else WhisperModel
    model, info = cls.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
    missing = [k for k in info["missing_keys"] if encoder_only or k.startswith("encoder.")]
    if missing:
        raise ValueError(f"{folder}: the checkpoint lacks encoder weights {sorted(missing)[:5]}...")
    return (model if encoder_only else model.encoder).eval()


def whisper_mel_filters(n_mels: int = 80) -> torch.Tensor:
    """Whisper's ``(N_FFT // 2 + 1, n_mels)`` slaney mel filter bank (as WhisperFeatureExtractor's)."""
    return torch.tensor(mel_filter_bank(num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=n_mels,
                                        min_frequency=0.0, max_frequency=8000.0,
                                        sampling_rate=SAMPLE_RATE, norm="slaney", mel_scale="slaney"),
                        dtype=torch.float32)


def log_mel(batch, lengths, mel_filters):
    """Whisper's log-mel of zero-padded ``(B, S)`` waves: ``((B, n_mels, T), frame_lengths)``.

    Computed as WhisperFeatureExtractor's torch path does for a clip followed by silence (Whisper
    pads every clip to 30 s with zeros): ``S // 160`` frames per clip, log10, floored at the clip's
    maximum - 8, scaled by (x + 4) / 4. Frames past each row's length are 0.
    """
    with torch.autocast(batch.device.type, enabled=False):  # power spectra overflow fp16
        window = torch.hann_window(N_FFT, device=batch.device)
        stft = torch.stft(F.pad(batch.float(), (0, N_FFT // 2)), N_FFT, HOP, window=window,
                          return_complex=True)
        frame_lengths = lengths // HOP
        power = stft[..., : batch.shape[1] // HOP].abs() ** 2
        log_spec = torch.clamp(mel_filters.T @ power, min=1e-10).log10()
        valid = (torch.arange(log_spec.shape[2], device=batch.device) < frame_lengths[:, None])[:, None]
        peak = log_spec.masked_fill(~valid, -torch.inf).amax(dim=(1, 2), keepdim=True)
        log_spec = (torch.maximum(log_spec, peak - 8.0) + 4.0) / 4.0
        return log_spec * valid, frame_lengths


def encode_frames(encoder, features, frame_lengths):
    """Run a `WhisperEncoder` on ``(B, n_mels, T)`` log-mel frames of any length up to 3000.

    Returns ``((B, L, T', D), frame_lengths')``: the embedding output and every layer's output (the
    last one after the final layer norm, as in transformers' ``hidden_states``), ``T' = ceil(T / 2)``.
    """

    def zero_padding(x, n):
        return x * (torch.arange(x.shape[-1], device=x.device) < n[:, None])[:, None]

    x = zero_padding(F.gelu(encoder.conv1(zero_padding(features, frame_lengths))), frame_lengths)
    x = F.gelu(encoder.conv2(x)).transpose(1, 2)
    out_lengths = (frame_lengths - 1) // 2 + 1
    x = x + encoder.embed_positions.weight[: x.shape[1]]
    layers = run_blocks(encoder.layers, encoder.layer_norm, x, out_lengths)
    return torch.cat([x[:, None], layers], dim=1), out_lengths


class WhisperEmbedder(TorchEmbedder):
    """Whisper encoder features: ``(layers + 1) * 2 * d_model`` dims (tiny: 5 x 768, base: 7 x 1024).

    weights: the name under ``weights/`` (``whisper-tiny.en``, ``whisper-base``);
    weights_dir: a checkpoint folder to load instead (any transformers Whisper checkpoint).
    """

    name = "whisper"
    default_weights = "whisper-base"

    def __init__(self, **settings):
        super().__init__(**settings)
        self.mel_filters = None

    def load(self):
        folder = self.weights_folder()
        encoder = load_encoder(folder)
        longest = encoder.config.max_source_positions * 2 * HOP / SAMPLE_RATE
        if self.window_seconds > longest:
            raise ValueError(f"{self.weights}: window_seconds {self.window_seconds} > {longest}, "
                             "the longest input of Whisper's positional embeddings")
        self.model = encoder.to(self.device)
        self.mel_filters = whisper_mel_filters(encoder.config.num_mel_bins).to(self.device)
        log.info("%s: loaded %s (%d layers, d_model %d) on %s", self.weights, folder,
                 encoder.config.encoder_layers, encoder.config.d_model, self.device)

    def encode(self, batch, lengths):
        features, frame_lengths = log_mel(batch, lengths, self.mel_filters)
        return encode_frames(self.model, features, frame_lengths)

    def split_encoder(self, n_top: int):
        """Split the encoder below its last ``n_top`` layers, for partial fine-tuning.

        Returns ``(frozen, blocks, norm)``. ``frozen(batch, lengths)`` runs the rest like `encode`,
        without gradients: ``(hidden (B, T, D) entering the top, frame_lengths, pooled (B, L, 2D))``,
        the mean + std of the ``L = layers + 1 - n_top`` states below the top. ``blocks`` are the
        top layers, each called as ``block(x, mask)`` with an additive ``(B, 1, 1, T)`` padding
        mask, and ``norm`` follows the last one. They are this embedder's modules: copy to train.
        """
        if self.model is None:
            self.load()
        encoder, cut = self.model, len(self.model.layers) - n_top
        if not 0 <= cut < len(encoder.layers):
            raise ValueError(f"n_top must be in 1..{len(encoder.layers)}, got {n_top}")
        # encode_frames only reads these attributes; the final layer norm belongs to the top
        bottom = SimpleNamespace(conv1=encoder.conv1, conv2=encoder.conv2,
                                 embed_positions=encoder.embed_positions, layers=encoder.layers[:cut],
                                 layer_norm=torch.nn.Identity())

        @torch.no_grad()
        def frozen(batch, lengths):
            features, frame_lengths = log_mel(batch, lengths, self.mel_filters)
            hidden, frame_lengths = encode_frames(bottom, features, frame_lengths)
            return hidden[:, -1], frame_lengths, mean_std_pool(hidden.float(), frame_lengths)

        return frozen, encoder.layers[cut:], encoder.layer_norm
