"""The weight kernels' compaction, 8 records at a time in vector instructions (AVX-512).

Before its order statistics are read, a row's weight vector (one float64 per training record,
sorted by y; about one record in ten or fifteen nonzero on the real grid) is compacted to its
nonzero entries and their values, and cleared for the next row
(:func:`srgpu.forest.predictive_kernels._compact_and_clear`). One record at a time that is a
store and a compare a record, with the count carried from one to the next. Here a step takes 8
records: one vector load of the weights and one of the values, one comparison (an 8-bit mask),
two *compress* instructions that pack the nonzero weights and their values into the low lanes
of two registers, each stored whole at the end of the compacted lists (lanes past the count are
garbage and overwritten by the next step: the lists keep room for 8 more), one store of zeros.
Records left over (fewer than 8) take the scalar loop. The compacted lists are the scalar
loop's, value for value: the order statistics read from them are the same bits.

The same LLVM intrinsic as :mod:`srgpu.forest.vector_split` (``llvm.experimental.vector.compress``,
LLVM 19 and newer), used under the same condition (:func:`srgpu.forest.vector_split.usable`).
Measured on the real grid's SR rows (one forest of 500 trees, ~200 nonzero of 2945 records a
row, AMD EPYC with AVX-512, one thread): the exact-quantile kernel 11.43 -> 10.99 µs a row.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 8
"""Records a step (float64 lanes of a 512-bit register); the compacted lists need this many
entries of room past the last record."""

_U = np.uint64
_i1, _i8, _i64 = ir.IntType(1), ir.IntType(8), ir.IntType(64)
_f64 = ir.DoubleType()
_V = ir.VectorType(_f64, LANES)


@intrinsic
def compact8(typingctx, w, y, j, ws, ys, k):
    """One 8-record step: the nonzero entries of ``w[j:j + 8]`` and their ``y`` go to
    ``ws[k:]`` and ``ys[k:]`` (8 lanes each stored, lanes past the count garbage), and
    ``w[j:j + 8]`` is zeroed. Returns the number of nonzero entries (uint64). A weight is
    "nonzero" as in the scalar loop: ``w != 0.0`` (unordered: NaN counts, as there)."""
    sig = types.uint64(w, y, j, ws, ys, k)

    def codegen(context, builder, signature, args):
        data = [
            cgutils.create_struct_proxy(signature.args[i])(context, builder, value=args[i]).data
            for i in (0, 1, 3, 4)
        ]
        w_p, y_p, ws_p, ys_p = data
        j_v, k_v = args[2], args[5]
        vp = ir.PointerType(_V)
        w_ptr = builder.bitcast(builder.gep(w_p, [j_v]), vp)
        wv = builder.load(w_ptr, align=8)
        yv = builder.load(builder.bitcast(builder.gep(y_p, [j_v]), vp), align=8)
        zero = ir.Constant(_V, [0.0] * LANES)
        keep = builder.fcmp_unordered("!=", wv, zero)
        compress = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_V, [_V, ir.VectorType(_i1, LANES), _V]),
            "llvm.experimental.vector.compress.v8f64",
        )  # fmt: skip
        undef = ir.Constant(_V, ir.Undefined)
        builder.store(builder.call(compress, [wv, keep, undef]),
                      builder.bitcast(builder.gep(ws_p, [k_v]), vp), align=8)  # fmt: skip
        builder.store(builder.call(compress, [yv, keep, undef]),
                      builder.bitcast(builder.gep(ys_p, [k_v]), vp), align=8)  # fmt: skip
        builder.store(zero, w_ptr, align=8)
        ctpop = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_i8, [_i8]), "llvm.ctpop.i8"
        )
        return builder.zext(builder.call(ctpop, [builder.bitcast(keep, _i8)]), _i64)

    return sig, codegen


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def compact_and_clear8(w, y, ys, ws, ids):
    """The nonzero entries of ``w`` and their ``y`` into ``ws`` and ``ys`` (in order), ``w``
    zeroed; returns their number. ``ws`` and ``ys`` hold at least ``w.size + 8`` entries.
    The contract of :func:`srgpu.forest.predictive_kernels._compact_and_clear` (``ids``,
    its scratch, is not used)."""
    n = _U(w.shape[0])
    lanes = _U(LANES)
    k = _U(0)
    j = _U(0)
    while j + lanes <= n:
        k += compact8(w, y, j, ws, ys, k)
        j += lanes
    while j < n:
        v = w[j]
        ws[k] = v
        ys[k] = y[j]
        k += _U(v != 0.0)
        w[j] = 0.0
        j += _U(1)
    return np.int64(k)
