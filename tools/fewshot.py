"""Few-shot evaluation of embedders: N-way K-shot episodes on a labelled dataset.

Each episode draws ``ways`` classes among those with at least ``shots + queries`` examples, then
``shots`` support and ``queries`` query examples from each; a head fitted on the support set is
scored on the queries by accuracy and normalized AUC (``2 * AUC - 1``). The episodes of a K depend
only on (seed, K), and every embedder and head sees the same ones, so their results are paired.
Embeddings are computed once per dataset and embedder (`EmbeddingCache`).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from embedders import get_embedder
from embedders.cache import EmbeddingCache
from heads import make_head
from heads.metrics import normalized_auc
from tools.audio_io import list_items, read_items

log = logging.getLogger(__name__)

QUERIES = 15  # query examples per class and episode
FIELDS = ["embedder", "head", "shots", "ways", "episodes", "accuracy", "accuracy_ci95", "nauc", "nauc_ci95"]


def load_labelled(source) -> tuple[list[np.ndarray], np.ndarray]:
    """Clips and integer labels of a challenge dataset (train and test pooled; unlabelled test
    clips left out) or of a folder with one subfolder of audio files per class."""
    items = [item for item in list_items(source) if item.label is not None]
    waves = read_items(items)
    bad = [item.source for item, wave in zip(items, waves) if isinstance(wave, Exception)]
    if bad:
        raise ValueError(f"{len(bad)} unreadable clip(s), e.g. {bad[0]}")
    _, labels = np.unique([item.label for item in items], return_inverse=True)
    log.info("%s: %d clips, %d classes", source, len(items), labels.max() + 1)
    return waves, labels


def sample_episodes(labels, ways: int, shots: int, queries: int, episodes: int, seed: int):
    """``episodes`` ``(support, query)`` index arrays, drawn with a generator seeded by (seed, shots)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, shots])
    classes, counts = np.unique(labels, return_counts=True)
    eligible = classes[counts >= shots + queries]
    if len(eligible) < ways:
        raise ValueError(f"{shots}-shot {ways}-way episodes need {ways} classes with "
                         f"{shots + queries} examples each; {len(eligible)} have them")
    result = []
    for _ in range(episodes):
        support, query = [], []
        for label in rng.choice(eligible, ways, replace=False):
            members = rng.permutation(np.flatnonzero(labels == label))
            support.append(members[:shots])
            query.append(members[shots:shots + queries])
        result.append((np.concatenate(support), np.concatenate(query)))
    return result


def score_episode(X, labels, support, query, head: str) -> tuple[float, float]:
    """(accuracy, normalized AUC) on ``query`` of head ``head`` fitted on ``support``."""
    fitted = make_head(head).fit(X[support], labels[support])
    proba = fitted.predict_proba(X[query])
    accuracy = float(np.mean(fitted.classes_[proba.argmax(axis=1)] == labels[query]))
    return accuracy, float(normalized_auc(labels[query], proba, fitted.classes_))


def mean_ci95(values) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval, ``1.96 * std / sqrt(n)``
    (NaN for a single value)."""
    values = np.asarray(values, dtype=float)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(values.mean()), float(half)


def evaluate(features: dict[str, np.ndarray], labels, shots: list[int], episodes: int,
             ways: int | None = None, heads=("linear", "knn", "prototype"), queries: int = QUERIES,
             seed: int = 0) -> list[dict]:
    """One result row per (embedder, head, K) over ``episodes`` episodes; ``ways`` defaults to
    every class. A K for which too few classes have enough examples is skipped with a warning."""
    labels = np.asarray(labels)
    ways = ways or len(np.unique(labels))
    rows = []
    for k in shots:
        try:
            episode_list = sample_episodes(labels, ways, k, queries, episodes, seed)
        except ValueError as error:
            log.warning("skipping K=%d: %s", k, error)
            continue
        for name, X in features.items():
            for head in heads:
                scores = np.array([score_episode(X, labels, s, q, head) for s, q in episode_list])
                accuracy, accuracy_ci = mean_ci95(scores[:, 0])
                nauc, nauc_ci = mean_ci95(scores[:, 1])
                rows.append(dict(zip(FIELDS, [name, head, k, ways, episodes, accuracy, accuracy_ci,
                                              nauc, nauc_ci])))
                log.info("%s/%s K=%d: accuracy %.3f ± %.3f, nAUC %.3f ± %.3f",
                         name, head, k, accuracy, accuracy_ci, nauc, nauc_ci)
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows as an aligned text table."""
    lines = [f"{'embedder':<16} {'head':<10} {'K':>3} {'ways':>4} {'accuracy':>16} {'nAUC':>16}"]
    lines += [f"{r['embedder']:<16} {r['head']:<10} {r['shots']:>3} {r['ways']:>4} "
              f"{r['accuracy']:>8.3f} ± {r['accuracy_ci95']:.3f} {r['nauc']:>8.3f} ± {r['nauc_ci95']:.3f}"
              for r in rows]
    return "\n".join(lines)


def write_csv(rows: list[dict], path):
    """The rows as CSV with a header of `FIELDS`."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: list[dict], path, title: str):
    """Accuracy and normalized AUC against K, one line (with its 95 % interval) per embedder/head."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state

    fig = Figure(figsize=(11, 4.5))
    axes = fig.subplots(1, 2)
    for name, head in dict.fromkeys((r["embedder"], r["head"]) for r in rows):
        line = [r for r in rows if (r["embedder"], r["head"]) == (name, head)]
        for ax, metric in zip(axes, ("accuracy", "nauc")):
            ax.errorbar([r["shots"] for r in line], [r[metric] for r in line],
                        yerr=np.nan_to_num([r[f"{metric}_ci95"] for r in line]),
                        marker="o", capsize=3, label=f"{name} / {head}")
    shots = sorted({r["shots"] for r in rows})
    for ax, label in zip(axes, ("accuracy", "normalized AUC (2 AUC - 1)")):
        ax.set(xscale="log", xlabel="shots per class (K)", ylabel=label)
        ax.minorticks_off()
        ax.set_xticks(shots, [str(k) for k in shots])
        ax.grid(True, alpha=0.4)
    axes[1].legend(loc="lower right", fontsize="small")
    fig.suptitle(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def run(dataset, embedders: list[str], shots: list[int], episodes: int, out_dir,
        ways: int | None = None, heads=("linear", "knn", "prototype"), seed: int = 0,
        cache_dir=".cache/embeddings") -> list[dict]:
    """Embed ``dataset`` with each embedder (cached), evaluate, and write ``fewshot.csv`` and
    ``fewshot.png`` to ``out_dir``; returns the rows."""
    waves, labels = load_labelled(dataset)
    cache = EmbeddingCache(cache_dir)
    features = {name: cache.embed(get_embedder(name), waves) for name in embedders}
    rows = evaluate(features, labels, shots, episodes, ways, heads, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out_dir / "fewshot.csv")
    plot(rows, out_dir / "fewshot.png",
         f"{Path(dataset).name}: {rows[0]['ways'] if rows else '-'}-way, {episodes} episodes")
    return rows
