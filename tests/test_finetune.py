import time

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pad_sequence
from transformers import Wav2Vec2Config, Wav2Vec2Model, WhisperConfig, WhisperModel

from embedders import get_embedder
from embedders.base import mean_std_pool
from embedders.whisper import WhisperEmbedder
from embedders.base import run_blocks
from heads.finetune import FineTuneHead
from heads.metrics import normalized_auc

SR = 16000
LAYERS = 3


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and threads stall for long on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    """An embedder on a random tiny whole WhisperModel saved like a hub checkpoint."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("whisper")
    config = WhisperConfig(d_model=32, encoder_layers=LAYERS, encoder_attention_heads=4, encoder_ffn_dim=64,
                           decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64)
    WhisperModel(config).save_pretrained(folder)
    return WhisperEmbedder(weights_dir=folder, device="cpu")


def wav2vec2(folder, norm: str):
    """An embedder on a random tiny wav2vec2 with a group-norm (base) or layer-norm (large) stem."""
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=LAYERS, num_attention_heads=2,
                            intermediate_size=32, conv_dim=(8,) * 7, num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2, feat_extract_norm=norm,
                            do_stable_layer_norm=norm == "layer")
    Wav2Vec2Model(config).save_pretrained(folder)
    return get_embedder("wav2vec2-base", weights_dir=folder, device="cpu")


def tones(n, seed, freqs=(300.0, 1200.0)):
    """``n`` clips of 0.3-1.2 s, each a tone near its class's frequency in noise; and the labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(freqs)
    clips = []
    for label in labels:
        t = np.arange(int(rng.uniform(0.3, 1.2) * SR)) / SR
        tone = np.sin(2 * np.pi * freqs[label] * rng.uniform(0.8, 1.25) * t)
        clips.append((0.3 * tone + rng.normal(0, 0.1, len(t))).astype(np.float32))
    return clips, labels


@pytest.fixture(scope="module")
def data():
    return {"fit": tones(32, 0), "val": tones(16, 1), "test": tones(10, 2)}


def started(embedder, data, **params):
    head = FineTuneHead(embedder, batch_size=8, **{"warmup_epochs": 30, **params})
    for _ in head.start(*data["fit"], *data["val"], data["test"][0]):
        pass
    return head


@pytest.mark.parametrize("model", ["whisper", "wav2vec2-group", "wav2vec2-layer"])
@pytest.mark.parametrize("n_top", [1, 2])
def test_split_reproduces_the_encoder(model, n_top, whisper, tmp_path):
    """Frozen bottom clip by clip, then the top on a padded batch == `encode` of each clip."""
    embedder = whisper if model == "whisper" else wav2vec2(tmp_path, model.split("-")[1])
    embedder.load()
    frozen, blocks, norm = embedder.split_encoder(n_top)
    rng = np.random.default_rng(0)
    clips = [torch.from_numpy(rng.normal(0, 0.1, (1, int(s * SR))).astype(np.float32)) for s in (0.5, 1.3, 0.9)]
    hidden, expected = [], []
    with torch.no_grad():
        for clip in clips:
            full, full_lengths = embedder.encode(clip, torch.tensor([clip.shape[1]]))
            cut, frame_lengths, lower = frozen(clip, torch.tensor([clip.shape[1]]))
            assert torch.equal(frame_lengths, full_lengths) and lower.shape[1] == LAYERS + 1 - n_top
            torch.testing.assert_close(lower, mean_std_pool(full[:, :-n_top], full_lengths))
            hidden.append(cut[0, : frame_lengths[0]])
            expected.append(full[0, -n_top:, : frame_lengths[0]])
        lengths = torch.tensor([len(h) for h in hidden])
        top = run_blocks(blocks, norm, pad_sequence(hidden, batch_first=True), lengths)
    for row, n in enumerate(lengths):
        torch.testing.assert_close(top[row, :, :n], expected[row], atol=1e-4, rtol=1e-4)


def test_split_rejects_bad_n_top(whisper):
    with pytest.raises(ValueError, match="n_top"):
        whisper.split_encoder(LAYERS + 1)


def test_fine_tuning_never_ends_below_its_start(whisper, data):
    head = started(whisper, data, max_epochs=3, patience=3)
    assert head.best_score_ == head.start_score_ > 0.5 and not head.done_
    start_blocks = [p.clone() for p in head.net_.blocks.parameters()]
    while not head.done_:
        best = (head.best_score_, -head.best_loss_)
        score, improved = head.step(60)
        assert head.best_score_ >= score and improved == ((head.best_score_, -head.best_loss_) > best)
    assert head.epochs_ == 3 and head.best_score_ >= head.start_score_
    assert not all(torch.equal(a, b) for a, b in zip(start_blocks, head.net_.blocks.parameters()))
    proba = head.predict_proba()
    assert proba.shape == (10, 2) and list(head.classes_) == [0, 1]
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(proba, head.predict_proba(data["test"][0]), atol=1e-5)
    assert normalized_auc(data["test"][1], proba, head.classes_) > 0.5


def test_step_stays_within_its_time(whisper, data):
    head = started(whisper, data, max_epochs=1000, patience=1000)
    start_blocks = [p.clone() for p in head.net_.blocks.parameters()]
    for seconds in (0.0, 0.05, 1.0):
        tic = time.monotonic()
        head.step(seconds)
        assert time.monotonic() - tic < seconds + 0.5  # one batch of slack on a busy machine
    assert not all(torch.equal(a, b) for a, b in zip(start_blocks, head.net_.blocks.parameters()))


def test_predictions_come_from_the_best_state(whisper, data):
    """A huge learning rate wrecks the model; predictions still come from the best state, and the
    embedder's own encoder is untouched."""
    whisper.load()
    encoder = {name: tensor.clone() for name, tensor in whisper.model.state_dict().items()}
    head = started(whisper, data, lr=10.0, head_lr=10.0, max_epochs=3, patience=3)
    scores = [head.step(60)[0] for _ in range(3)]
    assert head.done_ and not min(scores) >= head.best_score_  # some epoch was worse than the best
    np.testing.assert_allclose(head.predict_proba(data["val"][0]), head.val_proba_, atol=1e-5)
    assert normalized_auc(data["val"][1], head.val_proba_, head.classes_) == head.best_score_
    assert all(torch.equal(tensor, encoder[name]) for name, tensor in whisper.model.state_dict().items())


def test_repeats_with_a_seed(whisper, data):
    runs = []
    for _ in range(2):
        head = started(whisper, data, max_epochs=2, seed=3)
        head.step(60)
        runs.append(head.predict_proba())
    np.testing.assert_array_equal(*runs)
