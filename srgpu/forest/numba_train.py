"""CPU training engine: numba tree growers that grow scikit-learn's trees, several times faster.

:func:`grow_forest` grows all trees of one forest and returns them as flat arrays
(:class:`GrownTrees`); :func:`to_sklearn_trees` wraps them into fitted ``DecisionTreeRegressor``
objects that :func:`srgpu.forest.assemble.assemble_forest` turns into a ``RandomForestRegressor``.
:func:`grow_tree_parts` grows a forest a chunk of trees at a time, :func:`concat_grown` joins
chunks. Which grower runs depends on how the predictors tie (:func:`tie_kind`) and on ``exact``:

* no ties between distinct rows: the grower of this module, bit-identical to scikit-learn;
* whole rows repeat (SRDB: the records of one 0.5 deg cell share every predictor value) and not
  ``exact``: :func:`srgpu.forest.numba_tied.grow_forest_units`, the same algorithm on the
  distinct rows (see "Where it can differ" below);
* ties and ``exact``: :func:`srgpu.forest.numba_tied.grow_forest_sorted`, which replays
  scikit-learn's node algorithm with its sort, bit-identical whatever the ties;
* single columns tie but no row repeats, not ``exact``: the grower of this module.

What it reproduces. A tree grown here from the bootstrap rows ``boot`` and the per-tree integer
``seed`` is the tree that ``DecisionTreeRegressor(random_state=seed, min_samples_split=nodesize+1,
min_samples_leaf=1, max_features=mtry).fit(X[boot], y[boot])`` grows in scikit-learn 1.9: the
same node numbering (depth first, left child first), features, thresholds, values, impurities,
sample counts and ``missing_go_to_left``, bit for bit on data whose distinct rows have distinct
values in every predictor (continuous predictors; bootstrap duplicates are fine). That holds
because every decision is taken on the same float64 numbers computed in the same order:

* Feature draws: scikit-learn's ``BestSplitter`` draws the features of a node one by one without
  replacement with its xorshift32 generator (``our_rand_r``) seeded per tree by
  ``RandomState(seed).randint(0, 2**31 - 1)``; a feature found constant in the node (its sorted
  values satisfy ``last <= first + 1e-7`` in *float32* arithmetic) is not evaluated, and the draw
  stops once at least ``mtry`` features have been drawn and at least one non-constant feature has
  been evaluated (so a constant draw counts towards ``mtry`` unless all draws so far were
  constant), or when every feature has been drawn. Features constant in a parent are known to be
  constant in its children and are kept at the front of the splitter's feature array. This module
  runs the same generator (the seed conversion replays MT19937's seeding in numba) and the same
  draw procedure on the same feature array, node after node in the same order.
* Split search: candidate positions lie between consecutive sorted values ``a < b`` of a feature
  with ``b > a + 1e-7`` (float32 arithmetic, as scikit-learn's ``FEATURE_THRESHOLD``: two
  neighbouring float32 values near 1 count as equal); the criterion is the proxy
  ``sum_left**2 / n_left + sum_right**2 / n_right``, maximised with a strict ``>`` over positions
  in ascending order and features in draw order; ``sum_left`` is updated the way scikit-learn's
  ``RegressionCriterion.update`` does it (forward sample by sample, or from the node total
  backwards when that is shorter). Threshold ``a / 2.0 + b / 2.0`` in float64.
* Node statistics: node sums are accumulated sample by sample (bootstrap duplicates added one at
  a time) in the order of scikit-learn's ``samples`` array, which this module replays: the
  bootstrap order at the root, then, at every split, the node's rows sorted by the last feature
  evaluated and swapped into the left and right child the way ``partition_samples_final`` does
  (when that feature is the split feature, the left samples stay in place and the right ones
  rotate by one; otherwise the swaps are replayed on a sample array). Impurities are
  ``sq_sum / n - (sum / n)**2`` with the children's ``sq_sum_right`` taken as
  ``sq_sum_parent - sq_sum_left`` as in ``MSE.children_impurity``; a node is a leaf when it holds
  fewer than ``nodesize + 1`` samples (duplicates counted), when its impurity is
  ``<= np.finfo(float).eps``, when no valid split exists, or when the split's impurity
  improvement is below ``-eps`` (scikit-learn's ``min_impurity_decrease = 0`` test). So even a
  node of a constant ``y`` that rounding makes look impure is split exactly where scikit-learn
  splits it. Values are node means at every node, as scikit-learn stores them.
* ``missing_go_to_left`` (the tree is fitted without missing values): 1 where the left child
  holds more samples than the right, 0 on ties and at leaves.

Where it can differ from scikit-learn: on predictors with ties between *distinct* rows the
order of the sums matters. scikit-learn sorts a node's samples with an introsort that is not
stable (median-of-3 pivots, 3-way partitions, insertion sort at 15 elements), so tied samples
end up in an order that only replaying that sort gives (``exact=True``); the default growers add
them in another order, so sums may differ in the last bits. That flips choices between splits
whose proxies are equal up to rounding, frequent on SRDB where several predictors separate the
same cells deep in a tree, and the tree goes apart from its scikit-learn twin from that node on
(its random stream included). The algorithm is the same: with integer responses, whose sums are
exact in any order, the unit grower's trees are scikit-learn's bit for bit. Measured on the real
SRDB draws (``benchmarks/bench_real_train.py``, figures in ``docs/benchmarks.md``): with
``exact=True`` every tree, prediction and total is identical; by default no tree is identical,
and the forests differ from scikit-learn's by less than a scikit-learn forest with other seeds
does. On predictors rounded to 1 or 2 decimals (no repeated rows) 93 to 98 % of the trees of
this module's grower stay identical. X and y must be free of NaN (the caller checks;
scikit-learn's missing-value splits are not replayed).

How it is fast. ``X`` is sorted once per forest (``argsort`` of each column, stable). Per tree,
each predictor keeps the bootstrap's distinct rows in sorted order (their multiplicities on the
side); a node is the same range ``[es, ee)`` of all these lists, so the sorted order of any
predictor in any node is at hand (no sorting per node) and constancy is an O(1) test of its ends.
A split moves every other predictor's range, partitioned stably (randomForest's approach), into a
second buffer, skipping children that are leaves. The split search makes one pass over the sorted
rows (sums only: a dependency chain of additions, duplicates added without data-dependent
branches), then computes all proxies in a vectorised loop and takes the first largest. Hot loops
index with unsigned integers (no negative-index code); no allocation happens per node. The grower
is ``nogil``: forests fitted in several threads run in parallel. Speed per core against one
``DecisionTreeRegressor.fit`` per tree: ``benchmarks/bench_train.py`` (synthetic paper shapes)
and ``benchmarks/bench_real_train.py`` (the real SRDB draws), figures in ``docs/benchmarks.md``.
Compiling the growers the first time takes a few tens of seconds (then numba's cache is used).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from sklearn.tree import DecisionTreeRegressor
from sklearn.tree._tree import Tree

from srgpu.forest import buffers
from srgpu.forest.numba_common import (
    M32,
    TREE_LEAF,
    TREE_UNDEFINED,
    U1,
    grow_array,
    partition_lists,
    xorshift32,
)
from srgpu.forest.numba_tied import grow_forest_sorted, grow_forest_units


# -- random numbers ------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def _mt19937_seed_to_rand_r_state(seed):
    """``np.random.RandomState(seed).randint(0, 2**31 - 1)`` for an integer ``seed`` in
    ``[0, 2**32)``: the state scikit-learn's splitter seeds its xorshift32 generator with.

    ``RandomState(seed)`` fills MT19937's 624 words by Knuth's recurrence; its first outputs only
    need words ``i``, ``i + 1`` and ``i + 397`` of the first twist. ``randint`` masks an output to
    31 bits and rejects ``2**31 - 1``."""
    key = np.empty(624, dtype=np.int64)
    s = seed & M32
    for i in range(624):
        key[i] = s
        s = (1812433253 * (s ^ (s >> 30)) + i + 1) & M32
    for i in range(227):
        v = (key[i] & 0x80000000) | (key[i + 1] & 0x7FFFFFFF)
        w = key[i + 397] ^ (v >> 1)
        if v & 1:
            w ^= 0x9908B0DF
        w ^= w >> 11
        w ^= (w << 7) & 0x9D2C5680
        w ^= (w << 15) & 0xEFC60000
        w ^= w >> 18
        w &= 0x7FFFFFFF
        if w < 0x7FFFFFFF:
            return w
    return -1  # 227 rejections in a row: probability 2**-7000


@njit(cache=True, nogil=True, error_model="numpy")
def _rand_r_states(seeds):
    out = np.empty(seeds.shape[0], dtype=np.int64)
    for t in range(seeds.shape[0]):
        out[t] = _mt19937_seed_to_rand_r_state(seeds[t])
    return out


def rand_r_states(seeds: np.ndarray) -> np.ndarray:
    """scikit-learn's per-tree splitter states for the integer ``random_state`` values ``seeds``
    (each in ``[0, 2**32)``), as int64."""
    seeds = np.ascontiguousarray(seeds, dtype=np.int64)
    if seeds.size and (seeds.min() < 0 or seeds.max() > M32):
        raise ValueError("tree seeds must lie in [0, 2**32)")
    out = _rand_r_states(seeds)
    bad = out < 0
    if bad.any():  # never in practice; fall back on numpy itself
        out[bad] = [np.random.RandomState(int(s)).randint(0, 2**31 - 1) for s in seeds[bad]]
    return out


# -- the grower ----------------------------------------------------------------------------
# Hot loops index with unsigned integers (no negative-index wrap-around code) and add a row's
# bootstrap copies without a data-dependent branch for up to two copies.


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _add_copies(s, q, yv, c):
    """Add ``yv`` to ``s`` and ``yv * yv`` to ``q``, ``c >= 1`` times, one copy at a time
    (adding ``+-0.0`` leaves a sum unchanged; the sums are never -0.0)."""
    yy = yv * yv
    m = np.float64(c > 1)  # a multiplication, not a select that LLVM may turn into a branch
    s = (s + yv) + yv * m
    q = (q + yy) + yy * m
    if c > 2:
        for _ in range(c - 2):
            s += yv
            q += yy
    return s, q


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sub_copies(s, yv, c):
    """Subtract ``yv`` from ``s``, ``c >= 1`` times, one copy at a time."""
    s = (s - yv) - yv * np.float64(c > 1)
    if c > 2:
        for _ in range(c - 2):
            s -= yv
    return s


@njit(cache=True, nogil=True, error_model="numpy")
def _proxies(c_sl, c_wl, e, n_c, sum_total, w_node):
    """scikit-learn's proxy of every candidate position. A function of its own: inlined into
    the scan, LLVM does not vectorise this loop (2 divisions per position)."""
    for c in range(n_c):
        sl = c_sl[c]
        wl = c_wl[c]
        sr = sum_total - sl
        e[c] = sl * sl / wl + sr * sr / (w_node - wl)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _scan_feature(
    bufs, par, f, Xt, y, cnt, es, ee, start, end, sum_total, w_node, best_proxy,
    c_sl, c_sf, c_q, c_wl, e, kk,
):  # fmt: skip
    """Best split of one feature on a node: ``idx_f[es:ee]`` are the node's distinct rows in
    the feature's sorted order, ``[start, end)`` its samples (duplicates counted).

    Returns ``(proxy, pos, k, sum_left, sq_left)`` of the first position whose proxy is the
    largest and beats ``best_proxy`` (``pos = -1`` if none does): ``k`` is the entry index of
    the first row of the right child, ``sum_left``/``sq_left`` the forward sums of the left
    samples. ``c_*``, ``e`` and ``kk`` (n + 1 each) are scratch. (Arrays are indexed, not
    sliced: a view per call would cost two atomic reference count updates.)

    First pass: running sums, one sample at a time in sorted order, stored at every candidate
    position, with the criterion's ``sum_left``: scikit-learn updates it forwards, or from the
    node total backwards when that is shorter (from then on it differs from the forward sum; this
    happens near the end of a scan, so the rest of the scan takes a slower loop). Second pass:
    the proxies, independent of each other (vectorised). Third pass: the first largest."""
    thr32 = np.float32(1e-7)
    ee_u = np.uint64(ee)
    s = 0.0
    q = 0.0
    pos = start
    cum = start
    n_c = 0
    r = bufs[par, f, np.uint64(es)]
    prev = Xt[f, r]
    yp = y[r]
    cp = cnt[r]
    k = np.uint64(es) + U1
    while k < ee_u:  # fast loop: forward updates only
        s, q = _add_copies(s, q, yp, cp)
        cum += cp
        r = bufs[par, f, k]
        v = Xt[f, r]
        yp = y[r]
        cp = cnt[r]
        if v > prev + thr32:
            c_sl[n_c] = s  # the criterion's sum_left is the forward sum
            c_q[n_c] = q
            c_wl[n_c] = cum - start
            kk[n_c] = k
            if cum - pos > end - cum:
                break
            pos = cum
            n_c += 1
        prev = v
        k += U1
    first_backward = n_c
    if k < ee_u:  # the candidate at k took a backward update: slow loop from there
        s_crit = 0.0
        while True:
            if v > prev + thr32:
                c_sf[n_c] = s
                c_q[n_c] = q
                c_wl[n_c] = cum - start
                kk[n_c] = k
                if cum - pos > end - cum:
                    s_crit = sum_total
                    j = ee_u
                    while j > k:
                        j -= U1
                        rj = bufs[par, f, j]
                        s_crit = _sub_copies(s_crit, y[rj], cnt[rj])
                c_sl[n_c] = s_crit
                pos = cum
                n_c += 1
            prev = v
            k += U1
            if k >= ee_u:
                break
            ys = yp
            cs = cp
            s, q = _add_copies(s, q, ys, cs)
            s_crit, _ = _add_copies(s_crit, 0.0, ys, cs)
            cum += cs
            r = bufs[par, f, k]
            v = Xt[f, r]
            yp = y[r]
            cp = cnt[r]
    best_c = -1
    if n_c < 16:  # a small node: one scalar loop
        for c in range(n_c):
            sl = c_sl[c]
            wl = c_wl[c]
            sr = sum_total - sl
            proxy = sl * sl / wl + sr * sr / (w_node - wl)
            if proxy > best_proxy:
                best_proxy = proxy
                best_c = c
    else:  # the proxies in a vectorised loop, then the first largest
        _proxies(c_sl, c_wl, e, n_c, sum_total, w_node)
        for c in range(n_c):
            if e[c] > best_proxy:
                best_proxy = e[c]
                best_c = c
    if best_c < 0:
        return best_proxy, -1, -1, 0.0, 0.0
    return (
        best_proxy,
        start + np.int64(c_wl[best_c]),
        np.int64(kk[best_c]),
        c_sl[best_c] if best_c < first_backward else c_sf[best_c],
        c_q[best_c],
    )


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _right_sums(bufs, par, f, y, cnt, k0, ee, sum_total, backward):
    """Sums over the right child's samples in scikit-learn's order after
    ``partition_samples_final`` of samples sorted by the split feature: the right samples
    ``r0 r1 .. rk-1`` (from entry ``k0``) become ``r1 .. rk-1 r0``. Returns the forward sum and
    sum of squares and, if ``backward``, the criterion's ``sum_left`` updated backwards from
    ``sum_total`` over them (else 0)."""
    r0 = bufs[par, f, np.uint64(k0)]
    y0 = y[r0]
    c0 = cnt[r0]
    s = 0.0
    q = 0.0
    for _ in range(c0 - 1):
        s += y0
        q += y0 * y0
    ee_u = np.uint64(ee)
    for k in range(np.uint64(k0) + U1, ee_u):
        r = bufs[par, f, k]
        s, q = _add_copies(s, q, y[r], cnt[r])
    s += y0
    q += y0 * y0
    sl = 0.0
    if backward:
        sl = sum_total - y0
        k = ee_u
        while k > np.uint64(k0) + U1:
            k -= U1
            r = bufs[par, f, k]
            sl = _sub_copies(sl, y[r], cnt[r])
        for _ in range(c0 - 1):
            sl -= y0
    return s, q, sl


@njit(cache=True, nogil=True, error_model="numpy")
def _grow_forest(X, y, boot, rand_states, mtry, min_samples_split, nodes, value):
    """All trees of one forest. Returns ``(nodes, value, tree_offsets, max_depth)``: ``nodes``
    (n_nodes, 8) int64 in the memory layout of scikit-learn's ``Tree`` nodes (left, right,
    feature, threshold, impurity, n_node_samples, weighted_n_node_samples, missing_go_to_left;
    the float64 fields as their bits). The given ``nodes`` (cap, 8) and ``value`` (cap,) are
    where they are written (:func:`node_capacity` rows; views of them are returned unless a
    larger buffer was needed)."""
    n, p = X.shape
    n_trees = rand_states.shape[0]
    n_s = boot.shape[1]
    eps = np.finfo(np.float64).eps
    thr32 = np.float32(1e-7)

    # per forest: feature-major X and each feature's stable sort order
    Xt = np.empty((p, n), dtype=np.float32)
    order = np.empty((p, n), dtype=np.uint32)
    for f in range(p):
        col = X[:, f].copy()
        Xt[f] = col
        order[f] = np.argsort(col, kind="mergesort").astype(np.uint32)

    # per tree scratch, reused
    cnt = np.zeros(n, dtype=np.int64)
    # each feature's distinct rows in sorted order, in one of two buffers (one spare slot): a
    # node's rows of feature f are in bufs[fb[f]], and a split moves every feature's rows but
    # the split feature's into the other buffer
    bufs = np.empty((2, p, n + 1), dtype=np.uint32)
    fb = np.zeros(p, dtype=np.int64)
    samples = np.empty(n_s, dtype=np.uint32)
    c_sl = np.empty(n_s + 1, dtype=np.float64)
    c_sf = np.empty(n_s + 1, dtype=np.float64)
    c_q = np.empty(n_s + 1, dtype=np.float64)
    c_wl = np.empty(n_s + 1, dtype=np.float64)
    c_e = np.empty(n_s + 1, dtype=np.float64)
    kk = np.empty(n_s + 1, dtype=np.uint64)
    features = np.empty(p, dtype=np.int64)
    constant_features = np.zeros(p, dtype=np.int64)
    stack_size = n + 2
    st_start = np.empty(stack_size, dtype=np.int64)
    st_end = np.empty(stack_size, dtype=np.int64)
    st_es = np.empty(stack_size, dtype=np.int64)
    st_ee = np.empty(stack_size, dtype=np.int64)
    st_depth = np.empty(stack_size, dtype=np.int64)
    st_parent = np.empty(stack_size, dtype=np.int64)
    st_is_left = np.empty(stack_size, dtype=np.bool_)
    st_impurity = np.empty(stack_size, dtype=np.float64)
    st_n_const = np.empty(stack_size, dtype=np.int64)
    st_sum = np.empty(stack_size, dtype=np.float64)
    st_sq = np.empty(stack_size, dtype=np.float64)
    st_fb = np.empty((stack_size, p), dtype=np.uint8)

    # outputs: the caller's buffers (node_capacity rows), grown when the next tree might not
    # fit (at most 2 * distinct rows - 1 nodes)
    cap = nodes.shape[0]
    fnodes = nodes.view(np.float64)
    tree_offsets = np.zeros(n_trees + 1, dtype=np.int64)
    max_depth = np.zeros(n_trees, dtype=np.int64)

    shared_boot = boot.shape[0] == 1
    base = 0
    for t in range(n_trees):
        b = boot[0] if shared_boot else boot[t]
        # multiplicities and, per feature, the distinct rows in sorted order
        cnt[:] = 0
        for i in range(n_s):
            cnt[b[i]] += 1
        m = 0
        for f in range(p):
            dst = bufs[0, f]
            k = np.uint64(0)
            for i in range(n):
                r = order[f, i]
                dst[k] = r
                k += np.uint64(cnt[r] > 0)
            m = np.int64(k)
        if base + 2 * m > cap:
            cap = max(2 * cap, base + 2 * m)
            nodes = grow_array(nodes, cap)
            fnodes = nodes.view(np.float64)
            value = grow_array(value, cap)
        for f in range(p):
            features[f] = f
        rs = rand_states[t] & M32

        # root statistics in the bootstrap order (scikit-learn's initial samples array)
        s_tot = 0.0
        q_tot = 0.0
        for i in range(n_s):
            yi = y[b[i]]
            s_tot += yi
            q_tot += yi * yi
        st_start[0] = 0
        st_end[0] = n_s
        st_es[0] = 0
        st_ee[0] = m
        st_depth[0] = 0
        st_parent[0] = -1
        st_is_left[0] = False
        st_impurity[0] = q_tot / n_s - (s_tot / n_s) ** 2
        st_n_const[0] = 0
        st_sum[0] = s_tot
        st_sq[0] = q_tot
        st_fb[0, :] = 0
        top = 1
        node_count = 0
        depth_seen = 0

        while top > 0:
            top -= 1
            start = st_start[top]
            end = st_end[top]
            es = st_es[top]
            ee = st_ee[top]
            depth = st_depth[top]
            parent = st_parent[top]
            node_imp = st_impurity[top]
            n_known = st_n_const[top]
            sum_total = st_sum[top]
            sq_total = st_sq[top]
            for f in range(p):
                fb[f] = st_fb[top, f]

            node_id = node_count
            node_count += 1
            g = base + node_id
            if parent >= 0:
                nodes[base + parent, 0 if st_is_left[top] else 1] = node_id
            n_samples = end - start
            w_node = np.float64(n_samples)
            if depth > depth_seen:
                depth_seen = depth
            fnodes[g, 4] = node_imp
            nodes[g, 5] = n_samples
            fnodes[g, 6] = w_node
            value[g] = sum_total / w_node

            is_leaf = n_samples < min_samples_split or node_imp <= eps
            split = False
            if not is_leaf:
                # -- scikit-learn's node_split: draw features, evaluate the non-constant ones
                best_proxy = -np.inf
                best_pos = end
                best_k = -1
                best_f = 0
                best_sl = 0.0
                best_ql = 0.0
                last_sorted = -1
                f_i = p
                n_visited = 0
                n_found = 0
                n_drawn = 0
                n_total = n_known
                while f_i > n_total and (n_visited < mtry or n_visited <= n_found + n_drawn):
                    n_visited += 1
                    rs = xorshift32(rs)
                    f_j = n_drawn + (rs & 0x7FFFFFFF) % (f_i - n_found - n_drawn)
                    if f_j < n_known:
                        tmp = features[n_drawn]
                        features[n_drawn] = features[f_j]
                        features[f_j] = tmp
                        n_drawn += 1
                        continue
                    f_j += n_found
                    f = features[f_j]
                    lo = Xt[f, bufs[fb[f], f, es]]
                    hi = Xt[f, bufs[fb[f], f, ee - 1]]
                    if hi != lo:
                        last_sorted = f  # sorting all-equal values leaves the order as is
                    if hi <= lo + thr32:
                        features[f_j] = features[n_total]
                        features[n_total] = f
                        n_found += 1
                        n_total += 1
                        continue
                    f_i -= 1
                    tmp = features[f_i]
                    features[f_i] = features[f_j]
                    features[f_j] = tmp
                    proxy, pos, k, sl, ql = _scan_feature(
                        bufs, fb[f], f, Xt, y, cnt, es, ee, start, end, sum_total, w_node,
                        best_proxy, c_sl, c_sf, c_q, c_wl, c_e, kk,
                    )  # fmt: skip
                    if pos >= 0:
                        best_proxy = proxy
                        best_pos = pos
                        best_k = k
                        best_f = f
                        best_sl = sl
                        best_ql = ql
                for i in range(n_known):
                    features[i] = constant_features[i]
                for i in range(n_known, n_known + n_found):
                    constant_features[i] = features[i]

                if best_pos < end:
                    pos = best_pos
                    fb_b = fb[best_f]
                    a = Xt[best_f, bufs[fb_b, best_f, best_k - 1]]  # largest value on the left
                    b_ = Xt[best_f, bufs[fb_b, best_f, best_k]]
                    threshold = np.float64(a) / 2.0 + np.float64(b_) / 2.0
                    backward = pos - start > end - pos
                    if last_sorted == best_f:
                        # the samples are sorted by the split feature: partition_samples_final
                        # keeps the left ones in place and rotates the right ones by one
                        s_l = best_sl
                        q_l = best_ql
                        s_r, q_r, sl_back = _right_sums(
                            bufs, fb_b, best_f, y, cnt, best_k, ee, sum_total, backward
                        )
                        sum_left = sl_back if backward else s_l
                    else:
                        # scikit-learn's samples array: the rows sorted by the last sorted
                        # feature, swapped into left | right by partition_samples_final
                        w = start
                        for k in range(es, ee):
                            r = bufs[fb[last_sorted], last_sorted, k]
                            for _ in range(cnt[r]):
                                samples[w] = r
                                w += 1
                        i = start
                        j = end
                        while i < j:
                            if Xt[best_f, samples[i]] <= a:
                                i += 1
                            else:
                                j -= 1
                                tmp32 = samples[i]
                                samples[i] = samples[j]
                                samples[j] = tmp32
                        s_l = 0.0
                        q_l = 0.0
                        for i in range(start, pos):
                            yi = y[samples[i]]
                            s_l += yi
                            q_l += yi * yi
                        s_r = 0.0
                        q_r = 0.0
                        for i in range(pos, end):
                            yi = y[samples[i]]
                            s_r += yi
                            q_r += yi * yi
                        sum_left = s_l
                        if backward:
                            sum_left = sum_total
                            for i in range(end - 1, pos - 1, -1):
                                sum_left -= y[samples[i]]
                    # criterion.reset(); update(pos); children_impurity(); improvement
                    w_l = np.float64(pos - start)
                    w_r = np.float64(end - pos)
                    sum_right = sum_total - sum_left
                    imp_l = q_l / w_l - (sum_left / w_l) ** 2
                    imp_r = (sq_total - q_l) / w_r - (sum_right / w_r) ** 2
                    improvement = (w_node / n_s) * (
                        node_imp - (w_r / w_node * imp_r) - (w_l / w_node * imp_l)
                    )
                    split = improvement + eps >= 0.0
                    if split:
                        left_leaf = pos - start < min_samples_split or imp_l <= eps
                        right_leaf = end - pos < min_samples_split or imp_r <= eps
                        if not (left_leaf and right_leaf):
                            partition_lists(
                                bufs, fb, Xt, a, best_f, es, best_k, ee, left_leaf, right_leaf
                            )
                        nodes[g, 2] = best_f
                        fnodes[g, 3] = threshold
                        nodes[g, 7] = 1 if pos - start > end - pos else 0
                        # right child below the left one: the left one is grown first
                        for side in range(2):
                            for f in range(p):
                                st_fb[top, f] = fb[f] ^ (f != best_f)
                            st_depth[top] = depth + 1
                            st_parent[top] = node_id
                            st_n_const[top] = n_total
                            if side == 0:
                                st_start[top] = pos
                                st_end[top] = end
                                st_es[top] = best_k
                                st_ee[top] = ee
                                st_is_left[top] = False
                                st_impurity[top] = imp_r
                                st_sum[top] = s_r
                                st_sq[top] = q_r
                            else:
                                st_start[top] = start
                                st_end[top] = pos
                                st_es[top] = es
                                st_ee[top] = best_k
                                st_is_left[top] = True
                                st_impurity[top] = imp_l
                                st_sum[top] = s_l
                                st_sq[top] = q_l
                            top += 1
            if not split:
                nodes[g, 0] = TREE_LEAF
                nodes[g, 1] = TREE_LEAF
                nodes[g, 2] = TREE_UNDEFINED
                fnodes[g, 3] = np.float64(TREE_UNDEFINED)
                nodes[g, 7] = 0
        max_depth[t] = depth_seen
        base += node_count
        tree_offsets[t + 1] = base

    return nodes[:base], value[:base], tree_offsets, max_depth


# -- public API ----------------------------------------------------------------------------
_NODE_FIELDS = (
    ("left_child", "<i8", 0),
    ("right_child", "<i8", 8),
    ("feature", "<i8", 16),
    ("threshold", "<f8", 24),
    ("impurity", "<f8", 32),
    ("n_node_samples", "<i8", 40),
    ("weighted_n_node_samples", "<f8", 48),
    ("missing_go_to_left", "|u1", 56),
)
_NODE_DTYPE = None
_CHUNK_BYTES = 16_000_000


def node_dtype() -> np.dtype:
    """The structured dtype of scikit-learn's ``Tree`` nodes (from a fitted tiny tree)."""
    global _NODE_DTYPE
    if _NODE_DTYPE is None:
        tree = DecisionTreeRegressor().fit(np.array([[0.0], [1.0]]), np.array([0.0, 1.0]))
        _NODE_DTYPE = tree.tree_.__getstate__()["nodes"].dtype
    return _NODE_DTYPE


