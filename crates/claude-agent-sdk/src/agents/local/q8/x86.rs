//! The x86-64 kernels: AVX-512 VNNI and AVX2, chosen at run time.
//!
//! This is the only `unsafe` code of the local model's products. Each kernel
//! is reachable only through a token type ([`Avx512Vnni`], [`Avx2`]) that can
//! be made only by detecting its CPU features, so the `target_feature`
//! functions never run on a CPU without them; and every pointer offset stays
//! within the sizes [`Tile::check`] asserted before the loops start.
//!
//! Both compute, per block of 32 columns, the same exact `i32` dot product as
//! [`super::scalar`], then the same `dot × (weight scale × token scale) + sum`
//! as one fused multiply-add — so all three agree bit for bit.
//!
//! - **AVX-512 VNNI**: one 64-byte load is four columns of the panel's 16
//!   rows (each weight stored + 128, unsigned); `vpdpbusd` multiplies it by
//!   four columns of one token (signed, broadcast) and adds the four products
//!   into each row's `i32` sum. That sum is `Σ (w + 128)·x`; subtracting the
//!   token's `128 · Σ x` (precomputed per block) leaves `Σ w·x`. Sums of
//!   8 tokens × 16 rows stay in registers, so each weight load serves 8 tokens.
//! - **AVX2**: no `vpdpbusd`; `vpmaddubsw` multiplies unsigned by signed bytes
//!   into saturating `i16` pairs, which `(w + 128)·x` would overflow. So the
//!   weights go back to signed (`^ 0x80`), and the usual sign trick applies:
//!   `|w| · (x with w's sign)`, at most 2 × 128 × 127 = 32 512 per pair, then
//!   `vpmaddwd` by ones into `i32`. Half a panel (8 rows) per register, 4
//!   tokens at a time.

use std::arch::x86_64::{
    __m256i, __m512i, _mm256_abs_epi8, _mm256_add_epi32, _mm256_cvtepi32_ps, _mm256_cvtph_ps,
    _mm256_fmadd_ps, _mm256_loadu_si256, _mm256_madd_epi16, _mm256_maddubs_epi16, _mm256_mul_ps,
    _mm256_set1_epi16, _mm256_set1_epi32, _mm256_set1_epi8, _mm256_set1_ps, _mm256_setzero_ps,
    _mm256_setzero_si256, _mm256_sign_epi8, _mm256_storeu_ps, _mm256_xor_si256, _mm512_cvtepi32_ps,
    _mm512_cvtph_ps, _mm512_dpbusd_epi32, _mm512_fmadd_ps, _mm512_loadu_si512, _mm512_mul_ps,
    _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_setzero_si512, _mm512_storeu_ps,
    _mm512_sub_epi32, _mm_loadu_si128,
};

use super::{Tile, BLOCK, PANEL_BLOCK, PANEL_ROWS};

/// Proof that the CPU has AVX-512 F and VNNI: only [`Avx512Vnni::detect`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx512Vnni(());

/// Proof that the CPU has AVX2, FMA and F16C: only [`Avx2::detect`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx2(());

