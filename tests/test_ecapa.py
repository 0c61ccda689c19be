import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from embedders import get_embedder, unavailable_reason
from embedders.weights import load_manifest

pytest.importorskip("embedders.ecapa")  # speechbrain is optional; this also makes torchaudio import

SR = 16000
EMBEDDING = 12

# speechbrain/spkrec-ecapa-voxceleb's hyperparams.yaml, shrunk (80 mels, 1024 channels, 192-d, 7205 speakers)
HYPERPARAMS = f"""
n_mels: 16
pretrained_path: speechbrain/spkrec-ecapa-voxceleb
out_n_neurons: 3

compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [32, 32, 32, 32, 96]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 8
    se_channels: 8
    lin_neurons: {EMBEDDING}

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: {EMBEDDING}
    out_neurons: !ref <out_n_neurons>

mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        mean_var_norm_emb: !ref <mean_var_norm_emb>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        mean_var_norm_emb: !ref <pretrained_path>/mean_var_norm_emb.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random tiny ECAPA in the hub layout (the yaml still names the hub repo) and its modules."""
    from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS, get_default_hook

    folder = tmp_path_factory.mktemp("ecapa")
    torch.manual_seed(0)
    hparams = load_hyperpyyaml(HYPERPARAMS)
    hparams["label_encoder"].update_from_iterable(["spk0", "spk1", "spk2"])
    pretrainer = hparams["pretrainer"]
    for name, loadable in pretrainer.loadables.items():
        get_default_hook(loadable, DEFAULT_SAVE_HOOKS)(loadable, folder / Path(pretrainer.paths[name]).name)
    (folder / "hyperparams.yaml").write_text(HYPERPARAMS)
    return folder, hparams


@pytest.fixture(scope="module")
def embedder(tiny):
    return get_embedder("ecapa", weights_dir=tiny[0], device="cpu")


def noise(seconds, seed):
    return np.random.default_rng(seed).normal(0, 0.1, int(seconds * SR)).astype(np.float32)


def test_embeds_with_the_saved_model(embedder, tiny):
    hparams, clip, whole = tiny[1], noise(1.3, 0), torch.ones(1)
    with torch.no_grad():
        features = hparams["mean_var_norm"](hparams["compute_features"](torch.from_numpy(clip)[None]), whole)
        expected = hparams["embedding_model"].eval()(features, whole)
    out = embedder.embed_layers([clip])
    assert out.shape == (1, 1, EMBEDDING)
    np.testing.assert_allclose(out[0], expected[0].numpy(), atol=1e-5)


def test_batched_equals_one_at_a_time(embedder):
    clips = [noise(s, i) for i, s in enumerate([0.3, 1.0, 1.0, 2.05, 0.9])]
    together = embedder.embed(clips)
    alone = np.concatenate([embedder.embed([clip]) for clip in clips])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_odd_clips_are_finite(embedder):
    clips = [np.zeros(0, np.float32), np.ones(1, np.float32), np.zeros(SR, np.float32),
             np.full(SR, np.nan, np.float32), noise(25, 1)]  # the last is cut into 10 s windows
    out = embedder.embed(clips)
    assert out.shape == (5, EMBEDDING)
    assert np.isfinite(out).all()


def test_import_failure_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOSPEECH_WEIGHTS", str(tmp_path))
    (tmp_path / "ecapa-voxceleb").mkdir()
    for name in load_manifest()["ecapa-voxceleb"]["files"]:
        (tmp_path / "ecapa-voxceleb" / name).touch()
    monkeypatch.delitem(sys.modules, "embedders.ecapa", raising=False)
    monkeypatch.setitem(sys.modules, "speechbrain.inference.speaker", None)  # as if not installed
    assert "speechbrain" in unavailable_reason("ecapa")