def _as_sklearn_nodes(raw: np.ndarray) -> np.ndarray:
    """The grower's (n, 8) int64 node rows as an array of scikit-learn's node dtype: a view when
    the dtype has the expected 64-byte little-endian layout, else a field by field copy."""
    dt = node_dtype()
    layout = tuple((name, dt.fields[name][0].str, dt.fields[name][1]) for name in dt.names)
    if layout == _NODE_FIELDS and dt.itemsize == 64 and raw.flags.c_contiguous:
        return raw.view(dt).reshape(raw.shape[0])
    out = np.zeros(raw.shape[0], dtype=dt)  # pragma: no cover - other scikit-learn layouts
    as_f8 = raw.view(np.float64)  # pragma: no cover
    for col, (name, kind, _) in enumerate(_NODE_FIELDS):  # pragma: no cover
        out[name] = as_f8[:, col] if kind == "<f8" else raw[:, col]
    return out  # pragma: no cover


@dataclass(frozen=True, eq=False)
class GrownTrees:
    """The trees of one forest as flat arrays, tree after tree, in scikit-learn's node order
    (child indices are local to their tree).

    ``nodes``: one record per node in scikit-learn's ``Tree`` node dtype, read by field name:
    ``left_child``/``right_child`` (-1 at leaves), ``feature`` (-2 at leaves), ``threshold``
    (float64, -2.0 at leaves), ``impurity`` (weighted MSE), ``n_node_samples`` and
    ``weighted_n_node_samples`` (bootstrap duplicates counted), ``missing_go_to_left``;
    ``value`` (n_nodes,): the mean of y at every node. Per tree: ``tree_offsets``
    (``n_trees + 1``), ``max_depth``."""

    nodes: np.ndarray
    value: np.ndarray
    tree_offsets: np.ndarray
    max_depth: np.ndarray
    n_features: int

    @property
    def n_trees(self) -> int:
        return int(self.tree_offsets.shape[0] - 1)

    @property
    def node_count(self) -> np.ndarray:
        return np.diff(self.tree_offsets)


