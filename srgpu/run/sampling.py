"""Stratified replicate draws (Lu et al. 2021, section 2.2).

Each replicate draws ``train_fraction`` (80 %) of the records of a flux for training, without
replacement, and keeps the rest (20 %) for validation. The probability of drawing a record is
its vegetation bin's weight divided by the bin's record count:

* ``"area"`` (the paper): the bin's share of the vegetated land area on the sphere;
* ``"equal"`` (the paper's comparison run, figures S2-S3): every bin the same weight.

Rules where the paper is silent:

* records without a vegetation bin (bin 0: wetland, urban, barren sites whose cell is not
  vegetated either) are never drawn and never validated; they are counted;
* a bin with no records gives its weight to no one: the remaining weights are renormalised;
* the draw is numpy's weighted sampling without replacement (successive draws, each
  proportional to the remaining weights). Because 80 % of the records are drawn, a bin whose
  target share exceeds what its records can supply is taken almost whole: the bin proportions
  of a training set move from the record proportions towards the area shares, and reach them
  only when the drawn fraction is small. This is inherent to the paper's design and
  documented rather than "fixed".

Randomness: one ``seed`` gives, for replicate ``i``, flux ``f`` and purpose ``k``, the seed
sequence ``SeedSequence(seed, spawn_key=(i, f, k))`` — what ``SeedSequence(seed).spawn(n)[i]``
would spawn, without any state — so replicate ``i`` is the same whatever the batch size,
device or number of workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from srgpu.config import FLUXES
from srgpu.data.vegetation import VEG_BINS
from srgpu.errors import ConfigError, InputError

PURPOSE_SAMPLE = 0
PURPOSE_FOREST = 1
PURPOSE_IMPORTANCE = 2  # permutation shuffles of srgpu explain


def replicate_seed(seed: int, replicate: int, flux: str, purpose: int) -> np.random.SeedSequence:
    """The seed sequence of one (replicate, flux, purpose): stateless and order-free."""
    return np.random.SeedSequence(seed, spawn_key=(replicate, FLUXES.index(flux), purpose))


def bin_weights(*, scheme: str, area_shares: Mapping[int, float] | None = None) -> dict[int, float]:
    """Weight of each vegetation bin (1..5) before division by its record count."""
    if scheme == "equal":
        return {b: 1.0 for b in VEG_BINS}
    if scheme == "area":
        if area_shares is None:
            raise ConfigError("sampling 'area' needs the bins' area shares")
        return {b: float(area_shares.get(b, 0.0)) for b in VEG_BINS}
    raise ConfigError(f"sampling must be 'area' or 'equal', got {scheme!r}")


def record_probabilities(bins: np.ndarray, weights: Mapping[int, float]) -> np.ndarray:
    """Probability of drawing each record: ``weight[bin] / count[bin]``, normalised to 1.

    Records of bin 0 (or of a bin with zero weight) get probability 0.
    """
    bins = np.asarray(bins)
    p = np.zeros(bins.shape, dtype=np.float64)
    for b, w in weights.items():
        members = bins == b
        n = int(members.sum())
        if n and w > 0:
            p[members] = w / n
    total = p.sum()
    if total <= 0:
        raise InputError(
            "no record lies in a vegetation bin with positive weight",
            field="veg_bin",
            value=sorted(set(bins.tolist()))[:10],
            expected="records in bins 1..5",
        )
    return p / total


@dataclass(frozen=True)
class Split:
    """Indices (into the flux's record table) of one replicate's training and held-out rows."""

    train: np.ndarray
    test: np.ndarray


def draw_split(
    probabilities: np.ndarray, *, train_fraction: float, seed: np.random.SeedSequence
) -> Split:
    """Draw ``round(train_fraction * n_eligible)`` records without replacement."""
    eligible = np.flatnonzero(probabilities > 0)
    n_train = int(round(train_fraction * eligible.size))
    n_train = min(max(n_train, 1), eligible.size)
    rng = np.random.default_rng(seed)
    train = rng.choice(
        eligible.size,
        size=n_train,
        replace=False,
        p=probabilities[eligible] / probabilities[eligible].sum(),
    )
    train = np.sort(eligible[train])
    test = np.setdiff1d(eligible, train, assume_unique=True)
    return Split(train=train, test=test)


def replicate_split(
    *,
    bins: np.ndarray,
    weights: Mapping[int, float],
    train_fraction: float,
    seed: int,
    replicate: int,
    flux: str,
) -> Split:
    """The split of replicate ``replicate`` for ``flux`` — a pure function of its arguments."""
    p = record_probabilities(bins, weights)
    return draw_split(
        p,
        train_fraction=train_fraction,
        seed=replicate_seed(seed, replicate, flux, PURPOSE_SAMPLE),
    )
