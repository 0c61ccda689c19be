"""Partial fine-tuning of a layered encoder's top blocks under a pooled head, in time-boxed slices.

``embedder.split_encoder(n_top)`` cuts the encoder below its last ``n_top`` blocks. The frozen
bottom runs once per clip (its first ``max_seconds``): the frames entering the top are cached as
fp16, the lower layers are mean + std pooled. Training then runs only the top blocks and the head:
a learned softmax-weighted sum of every layer's standardised pooled features, LayerNorm, Dropout,
Linear.

The head is first trained alone on the frozen features; its validation score is ``start_score_``.
Fine-tuning keeps the state with the best validation score (normalised AUC; on a tie, the lower
log-loss, since small validation sets often reach an AUC of 1), so the published model is never
worse than the start on validation.

    head = FineTuneHead(embedder, n_top=2)
    for _ in head.start(waves_fit, y_fit, waves_val, y_val, waves_test):  # yields between chunks
        ...                                                                # look at the clock
    while not head.done_:
        score, improved = head.step(seconds=20)
    proba = head.predict_proba()  # the test waves given to start; or predict_proba(waves)
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import log_loss
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from embedders.base import SAMPLE_RATE, mean_std_pool, run_blocks
from heads.base import Head
from heads.metrics import normalized_auc

log = logging.getLogger(__name__)


class TopAndHead(nn.Module):
    """A trainable copy of the top blocks, and the pooled head over all ``n_layers`` layers."""

    def __init__(self, blocks, norm, n_layers: int, dim: int, n_classes: int, dropout: float):
        super().__init__()
        self.blocks, self.norm = copy.deepcopy(blocks), copy.deepcopy(norm)
        self.register_buffer("mean", torch.zeros(n_layers, dim))
        self.register_buffer("scale", torch.ones(n_layers, dim))
        self.layer_logits = nn.Parameter(torch.zeros(n_layers))
        self.classifier = nn.Sequential(nn.LayerNorm(dim), nn.Dropout(dropout), nn.Linear(dim, n_classes))

    def top(self, x, lengths):
        """Pooled outputs ``(B, n_top, dim)`` of the top blocks."""
        return mean_std_pool(run_blocks(self.blocks, self.norm, x, lengths).float(), lengths)

    def head(self, pooled):
        """Logits from every layer's pooled features ``(B, n_layers, dim)``."""
        standard = (pooled - self.mean) * self.scale
        return self.classifier(torch.einsum("l,bld->bd", self.layer_logits.softmax(0), standard))

    def forward(self, x, lengths, lower):
        return self.head(torch.cat([lower, self.top(x, lengths)], dim=1))


@dataclass
class BottomOutputs:
    """Frozen-bottom outputs of a set of clips: frames entering the top, lower layers pooled."""

    hidden: list[torch.Tensor]  # (T_i, D) fp16 each
    lengths: torch.Tensor  # (N,) T_i
    pooled: torch.Tensor  # (N, L_low, 2D)


