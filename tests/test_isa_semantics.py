"""Functional semantics against plain NumPy on random data: matmul, every vector op, quantization edges,
conversions and strided DMA."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

from isa import (
    Bcast,
    CoreState,
    DmaLd,
    DmaSt,
    DType,
    IsaError,
    Ldw,
    Matmul,
    Mem,
    NocSend,
    Reduce,
    Signal,
    Unit,
    Vadd,
    Vcvt,
    Vdeq,
    Vdeqc,
    Vexp,
    Vgelu,
    Vmax,
    Vmul,
    Vquant,
    Vrecip,
    Vreq,
    Vrmax,
    Vrsqrt,
    Vrsum,
    Vscale,
    Vsub,
    Wait,
    apply,
    read_bytes,
    write_bytes,
)
from isa.semantics import bf16_to_f32, f32_to_bf16, tile

RNG = np.random.default_rng(1234)
DRAM = np.zeros(1 << 16, np.uint8)


def _state() -> CoreState:
    return CoreState.create(spad_bytes=1 << 16, acc_bytes=1 << 16)


def _put(state: CoreState, mem: Mem, addr: int, array: np.ndarray) -> None:
    write_bytes(state, mem, addr, np.ascontiguousarray(array).view(np.uint8).reshape(-1))


def _get(state: CoreState, mem: Mem, addr: int, shape: tuple[int, int], dtype: DType) -> np.ndarray:
    return tile(state, mem, addr, shape[0], shape[1], dtype).copy()


@pytest.mark.parametrize(("m", "k", "n"), [(1, 1, 1), (7, 13, 5), (32, 64, 16), (3, 1100, 4)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_matmul_int8_matches_numpy(m: int, k: int, n: int, accumulate: bool) -> None:
    s = _state()
    a = RNG.integers(-128, 128, (m, k), dtype=np.int8)
    b = RNG.integers(-128, 128, (k, n), dtype=np.int8)
    c0 = RNG.integers(-(1 << 20), 1 << 20, (m, n), dtype=np.int32)
    _put(s, Mem.SPAD, 0, a)
    _put(s, Mem.SPAD, 0x4000, b)
    _put(s, Mem.ACC, 0x100, c0)
    apply(Matmul(0, 0x4000, 0x100, m, k, n, DType.INT8, accumulate, False, False), s, DRAM)
    expected = a.astype(np.int64) @ b.astype(np.int64) + (c0 if accumulate else 0)
    np.testing.assert_array_equal(_get(s, Mem.ACC, 0x100, (m, n), DType.INT32), expected.astype(np.int32))


@pytest.mark.parametrize("precision", [DType.INT8, DType.BF16])
def test_matmul_transpose_b_uses_b_stored_n_by_k(precision: DType) -> None:
    s = _state()
    m, k, n = 5, 24, 7
    a = RNG.integers(-128, 128, (m, k), dtype=np.int8)
    bt = RNG.integers(-128, 128, (n, k), dtype=np.int8)  # B^T as stored
    if precision == DType.BF16:  # small integers are exact in bf16: reuse them as bf16 bit patterns
        a16, bt16 = (f32_to_bf16(x.astype(np.float32)) for x in (a, bt))
        _put(s, Mem.SPAD, 0, a16)
        _put(s, Mem.SPAD, 0x4000, bt16)
    else:
        _put(s, Mem.SPAD, 0, a)
        _put(s, Mem.SPAD, 0x4000, bt)
    apply(Matmul(0, 0x4000, 0x100, m, k, n, precision, False, False, True), s, DRAM)
    out = DType.INT32 if precision == DType.INT8 else DType.FP32
    np.testing.assert_array_equal(_get(s, Mem.ACC, 0x100, (m, n), out), (a.astype(np.int64) @ bt.T.astype(np.int64)).astype(out.name.lower().replace("fp", "float")))


def test_matmul_int32_accumulation_wraps() -> None:
    s = _state()
    _put(s, Mem.SPAD, 0, np.array([[127]], np.int8))
    _put(s, Mem.SPAD, 16, np.array([[127]], np.int8))
    _put(s, Mem.ACC, 0, np.array([[2**31 - 1]], np.int32))
    apply(Matmul(0, 16, 0, 1, 1, 1, DType.INT8, True, False, False), s, DRAM)
    assert _get(s, Mem.ACC, 0, (1, 1), DType.INT32)[0, 0] == np.int32(-(2**31) + 127 * 127 - 1)


@pytest.mark.parametrize("accumulate", [False, True])
def test_matmul_bf16_matches_numpy(accumulate: bool) -> None:
    s = _state()
    m, k, n = 9, 40, 6
    a = f32_to_bf16(RNG.standard_normal((m, k), dtype=np.float32))
    b = f32_to_bf16(RNG.standard_normal((k, n), dtype=np.float32))
    c0 = RNG.standard_normal((m, n), dtype=np.float32)
    _put(s, Mem.SPAD, 0, a)
    _put(s, Mem.SPAD, 0x2000, b)
    _put(s, Mem.ACC, 0, c0)
    apply(Matmul(0, 0x2000, 0, m, k, n, DType.BF16, accumulate, False, False), s, DRAM)
    af, bf = bf16_to_f32(a), bf16_to_f32(b)
    exact = (af.astype(np.float64) @ bf.astype(np.float64)).astype(np.float32)
    expected = (c0 + exact) if accumulate else exact
    got = _get(s, Mem.ACC, 0, (m, n), DType.FP32)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got, (c0 if accumulate else 0) + af @ bf, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("m", "k", "rows"), [(4, 8, 8), (5, 10, 4)])
def test_ldw_then_preloaded_matmul_uses_the_loaded_tile(m: int, k: int, rows: int) -> None:
    # The LDW tile is B's first `rows` rows (all of B, or its first fold of several); the array holds its own copy,
    # so they come from it even after the scratchpad changes, and the rest of B from b_addr.
    s = _state()
    a = RNG.integers(-128, 128, (m, k), dtype=np.int8)
    w = RNG.integers(-128, 128, (k, 3), dtype=np.int8)
    _put(s, Mem.SPAD, 0, a)
    _put(s, Mem.SPAD, 0x1000, w)
    apply(Ldw(0x1000, rows, 3, DType.INT8), s, DRAM)
    _put(s, Mem.SPAD, 0x1000, np.zeros((rows, 3), np.int8))
    apply(Matmul(0, 0x1000, 0, m, k, 3, DType.INT8, False, True, False), s, DRAM)
    np.testing.assert_array_equal(_get(s, Mem.ACC, 0, (m, 3), DType.INT32), a.astype(np.int32) @ w.astype(np.int32))
    with pytest.raises(IsaError, match=rf"^MATMUL preloaded=1 needs a weight tile of 3 columns and at most {rows - 1} rows "
                                       rf"\(INT8\) from LDW, but the array holds {rows}x3 INT8\.$"):
        apply(Matmul(0, 0, 0, m, rows - 1, 3, DType.INT8, False, True, False), s, DRAM)


BINARY = [(Vadd, np.add), (Vsub, np.subtract), (Vmul, np.multiply), (Vmax, np.maximum)]


@pytest.mark.parametrize(("cls", "ref"), BINARY)
@pytest.mark.parametrize("bcast", list(Bcast))
def test_binary_vector_ops_with_broadcasting(cls: type, ref: np.ufunc, bcast: Bcast) -> None:
    s = _state()
    rows, cols = 5, 7
    x = RNG.standard_normal((rows, cols), dtype=np.float32)
    shape2 = {Bcast.NONE: (rows, cols), Bcast.ROW: (1, cols), Bcast.COL: (rows, 1)}[bcast]
    y = RNG.standard_normal(shape2, dtype=np.float32)
    _put(s, Mem.SPAD, 0, x)
    _put(s, Mem.ACC, 0x400, y)
    apply(cls(Mem.ACC, 0x800, Mem.SPAD, 0, Mem.ACC, 0x400, rows, cols, bcast), s, DRAM)
    np.testing.assert_array_equal(_get(s, Mem.ACC, 0x800, (rows, cols), DType.FP32), ref(x, y))


def test_binary_in_place_on_its_own_source() -> None:
    s = _state()
    x = RNG.standard_normal((4, 4), dtype=np.float32)
    _put(s, Mem.ACC, 0, x)
    apply(Vadd(Mem.ACC, 0, Mem.ACC, 0, Mem.ACC, 0, 4, 4, Bcast.NONE), s, DRAM)
    np.testing.assert_array_equal(_get(s, Mem.ACC, 0, (4, 4), DType.FP32), x + x)


SPECIAL = np.array([[0.0, -0.0, 1.0, -1.0, 1e-30, 88.0, -104.0, np.inf, -np.inf, np.nan, 3.5, -7.25]], np.float32)


def _gelu_ref(x: np.ndarray) -> np.ndarray:
    t = scipy.special.erf(x * np.float32(0.7071067811865476))
    return (x * np.float32(0.5)) * (np.float32(1) + t)


@pytest.mark.parametrize(
    ("cls", "ref"),
    [
        (Vexp, np.exp),
        (Vgelu, _gelu_ref),
        (Vrsqrt, lambda x: np.float32(1) / np.sqrt(x)),
        (Vrecip, lambda x: np.float32(1) / x),
    ],
)
def test_unary_vector_ops_exact(cls: type, ref: object) -> None:
    s = _state()
    x = np.concatenate([SPECIAL, RNG.standard_normal((3, SPECIAL.shape[1]), dtype=np.float32) * 4])
    _put(s, Mem.SPAD, 0x40, x)
    apply(cls(Mem.ACC, 0x80, Mem.SPAD, 0x40, *x.shape), s, DRAM)
    with np.errstate(all="ignore"):
        expected = ref(x)  # type: ignore[operator]
    assert expected.dtype == np.float32
    np.testing.assert_array_equal(_get(s, Mem.ACC, 0x80, x.shape, DType.FP32), expected)


def test_vscale_in_place_rounds_each_step() -> None:
    s = _state()
    x = RNG.standard_normal((6, 10), dtype=np.float32)
    _put(s, Mem.ACC, 0, x)
    apply(Vscale(Mem.ACC, 0, 6, 10, 0.1, 1e-5), s, DRAM)
    expected = (x * np.float32(0.1)) + np.float32(1e-5)
    np.testing.assert_array_equal(_get(s, Mem.ACC, 0, (6, 10), DType.FP32), expected)


def test_row_reductions() -> None:
    s = _state()
    x = RNG.standard_normal((9, 33), dtype=np.float32) * 100
    _put(s, Mem.SPAD, 0, x)
    apply(Vrsum(Mem.ACC, 0, Mem.SPAD, 0, 9, 33), s, DRAM)
    apply(Vrmax(Mem.ACC, 0x100, Mem.SPAD, 0, 9, 33), s, DRAM)
    np.testing.assert_array_equal(_get(s, Mem.ACC, 0, (9, 1), DType.FP32)[:, 0], np.sum(x, axis=1, dtype=np.float32))
    np.testing.assert_array_equal(_get(s, Mem.ACC, 0x100, (9, 1), DType.FP32)[:, 0], np.max(x, axis=1))


# (value after scaling, expected int8): halves round to even, saturation at +-127, NaN -> 0
QUANT_EDGES = [
    (0.5, 0), (1.5, 2), (2.5, 2), (-0.5, 0), (-1.5, -2), (126.5, 126), (126.51, 127), (127.0, 127), (127.5, 127),
    (128.0, 127), (1e9, 127), (-127.0, -127), (-127.5, -127), (-128.0, -127), (-1e9, -127), (np.inf, 127),
    (-np.inf, -127), (np.nan, 0),
]


def test_vquant_rounding_and_saturation() -> None:
    s = _state()
    x = np.array([[v for v, _ in QUANT_EDGES]], np.float32)
    _put(s, Mem.ACC, 0, x * np.float32(4.0))
    apply(Vquant(Mem.SPAD, 0x10, Mem.ACC, 0, 1, x.shape[1], 0.25), s, DRAM)
    got = _get(s, Mem.SPAD, 0x10, x.shape, DType.INT8)[0]
    np.testing.assert_array_equal(got, np.array([e for _, e in QUANT_EDGES], np.int8))


def test_vquant_random_matches_numpy() -> None:
    s = _state()
    x = RNG.standard_normal((8, 16), dtype=np.float32) * 50
    _put(s, Mem.ACC, 0, x)
    apply(Vquant(Mem.SPAD, 0, Mem.ACC, 0, 8, 16, 1.7), s, DRAM)
    expected = np.clip(np.rint(x * np.float32(1.7)), -127, 127).astype(np.int8)
    np.testing.assert_array_equal(_get(s, Mem.SPAD, 0, (8, 16), DType.INT8), expected)


def test_vreq_per_column_scale_and_edges() -> None:
    s = _state()
    src = np.array([[1, 3, 5, 253, 255, 10**9], [-1, -3, -5, -253, -255, -(10**9)]], np.int32)
    scale = np.full((1, 6), 0.5, np.float32)
    _put(s, Mem.ACC, 0, src)
    _put(s, Mem.SPAD, 0x100, scale)
    apply(Vreq(Mem.SPAD, 0x200, Mem.ACC, 0, Mem.SPAD, 0x100, 2, 6), s, DRAM)
    expected = [[0, 2, 2, 126, 127, 127], [0, -2, -2, -126, -127, -127]]
    np.testing.assert_array_equal(_get(s, Mem.SPAD, 0x200, (2, 6), DType.INT8), expected)
    big = RNG.integers(-(1 << 24), 1 << 24, (5, 6), dtype=np.int32)
    cols = RNG.uniform(1e-6, 1e-4, (1, 6)).astype(np.float32)
    _put(s, Mem.ACC, 0, big)
    _put(s, Mem.SPAD, 0x100, cols)
    apply(Vreq(Mem.SPAD, 0x200, Mem.ACC, 0, Mem.SPAD, 0x100, 5, 6), s, DRAM)
    ref = np.clip(np.rint(big.astype(np.float32) * cols), -127, 127).astype(np.int8)
    np.testing.assert_array_equal(_get(s, Mem.SPAD, 0x200, (5, 6), DType.INT8), ref)


def test_vdeq_is_the_conversion_then_the_multiply_in_place() -> None:
    """dst = f32(src) * scale: what VCVT int32 -> fp32 and then the multiply give, rounded the same (values past 2^24
    round in the conversion), written over its own source as the attention does."""
    s = _state()
    src = np.concatenate([RNG.integers(-(1 << 30), 1 << 30, (3, 16), dtype=np.int32),
                          np.array([[0, 1, -1, (1 << 24) + 1, -(1 << 24) - 3, 2**31 - 1, -(2**31), 7] * 2], np.int32)])
    scale = np.float32(0.0123)
    _put(s, Mem.ACC, 0x40, src)
    apply(Vdeq(Mem.ACC, 0x40, Mem.ACC, 0x40, 4, 16, float(scale)), s, DRAM)
    np.testing.assert_array_equal(_get(s, Mem.ACC, 0x40, (4, 16), DType.FP32), src.astype(np.float32) * scale)
    two = _state()  # the same as the two-instruction form, bit for bit
    _put(two, Mem.ACC, 0x40, src)
    apply(Vcvt(Mem.ACC, 0x40, Mem.ACC, 0x40, 4, 16, DType.INT32, DType.FP32), two, DRAM)
    apply(Vscale(Mem.ACC, 0x40, 4, 16, float(scale), 0.0), two, DRAM)
    np.testing.assert_array_equal(_get(two, Mem.ACC, 0x40, (4, 16), DType.FP32).view(np.uint32),
                                  _get(s, Mem.ACC, 0x40, (4, 16), DType.FP32).view(np.uint32))


def test_vdeqc_scales_each_column_as_the_conversion_then_the_multiply() -> None:
    """dst = f32(src) * scale[col], in place: bit for bit VCVT int32 -> fp32 then VMUL by the 1 x cols row."""
    s = _state()
    src = RNG.integers(-(1 << 28), 1 << 28, (5, 6), dtype=np.int32)
    scale = RNG.uniform(1e-6, 1e-2, (1, 6)).astype(np.float32)
    _put(s, Mem.ACC, 0, src)
    _put(s, Mem.SPAD, 0x100, scale)
    apply(Vdeqc(Mem.ACC, 0, Mem.ACC, 0, Mem.SPAD, 0x100, 5, 6), s, DRAM)
    two = _state()
    _put(two, Mem.ACC, 0, src)
    _put(two, Mem.SPAD, 0x100, scale)
    apply(Vcvt(Mem.ACC, 0, Mem.ACC, 0, 5, 6, DType.INT32, DType.FP32), two, DRAM)
    apply(Vmul(Mem.ACC, 0, Mem.ACC, 0, Mem.SPAD, 0x100, 5, 6, Bcast.ROW), two, DRAM)
    got = _get(s, Mem.ACC, 0, (5, 6), DType.FP32)
    np.testing.assert_array_equal(got, src.astype(np.float32) * scale)
    np.testing.assert_array_equal(got.view(np.uint32), _get(two, Mem.ACC, 0, (5, 6), DType.FP32).view(np.uint32))


def _cvt(src: np.ndarray, frm: DType, to: DType) -> np.ndarray:
    s = _state()
    _put(s, Mem.SPAD, 0, src.reshape(1, -1))
    apply(Vcvt(Mem.ACC, 0, Mem.SPAD, 0, 1, src.size, frm, to), s, DRAM)
    return _get(s, Mem.ACC, 0, (1, src.size), to)[0]


def test_vcvt_each_conversion() -> None:
    i32 = np.array([0, 1, -1, 2**24 + 1, -(2**31), 2**31 - 1], np.int32)
    np.testing.assert_array_equal(_cvt(i32, DType.INT32, DType.FP32), i32.astype(np.float32))
    i8 = np.array([-128, -1, 0, 127], np.int8)
    np.testing.assert_array_equal(_cvt(i8, DType.INT8, DType.FP32), i8.astype(np.float32))
    # fp32 -> bf16: round to nearest, ties to even; NaN stays a (quiet) NaN
    bits = np.array([0x3F808000, 0x3F818000, 0x3F80C000, 0x3F807FFF, 0x7F800000, 0xFF800000, 0x7FC00001, 0x7F7FFFFF], np.uint32)
    got = _cvt(bits.view(np.float32), DType.FP32, DType.BF16)
    np.testing.assert_array_equal(got, np.array([0x3F80, 0x3F82, 0x3F81, 0x3F80, 0x7F80, 0xFF80, 0x7FC0, 0x7F80], np.uint16))
    b16 = np.array([0x3F80, 0xC040, 0x0001, 0x7F80], np.uint16)
    np.testing.assert_array_equal(_cvt(b16, DType.BF16, DType.FP32).view(np.uint32), b16.astype(np.uint32) << 16)
    f = np.array([2.5, 3.5, -2.5, 3e9, -3e9, np.nan, np.inf, -np.inf, 1.4], np.float32)
    expected = np.array([2, 4, -2, 2**31 - 1, -(2**31), 0, 2**31 - 1, -(2**31), 1], np.int32)
    np.testing.assert_array_equal(_cvt(f, DType.FP32, DType.INT32), expected)


def test_dma_strided_load_and_store() -> None:
    s = _state()
    dram = RNG.integers(0, 256, 4096, dtype=np.uint8)
    matrix = dram[:2048].view(np.float32).reshape(16, 32)  # a 16 x 32 fp32 matrix, pitch 128 bytes
    apply(DmaLd(Mem.SPAD, 0x40, 4 * (3 * 32 + 8), 5, 6, 128, DType.FP32), s, dram)  # rows 3..7, cols 8..13
    np.testing.assert_array_equal(_get(s, Mem.SPAD, 0x40, (5, 6), DType.FP32).view(np.uint32), matrix[3:8, 8:14].view(np.uint32))
    before = dram.copy()
    tile_bytes = RNG.integers(0, 256, (4, 12), dtype=np.uint8)
    _put(s, Mem.ACC, 0, tile_bytes)
    apply(DmaSt(Mem.ACC, 0, 3000, 4, 6, 20, DType.BF16), s, dram)
    expected = before.copy()
    for r in range(4):
        expected[3000 + 20 * r : 3000 + 20 * r + 12] = tile_bytes[r]
    np.testing.assert_array_equal(dram, expected)
    apply(DmaLd(Mem.SPAD, 0, 3000, 3, 12, 0, DType.INT8), s, dram)  # stride 0 repeats one DRAM row
    np.testing.assert_array_equal(_get(s, Mem.SPAD, 0, (3, 12), DType.INT8).view(np.uint8), np.tile(tile_bytes[0], (3, 1)))
    with pytest.raises(IsaError, match=r"^DMA DRAM range 0xff0\.\.0x1008 runs past the 4096-byte DRAM\.$"):
        apply(DmaLd(Mem.SPAD, 0, 4080, 2, 8, 16, DType.INT8), s, dram)


def test_tiles_are_zero_copy_views() -> None:
    s = _state()
    t = tile(s, Mem.ACC, 64, 4, 8, DType.FP32)
    assert np.shares_memory(t, s.acc) and t.flags.c_contiguous and t.dtype == np.float32
    with pytest.raises(IsaError, match=r"^ACC tile at 0xfff0 of 4x8 FP32 ends at byte 0x10070, past the 65536-byte memory\.$"):
        tile(s, Mem.ACC, 0xFFF0, 4, 8, DType.FP32)


def _bytes_row_by_row(state, mem, addr, data, rows, stride, reduce):  # type: ignore[no-untyped-def]
    """write_bytes as NOC_RECV defines it: each row in turn, stored or added as int32 / fp32 elements."""
    flat = data.view(np.uint8).reshape(-1)
    row = flat.size // rows
    for r in range(rows):
        at, chunk = addr + r * (stride if rows > 1 else 0), flat[r * row : (r + 1) * row]
        if reduce == Reduce.NONE:
            tile(state, mem, at, 1, row, DType.INT8).view(np.uint8).reshape(row)[:] = chunk
        else:
            dst = tile(state, mem, at, 1, row // 4, DType.INT32 if reduce == Reduce.INT32 else DType.FP32).reshape(row // 4)
            np.add(dst, chunk.view(dst.dtype), out=dst)


@pytest.mark.filterwarnings("ignore:invalid value encountered", "ignore:overflow encountered")  # random fp32 bytes: NaNs, infinities
def test_strided_noc_bytes_match_row_by_row() -> None:
    """read_bytes and write_bytes move a strided payload as one view: the same bytes (NaN bits included) and the
    same error, naming the first row past the memory, as row by row."""
    rng = np.random.default_rng(7)
    for trial in range(1500):
        mem = Mem.SPAD if trial % 2 else Mem.ACC
        reduce = (Reduce.NONE, Reduce.NONE, Reduce.INT32, Reduce.FP32)[trial % 4]
        rows = int(rng.choice([1, 2, 3, 7, 16]))
        row = int(rng.integers(1, 20)) * 4 if reduce != Reduce.NONE else int(rng.integers(1, 80))
        stride = row + 4 * int(rng.integers(0, 12)) if rows > 1 else int(rng.choice([0, 5]))
        addr = int(rng.integers(0, 65536 - 8)) if trial % 10 else int(rng.integers(65536 - 400, 65536))
        addr -= addr % 4
        data = rng.integers(0, 256, rows * row, dtype=np.uint8)
        got, want = _state(), _state()
        for st in (got, want):
            st.spad[:], st.acc[:] = np.arange(65536, dtype=np.uint8), np.arange(65536, dtype=np.uint8)[::-1]
        errors = []
        for st, fn in ((want, _bytes_row_by_row), (got, write_bytes)):
            try:
                fn(st, mem, addr, data, rows, stride, reduce)
                errors.append(None)
            except IsaError as exc:
                errors.append(str(exc))
        assert errors[0] == errors[1], trial
        if errors[0] is not None:
            continue
        assert np.array_equal(got.spad, want.spad) and np.array_equal(got.acc, want.acc), trial
        back = read_bytes(got, mem, addr, rows * row, rows, stride)
        assert not np.shares_memory(back, got.memory(mem)), trial
        if reduce == Reduce.NONE:
            assert np.array_equal(back, data), trial
        else:  # read back what the adds left, row by row
            whole = np.concatenate([got.memory(mem)[addr + r * (stride if rows > 1 else 0):][:row] for r in range(rows)])
            assert np.array_equal(back, whole), trial


def test_noc_bytes_semaphores_and_noc_apply() -> None:
    s, t = _state(), _state()
    _put(s, Mem.SPAD, 5, np.arange(10, dtype=np.uint8))
    write_bytes(t, Mem.ACC, 100, read_bytes(s, Mem.SPAD, 5, 10))
    np.testing.assert_array_equal(t.acc[100:110], np.arange(10))
    apply(Signal(Unit.VEC, 3), s, DRAM)
    apply(Wait(Unit.DMA, 3), s, DRAM)
    with pytest.raises(IsaError, match=r"^WAIT on semaphore 3 would block"):
        apply(Wait(Unit.DMA, 3), s, DRAM)
    with pytest.raises(IsaError, match=r"^NOC_SEND moves data between cores; the executor performs it with read_bytes and write_bytes\.$"):
        apply(NocSend(1, Mem.SPAD, 0, 4, 0), s, DRAM)
