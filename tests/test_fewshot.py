"""Few-shot evaluation: episodes, agreement with a plain head, intervals, seeds, the CLI."""

import csv

import numpy as np
import pytest
import soundfile
from sklearn.metrics import accuracy_score

import fewshot
from heads import make_head
from heads.metrics import normalized_auc
from tools.fewshot import evaluate, mean_ci95, sample_episodes

HEADS = ("linear", "knn", "prototype")


def blobs(classes=5, per_class=20, dim=8, spread=1.0, seed=0):
    """Gaussian clusters: ``(X, labels)``."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, dim)) * 2
    labels = np.repeat(np.arange(classes), per_class)
    return (centers[labels] + spread * rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def test_episodes_draw_disjoint_support_and_query_sets():
    _, labels = blobs(classes=6, per_class=20)
    labels[labels == 5] = 4  # class 4 now has 40 examples; class 5 is gone
    labels[:15] = 3  # class 0 keeps 5 examples: too few for 5 shots + 15 queries
    for support, query in sample_episodes(labels, ways=3, shots=5, queries=15, episodes=20, seed=0):
        assert len(support) == 15 and len(query) == 45 and not set(support) & set(query)
        classes, counts = np.unique(labels[support], return_counts=True)
        assert (counts == 5).all() and 0 not in classes
        assert (np.unique(labels[query], return_counts=True)[1] == 15).all()
    with pytest.raises(ValueError, match="need 5 classes"):
        sample_episodes(labels, ways=5, shots=5, queries=15, episodes=1, seed=0)


def test_one_episode_with_every_example_agrees_with_a_plain_head():
    X, labels = blobs(per_class=20, spread=2.0)
    rows = evaluate({"blobs": X}, labels, shots=[15], episodes=1, heads=HEADS, queries=5)
    ((support, query),) = sample_episodes(labels, 5, 15, 5, 1, seed=0)
    assert sorted(np.concatenate([support, query])) == list(range(len(labels)))
    for row, head in zip(rows, HEADS):
        plain = make_head(head).fit(X[support], labels[support])
        proba = plain.predict_proba(X[query])
        assert row["accuracy"] == accuracy_score(labels[query], plain.predict(X[query]))
        assert row["nauc"] == pytest.approx(normalized_auc(labels[query], proba, plain.classes_))
        assert row["episodes"] == 1 and np.isnan(row["accuracy_ci95"])


def test_intervals_shrink_with_more_episodes():
    X, labels = blobs(per_class=40, spread=3.0)
    few, many = (evaluate({"blobs": X}, labels, shots=[1], episodes=n, heads=["prototype"])[0]
                 for n in (10, 160))
    assert many["accuracy_ci95"] < few["accuracy_ci95"] / 2 and many["nauc_ci95"] < few["nauc_ci95"] / 2
    mean, half = mean_ci95([0.5, 0.7, 0.9])
    assert mean == pytest.approx(0.7) and half == pytest.approx(1.96 * 0.2 / np.sqrt(3))


def test_seeded_runs_repeat():
    X, labels = blobs(per_class=30, spread=3.0)

    def run(seed, shots):
        return evaluate({"blobs": X}, labels, shots=shots, episodes=5, heads=HEADS, seed=seed)

    assert run(0, [1, 5]) == run(0, [1, 5])
    assert run(0, [1, 5])[3:] == run(0, [5])  # a K's episodes do not depend on the other Ks
    assert run(0, [1]) != run(1, [1])


def test_cli_on_a_folder_per_class(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 16000
    for label, freq in (("low", 200), ("mid", 1000), ("high", 4000)):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(20):
            wave = np.sin(2 * np.pi * freq * rng.uniform(0.9, 1.1) * t) + 0.3 * rng.normal(size=t.size)
            soundfile.write(tmp_path / "data" / label / f"{i}.wav", (0.3 * wave).astype(np.float32), 16000)
    monkeypatch.chdir(tmp_path)  # the embedding cache goes to .cache/ here
    out = tmp_path / "out"
    args = [str(tmp_path / "data"), "--embedders", "spectral", "--shots", "1,5", "--episodes", "4",
            "--ways", "2", "--out", str(out)]
    assert fewshot.main(args) == 0
    table = capsys.readouterr().out
    assert "spectral" in table and "prototype" in table and (out / "fewshot.png").stat().st_size > 0
    rows = list(csv.DictReader(open(out / "fewshot.csv")))
    assert [(r["head"], r["shots"]) for r in rows] == [(h, k) for k in ("1", "5") for h in HEADS]
    assert all(r["ways"] == "2" and r["episodes"] == "4" for r in rows)
    assert all(float(r["accuracy"]) > 0.9 for r in rows if r["shots"] == "5")
    assert list((tmp_path / ".cache" / "embeddings" / "spectral").glob("*.npy"))