def tie_kind(X: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """How the rows of ``X`` (n, p) tie: ``(kind, X_units, unit)``.

    ``X_units`` (m, p) are the distinct rows of ``X`` and ``unit`` (n,) maps each row to its
    distinct row. ``kind``: ``"none"`` when every column holds n distinct values (the grower of
    this module is bit-identical to scikit-learn there), ``"rows"`` when whole rows repeat
    (m < n: SRDB's records in one 0.5 deg cell), ``"values"`` when only single columns tie."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = X.shape[0]
    units, unit = np.unique(X, axis=0, return_inverse=True)
    unit = np.ascontiguousarray(unit.reshape(-1), dtype=np.int64)
    units = np.ascontiguousarray(units, dtype=np.float32)
    if units.shape[0] < n:
        return "rows", units, unit
    if all(np.unique(X[:, j]).size == n for j in range(X.shape[1])):
        return "none", units, unit
    return "values", units, unit


def node_capacity(grower: str, *, n_trees: int, n_samples: int, n_rows: int) -> int:
    """Rows of the output buffers handed to a grower (``"sorted"``, ``"units"`` or ``"rows"``)
    for ``n_trees`` trees on bootstraps of ``n_samples`` draws from ``n_rows`` rows (distinct
    rows, units, for ``"units"``): room for every tree in the usual case, the grower enlarges
    them otherwise. The same bound each grower used to allocate for itself."""
    if grower == "sorted":
        return n_trees * n_samples + 2 * n_samples
    if grower == "units":
        return n_trees * min(n_rows, n_samples) * 2 + 2 * n_rows
    return n_trees * min(n_rows, n_samples) + 2 * n_rows


def _node_buffers(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """A grower's output buffers, ``nodes`` (rows, 8) int64 and ``value`` (rows,) float64,
    from :mod:`srgpu.forest.buffers` (memory of earlier forests that nothing uses any more:
    already mapped, no page faults)."""
    return buffers.empty((rows, 8), np.int64), buffers.empty((rows,), np.float64)


def _grow_checked(X, y, boot, states, mtry, nodesize, ties, exact):
    """The grower for ``ties`` (:func:`tie_kind`'s answer) and ``exact``, on checked inputs."""
    kind, units, unit = ties
    mss = nodesize + 1
    n_trees, n_s = states.shape[0], boot.shape[1]
    if kind != "none" and exact:
        cap = node_capacity("sorted", n_trees=n_trees, n_samples=n_s, n_rows=X.shape[0])
        raw, value, offsets, depth = grow_forest_sorted(
            X, y, boot, states, mtry, mss, *_node_buffers(cap)
        )
    elif kind == "rows" and not exact:
        cap = node_capacity("units", n_trees=n_trees, n_samples=n_s, n_rows=units.shape[0])
        raw, value, offsets, depth = grow_forest_units(
            units, unit, y, boot, states, mtry, mss, *_node_buffers(cap)
        )
    else:
        cap = node_capacity("rows", n_trees=n_trees, n_samples=n_s, n_rows=X.shape[0])
        raw, value, offsets, depth = _grow_forest(
            X, y, boot, states, mtry, mss, *_node_buffers(cap)
        )
    return GrownTrees(
        nodes=_as_sklearn_nodes(raw),
        value=value,
        tree_offsets=offsets,
        max_depth=depth,
        n_features=X.shape[1],
    )


def _check(X, y, boot, tree_seeds, mtry, nodesize):
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be 2-D with at least one row and column, got {X.shape}")
    n, p = X.shape
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},), got {y.shape}")
    states = rand_r_states(np.atleast_1d(tree_seeds))
    if boot is None:
        boot = np.arange(n, dtype=np.int64)[None, :]
    else:
        boot = np.ascontiguousarray(boot, dtype=np.int64)
        if boot.ndim != 2 or boot.shape[0] != states.shape[0] or boot.shape[1] < 1:
            raise ValueError("boot must have shape (n_trees, n_samples >= 1)")
        if boot.min() < 0 or boot.max() >= n:
            raise ValueError("boot holds row indices outside [0, n)")
    mtry = int(mtry)
    if not 1 <= mtry <= p:
        raise ValueError(f"mtry must lie in [1, {p}], got {mtry}")
    if int(nodesize) < 1:
        raise ValueError(f"nodesize must be >= 1, got {nodesize}")
    return X, y, boot, states, mtry, int(nodesize)


