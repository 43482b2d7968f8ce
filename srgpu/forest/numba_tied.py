"""Tree growers for predictors with ties between distinct rows (SRDB: the records of one 0.5 deg
cell share every predictor value). Both return what
:func:`srgpu.forest.numba_train._grow_forest` returns and are chosen by
:func:`srgpu.forest.numba_train.grow_forest` (contract and reproduced rules: that module's
docstring).

:func:`grow_forest_sorted` replays scikit-learn 1.9's ``DepthFirstTreeBuilder`` and
``BestSplitter`` step for step on its ``samples`` array: per node the criterion's sums in the
samples' order, the feature draws, for every drawn feature the copy of its values and
``simultaneous_sort(..., use_three_way_partition=True)`` (introsort: median-of-3 pivot, 3-way
partition, heapsort past ``2 * floor(log2 n)`` levels, insertion sort at 15 elements or fewer;
not stable, so the order it leaves tied samples in is its own), the scan of split positions
(``FEATURE_THRESHOLD`` skips, forward or backward ``update``), ``partition_samples_final`` and
``children_impurity``. Every float is therefore computed in scikit-learn's order: its trees bit
for bit, ties or not. It does scikit-learn's sorting work (one introsort per drawn feature and
node), which dominates on these data, so it is only a little faster than scikit-learn.

:func:`grow_forest_units` grows the same trees from the *distinct* rows ("units"): rows with equal
predictors are never separated by a split, so a node is a set of units, each carrying its
bootstrap count and the sums of its copies' y and y**2. Like the grower of
:mod:`~srgpu.forest.numba_train` it sorts each predictor once per forest and keeps every node's
units in each predictor's order, partitioned stably at each split, so a split search is one pass
over the node's units (an SRDB draw of ~2950 records has ~730 units). Same feature draws, same
constant-feature bookkeeping, same candidate positions and proxies, same leaf rules; only the
order of the additions differs from scikit-learn's, so its trees are scikit-learn's bit for bit
whenever the sums are exact in any order (integer responses) and the same up to rounding
otherwise.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from srgpu.forest.numba_common import (
    M32,
    TREE_LEAF,
    TREE_UNDEFINED,
    grow_array,
    partition_lists,
    xorshift32,
)

_SMALL = 15  # introsort hands segments of at most this many elements to insertion sort


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _swap(v, s, i, j):
    tv = v[i]
    v[i] = v[j]
    v[j] = tv
    ts = s[i]
    s[i] = s[j]
    s[j] = ts


@njit(cache=True, nogil=True, error_model="numpy")
def _heapsort(v, s, o, n):
    """scikit-learn's ``heapsort`` of ``v[o:o+n]`` (with ``s``)."""
    start = (n - 2) // 2
    end = n
    while True:
        _sift_down(v, s, o, start, end)
        if start == 0:
            break
        start -= 1
    end = n - 1
    while end > 0:
        _swap(v, s, o, o + end)
        _sift_down(v, s, o, 0, end)
        end -= 1


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sift_down(v, s, o, start, end):
    root = start
    while True:
        child = root * 2 + 1
        maxind = root
        if child < end and v[o + maxind] < v[o + child]:
            maxind = child
        if child + 1 < end and v[o + maxind] < v[o + child + 1]:
            maxind = child + 1
        if maxind == root:
            break
        _swap(v, s, o + root, o + maxind)
        root = maxind


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _insertion_sort(v, s, o, n):
    for i in range(o + 1, o + n):
        tv = v[i]
        ts = s[i]
        j = i
        while j > o and v[j - 1] > tv:
            v[j] = v[j - 1]
            s[j] = s[j - 1]
            j -= 1
        v[j] = tv
        s[j] = ts