class FineTuneHead(Head):
    """Fine-tunes the last ``n_top`` blocks of ``embedder`` (one with ``split_encoder``) and a
    pooled head on raw waves, with early stopping on validation normalised AUC.

    lr / head_lr: AdamW learning rates of the blocks / the head while fine-tuning (blocks at 1e-4
    lost validation score for two epochs on synth_lid, at 3e-5 they gained); weight_decay:
    AdamW's. batch_size: clips per step. max_epochs: fine-tuning epochs at most. patience: epochs
    without a better validation score before stopping. warmup_epochs / warmup_patience: the same
    for the head alone (at ``head_lr``; cheap epochs). max_seconds: only the first seconds of each
    clip are used. seed: initialisation, dropout and batch order (CPU runs repeat).

    After `start`: ``classes_``, ``start_score_`` (the head alone), ``best_score_`` / ``best_loss_``
    / ``val_proba_`` (validation AUC, log-loss and probabilities of the best state), ``epochs_``,
    ``done_`` (early-stopped or ``max_epochs`` reached). CUDA trains under fp16 autocast.
    """

    def __init__(self, embedder, n_top: int = 2, lr: float = 3e-5, head_lr: float = 1e-3,
                 weight_decay: float = 0.01, batch_size: int = 16, max_epochs: int = 20,
                 patience: int = 3, warmup_epochs: int = 100, warmup_patience: int = 10,
                 dropout: float = 0.1, max_seconds: float = 10.0, seed: int = 0):
        self.embedder = embedder
        self.n_top = n_top
        self.lr = lr
        self.head_lr = head_lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.warmup_epochs = warmup_epochs
        self.warmup_patience = warmup_patience
        self.dropout = dropout
        self.max_seconds = max_seconds
        self.seed = seed

    # -- the public steps ----------------------------------------------------------------------

    def start(self, waves_fit, y_fit, waves_val, y_val, waves_test=None):
        """Run the frozen bottom on every clip and train the head alone; a generator that yields
        between chunks of work. Sets ``start_score_`` (validation) and ``best_score_``."""
        torch.manual_seed(self.seed)
        self.rng_ = np.random.default_rng(self.seed)
        self.classes_, self.y_fit_ = np.unique(y_fit, return_inverse=True)
        self.y_val_ = np.asarray(y_val)
        if len(self.classes_) < 2 or len(self.y_val_) == 0:
            raise ValueError("fine-tuning needs two classes or more and a validation set")
        self.bottom_, blocks, norm = self.embedder.split_encoder(self.n_top)
        tic = time.monotonic()
        self.fit_ = yield from self._extract(waves_fit)
        self.val_ = yield from self._extract(waves_val)
        self.test_ = (yield from self._extract(waves_test)) if waves_test is not None else None
        log.info("fine-tuning: frozen features of %d clips in %.1f s",
                 sum(len(d.hidden) for d in (self.fit_, self.val_, self.test_) if d), time.monotonic() - tic)
        n_layers, dim = self.fit_.pooled.shape[1] + self.n_top, self.fit_.pooled.shape[2]
        self.net_ = TopAndHead(blocks, norm, n_layers, dim, len(self.classes_), self.dropout).to(self.device)
        self.best_net_ = copy.deepcopy(self.net_).eval()
        self.best_score_, self.best_loss_, self.epochs_ = -np.inf, np.inf, 0
        yield from self._warm_up()
        self.start_score_ = self.best_score_
        self.stale_epochs_, self.done_ = 0, self.max_epochs == 0
        self.optimizer_ = torch.optim.AdamW(
            [{"params": [*self.net_.blocks.parameters(), *self.net_.norm.parameters()], "lr": self.lr},
             {"params": [self.net_.layer_logits, *self.net_.classifier.parameters()], "lr": self.head_lr}],
            weight_decay=self.weight_decay)
        self.scaler_ = torch.amp.GradScaler(self.device.type, enabled=self.device.type == "cuda")
        self.order_ = []

    def step(self, seconds: float) -> tuple[float, bool]:
        """Fine-tune for at most about ``seconds`` (validation included); returns the last
        validation score (``best_score_`` when none was taken) and whether the best improved."""
        deadline = time.monotonic() + seconds
        score, improved = self.best_score_, False
        while not self.done_ and self._train(deadline):
            epoch_ended = not self.order_
            self.epochs_ += epoch_ended
            score, better = self._evaluate()
            improved |= better
            self.stale_epochs_ = 0 if better else self.stale_epochs_ + epoch_ended
            self.done_ = self.stale_epochs_ >= self.patience or self.epochs_ >= self.max_epochs
        return score, improved

    def min_step_seconds(self) -> float:
        """Estimated seconds of the shortest useful `step`: one batch and a validation."""
        if not self.order_:
            self.order_ = self._epoch_batches()
        return self.train_rate_ * int(self.fit_.lengths[self.order_[0]].sum()) + self._evaluation_seconds()

    def predict_proba(self, waves=None) -> np.ndarray:
        """``(n, len(classes_))`` probabilities from the best state; ``waves`` None: the test waves
        given to `start` (their frozen features are cached)."""
        if waves is None and self.test_ is None:
            raise ValueError("no test waves were given to start(): pass the waves to predict")
        data = self.test_ if waves is None else _exhaust(self._extract(waves))
        return self._proba(self.best_net_, data)

    # -- the work ------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.embedder.device

    def _autocast(self):
        return torch.autocast(self.device.type, enabled=self.device.type == "cuda")

    def _extract(self, waves):
        """`BottomOutputs` of ``waves`` (each cut to ``max_seconds``); yields between batches."""
        pieces = [self.embedder.windows(w)[0][: int(self.max_seconds * SAMPLE_RATE)] for w in waves]
        hidden, pooled = [None] * len(pieces), [None] * len(pieces)
        for batch in self.embedder.batches([len(p) for p in pieces]):
            lengths = torch.tensor([len(pieces[i]) for i in batch], device=self.device)
            padded = pad_sequence([torch.from_numpy(pieces[i]) for i in batch], batch_first=True)
            with self._autocast():
                states, frame_lengths, lower = self.bottom_(padded.to(self.device), lengths)
            for row, i in enumerate(batch):
                hidden[i] = states[row, : frame_lengths[row]].half()
                pooled[i] = lower[row].float()
            yield
        return BottomOutputs(hidden, torch.tensor([len(h) for h in hidden]), torch.stack(pooled))

    def _batches(self, data: BottomOutputs):
        """Index batches of ``data`` in order of length, for inference."""
        order = np.argsort(data.lengths.numpy(), kind="stable")
        return [order[i: i + 2 * self.batch_size] for i in range(0, len(order), 2 * self.batch_size)]

    def _inputs(self, data: BottomOutputs, batch):
        x = pad_sequence([data.hidden[i] for i in batch], batch_first=True)
        x = x if self.device.type == "cuda" else x.float()
        return x, data.lengths[batch].to(self.device), data.pooled[batch]

    def _top_pooled(self, data: BottomOutputs):
        """All layers' pooled features ``(N, L, 2D)`` through the untrained top; yields per batch."""
        pooled = torch.empty(len(data.hidden), self.net_.mean.shape[0], self.net_.mean.shape[1],
                             device=self.device)
        tic = time.monotonic()
        with torch.no_grad(), self._autocast():
            for batch in self._batches(data):
                x, lengths, lower = self._inputs(data, batch)
                pooled[batch] = torch.cat([lower, self.net_.top(x, lengths)], dim=1)
                yield
        self.infer_rate_ = (time.monotonic() - tic) / int(data.lengths.sum())
        return pooled

    def _warm_up(self):
        """Train the head alone on the frozen pooled features of all layers; yields per epoch."""
        fit = yield from self._top_pooled(self.fit_)
        val = yield from self._top_pooled(self.val_)
        self.train_rate_ = 6 * self.infer_rate_  # until measured: a training batch took 3-7x here
        self.net_.mean.copy_(fit.mean(dim=0))
        self.net_.scale.copy_(1 / (fit.std(dim=0) + 1e-5))
        head = [self.net_.layer_logits, *self.net_.classifier.parameters()]
        optimizer = torch.optim.AdamW(head, lr=self.head_lr, weight_decay=self.weight_decay)
        y = torch.from_numpy(self.y_fit_).to(self.device)
        stale, tic = 0, time.monotonic()
        for epoch in range(self.warmup_epochs):
            self.net_.train()
            for batch in torch.randperm(len(y), device=self.device).split(self.batch_size):
                optimizer.zero_grad()
                nn.functional.cross_entropy(self.net_.head(fit[batch]), y[batch]).backward()
                optimizer.step()
            self.net_.eval()
            with torch.no_grad():
                _, better = self._keep_if_better(self.net_.head(val).softmax(dim=1).cpu().numpy())
            stale = 0 if better else stale + 1
            if stale >= self.warmup_patience:
                break
            yield
        self.net_.load_state_dict(self.best_net_.state_dict())
        log.info("fine-tuning: head alone, validation %.4f (log-loss %.4f) after %d epochs (%.1f s)",
                 self.best_score_, self.best_loss_, epoch + 1, time.monotonic() - tic)

    def _epoch_batches(self) -> list[np.ndarray]:
        """One epoch's batches in random order, each drawn from a bucket of similar lengths."""
        order, bucket = self.rng_.permutation(len(self.y_fit_)), 8 * self.batch_size
        batches = []
        for start in range(0, len(order), bucket):
            chunk = order[start: start + bucket]
            chunk = chunk[np.argsort(self.fit_.lengths[chunk].numpy(), kind="stable")]
            batches += [chunk[i: i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        return [batches[i] for i in self.rng_.permutation(len(batches))]

    def _train(self, deadline: float) -> bool:
        """Train on batches until the epoch ends or the next batch and a validation would pass
        ``deadline``; whether any batch ran."""
        trained = False
        while time.monotonic() + self.min_step_seconds() <= deadline:
            self._train_batch(self.order_.pop(0))
            trained = True
            if not self.order_:
                break
        return trained

    def _train_batch(self, batch):
        tic = time.monotonic()
        self.net_.train()
        x, lengths, lower = self._inputs(self.fit_, batch)
        with self._autocast():
            loss = nn.functional.cross_entropy(self.net_(x, lengths, lower),
                                               torch.from_numpy(self.y_fit_[batch]).to(self.device))
        self.optimizer_.zero_grad()
        self.scaler_.scale(loss).backward()
        self.scaler_.step(self.optimizer_)
        self.scaler_.update()
        rate = (time.monotonic() - tic) / int(self.fit_.lengths[batch].sum())
        self.train_rate_ = max(rate, 0.5 * (self.train_rate_ + rate))  # slowdowns count at once

    def _evaluation_seconds(self) -> float:
        return self.infer_rate_ * int(self.val_.lengths.sum())

    def _proba(self, net, data: BottomOutputs) -> np.ndarray:
        net.eval()
        proba = np.empty((len(data.hidden), len(self.classes_)), np.float32)
        with torch.no_grad(), self._autocast():
            for batch in self._batches(data):
                proba[batch] = net(*self._inputs(data, batch)).float().softmax(dim=1).cpu().numpy()
        return proba

    def _evaluate(self) -> tuple[float, bool]:
        """Score the current state on validation; keep it when it is the best so far."""
        tic = time.monotonic()
        proba = self._proba(self.net_, self.val_)
        self.infer_rate_ = (time.monotonic() - tic) / int(self.val_.lengths.sum())
        score, better = self._keep_if_better(proba)
        log.info("fine-tuning: epoch %d, validation %.4f%s", self.epochs_, score, " (best)" if better else "")
        return score, better

    def _keep_if_better(self, proba) -> tuple[float, bool]:
        """Validation score of ``proba`` from the current state; copy the state into ``best_net_``
        when its score is higher, or equal with a lower log-loss."""
        if not np.isfinite(proba).all():  # diverged
            return float("nan"), False
        score = normalized_auc(self.y_val_, proba, self.classes_)
        known = np.isin(self.y_val_, self.classes_)
        loss = log_loss(self.y_val_[known], proba[known], labels=self.classes_)
        better = score > self.best_score_ + 1e-6 or (score >= self.best_score_ and loss < self.best_loss_)
        if better:
            self.best_net_.load_state_dict(self.net_.state_dict())
            self.best_score_, self.best_loss_, self.val_proba_ = score, loss, proba
        return score, better


def _exhaust(generator):
    """Run a generator to its end and return its return value."""
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value
