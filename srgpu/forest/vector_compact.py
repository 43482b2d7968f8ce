"""The weight kernels' compaction, 16 records at a time in vector instructions (AVX-512).

Before its order statistics are read, a row's weight vector (one float64 per training record,
sorted by y; about one record in fifteen nonzero on the real grid) is compacted to its nonzero
entries and their values, and cleared for the next row
(:func:`srgpu.forest.predictive_kernels._compact_and_clear`). One record at a time that is a
store and a compare a record, with the count carried from one to the next. Here a step takes
16 records: two vector loads of the weights, two comparisons (a 16-bit mask), one *compress*
instruction that packs the numbers of the nonzero records into the low lanes of a register,
stored whole at the end of the list of numbers (lanes past the count are garbage and overwritten
by the next step: the list keeps room for 16 more). Records left over (fewer than 16) take the
scalar loop. Then, as in the scalar loop, the weights and values of the listed records are
gathered and their weights cleared. The compacted lists are the scalar loop's, value for value:
the order statistics read from them are the same bits.

The same LLVM intrinsic as :mod:`srgpu.forest.vector_split` (``llvm.experimental.vector.compress``,
LLVM 19 and newer), used under the same condition (:func:`srgpu.forest.vector_split.usable`).
Measured on the real grid's SR rows (one forest of 500 trees, ~200 nonzero of 2945 records a
row, AMD EPYC with AVX-512, one thread, the exact-quantile kernel): 11.43 -> 10.99 µs a row with
8 records a step compressing the weights and values themselves, then 8.43 -> 8.18 µs (later
kernel) with 16 record numbers a step.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 16
"""Records a step; the list of record numbers needs this many entries of room past the last
record."""

_U = np.uint64
_i1, _i16, _i32, _i64 = ir.IntType(1), ir.IntType(16), ir.IntType(32), ir.IntType(64)
_V8 = ir.VectorType(ir.DoubleType(), 8)
_V16 = ir.VectorType(_i32, LANES)


@intrinsic
def nonzero16(typingctx, w, j, ids, k):
    """One 16-record step: the numbers ``j .. j + 15`` of the records whose ``w`` is nonzero go
    to ``ids[k:]`` (int32; 16 lanes stored, lanes past the count garbage). Returns their count
    (uint64). "Nonzero" as in the scalar loop: ``w != 0.0`` (unordered: NaN counts)."""
    sig = types.uint64(w, j, ids, k)

    def codegen(context, builder, signature, args):
        w_p, ids_p = (
            cgutils.create_struct_proxy(signature.args[i])(context, builder, value=args[i]).data
            for i in (0, 2)
        )
        j_v, k_v = args[1], args[3]
        vp = ir.PointerType(_V8)
        zero = ir.Constant(_V8, [0.0] * 8)
        halves = []
        for start in (j_v, builder.add(j_v, ir.Constant(_i64, 8))):
            v = builder.load(builder.bitcast(builder.gep(w_p, [start]), vp), align=8)
            halves.append(builder.fcmp_unordered("!=", v, zero))
        keep = builder.shuffle_vector(*halves, ir.Constant(_V16, list(range(LANES))))
        first = builder.insert_element(
            ir.Constant(_V16, ir.Undefined), builder.trunc(j_v, _i32), ir.Constant(_i32, 0)
        )
        first = builder.shuffle_vector(
            first, ir.Constant(_V16, ir.Undefined), ir.Constant(_V16, [0] * LANES)
        )
        numbers = builder.add(first, ir.Constant(_V16, list(range(LANES))))
        compress = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_V16, [_V16, ir.VectorType(_i1, LANES), _V16]),
            "llvm.experimental.vector.compress.v16i32",
        )  # fmt: skip
        packed = builder.call(compress, [numbers, keep, ir.Constant(_V16, ir.Undefined)])
        builder.store(packed, builder.bitcast(builder.gep(ids_p, [k_v]), ir.PointerType(_V16)),
                      align=4)  # fmt: skip
        ctpop = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_i16, [_i16]), "llvm.ctpop.i16"
        )
        return builder.zext(builder.call(ctpop, [builder.bitcast(keep, _i16)]), _i64)

    return sig, codegen


@njit(cache=True, nogil=True, boundscheck=False, inline="always")
def compact_and_clear16(w, y, ys, ws, ids):
    """The nonzero entries of ``w`` and their ``y`` into ``ws`` and ``ys`` (in order), ``w``
    zeroed; returns their number. ``ids`` (int32) holds at least ``w.size + 16`` entries. The
    contract of :func:`srgpu.forest.predictive_kernels._compact_and_clear`."""
    n = _U(w.shape[0])
    lanes = _U(LANES)
    k = _U(0)
    j = _U(0)
    while j + lanes <= n:
        k += nonzero16(w, j, ids, k)
        j += lanes
    while j < n:
        ids[k] = np.int32(j)
        k += _U(w[j] != 0.0)
        j += _U(1)
    for i in range(k):
        r = _U(ids[i])
        ws[i] = w[r]
        ys[i] = y[r]
        w[r] = 0.0
    return np.int64(k)
