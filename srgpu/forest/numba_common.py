"""numba pieces shared by srgpu's tree growers (:mod:`srgpu.forest.numba_train`,
:mod:`srgpu.forest.numba_tied`): scikit-learn's node constants, its splitter's random number
update, the stable partition of per-feature sorted lists and a buffer that grows."""

from __future__ import annotations

import numpy as np
from numba import njit

TREE_LEAF = -1
"""scikit-learn's ``children_left/right`` of a leaf."""

TREE_UNDEFINED = -2
"""scikit-learn's ``feature`` and ``threshold`` of a leaf."""

M32 = 0xFFFFFFFF


U1 = np.uint64(1)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def xorshift32(s):
    """scikit-learn's ``our_rand_r`` state update (``s`` in ``[0, 2**32)``, 0 replaced by 1)."""
    if s == 0:
        s = 1
    s ^= (s << 13) & M32
    s ^= s >> 17
    s ^= (s << 5) & M32
    return s


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def partition_lists(bufs, fb, Xt, a, best_f, es, mid, ee, left_leaf, right_leaf):
    """Stable partition of every feature's rows but the split feature's, from their buffer
    ``fb[f]`` to the other one: rows with ``Xt[best_f] <= a`` (``a``: the largest value on the
    left) to ``[es, mid)``, the others to ``[mid, ee)``. The split feature's rows are already in
    order and stay where they are. A child that is a leaf is skipped (its rows are not needed
    any more)."""
    p = bufs.shape[1]
    es_u = np.uint64(es)
    mid_u = np.uint64(mid)
    ee_u = np.uint64(ee)
    for f in range(p):
        if f == best_f:
            continue
        src = fb[f]
        dst = 1 - src
        if left_leaf:  # right rows only, filled backwards: stray writes stay left of mid
            w = ee_u - U1
            k = ee_u
            while k > es_u:
                k -= U1
                r = bufs[src, f, k]
                bufs[dst, f, w] = r
                w -= np.uint64(Xt[best_f, r] > a)
        elif right_leaf:  # left rows only: stray writes stay right of mid
            w = es_u
            for k in range(es_u, ee_u):
                r = bufs[src, f, k]
                bufs[dst, f, w] = r
                w += np.uint64(Xt[best_f, r] <= a)
        else:
            wl = es_u
            wr = mid_u
            for k in range(es_u, ee_u):
                r = bufs[src, f, k]
                gl = Xt[best_f, r] <= a
                bufs[dst, f, wl if gl else wr] = r
                wl += np.uint64(gl)
                wr += np.uint64(not gl)


@njit(cache=True, nogil=True, error_model="numpy")
def grow_array(a, rows):
    out = np.empty((rows,) + a.shape[1:], dtype=a.dtype)
    out[: a.shape[0]] = a
    return out
