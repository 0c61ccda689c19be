from pathlib import Path

import numpy as np
import pytest
import resemblyzer
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from challenge.data import load_dataset
from embedders import get_embedder
from embedders.resemblyzer_ge2e import mel_partials

SR = 16000
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "fsdd_speaker_sample"
WHEEL_WEIGHTS = Path(resemblyzer.__file__).parent  # the wheel ships pretrained.pt


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """resemblyzer's own one-clip-at-a-time reference runs the LSTM on batches of 1 or 2: on a busy
    2-core machine a second thread makes each tiny step wait for it, up to 100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def embedder():
    return get_embedder("resemblyzer", weights_dir=WHEEL_WEIGHTS, device="cpu")


@pytest.fixture(scope="module")
def speech():
    return load_dataset(SAMPLE)


def test_mel_frames_match_librosa(speech):
    wave = resemblyzer.preprocess_wav(speech.x_test[0])  # shorter than one 1.6 s partial
    partials = mel_partials(wave).numpy()
    expected = resemblyzer.wav_to_mel_spectrogram(np.pad(wave, (0, int(1.6 * SR) - len(wave))))
    assert partials.shape == (1, 160, 40)
    np.testing.assert_allclose(partials[0], expected[:160], rtol=1e-4, atol=1e-6)


def test_matches_resemblyzer_on_speech(embedder, speech):
    clips = speech.x_test[:8]
    ours = embedder.embed(clips)
    encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)
    theirs = np.stack([encoder.embed_utterance(resemblyzer.preprocess_wav(clip)) for clip in clips])
    assert ours.shape == (8, 256)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_batched_equals_one_at_a_time(embedder, speech):
    clips = speech.x_test[:5] + [np.concatenate(speech.x_test[:30])]  # the last is cut into windows
    assert len(clips[-1]) > embedder.window_seconds * SR
    together = embedder.embed(clips)
    alone = np.concatenate([embedder.embed([clip]) for clip in clips])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_odd_clips_give_unit_vectors(embedder, speech):
    clips = [np.zeros(0, np.float32), np.ones(1, np.float32), np.zeros(SR, np.float32),
             np.full(SR, np.nan, np.float32), np.full(SR, 1e-42, np.float32),
             (speech.x_test[0] * 32767).astype(np.int16)]
    out = embedder.embed(clips)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out[-1], embedder.embed(speech.x_test[:1])[0], atol=1e-3)


def test_separates_speakers(embedder, speech):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(embedder.embed(speech.x_train), speech.y_train.argmax(axis=1))
    auc = roc_auc_score(speech.y_test, model.predict_proba(embedder.embed(speech.x_test)), average="macro")
    assert 2 * auc - 1 > 0.9
