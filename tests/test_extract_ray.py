"""The Ray engine of embedding extraction: the same output as the local engine, errors reported."""

import json
import sys

import numpy as np
import pytest
import soundfile

import extract_embeddings
from challenge.data import write_dataset
from tools.extract import ERRORS, MANIFEST, extract, read_embeddings


def tone(freq, seconds, rate=16000):
    return np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate).astype(np.float32)


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance for the module's tests, its workers given this project's code."""
    ray = pytest.importorskip("ray")
    from tools.extract_ray import runtime_env

    ray.init(num_cpus=2, include_dashboard=False, runtime_env=runtime_env())
    yield
    ray.shutdown()


def assert_same_extraction(local, remote):
    """Same manifest and errors, and the same embedding for every id."""
    assert json.loads((local / MANIFEST).read_text()) == json.loads((remote / MANIFEST).read_text())
    assert (local / ERRORS).read_text() == (remote / ERRORS).read_text()
    local_ids, local_x = read_embeddings(local)
    remote_ids, remote_x = read_embeddings(remote)
    assert local_ids == remote_ids
    np.testing.assert_allclose(remote_x, local_x, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_ray_engine_matches_local_and_reports_unreadable_files(tmp_path, local_ray, capsys):
    audio = tmp_path / "audio"
    for label, freq in (("low", 300), ("high", 2000)):
        (audio / label).mkdir(parents=True)
        for i, rate in enumerate((16000, 8000, 22050)):
            soundfile.write(audio / label / f"{i}.wav", tone(freq, 0.4 + 0.2 * i, rate), rate)
    (audio / "low" / "broken.wav").write_text("not audio")

    local = extract(audio, "spectral", tmp_path / "local", shard_size=3)
    assert extract_embeddings.main([str(audio), "--embedder", "spectral", "--out", str(tmp_path / "ray"),
                                    "--shard-size", "3", "--engine", "ray"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert (remote["engine"], remote["clips"], remote["errors"], remote["shards"]) == ("ray", 6, 1, 3)
    assert (local["clips"], local["errors"], local["shards"]) == (6, 1, 3)
    assert "broken.wav" in (tmp_path / "ray" / ERRORS).read_text()
    assert_same_extraction(tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow
def test_ray_engine_resumes_a_challenge_dataset_started_locally(tmp_path, local_ray):
    clips = [tone(200 * (k + 1), 0.3 + 0.1 * k) for k in range(5)]
    dataset = write_dataset(tmp_path / "ds", clips, np.eye(5), clips[:3])
    extract(dataset, "spectral", tmp_path / "local", shard_size=3)
    extract(dataset, "spectral", tmp_path / "mixed", shard_size=3)
    for suffix in (".npy", ".json"):  # as if the local run had stopped after shard 1
        (tmp_path / "mixed" / f"shard-00002{suffix}").unlink()

    summary = extract(dataset, "spectral", tmp_path / "mixed", shard_size=3, engine="ray")
    assert (summary["shards_resumed"], summary["clips"]) == (2, 2)
    assert_same_extraction(tmp_path / "local", tmp_path / "mixed")


def test_embed_options_give_one_gpu_per_actor_on_a_gpu_cluster():
    pytest.importorskip("ray")
    from tools.extract_ray import embed_options

    gpu = embed_options({"CPU": 64.0, "GPU": 4.0}, use_gpus=True)
    assert (gpu["num_gpus"], gpu["compute"].max_size, gpu["batch_size"]) == (1, 4, 1)
    cpu = embed_options({"CPU": 64.0, "GPU": 4.0}, use_gpus=False)
    assert (cpu["num_gpus"], cpu["compute"].max_size) == (0, 64)


def test_cli_refuses_an_address_without_the_ray_engine(tmp_path):
    with pytest.raises(SystemExit):
        extract_embeddings.main([str(tmp_path), "--embedder", "spectral", "--address", "auto"])


def test_local_engine_runs_without_ray(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # any `import ray` now fails
    monkeypatch.delitem(sys.modules, "tools.extract_ray", raising=False)
    (tmp_path / "in").mkdir()
    soundfile.write(tmp_path / "in" / "a.wav", tone(440, 0.2), 16000)
    assert extract(tmp_path / "in", "spectral", tmp_path / "local")["clips"] == 1
    with pytest.raises(ImportError, match="pip install"):
        extract(tmp_path / "in", "spectral", tmp_path / "ray", engine="ray")