def grow_forest(
    X: np.ndarray,
    y: np.ndarray,
    *,
    boot: np.ndarray | None,
    tree_seeds: np.ndarray,
    mtry: int,
    nodesize: int,
    exact: bool = False,
) -> GrownTrees:
    """Grow one tree per entry of ``tree_seeds`` (see the module docstring).

    ``X`` (n, p) is used as float32 and ``y`` (n,) as float64, NaN-free (the caller's to check).
    ``boot`` (n_trees, n_s) holds each tree's bootstrap rows in draw order (``None``: every tree
    sees all rows once, in row order); ``tree_seeds`` are the trees' integer ``random_state``
    values in ``[0, 2**32)``. Tree ``t`` is scikit-learn's ``DecisionTreeRegressor(
    random_state=tree_seeds[t], min_samples_split=nodesize + 1, max_features=mtry)`` fitted on
    ``X[boot[t]], y[boot[t]]``: bit for bit when ``X`` has no ties between distinct rows or
    when ``exact``; with ties and not ``exact``, the same algorithm with sums taken in another
    order (see the module docstring)."""
    X, y, boot, states, mtry, nodesize = _check(X, y, boot, tree_seeds, mtry, nodesize)
    return _grow_checked(X, y, boot, states, mtry, nodesize, tie_kind(X), bool(exact))


