"""The numba walk's partition, 16 rows at a time in vector instructions (AVX-512).

The numba kernel (:mod:`srgpu.forest.numba_engine`) spends most of its time partitioning a
node's list of row numbers into the rows going left and those going right. One row at a time
that is two loads, a comparison and two stores (~0.7 ns a row on the AMD EPYC measured). With
AVX-512 a step takes 16 row numbers at once: one vector load, one gather of their values of the
node's feature, one vector comparison (a 16-bit mask), and two *compress* instructions that pack
the left rows and the right rows into the low lanes of two registers, each stored whole: ~0.5 ns
a row. The left rows are stored at the front of the child list; the right rows go forward into
a scratch list and are copied behind the left ones at the end (a full-width store at the front
writes up to 15 lanes of garbage past the last left row, always inside the child list and
overwritten later, which a store from the back could not guarantee). Rows left over (fewer than
16) take the scalar loop. Which rows go where is the scalar partition's, so the kernel's sums
are unchanged bit for bit (each row's leaf values are still added in tree order; only the order
of rows inside a list differs, and rows do not interact).

The instructions are LLVM's target-independent ``llvm.masked.gather`` and
``llvm.experimental.vector.compress`` (LLVM 19 and newer): on a CPU without AVX-512 they compile
to scalar code, correct but slower than the plain loop, so :func:`usable` enables this path only
where the target has AVX-512F (and never with ``NUMBA_DISABLE_JIT``, where the intrinsic cannot
run).
"""

from __future__ import annotations

import functools

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 16

_U = np.uint64
_i1, _i16, _i32, _i64 = ir.IntType(1), ir.IntType(16), ir.IntType(32), ir.IntType(64)
_f32 = ir.FloatType()


def _vec(t: ir.Type) -> ir.VectorType:
    return ir.VectorType(t, LANES)


def _splat(builder: ir.IRBuilder, value: ir.Value, t: ir.Type) -> ir.Value:
    v = builder.insert_element(ir.Constant(_vec(t), ir.Undefined), value, ir.Constant(_i32, 0))
    return builder.shuffle_vector(
        v, ir.Constant(_vec(t), ir.Undefined), ir.Constant(_vec(_i32), [0] * LANES)
    )


def _declare(builder: ir.IRBuilder, name: str, ret: ir.Type, args: list) -> ir.Function:
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)


@intrinsic
def split16(typingctx, rows, i, xt, col, t, nan_right, nl, tmp, nt):
    """One 16-row step: rows ``rows[i:i + 16]`` (all valid) go right where
    ``xt[col + row] > t`` (or is NaN, when ``nan_right``). The left rows are stored at
    ``rows[nl:]`` and the right rows at ``tmp[nt:]``, 16 lanes each (lanes past the count are
    garbage: the caller keeps room for them). Returns the number of left rows (uint64)."""
    sig = types.uint64(rows, i, xt, col, t, nan_right, nl, tmp, nt)

    def codegen(context, builder, signature, args):
        rows_a, i_v, xt_a, col_v, t_v, nan_right_v, nl_v, tmp_a, nt_v = args
        data = [
            cgutils.create_struct_proxy(signature.args[k])(context, builder, value=args[k]).data
            for k in (0, 2, 7)
        ]
        rows_p, xt_p, tmp_p = data
        vec_ptr = ir.PointerType(_vec(_i32))
        r = builder.load(builder.bitcast(builder.gep(rows_p, [i_v]), vec_ptr), align=4)
        base = builder.gep(xt_p, [col_v])
        ptrs = builder.gep(base, [r], source_etype=_f32)  # a vector of 16 addresses
        ptrs.type = _vec(base.type)  # (llvmlite types a vector GEP as a scalar pointer)
        gather = _declare(
            builder, "llvm.masked.gather.v16f32.v16p0", _vec(_f32), [ptrs.type, _i32, _vec(_i1),
            _vec(_f32)],
        )  # fmt: skip
        x = builder.call(
            gather,
            [ptrs, ir.Constant(_i32, 4), ir.Constant(_vec(_i1), [1] * LANES),
             ir.Constant(_vec(_f32), ir.Undefined)],
        )  # fmt: skip
        tv = _splat(builder, t_v, _f32)
        nan_right_b = builder.icmp_unsigned("!=", nan_right_v, ir.Constant(nan_right_v.type, 0))
        right = builder.select(
            nan_right_b, builder.fcmp_unordered(">", x, tv), builder.fcmp_ordered(">", x, tv)
        )
        left = builder.not_(right)
        compress = _declare(
            builder, "llvm.experimental.vector.compress.v16i32", _vec(_i32),
            [_vec(_i32), _vec(_i1), _vec(_i32)],
        )  # fmt: skip
        undef = ir.Constant(_vec(_i32), ir.Undefined)
        lv = builder.call(compress, [r, left, undef])
        rv = builder.call(compress, [r, right, undef])
        builder.store(lv, builder.bitcast(builder.gep(rows_p, [nl_v]), vec_ptr), align=4)
        builder.store(rv, builder.bitcast(builder.gep(tmp_p, [nt_v]), vec_ptr), align=4)
        ctpop = _declare(builder, "llvm.ctpop.i16", _i16, [_i16])
        return builder.zext(builder.call(ctpop, [builder.bitcast(left, _i16)]), _i64)

    return sig, codegen


@njit(cache=True, fastmath=False, boundscheck=False, inline="always")
def partition_rows16(xt, col, t, nan_right, rows, s, e, d, tmp):
    """Partition ``rows[s:e]`` by ``xt[col + row] > t`` (NaN right when ``nan_right``): the left
    rows to ``rows[d:nl]``, the right ones to ``rows[nl:d + e - s]``; returns ``nl``. The
    destination must not overlap ``rows[s:e]``; ``tmp`` holds at least ``e - s + 16`` rows.
    The same contract as :func:`srgpu.forest.numba_engine.partition_rows`."""
    one = _U(1)
    lanes = _U(LANES)
    nl = d
    nt = _U(0)
    i = s
    while i + lanes <= e:  # a store at nl writes 16 lanes: nl + 16 <= d + (i + 16 - s) <= end
        c = split16(rows, i, xt, col, t, nan_right, nl, tmp, nt)
        nl += c
        nt += lanes - c
        i += lanes
    while i < e:
        r = rows[i]
        x = xt[col + _U(r)]
        go = _U((x > t) | (nan_right and x != x))
        rows[nl] = r
        tmp[nt] = r
        nl += one - go
        nt += go
        i += one
    for k in range(nt):
        rows[nl + k] = tmp[k]
    return nl


@functools.cache
def usable() -> bool:
    """Whether :func:`partition_rows16` is worth using here: numba compiles (no
    ``NUMBA_DISABLE_JIT``), its LLVM has the compress intrinsic (19+), and the target CPU
    (numba's ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` if set, else this host) has AVX-512F."""
    if numba.config.DISABLE_JIT or llvm.llvm_version_info < (19,):
        return False
    if numba.config.CPU_NAME and numba.config.CPU_NAME != "host":
        return "+avx512f" in (numba.config.CPU_FEATURES or "")
    return bool(llvm.get_host_cpu_features().get("avx512f", False))


def choose(scalar, avx512):
    """The form of a kernel this CPU runs: ``avx512`` (its twin compiled with the vector steps)
    where :func:`usable`, else ``scalar``; the two give the same results bit for bit."""
    return avx512 if usable() else scalar
