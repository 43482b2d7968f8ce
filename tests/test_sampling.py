"""Stratified replicate draws: weights, proportions, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from srgpu.errors import ConfigError, InputError
from srgpu.run.sampling import (
    bin_weights,
    draw_split,
    record_probabilities,
    replicate_seed,
    replicate_split,
)

SHARES = {1: 0.114, 2: 0.093, 3: 0.129, 4: 0.538, 5: 0.126}


def _bins(counts: dict[int, int]) -> np.ndarray:
    return np.concatenate([np.full(n, b) for b, n in counts.items()])


def test_record_probability_is_share_over_count():
    bins = _bins({1: 10, 2: 200, 3: 5, 4: 100, 5: 50, 0: 7})
    p = record_probabilities(bins, bin_weights(scheme="area", area_shares=SHARES))
    assert p.sum() == pytest.approx(1.0)
    assert np.all(p[bins == 0] == 0)
    for b, share in SHARES.items():
        # the bin's total probability is its area share (all bins have records)
        assert p[bins == b].sum() == pytest.approx(share / sum(SHARES.values()))
        assert np.ptp(p[bins == b]) == 0  # equal within a bin


def test_equal_scheme_gives_each_bin_the_same_mass():
    bins = _bins({1: 10, 2: 200, 3: 5, 4: 100, 5: 50})
    p = record_probabilities(bins, bin_weights(scheme="equal"))
    for b in range(1, 6):
        assert p[bins == b].sum() == pytest.approx(0.2)


def test_empty_bin_weight_is_renormalised_away():
    bins = _bins({2: 30, 4: 30})
    p = record_probabilities(bins, bin_weights(scheme="area", area_shares=SHARES))
    assert p[bins == 2].sum() == pytest.approx(0.093 / (0.093 + 0.538))


def test_no_eligible_record_is_an_input_error():
    with pytest.raises(InputError, match="veg_bin"):
        record_probabilities(np.zeros(5, dtype=int), bin_weights(scheme="equal"))


def test_unknown_scheme():
    with pytest.raises(ConfigError):
        bin_weights(scheme="stratified")


def test_small_draws_match_target_shares_statistically():
    """Drawing few records (5 %) from ample bins: bin proportions follow the area shares."""
    bins = _bins({1: 400, 2: 2000, 3: 300, 4: 1500, 5: 1800})
    p = record_probabilities(bins, bin_weights(scheme="area", area_shares=SHARES))
    n_draws = 300
    got = np.zeros(5)
    for i in range(n_draws):
        s = draw_split(p, train_fraction=0.05, seed=np.random.SeedSequence([7, i]))
        got += np.bincount(bins[s.train], minlength=6)[1:]
    frac = got / got.sum()
    target = np.array([SHARES[b] for b in range(1, 6)])
    target /= target.sum()
    # 300 draws x 300 records: binomial SE of a share <= 0.0017; allow ~4 SE, and note that
    # sampling without replacement depletes the small bins slightly (bias < 0.01 here).
    np.testing.assert_allclose(frac, target, atol=0.012)


def test_80_percent_draw_moves_towards_area_shares():
    """With 80 % drawn, under-sampled bins are taken almost whole, over-sampled ones thinned."""
    bins = _bins({1: 50, 2: 1000, 3: 40, 4: 600, 5: 300})
    p = record_probabilities(bins, bin_weights(scheme="area", area_shares=SHARES))
    s = draw_split(p, train_fraction=0.8, seed=np.random.SeedSequence(1))
    assert s.train.size == round(0.8 * bins.size)
    assert np.intersect1d(s.train, s.test).size == 0
    assert s.train.size + s.test.size == bins.size
    kept = {b: np.mean(np.isin(np.flatnonzero(bins == b), s.train)) for b in range(1, 6)}
    assert kept[1] > 0.95 and kept[3] > 0.95  # EBF and shrublands: under-sampled -> nearly all
    assert kept[2] < 0.8  # other forests: over-sampled -> thinned below 80 %


def test_replicate_is_a_pure_function_of_seed_and_index():
    bins = _bins({1: 20, 2: 200, 3: 15, 4: 100, 5: 60})
    w = bin_weights(scheme="area", area_shares=SHARES)
    a = replicate_split(bins=bins, weights=w, train_fraction=0.8, seed=5, replicate=17, flux="SR")
    # other replicates drawn before, in any order, do not change replicate 17
    for r in (3, 0, 99):
        replicate_split(bins=bins, weights=w, train_fraction=0.8, seed=5, replicate=r, flux="SR")
    b = replicate_split(bins=bins, weights=w, train_fraction=0.8, seed=5, replicate=17, flux="SR")
    np.testing.assert_array_equal(a.train, b.train)
    c = replicate_split(bins=bins, weights=w, train_fraction=0.8, seed=5, replicate=18, flux="SR")
    assert not np.array_equal(a.train, c.train)
    d = replicate_split(bins=bins, weights=w, train_fraction=0.8, seed=5, replicate=17, flux="HR")
    assert not np.array_equal(a.train, d.train)


def test_replicate_seed_equals_spawned_child():
    spawned = np.random.SeedSequence(42).spawn(10)[7]
    assert spawned.spawn_key == (7,)
    mine = replicate_seed(42, 7, "SR", 0)
    assert mine.spawn_key[:1] == spawned.spawn_key
    assert mine.entropy == spawned.entropy
