"""The submission packager: zip layout, the code list, weights, refusal and the offline check."""

import ast
import hashlib
import json
import zipfile

import pytest

import embedders.weights
import make_submission
import tools.package
from embedders import REGISTRY
from tools.package import CODE, REPO, PackagingError, build, check


@pytest.fixture
def fake_weights(tmp_path, monkeypatch):
    """An embedder ``fake`` whose weights (one file) lie in a temporary weights root."""
    root = tmp_path / "weights"
    (root / "fake").mkdir(parents=True)
    (root / "fake" / "w.bin").write_bytes(b"weights" * 100)
    manifest = {"fake": {"files": {"w.bin": hashlib.sha256(b"weights" * 100).hexdigest()}}}
    monkeypatch.setitem(REGISTRY, "fake", ("embedders.spectral", "SpectralEmbedder", {"weights": "fake"}))
    monkeypatch.setattr(embedders.weights, "load_manifest", lambda: manifest)
    monkeypatch.setattr(tools.package, "load_manifest", lambda: manifest)
    monkeypatch.setenv("AUTOSPEECH_WEIGHTS", str(root))
    return root


def test_zip_layout(tmp_path, fake_weights):
    summary = build(["spectral", "fake"], tmp_path / "s.zip")
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        names = zf.namelist()
        assert json.loads(zf.read("submission.json")) == {"embedders": ["spectral", "fake"]}
        assert zf.read("weights/fake/w.bin") == b"weights" * 100
    assert {"model.py", "budget.py", "embedders/base.py", "weights/manifest.json"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")]
    assert summary["weights"] == {"spectral": [], "fake": ["weights/fake/w.bin"]}
    assert summary["bytes"] == (tmp_path / "s.zip").stat().st_size


def test_code_list_holds_every_local_import():
    """Every repository module imported by the packaged code is packaged too."""
    local = {p.stem for p in REPO.glob("*.py")} | {p.parent.name for p in REPO.glob("*/__init__.py")}
    packaged = {entry.removesuffix(".py") for entry in CODE}
    for path in tools.package.code_files():
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            missing = {name.split(".")[0] for name in names} & (local - packaged)
            assert not missing, f"{path.relative_to(REPO)} imports {missing}, not in tools.package.CODE"


def test_embedder_without_weights_is_refused(tmp_path, monkeypatch, capsys):
    entry = ("embedders.spectral", "SpectralEmbedder", {"weights": "no-weights"})
    monkeypatch.setitem(REGISTRY, "no-weights", entry)
    with pytest.raises(PackagingError, match="no-weights.*download_weights.py"):
        build(["spectral", "no-weights"], tmp_path / "s.zip")
    assert make_submission.main(["--embedders", "no-weights", "--out", str(tmp_path / "s.zip")]) == 2
    assert "cannot package 'no-weights'" in capsys.readouterr().err
    assert not (tmp_path / "s.zip").exists()


@pytest.mark.slow
def test_zip_runs_offline_from_a_temporary_folder(tmp_path):
    build(["spectral"], tmp_path / "s.zip")
    result = check(tmp_path / "s.zip", time_budget=10)
    assert result["error"] is None and result["timestamps"] and result["scores"][0] > 0.5

    with zipfile.ZipFile(tmp_path / "s.zip") as zf, zipfile.ZipFile(tmp_path / "broken.zip", "w") as out:
        for name in zf.namelist():
            if name != "budget.py":
                out.writestr(name, zf.read(name))
    with pytest.raises(PackagingError, match="budget"):
        check(tmp_path / "broken.zip", time_budget=10)