def to_sklearn_trees(
    grown: GrownTrees, *, params: dict, tree_seeds: np.ndarray | None = None
) -> list[DecisionTreeRegressor]:
    """Fitted ``DecisionTreeRegressor`` objects holding the grown trees: constructed with
    ``params`` (and ``random_state=tree_seeds[t]`` when given), with the fitted attributes that
    ``predict``, ``apply``, ``decision_path`` and ``feature_importances_`` use."""
    p = grown.n_features
    values = grown.value.reshape(-1, 1, 1)
    n_classes = np.ones(1, dtype=np.intp)
    state = dict(DecisionTreeRegressor(**params).__dict__)
    state.update(n_features_in_=p, n_outputs_=1, max_features_=_max_features(params, p))
    offsets = grown.tree_offsets.tolist()
    depths = grown.max_depth.tolist()
    seeds = None if tree_seeds is None else [int(s) for s in tree_seeds]
    trees = []
    for t in range(grown.n_trees):
        lo, hi = offsets[t], offsets[t + 1]
        tree = Tree(p, n_classes, 1)
        tree.__setstate__(
            {
                "max_depth": depths[t],
                "node_count": hi - lo,
                "nodes": grown.nodes[lo:hi],
                "values": values[lo:hi],
            }
        )
        est = DecisionTreeRegressor.__new__(DecisionTreeRegressor)
        est.__dict__.update(state)
        if seeds is not None:
            est.random_state = seeds[t]
        est.tree_ = tree
        trees.append(est)
    return trees


