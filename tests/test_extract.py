"""Embedding extraction: audio input, shards + manifest, errors, layer selection and resuming."""

import json

import numpy as np
import pytest
import soundfile

import extract_embeddings
import tools.extract
from challenge.data import write_dataset
from embedders import SAMPLE_RATE, get_embedder
from tools.audio_io import list_items, read_audio, read_items
from tools.extract import MANIFEST, embed_shard, extract


def tone(freq, seconds, rate):
    return np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate).astype(np.float32)


def peak_hz(wave):
    return np.argmax(np.abs(np.fft.rfft(wave))) * SAMPLE_RATE / len(wave)


@pytest.fixture
def audio_dir(tmp_path):
    """Seven clips in two class folders (various rates, channels and formats) and one broken file."""
    root = tmp_path / "audio"
    for label, freq in (("low", 300), ("high", 2000)):
        (root / label).mkdir(parents=True)
        for i, (rate, fmt) in enumerate([(16000, "wav"), (8000, "flac"), (44100, "ogg")]):
            soundfile.write(root / label / f"{i}.{fmt}", tone(freq, 0.5 + 0.1 * i, rate), rate)
    stereo = np.stack([tone(1000, 0.3, 48000), np.zeros(int(0.3 * 48000), np.float32)], axis=1)
    soundfile.write(root / "stereo.wav", stereo, 48000)
    (root / "low" / "broken.wav").write_text("not audio")
    return root


def test_read_audio_resamples_and_mixes_down(audio_dir):
    for path, seconds, freq in [("low/0.wav", 0.5, 300), ("low/1.flac", 0.6, 300), ("high/2.ogg", 0.7, 2000)]:
        wave = read_audio(audio_dir / path)
        assert wave.dtype == np.float32 and len(wave) == int(seconds * SAMPLE_RATE)
        assert abs(peak_hz(wave) - freq) < 5
    stereo = read_audio(audio_dir / "stereo.wav")
    assert len(stereo) == int(0.3 * SAMPLE_RATE) and abs(np.abs(stereo).max() - 0.5) < 0.02


def test_inputs_list_ids_and_labels(tmp_path, audio_dir):
    items = list_items(audio_dir)
    assert [i.id for i in items][:2] == ["high/0.wav", "high/1.flac"] and items[-1].id == "stereo.wav"
    assert [i.label for i in items] == ["high"] * 3 + ["low"] * 4 + [None]

    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,label\naudio/low/0.wav,a\n\naudio/high/1.flac\n")
    assert [(i.id, i.label) for i in list_items(manifest)] == [("audio/low/0.wav", "a"),
                                                              ("audio/high/1.flac", None)]
    assert len(read_items(list_items(manifest))[1]) == int(0.6 * SAMPLE_RATE)

    clips = [tone(200 * (k + 1), 0.2, SAMPLE_RATE) for k in range(3)]
    dataset = write_dataset(tmp_path / "ds", clips, np.eye(3), clips[:2])
    items = list_items(dataset)
    assert [(i.id, i.label) for i in items] == [
        ("train/000000", "0"), ("train/000001", "1"), ("train/000002", "2"),
        ("test/000000", None), ("test/000001", None)]
    np.testing.assert_array_equal(read_items(items)[4], clips[1])


def test_extract_writes_shards_manifest_and_errors(tmp_path, audio_dir):
    out = tmp_path / "out"
    summary = extract(audio_dir, "spectral", out, shard_size=3)
    assert summary["shards"] == 3 and summary["clips"] == 7 and summary["errors"] == 1

    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["embedder"] == "spectral" and manifest["complete"] and manifest["weights"] is None
    assert manifest["settings"] == get_embedder("spectral").settings() and manifest["dimension"] == 208
    rows = [row for shard in manifest["shards"] for row in shard["ids"]]
    assert len(rows) == 7 and "low/broken.wav" not in rows
    assert manifest["shards"][1]["labels"] == ["low", "low", "low"]  # broken.wav skipped in shard 1
    errors = (out / "errors.csv").read_text().splitlines()
    assert errors[0] == "path,error" and len(errors) == 2 and "broken.wav" in errors[1]

    embeddings = np.concatenate([np.load(out / shard["file"]) for shard in manifest["shards"]])
    sources = [s for shard in manifest["shards"] for s in shard["sources"]]
    expected = get_embedder("spectral").embed([read_audio(s) for s in sources])
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(embeddings, expected, rtol=1e-4, atol=1e-4)


def test_interrupted_run_resumes_to_identical_files(tmp_path, audio_dir, monkeypatch):
    extract(audio_dir, "spectral", tmp_path / "straight", shard_size=2)

    calls = []

    def embed_then_interrupt(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return embed_shard(*args)

    monkeypatch.setattr(tools.extract, "embed_shard", embed_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        extract(audio_dir, "spectral", tmp_path / "resumed", shard_size=2)
    monkeypatch.undo()
    summary = extract(audio_dir, "spectral", tmp_path / "resumed", shard_size=2)

    assert summary["shards_resumed"] == 2 and summary["clips"] == 3  # broken.wav is in the last shard
    straight = sorted(p.name for p in (tmp_path / "straight").iterdir())
    assert straight == sorted(p.name for p in (tmp_path / "resumed").iterdir())
    for name in straight:
        assert (tmp_path / "straight" / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes(), name

    with pytest.raises(ValueError, match="another extraction"):
        extract(audio_dir, "spectral", tmp_path / "resumed", shard_size=3)


def test_layer_selection(tmp_path, audio_dir):
    class ThreeLayers:
        def embed_layers(self, waves):
            return np.arange(len(waves) * 3 * 2, dtype=np.float32).reshape(len(waves), 3, 2)

    selected = embed_shard(ThreeLayers(), [np.zeros(1)] * 2, [0, 2], 4)
    np.testing.assert_array_equal(selected, [[0, 1, 4, 5], [6, 7, 10, 11]])
    assert embed_shard(ThreeLayers(), [], None, 6).shape == (0, 6)

    last = extract(audio_dir, "spectral", tmp_path / "last", layers=[-1])
    assert json.loads((tmp_path / "last" / MANIFEST).read_text())["layers"] == [-1]
    assert last["clips"] == 7
    with pytest.raises(ValueError, match="1 layer"):
        extract(audio_dir, "spectral", tmp_path / "bad", layers=[1])


def test_cli_completes_despite_unreadable_files(tmp_path, audio_dir, capsys):
    assert extract_embeddings.parse_layers("all") is None
    assert extract_embeddings.parse_layers("3,4") == [3, 4]
    code = extract_embeddings.main([str(audio_dir), "--embedder", "spectral", "--out", str(tmp_path / "o"),
                                    "--max-seconds", "0.2", "--shard-size", "4"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["errors"] == 1 and summary["shards"] == 2
    manifest = json.loads((tmp_path / "o" / MANIFEST).read_text())
    assert manifest["settings"]["max_seconds"] == 0.2
