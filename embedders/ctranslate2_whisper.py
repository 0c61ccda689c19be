"""Convert the encoder of a CTranslate2 Whisper model (a faster-whisper ``model.bin``) into a
transformers ``WhisperEncoder`` checkpoint (``config.json`` + ``model.safetensors``) in the
source's float dtype (float16 for faster-whisper's models; load it with ``dtype=torch.float32``).

``model.bin`` (binary version 6) is little-endian: u32 version, spec name, u32 spec revision,
u32 variable count, then per variable: name, u8 rank, u32 dims, u8 dtype code, u32 byte count,
raw bytes; then u32 alias count and (alias, target) name pairs. A name is a u16 byte count and
that many bytes, null-terminated. The config (sizes, layers, heads) is derived from the variables.
"""

from __future__ import annotations

import logging
import re
import struct
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
BINARY_VERSION = 6


def read_model_bin(path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 ``model.bin`` (aliases included), as numpy arrays."""
    data = memoryview(Path(path).read_bytes())
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    def name():
        nonlocal pos
        (size,) = take("H")
        pos += size
        return bytes(data[pos - size:pos]).rstrip(b"\0").decode()

    (version,) = take("I")
    if version != BINARY_VERSION:
        raise ValueError(f"{path}: CTranslate2 binary version {version}, expected {BINARY_VERSION}")
    spec = name()
    take("I")  # spec revision
    variables = {}
    for _ in range(take("I")[0]):
        key = name()
        (rank,) = take("B")
        shape = take(f"{rank}I")
        code, size = take("BI")
        if code not in DTYPES:
            raise ValueError(f"{path}: variable {key} has unsupported dtype code {code}")
        variables[key] = np.frombuffer(data, DTYPES[code], size // np.dtype(DTYPES[code]).itemsize,
                                       pos).reshape(shape)
        pos += size
    for _ in range(take("I")[0]):
        alias, target = name(), name()
        variables[alias] = variables[target]
    log.info("read %s: %s, %d variables", path, spec, len(variables))
    return variables


def encoder_config(variables: dict):
    """The `WhisperConfig` of a CTranslate2 Whisper model, derived from its variables' shapes."""
    from transformers import WhisperConfig

    def count(prefix):
        return len({m.group(1) for k in variables if (m := re.match(prefix + r"/layer_(\d+)/", k))})

    d_model, mel_bins, _ = variables["encoder/conv1/weight"].shape
    decoder = {}
    if "decoder/embeddings/weight" in variables:
        decoder = {"vocab_size": variables["decoder/embeddings/weight"].shape[0],
                   "max_target_positions": variables["decoder/position_encodings/encodings"].shape[0],
                   "decoder_layers": count("decoder"),
                   "decoder_attention_heads": int(variables["decoder/num_heads"]),
                   "decoder_ffn_dim": variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]}
    return WhisperConfig(
        d_model=int(d_model), num_mel_bins=int(mel_bins), encoder_layers=count("encoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=variables["encoder/position_encodings/encodings"].shape[0], **decoder)


def encoder_state_dict(variables: dict, config) -> dict:
    """The state dict of `WhisperEncoder` from CTranslate2's ``encoder/`` variables, same dtype.

    CTranslate2 fuses q|k|v into ``self_attention/linear_0``; its key bias (zero: Whisper's key
    projection has none, and a key bias would not change the softmax anyway) is dropped.
    """
    import torch

    def tensor(key):
        array = variables["encoder/" + key]
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"encoder/{key} is {array.dtype}: quantized models are not supported")
        return torch.from_numpy(array.copy())

    def linear(hf, ct2):
        return {f"{hf}.weight": tensor(f"{ct2}/weight"), f"{hf}.bias": tensor(f"{ct2}/bias")}

    def norm(hf, ct2):
        return {f"{hf}.weight": tensor(f"{ct2}/gamma"), f"{hf}.bias": tensor(f"{ct2}/beta")}

    state = {**linear("conv1", "conv1"), **linear("conv2", "conv2"), **norm("layer_norm", "layer_norm"),
             "embed_positions.weight": tensor("position_encodings/encodings")}
    for i in range(config.encoder_layers):
        hf, ct2 = f"layers.{i}", f"layer_{i}"
        q, k, v = tensor(f"{ct2}/self_attention/linear_0/weight").chunk(3)
        q_bias, _, v_bias = tensor(f"{ct2}/self_attention/linear_0/bias").chunk(3)
        state.update({f"{hf}.self_attn.q_proj.weight": q, f"{hf}.self_attn.q_proj.bias": q_bias,
                      f"{hf}.self_attn.k_proj.weight": k,
                      f"{hf}.self_attn.v_proj.weight": v, f"{hf}.self_attn.v_proj.bias": v_bias,
                      **linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1"),
                      **norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm"),
                      **linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0"),
                      **linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1"),
                      **norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")})
    return state


def convert(model_bin, out_dir) -> Path:
    """Write the encoder of CTranslate2 ``model_bin`` to ``out_dir`` as a transformers checkpoint."""
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    variables = read_model_bin(model_bin)
    config = encoder_config(variables)
    state = encoder_state_dict(variables, config)
    encoder = WhisperEncoder(config).to(state["conv1.weight"].dtype)
    encoder.load_state_dict(state, strict=True)
    encoder.save_pretrained(out_dir)
    log.info("converted %s -> %s (d_model %d, %d layers, %d heads)", model_bin, out_dir,
             config.d_model, config.encoder_layers, config.encoder_attention_heads)
    return Path(out_dir)
