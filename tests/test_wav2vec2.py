import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

from embedders import get_embedder

SR = 16000
HIDDEN, LAYERS = 16, 2


def save_tiny_model(folder, norm: str, do_normalize: bool | None = None):
    """A random tiny wav2vec2 with the real conv stack (400-sample field, 320 stride) saved like a
    hub checkpoint; ``do_normalize`` None saves no preprocessor_config.json."""
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=2,
                            intermediate_size=32, conv_dim=(8,) * 7, num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2, feat_extract_norm=norm,
                            do_stable_layer_norm=norm == "layer")
    Wav2Vec2Model(config).save_pretrained(folder)
    if do_normalize is not None:
        extractor = Wav2Vec2FeatureExtractor(do_normalize=do_normalize, return_attention_mask=norm == "layer")
        extractor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["group", "layer"])
def norm(request):
    return request.param


@pytest.fixture(scope="module")
def checkpoint(norm, tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp(norm), norm)


@pytest.fixture(scope="module")
def embedder(checkpoint):
    return get_embedder("wav2vec2-base", weights_dir=checkpoint, device="cpu")


def noise(seconds, seed):
    return np.random.default_rng(seed).normal(0, 0.1, int(seconds * SR)).astype(np.float32)


def test_pools_every_hidden_state_of_transformers(embedder, checkpoint):
    clip = noise(1.3, 0)
    inputs = Wav2Vec2FeatureExtractor(do_normalize=True)(clip, sampling_rate=SR, return_tensors="pt")
    model = Wav2Vec2Model.from_pretrained(checkpoint)
    with torch.no_grad():
        hidden = model(inputs.input_values, output_hidden_states=True).hidden_states
    expected = torch.stack([torch.cat([h[0].mean(0), h[0].std(0, unbiased=False)]) for h in hidden])
    out = embedder.embed_layers([clip])
    assert out.shape == (1, LAYERS + 1, 2 * HIDDEN)
    np.testing.assert_allclose(out[0], expected.numpy(), atol=1e-4)


def test_batched_equals_one_at_a_time(embedder, norm):
    clips = [noise(s, i) for i, s in enumerate([0.3, 1.0, 1.0, 2.05, 0.9])]
    together = embedder.embed(clips)
    alone = np.concatenate([embedder.embed([clip]) for clip in clips])
    assert embedder.pads_safely == (norm == "layer")  # group norm: only equal lengths are batched
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_odd_clips_are_finite(embedder):
    clips = [np.zeros(0, np.float32), np.ones(1, np.float32), np.zeros(SR, np.float32),
             np.full(SR, np.nan, np.float32), noise(45, 1)]  # the last is cut into 20 s windows
    out = embedder.embed(clips)
    assert out.shape == (5, (LAYERS + 1) * 2 * HIDDEN)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("do_normalize", [True, False])
def test_input_normalisation_follows_preprocessor_config(tmp_path, do_normalize):
    embedder = get_embedder("wav2vec2-base", weights_dir=save_tiny_model(tmp_path, "group", do_normalize),
                            device="cpu")
    clip = noise(1.0, 2)
    louder = embedder.embed([3 * clip + 0.1])
    assert np.allclose(embedder.embed([clip]), louder, atol=1e-4) == do_normalize