def chunk_size(rows: int) -> int:
    """Trees grown per :func:`grow_forest` call for a sample of ``rows`` rows: as many as keep
    the grower's node buffer near 16 MB, at most 128 (see :func:`grow_tree_parts`)."""
    return max(1, min(128, _CHUNK_BYTES // (72 * max(int(rows), 1))))


def concat_grown(parts: list[GrownTrees]) -> GrownTrees:
    """One :class:`GrownTrees` holding the trees of ``parts`` in order."""
    if len(parts) == 1:
        return parts[0]
    sizes = [int(g.tree_offsets[-1]) for g in parts]
    starts = np.cumsum([0, *sizes[:-1]])
    offsets = np.concatenate(
        [parts[0].tree_offsets[:1]]
        + [g.tree_offsets[1:] + s for g, s in zip(parts, starts, strict=True)]
    )
    nodes = np.zeros(sum(sizes), dtype=parts[0].nodes.dtype)  # zeroed padding bytes
    for g, s in zip(parts, starts, strict=True):
        nodes[s : s + g.nodes.shape[0]] = g.nodes
    return GrownTrees(
        nodes=nodes,
        value=np.concatenate([g.value for g in parts]),
        tree_offsets=offsets,
        max_depth=np.concatenate([g.max_depth for g in parts]),
        n_features=parts[0].n_features,
    )


def grow_tree_parts(
    X: np.ndarray,
    y: np.ndarray,
    *,
    boot: np.ndarray | None,
    tree_seeds: np.ndarray,
    mtry: int,
    nodesize: int,
    chunk: int | None = None,
    exact: bool = False,
) -> list[GrownTrees]:
    """:func:`grow_forest`, ``chunk`` trees at a time (default: as many as keep the grower's
    node buffer near 16 MB): one :class:`GrownTrees` per chunk, in tree order. Each chunk's
    output buffers come from :mod:`srgpu.forest.buffers`, memory of earlier forests that
    nothing holds any more (a batch's forests all live until it is flattened, so their node
    records were fresh memory, page-faulted, at every batch: ~85 000 faults a batch of 8 real
    replicates); joined, the 500 trees of an SR forest would be one ~45 MB block instead of
    several that near sizes of other forests can reuse."""
    shared = boot is None
    X, y, boot, states, mtry, nodesize = _check(X, y, boot, tree_seeds, mtry, nodesize)
    if chunk is None:
        chunk = chunk_size(min(len(y), boot.shape[1]))
    ties = tie_kind(X)
    return [
        _grow_checked(
            X, y, boot if shared else boot[lo : lo + chunk], states[lo : lo + chunk], mtry,
            nodesize, ties, bool(exact),
        )
        for lo in range(0, states.shape[0], chunk)
    ]  # fmt: skip


def _max_features(params: dict, p: int) -> int:
    mf = params.get("max_features")
    if mf is None:
        return p
    if isinstance(mf, (int, np.integer)) and not isinstance(mf, bool):
        return int(mf)
    raise ValueError(f"max_features must be an int or None, got {mf!r}")