@njit(cache=True, nogil=True, error_model="numpy")
def _introsort3(v, s, o0, n0, stk_o, stk_n, stk_d):
    """scikit-learn's ``simultaneous_sort(..., use_three_way_partition=True)`` of
    ``v[o0:o0+n0]`` with ``s``: introsort, median-of-3 pivot, 3-way partition, heapsort past
    ``2 * floor(log2 n)`` levels, insertion sort at 15 elements or fewer. Segments are
    independent, so an explicit stack replaces the recursion."""
    if n0 == 0:
        return
    maxd0 = 0
    m = n0
    while m > 1:
        m >>= 1
        maxd0 += 1
    maxd0 *= 2
    top = 0
    stk_o[0] = o0
    stk_n[0] = n0
    stk_d[0] = maxd0
    top = 1
    while top > 0:
        top -= 1
        o = stk_o[top]
        n = stk_n[top]
        maxd = stk_d[top]
        done = False
        while n > _SMALL:
            if maxd <= 0:
                _heapsort(v, s, o, n)
                done = True
                break
            maxd -= 1
            a = v[o]
            b = v[o + n // 2]
            c = v[o + n - 1]
            if a < b:
                if b < c:
                    pivot = b
                elif a < c:
                    pivot = c
                else:
                    pivot = a
            elif b < c:
                if a < c:
                    pivot = a
                else:
                    pivot = c
            else:
                pivot = b
            i = o
            lo = o
            r = o + n
            while i < r:
                x = v[i]
                if x < pivot:
                    _swap(v, s, i, lo)
                    i += 1
                    lo += 1
                elif x > pivot:
                    r -= 1
                    _swap(v, s, i, r)
                else:
                    i += 1
            # left part [o, lo) later (independent), continue with [r, o + n)
            if lo - o > 1:
                stk_o[top] = o
                stk_n[top] = lo - o
                stk_d[top] = maxd
                top += 1
            n = o + n - r
            o = r
        if not done:
            _insertion_sort(v, s, o, n)


@njit(cache=True, nogil=True, error_model="numpy")
def grow_forest_sorted(X, y, boot, rand_states, mtry, min_samples_split, nodes, value):
    """All trees of one forest by scikit-learn's algorithm step for step (see the module
    docstring); same outputs as :func:`srgpu.forest.numba_train._grow_forest`, written to the
    given ``nodes`` and ``value`` buffers in the same way."""
    n, p = X.shape
    n_trees = rand_states.shape[0]
    n_s = boot.shape[1]
    eps = np.finfo(np.float64).eps
    thr32 = np.float32(1e-7)

    Xt = np.empty((p, n), dtype=np.float32)
    for f in range(p):
        Xt[f] = X[:, f]

    samples = np.empty(n_s, dtype=np.int64)
    vals = np.empty(n_s, dtype=np.float32)
    stk_o = np.empty(64 + n_s, dtype=np.int64)
    stk_n = np.empty(64 + n_s, dtype=np.int64)
    stk_d = np.empty(64 + n_s, dtype=np.int64)
    features = np.empty(p, dtype=np.int64)
    constant_features = np.zeros(p, dtype=np.int64)
    stack_size = n_s + 2
    st_start = np.empty(stack_size, dtype=np.int64)
    st_end = np.empty(stack_size, dtype=np.int64)
    st_depth = np.empty(stack_size, dtype=np.int64)
    st_parent = np.empty(stack_size, dtype=np.int64)
    st_is_left = np.empty(stack_size, dtype=np.bool_)
    st_impurity = np.empty(stack_size, dtype=np.float64)
    st_n_const = np.empty(stack_size, dtype=np.int64)

    cap = nodes.shape[0]  # the caller's output buffers, grown below if a tree might not fit
    fnodes = nodes.view(np.float64)
    tree_offsets = np.zeros(n_trees + 1, dtype=np.int64)
    max_depth = np.zeros(n_trees, dtype=np.int64)

    shared_boot = boot.shape[0] == 1
    base = 0
    for t in range(n_trees):
        b = boot[0] if shared_boot else boot[t]
        for i in range(n_s):
            samples[i] = b[i]
        if base + 2 * n_s > cap:
            cap = max(2 * cap, base + 2 * n_s)
            nodes = grow_array(nodes, cap)
            fnodes = nodes.view(np.float64)
            value = grow_array(value, cap)
        for f in range(p):
            features[f] = f
        rs = rand_states[t] & M32

        st_start[0] = 0
        st_end[0] = n_s
        st_depth[0] = 0
        st_parent[0] = -1
        st_is_left[0] = False
        st_impurity[0] = 0.0
        st_n_const[0] = 0
        top = 1
        node_count = 0
        depth_seen = 0
        first = True
        while top > 0:
            top -= 1
            start = st_start[top]
            end = st_end[top]
            depth = st_depth[top]
            parent = st_parent[top]
            node_imp = st_impurity[top]
            n_known = st_n_const[top]

            # criterion.init: sums in the samples' order
            sum_total = 0.0
            sq_total = 0.0
            for i in range(start, end):
                yi = y[samples[i]]
                sum_total += yi
                sq_total += yi * yi
            n_samples = end - start
            w_node = np.float64(n_samples)
            if first:
                node_imp = sq_total / w_node - (sum_total / w_node) ** 2
                first = False

            node_id = node_count
            node_count += 1
            g = base + node_id
            if parent >= 0:
                nodes[base + parent, 0 if st_is_left[top] else 1] = node_id
            if depth > depth_seen:
                depth_seen = depth
            fnodes[g, 4] = node_imp
            nodes[g, 5] = n_samples
            fnodes[g, 6] = w_node
            value[g] = sum_total / w_node

            is_leaf = n_samples < min_samples_split or node_imp <= eps
            split = False
            if not is_leaf:
                best_proxy = -np.inf
                best_pos = end
                best_f = 0
                best_thr = 0.0
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
                    xf = Xt[f]
                    for i in range(start, end):
                        vals[i] = xf[samples[i]]
                    _introsort3(vals, samples, start, n_samples, stk_o, stk_n, stk_d)
                    if vals[end - 1] <= vals[start] + thr32:
                        features[f_j] = features[n_total]
                        features[n_total] = f
                        n_found += 1
                        n_total += 1
                        continue
                    f_i -= 1
                    tmp = features[f_i]
                    features[f_i] = features[f_j]
                    features[f_j] = tmp
                    # criterion.reset(), then next_p / update / proxy
                    sl = 0.0
                    pos = start
                    pp = start
                    while pp < end:
                        pp += 1
                        while pp < end and vals[pp] <= vals[pp - 1] + thr32:
                            pp += 1
                        if pp == end:
                            continue
                        if pp - pos <= end - pp:
                            for i in range(pos, pp):
                                sl += y[samples[i]]
                        else:
                            sl = sum_total
                            for i in range(end - 1, pp - 1, -1):
                                sl -= y[samples[i]]
                        pos = pp
                        wl = np.float64(pp - start)
                        sr = sum_total - sl
                        proxy = sl * sl / wl + sr * sr / (w_node - wl)
                        if proxy > best_proxy:
                            best_proxy = proxy
                            best_pos = pp
                            best_f = f
                            best_thr = np.float64(vals[pp - 1]) / 2.0 + np.float64(vals[pp]) / 2.0
                for i in range(n_known):
                    features[i] = constant_features[i]
                for i in range(n_known, n_known + n_found):
                    constant_features[i] = features[i]

                if best_pos < end:
                    pos = best_pos
                    # partition_samples_final
                    i = start
                    j = end
                    xb = Xt[best_f]
                    while i < j:
                        if np.float64(xb[samples[i]]) <= best_thr:
                            i += 1
                        else:
                            j -= 1
                            tmp = samples[i]
                            samples[i] = samples[j]
                            samples[j] = tmp
                    # criterion.reset(); update(pos); children_impurity()
                    if pos - start <= end - pos:
                        sum_left = 0.0
                        for i in range(start, pos):
                            sum_left += y[samples[i]]
                    else:
                        sum_left = sum_total
                        for i in range(end - 1, pos - 1, -1):
                            sum_left -= y[samples[i]]
                    q_l = 0.0
                    for i in range(start, pos):
                        yi = y[samples[i]]
                        q_l += yi * yi
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
                        nodes[g, 2] = best_f
                        fnodes[g, 3] = best_thr
                        nodes[g, 7] = 1 if pos - start > end - pos else 0
                        st_start[top] = pos
                        st_end[top] = end
                        st_depth[top] = depth + 1
                        st_parent[top] = node_id
                        st_is_left[top] = False
                        st_impurity[top] = imp_r
                        st_n_const[top] = n_total
                        top += 1
                        st_start[top] = start
                        st_end[top] = pos
                        st_depth[top] = depth + 1
                        st_parent[top] = node_id
                        st_is_left[top] = True
                        st_impurity[top] = imp_l
                        st_n_const[top] = n_total
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


@njit(cache=True, nogil=True, error_model="numpy")
def grow_forest_units(Xu, unit, y, boot, rand_states, mtry, min_samples_split, nodes, value):
    """All trees of one forest on *units*, the distinct rows of ``X`` (``Xu`` (m, p); row ``i``
    of ``X`` is unit ``unit[i]``): rows with the same predictor values are never separated by a
    split, so a node is a set of units, each with its bootstrap count and the sums of its
    copies' y and y**2. Same outputs as :func:`grow_forest_sorted`; same trees up to rounding
    (see the module docstring). Output buffers ``nodes`` and ``value`` as for
    :func:`grow_forest_sorted`."""
    m, p = Xu.shape
    n_trees = rand_states.shape[0]
    n_s = boot.shape[1]
    eps = np.finfo(np.float64).eps
    thr32 = np.float32(1e-7)

    Xt = np.empty((p, m), dtype=np.float32)
    order = np.empty((p, m), dtype=np.uint32)
    for f in range(p):
        col = Xu[:, f].copy()
        Xt[f] = col
        order[f] = np.argsort(col, kind="mergesort").astype(np.uint32)

    cnt = np.zeros(m, dtype=np.int64)
    us = np.zeros(m, dtype=np.float64)
    uq = np.zeros(m, dtype=np.float64)
    bufs = np.empty((2, p, m + 1), dtype=np.uint32)
    fb = np.zeros(p, dtype=np.int64)
    features = np.empty(p, dtype=np.int64)
    constant_features = np.zeros(p, dtype=np.int64)
    stack_size = m + 2
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
    st_fb = np.empty((stack_size, p), dtype=np.uint8)

    cap = nodes.shape[0]  # the caller's output buffers, grown below if a tree might not fit
    fnodes = nodes.view(np.float64)
    tree_offsets = np.zeros(n_trees + 1, dtype=np.int64)
    max_depth = np.zeros(n_trees, dtype=np.int64)

    shared_boot = boot.shape[0] == 1
    base = 0
    for t in range(n_trees):
        b = boot[0] if shared_boot else boot[t]
        cnt[:] = 0
        us[:] = 0.0
        uq[:] = 0.0
        s_tot = 0.0
        q_tot = 0.0
        for i in range(n_s):
            r = b[i]
            u = unit[r]
            yi = y[r]
            cnt[u] += 1
            us[u] += yi
            uq[u] += yi * yi
            s_tot += yi
            q_tot += yi * yi
        mu = 0
        for f in range(p):
            dst = bufs[0, f]
            k = np.uint64(0)
            for i in range(m):
                u = order[f, i]
                dst[k] = u
                k += np.uint64(cnt[u] > 0)
            mu = np.int64(k)
        if base + 2 * mu > cap:
            cap = max(2 * cap, base + 2 * mu)
            nodes = grow_array(nodes, cap)
            fnodes = nodes.view(np.float64)
            value = grow_array(value, cap)
        for f in range(p):
            features[f] = f
        rs = rand_states[t] & M32

        st_start[0] = 0
        st_end[0] = n_s
        st_es[0] = 0
        st_ee[0] = mu
        st_depth[0] = 0
        st_parent[0] = -1
        st_is_left[0] = False
        st_impurity[0] = q_tot / n_s - (s_tot / n_s) ** 2
        st_n_const[0] = 0
        st_sum[0] = s_tot
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
                best_proxy = -np.inf
                best_k = -1
                best_f = 0
                best_sl = 0.0
                best_ql = 0.0
                best_wl = 0
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
                    src = bufs[fb[f], f]
                    xf = Xt[f]
                    lo = xf[src[es]]
                    hi = xf[src[ee - 1]]
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
                    # one pass over the node's units in this feature's order
                    s = 0.0
                    q = 0.0
                    wl = 0
                    u = src[es]
                    prev = xf[u]
                    for k in range(es + 1, ee):
                        s += us[u]
                        q += uq[u]
                        wl += cnt[u]
                        u = src[k]
                        v = xf[u]
                        if v > prev + thr32:
                            wlf = np.float64(wl)
                            sr = sum_total - s
                            proxy = s * s / wlf + sr * sr / (w_node - wlf)
                            if proxy > best_proxy:
                                best_proxy = proxy
                                best_k = k
                                best_f = f
                                best_sl = s
                                best_ql = q
                                best_wl = wl
                        prev = v
                for i in range(n_known):
                    features[i] = constant_features[i]
                for i in range(n_known, n_known + n_found):
                    constant_features[i] = features[i]

                if best_k >= 0:
                    pos = start + best_wl
                    src = bufs[fb[best_f], best_f]
                    a = Xt[best_f, src[best_k - 1]]
                    b_ = Xt[best_f, src[best_k]]
                    threshold = np.float64(a) / 2.0 + np.float64(b_) / 2.0
                    s_l = best_sl
                    q_l = best_ql
                    s_r = 0.0
                    q_r = 0.0
                    for k in range(best_k, ee):
                        u = src[k]
                        s_r += us[u]
                        q_r += uq[u]
                    w_l = np.float64(pos - start)
                    w_r = np.float64(end - pos)
                    imp_l = q_l / w_l - (s_l / w_l) ** 2
                    imp_r = q_r / w_r - (s_r / w_r) ** 2
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
                            else:
                                st_start[top] = start
                                st_end[top] = pos
                                st_es[top] = es
                                st_ee[top] = best_k
                                st_is_left[top] = True
                                st_impurity[top] = imp_l
                                st_sum[top] = s_l
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
