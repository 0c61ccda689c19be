"""The HEAR API, checked as hear-validator and hear-baseline's tests do, on the spectral embedder."""

import importlib

import numpy as np
import pytest
import torch

import hear_api.spectral as hear
from embedders import TorchEmbedder, get_embedder, unavailable_reason
from hear_api.core import HearModel


@pytest.fixture(scope="module")
def model():
    return hear.load_model()


@pytest.fixture(scope="module")
def audio():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(4, 32000, generator=generator) * 2 - 1


def test_model_attributes(model):
    assert isinstance(model, torch.nn.Module) and model.sample_rate == 16000
    assert model.scene_embedding_size == 208 and model.timestamp_embedding_size == 104
    assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)


@pytest.mark.parametrize("seconds", [0.01, 1.07, 1.98, 4.0])
def test_timestamp_embeddings_cover_the_audio_at_a_constant_hop(model, seconds):
    audio = torch.rand(2, int(seconds * 16000)) * 2 - 1
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    assert embeddings.dtype == torch.float32 and torch.isfinite(embeddings).all()
    assert embeddings.shape[0] == 2 and embeddings.shape[2] == model.timestamp_embedding_size
    assert timestamps.shape == embeddings.shape[:2]
    assert 0 <= timestamps.min() and timestamps.max() <= 1000 * seconds
    if timestamps.shape[1] > 1:
        np.testing.assert_allclose(torch.diff(timestamps).numpy(), 10.0, atol=1e-3)
        assert timestamps.min() <= 20.0  # the first 25 ms frame is centered at 12.5 ms
        assert timestamps.max() >= 1000 * seconds - 20.0


def test_scene_embeddings_are_the_embedders_clip_vectors(model, audio):
    scene = hear.get_scene_embeddings(audio, model)
    assert scene.dtype == torch.float32 and scene.shape == (4, model.scene_embedding_size)
    expected = get_embedder("spectral").embed(list(audio.numpy()))
    np.testing.assert_allclose(scene.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("function", [hear.get_scene_embeddings,
                                      lambda a, m: hear.get_timestamp_embeddings(a, m)[0]])
def test_batched_sliced_and_repeated_calls_agree(model, audio, function):
    batch = function(audio, model)
    singles = torch.cat([function(audio[i:i + 1], model) for i in range(len(audio))])
    torch.testing.assert_close(singles, batch, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(function(audio[::2], model), batch[::2], rtol=1e-4, atol=1e-4)
    assert torch.equal(function(audio, model), batch)


def test_timestamps_are_the_same_for_every_sound(model, audio):
    _, timestamps = hear.get_timestamp_embeddings(audio, model)
    assert (timestamps == timestamps[0]).all()


@pytest.mark.slow
@pytest.mark.parametrize("module, name", [("hear_api.whisper_tiny_en", "whisper-tiny.en"),
                                          ("hear_api.whisper_base", "whisper-base")])
def test_whisper_modules(module, name):
    if unavailable_reason(name):
        pytest.skip(unavailable_reason(name))
    api = importlib.import_module(module)
    model = api.load_model()
    audio = torch.rand(2, int(1.07 * 16000), generator=torch.Generator().manual_seed(1)) * 2 - 1
    embeddings, timestamps = api.get_timestamp_embeddings(audio, model)
    assert embeddings.shape == (2, 54, model.timestamp_embedding_size)
    np.testing.assert_allclose(torch.diff(timestamps).numpy(), 20.0, atol=1e-3)
    assert 0 <= timestamps.min() and 1030 <= timestamps.max() <= 1070
    torch.testing.assert_close(api.get_timestamp_embeddings(audio[1:], model)[0], embeddings[1:],
                               rtol=1e-4, atol=1e-4)
    assert api.get_scene_embeddings(audio, model).shape == (2, model.scene_embedding_size)


def test_embedders_without_frames_are_refused():
    class PooledOnly(TorchEmbedder):  # pools inside embed_layers, like resemblyzer
        name = "pooled-only"

    with pytest.raises(TypeError, match="pooled-only.*encode"):
        HearModel(PooledOnly())
