"""The shared embedder pipeline, exercised through the weight-free spectral embedder."""

import numpy as np
import pytest

from embedders import REGISTRY, get_embedder, sanitize_wave, unavailable_reason
from embedders.base import SAMPLE_RATE, TorchEmbedder, repair_wave
from embedders.cache import EmbeddingCache, fingerprint


@pytest.fixture
def waves():
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    return [(np.sin(2 * np.pi * f * t[: rng.integers(800, SAMPLE_RATE)]) + 0.01 * rng.normal(size=1)).astype(np.float32)
            for f in rng.uniform(100, 4000, size=40)]


def test_batched_equals_one_clip_at_a_time(waves):
    embedder = get_embedder("spectral", batch_seconds=5)
    batched = embedder.embed(waves)
    single = np.stack([embedder.embed([w])[0] for w in waves])
    assert batched.shape == (len(waves), 2 * (64 + 2 * 20))
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-4)


def test_features_separate_tones():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    low, high = (np.sin(2 * np.pi * f * t).astype(np.float32) for f in (200, 3000))
    X = get_embedder("spectral").embed([low, low * 0.5, high])
    assert np.linalg.norm(X[0] - X[1]) < np.linalg.norm(X[0] - X[2])


def test_bad_clips_give_finite_vectors():
    clips = [np.zeros(0), np.zeros(1), np.zeros(SAMPLE_RATE), np.full(500, np.nan),
             (np.ones((800, 2)) * 1000).astype(np.int16), np.float64([1e30, -1e30] * 300)]
    X = get_embedder("spectral").embed(clips)
    assert X.shape[0] == len(clips) and np.isfinite(X).all()


def test_sanitize_wave_converts_int16_and_stereo():
    stereo = np.stack([np.full(100, 16384, np.int16), np.zeros(100, np.int16)])
    wave = sanitize_wave(stereo)
    assert wave.dtype == np.float32 and wave.shape == (100,)
    np.testing.assert_allclose(wave, 0.25, atol=1e-4)
    assert sanitize_wave(np.zeros((2, 2, 2))).size == 0  # unrepairable: silence, with a warning
    with pytest.raises(ValueError, match="1-D"):
        repair_wave(np.zeros((2, 2, 2)))


def test_long_clip_is_windowed_and_windows_are_averaged():
    embedder = get_embedder("spectral", window_seconds=2.0)
    rng = np.random.default_rng(1)
    long_clip = rng.normal(size=SAMPLE_RATE * 600).astype(np.float32)  # ten minutes
    windows = embedder.windows(long_clip)
    assert len(windows) == 300 and all(len(w) == 2 * SAMPLE_RATE for w in windows)
    assert embedder.batches([len(w) for w in windows])[0].__len__() <= embedder.batch_seconds / 2
    one_window = long_clip[: 2 * SAMPLE_RATE]
    x = embedder.embed([np.concatenate([one_window, one_window])])
    np.testing.assert_allclose(x, embedder.embed([one_window]), rtol=1e-4, atol=1e-4)


def test_max_seconds_crops():
    rng = np.random.default_rng(2)
    clip = (0.1 * rng.normal(size=SAMPLE_RATE * 4)).astype(np.float32)
    embedder = get_embedder("spectral", max_seconds=1.0)
    np.testing.assert_allclose(embedder.embed([clip]), embedder.embed([clip[:SAMPLE_RATE]]), atol=1e-5)


def test_unpaddable_encoders_only_batch_equal_lengths():
    class Unpaddable(TorchEmbedder):
        pads_safely = False

    batches = Unpaddable().batches([5, 3, 5, 3, 4])
    assert sorted(map(sorted, batches)) == [[0, 2], [1, 3], [4]]


def test_cache_computes_once(tmp_path, waves, monkeypatch):
    embedder = get_embedder("spectral")
    cache = EmbeddingCache(tmp_path)
    first = cache.embed(embedder, waves)
    monkeypatch.setattr(embedder, "embed_layers", lambda w: pytest.fail("recomputed"))
    np.testing.assert_array_equal(cache.embed(embedder, waves), first)
    assert fingerprint(waves) != fingerprint(waves[:-1])


def test_registry_reports_unknown_and_missing_weights(monkeypatch, tmp_path):
    assert "unknown" in unavailable_reason("nope")
    monkeypatch.setenv("AUTOSPEECH_WEIGHTS", str(tmp_path))
    monkeypatch.setitem(REGISTRY, "fake", ("embedders.spectral", "SpectralEmbedder", {"weights": "fake"}))
    assert "download_weights.py fake" in unavailable_reason("fake")
    assert unavailable_reason("spectral") is None