impl Avx512Vnni {
    pub(crate) fn detect() -> Option<Self> {
        (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"))
            .then_some(Self(()))
    }

    pub(super) fn tile(self, tile: &Tile<'_>, out: &mut [f32]) {
        by_groups(tile, out, 8, |blocks, start, n, out| {
            // SAFETY: `self` proves the CPU features; `by_groups` passes a
            // checked tile, `n` tokens of it from `start`, and their `out`.
            unsafe {
                match n {
                    8 => avx512::<8>(tile, blocks, start, out),
                    7 => avx512::<7>(tile, blocks, start, out),
                    6 => avx512::<6>(tile, blocks, start, out),
                    5 => avx512::<5>(tile, blocks, start, out),
                    4 => avx512::<4>(tile, blocks, start, out),
                    3 => avx512::<3>(tile, blocks, start, out),
                    2 => avx512::<2>(tile, blocks, start, out),
                    _ => avx512::<1>(tile, blocks, start, out),
                }
            }
        });
    }
}

impl Avx2 {
    pub(crate) fn detect() -> Option<Self> {
        (is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c"))
        .then_some(Self(()))
    }

    pub(super) fn tile(self, tile: &Tile<'_>, out: &mut [f32]) {
        by_groups(tile, out, 4, |blocks, start, n, out| {
            for half in 0..2 {
                // SAFETY: as for `Avx512Vnni::tile`; `half` is 0 or 1.
                unsafe {
                    match n {
                        4 => avx2::<4>(tile, blocks, start, half, out),
                        3 => avx2::<3>(tile, blocks, start, half, out),
                        2 => avx2::<2>(tile, blocks, start, half, out),
                        _ => avx2::<1>(tile, blocks, start, half, out),
                    }
                }
            }
        });
    }
}

/// Checks the tile, then calls `kernel(blocks, start, n, out)` for each
/// group of at most `group` tokens (`1 ≤ n ≤ group`), with the group's part
/// of `out` (16 values per token).
fn by_groups(
    tile: &Tile<'_>,
    out: &mut [f32],
    group: usize,
    mut kernel: impl FnMut(usize, usize, usize, &mut [f32]),
) {
    let blocks = tile.check(out);
    let mut start = tile.tokens.start;
    let mut out = out;
    while start < tile.tokens.end {
        let n = (tile.tokens.end - start).min(group);
        kernel(blocks, start, n, &mut *out);
        start += n;
        out = &mut out[n * PANEL_ROWS..];
    }
}

/// `T` tokens from `start` against the panel's 16 rows, into `out[..T * 16]`.
///
/// # Safety
/// The CPU has AVX-512 F and VNNI; `tile.check` passed, `start + T` is
/// within `tile.tokens`, and `out` holds at least `T * 16` values.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn avx512<const T: usize>(tile: &Tile<'_>, blocks: usize, start: usize, out: &mut [f32]) {
    let a = tile.a;
    let cols = a.cols;
    // SAFETY (all pointer arithmetic below): the rows `start..start + T` of
    // `a` hold `cols = blocks × 32` quants and `blocks` scales and offsets
    // each; the panel holds `blocks × 512` quants and `blocks × 16` scales.
    let quants = a.quants.as_ptr().add(start * cols);
    let scales = a.scales.as_ptr().add(start * blocks);
    let offsets = a.offsets.as_ptr().add(start * blocks);
    let mut sums = [_mm512_setzero_ps(); T];
    for b in 0..blocks {
        let weights = tile.quants.as_ptr().add(b * PANEL_BLOCK);
        let mut dots = [_mm512_setzero_si512(); T];
        for group in 0..BLOCK / 4 {
            let w = _mm512_loadu_si512(weights.add(group * 64).cast::<__m512i>());
            for (t, dot) in dots.iter_mut().enumerate() {
                let x = quants.add(t * cols + b * BLOCK + group * 4);
                let x = _mm512_set1_epi32(x.cast::<i32>().read_unaligned());
                *dot = _mm512_dpbusd_epi32(*dot, w, x);
            }
        }
        let w_scales = _mm512_cvtph_ps(_mm256_loadu_si256(
            tile.scales.as_ptr().add(b * PANEL_ROWS).cast::<__m256i>(),
        ));
        for (t, (sum, dot)) in sums.iter_mut().zip(dots).enumerate() {
            let offset = _mm512_set1_epi32(*offsets.add(t * blocks + b));
            let dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(dot, offset));
            let scale = _mm512_mul_ps(w_scales, _mm512_set1_ps(*scales.add(t * blocks + b)));
            *sum = _mm512_fmadd_ps(dot, scale, *sum);
        }
    }
    for (t, sum) in sums.into_iter().enumerate() {
        _mm512_storeu_ps(out.as_mut_ptr().add(t * PANEL_ROWS), sum);
    }
}

/// `T` tokens from `start` against rows `8 × half .. 8 × half + 8` of the
/// panel, into `out[t * 16 + 8 * half ..][..8]`.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C; `tile.check` passed, `start + T` is
/// within `tile.tokens`, `half` is 0 or 1, and `out` holds `T * 16` values.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn avx2<const T: usize>(
    tile: &Tile<'_>,
    blocks: usize,
    start: usize,
    half: usize,
    out: &mut [f32],
) {
    let a = tile.a;
    let cols = a.cols;
    // SAFETY: as in `avx512`; `half × 32 + 32 ≤ 64` bytes of each group and
    // `half × 8 + 8 ≤ 16` scales of each block.
    let quants = a.quants.as_ptr().add(start * cols);
    let scales = a.scales.as_ptr().add(start * blocks);
    let ones = _mm256_set1_epi16(1);
    let flip = _mm256_set1_epi8(i8::MIN);
    let mut sums = [_mm256_setzero_ps(); T];
    for b in 0..blocks {
        let weights = tile.quants.as_ptr().add(b * PANEL_BLOCK + half * 32);
        let mut dots = [_mm256_setzero_si256(); T];
        for group in 0..BLOCK / 4 {
            let w = _mm256_loadu_si256(weights.add(group * 64).cast::<__m256i>());
            let w = _mm256_xor_si256(w, flip); // back to i8
            let magnitude = _mm256_abs_epi8(w);
            for (t, dot) in dots.iter_mut().enumerate() {
                let x = quants.add(t * cols + b * BLOCK + group * 4);
                let x = _mm256_set1_epi32(x.cast::<i32>().read_unaligned());
                let pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(x, w));
                *dot = _mm256_add_epi32(*dot, _mm256_madd_epi16(pairs, ones));
            }
        }
        let w_scales = _mm256_cvtph_ps(_mm_loadu_si128(
            tile.scales
                .as_ptr()
                .add(b * PANEL_ROWS + half * 8)
                .cast::<std::arch::x86_64::__m128i>(),
        ));
        for (t, (sum, dot)) in sums.iter_mut().zip(dots).enumerate() {
            let dot = _mm256_cvtepi32_ps(dot);
            let scale = _mm256_mul_ps(w_scales, _mm256_set1_ps(*scales.add(t * blocks + b)));
            *sum = _mm256_fmadd_ps(dot, scale, *sum);
        }
    }
    for (t, sum) in sums.into_iter().enumerate() {
        _mm256_storeu_ps(out.as_mut_ptr().add(t * PANEL_ROWS + half * 8), sum);
    }
}
