//! Matrix products of Q8_0 weights with Q8_0-quantized activations: the
//! model's own kernels, for the prompt (many tokens at once) as for decoding
//! (one token).
//!
//! Why not candle's `QMatMul`: for a batch of tokens it runs one dot product
//! per (token, weight row) pair, so every weight block is loaded again for
//! every token of the prompt, and the prompt ran no faster per token than
//! decoding (171 tok/s against llama.cpp's 860 on the same machine). Here:
//!
//! - **Panels** ([`Q8Matrix`]): at load the weights are repacked, once, into
//!   panels of 16 rows whose blocks interleave the rows four columns at a
//!   time. One 64-byte load then holds four columns of sixteen rows — one
//!   AVX-512 register, which a single `vpdpbusd` multiplies by four columns of
//!   a token into sixteen row sums. Same bytes per weight as Q8_0 (34 per 32):
//!   the model stays in memory once, in this format only.
//! - **Tiles**: a kernel keeps the sums of 8 tokens × 16 rows in registers,
//!   so each weight register loaded serves 8 tokens; a panel (9–25 KiB)
//!   stays in the L1 cache while every token of the batch passes over it.
//! - **Integer dot products**: activations are quantized per 32 values, as
//!   Q8_0 (what candle and llama.cpp do for Q8_0 weights too), and each
//!   block's dot product is exact in `i32` before its scales apply.
//! - **Run-time choice** ([`Kernel`]): AVX-512 VNNI where the CPU has it,
//!   else AVX2, else portable scalar code — one portable binary. All three
//!   compute the same integers and apply the scales in the same order with
//!   the same fused multiply-adds, so they agree bit for bit (tested).
//! - **Threads**: the panels are shared out by ranges of rows to the
//!   generation threads that are idle ([`super::pool::share`]); the thread
//!   asking always works too, so a busy machine costs no waiting.

mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;

use half::f16;

use super::pool;

/// Weight rows per panel.
pub(crate) const PANEL_ROWS: usize = 16;
/// Values per quantized block (Q8_0's block).
pub(crate) const BLOCK: usize = 32;
/// Bytes of one block of one panel: 16 rows × 32 values.
const PANEL_BLOCK: usize = PANEL_ROWS * BLOCK;
/// Bytes of one block in a GGUF Q8_0 tensor: an `f16` scale, 32 `i8`.
const Q8_0_BLOCK_BYTES: usize = 2 + BLOCK;
/// Multiply-adds per work item shared with other threads: below this, the
/// hand-over costs more than it saves.
const ITEM_WORK: usize = 1 << 17;

/// A Q8_0 weight matrix (`rows × cols`, each row a dot product with the
/// input), repacked into panels of [`PANEL_ROWS`] rows.
pub(crate) struct Q8Matrix {
    rows: usize,
    cols: usize,
    /// Per panel, per block of 32 columns, 512 bytes: for each group of four
    /// columns, for each of the 16 rows, the four weights, each stored plus
    /// 128 (as `u8`, the unsigned operand `vpdpbusd` wants).
    quants: Vec<u8>,
    /// Per panel, per block, the 16 rows' scales (`f16`).
    scales: Vec<f16>,
}

impl std::fmt::Debug for Q8Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Q8Matrix")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl Q8Matrix {
    /// Whether a `rows × cols` matrix can be repacked (whole panels, whole blocks).
    pub(crate) fn fits(rows: usize, cols: usize) -> bool {
        rows > 0 && cols > 0 && rows.is_multiple_of(PANEL_ROWS) && cols.is_multiple_of(BLOCK)
    }

    /// Repacks the bytes of a GGUF Q8_0 tensor of `rows × cols`.
    pub(crate) fn from_q8_0(bytes: &[u8], rows: usize, cols: usize) -> Result<Self, String> {
        if !Self::fits(rows, cols) {
            return Err(format!(
                "{rows} × {cols} is not made of {PANEL_ROWS}-row panels of {BLOCK}-value blocks"
            ));
        }
        let blocks = cols / BLOCK;
        if bytes.len() != rows * blocks * Q8_0_BLOCK_BYTES {
            return Err(format!(
                "{} bytes of Q8_0 data for {rows} × {cols} (expected {})",
                bytes.len(),
                rows * blocks * Q8_0_BLOCK_BYTES
            ));
        }
        let mut quants = vec![0u8; rows * cols];
        let mut scales = vec![f16::ZERO; rows * blocks];
        for (row, stored) in bytes.chunks_exact(blocks * Q8_0_BLOCK_BYTES).enumerate() {
            let (panel, r) = (row / PANEL_ROWS, row % PANEL_ROWS);
            for (b, block) in stored.chunks_exact(Q8_0_BLOCK_BYTES).enumerate() {
                let tile = panel * blocks + b;
                scales[tile * PANEL_ROWS + r] = f16::from_le_bytes([block[0], block[1]]);
                let dst = &mut quants[tile * PANEL_BLOCK..][..PANEL_BLOCK];
                for (group, four) in block[2..].chunks_exact(4).enumerate() {
                    let at = (group * PANEL_ROWS + r) * 4;
                    for (d, &q) in dst[at..at + 4].iter_mut().zip(four) {
                        *d = q ^ 0x80; // i8 + 128, as u8
                    }
                }
            }
        }
        Ok(Self {
            rows,
            cols,
            quants,
            scales,
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn size_in_bytes(&self) -> usize {
        self.quants.len() + self.scales.len() * 2
    }

    fn blocks(&self) -> usize {
        self.cols / BLOCK
    }

    /// The weights and scales of panel `p`.
    fn panel(&self, p: usize) -> (&[u8], &[f16]) {
        let blocks = self.blocks();
        (
            &self.quants[p * blocks * PANEL_BLOCK..][..blocks * PANEL_BLOCK],
            &self.scales[p * blocks * PANEL_ROWS..][..blocks * PANEL_ROWS],
        )
    }

    /// Row `row`, dequantized (an embedding lookup in a tied output matrix).
    pub(crate) fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let (quants, scales) = self.panel(row / PANEL_ROWS);
        let r = row % PANEL_ROWS;
        for (b, out) in out.chunks_exact_mut(BLOCK).enumerate() {
            let d = scales[b * PANEL_ROWS + r].to_f32();
            let block = &quants[b * PANEL_BLOCK..][..PANEL_BLOCK];
            for (group, out) in out.chunks_exact_mut(4).enumerate() {
                let at = (group * PANEL_ROWS + r) * 4;
                for (o, &q) in out.iter_mut().zip(&block[at..at + 4]) {
                    *o = f32::from(i8::from_ne_bytes([q ^ 0x80])) * d;
                }
            }
        }
    }
}

/// Rows of activations (one per token), quantized per block of 32 values as
/// Q8_0 is: a scale `max |x| / 127` and 32 integers in `-127..=127`.
#[derive(Debug, Default)]
pub(crate) struct Q8Rows {
    rows: usize,
    cols: usize,
    quants: Vec<i8>,
    /// Per row, per block.
    scales: Vec<f32>,
    /// Per row, per block: 128 × the sum of the block's integers — what the
    /// weights' +128 adds to a `vpdpbusd` sum.
    offsets: Vec<i32>,
}

impl Q8Rows {
    /// Quantizes `x`, `rows` rows of `cols` values (`cols` a multiple of 32).
    ///
    /// Written for the compiler to vectorize: the largest magnitude is taken
    /// on the bits (for non-negative floats, integer order is float order),
    /// and rounding adds 1.5 × 2²³, after which the float's low bits are the
    /// rounded integer (to nearest, ties to even) — no `roundf` call per value.
    pub(crate) fn quantize(&mut self, x: &[f32], rows: usize, cols: usize) {
        const MAGIC: f32 = 12_582_912.0; // 1.5 × 2^23
        debug_assert_eq!(x.len(), rows * cols);
        debug_assert!(cols.is_multiple_of(BLOCK));
        self.rows = rows;
        self.cols = cols;
        self.quants.resize(rows * cols, 0);
        self.scales.resize(rows * cols / BLOCK, 0.0);
        self.offsets.resize(rows * cols / BLOCK, 0);
        let blocks = x
            .chunks_exact(BLOCK)
            .zip(self.quants.chunks_exact_mut(BLOCK))
            .zip(self.scales.iter_mut().zip(&mut self.offsets));
        for ((x, q), (scale, offset)) in blocks {
            let max = f32::from_bits(
                x.iter()
                    .map(|v| v.to_bits() & 0x7fff_ffff)
                    .max()
                    .unwrap_or(0),
            );
            let d = max / 127.0;
            let inverse = if d == 0.0 { 0.0 } else { 1.0 / d };
            let mut sum = 0i32;
            for (q, &v) in q.iter_mut().zip(x) {
                // |v × inverse| ≤ 127, so the sum's low bits hold the integer.
                #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
                let n = ((v * inverse + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32) as i8;
                *q = n;
                sum += i32::from(n);
            }
            *scale = d;
            *offset = sum * 128;
        }
    }

    fn blocks(&self) -> usize {
        self.cols / BLOCK
    }
}

/// Which code computes the tiles: the best the CPU offers, chosen once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Portable Rust: the reference the others must match.
    Scalar,
    /// AVX2 (`vpmaddubsw`), 8 rows per register.
    #[cfg(target_arch = "x86_64")]
    Avx2(x86::Avx2),
    /// AVX-512 VNNI (`vpdpbusd`), 16 rows per register.
    #[cfg(target_arch = "x86_64")]
    Avx512(x86::Avx512Vnni),
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub(crate) fn best() -> Self {
        static BEST: OnceLock<Kernel> = OnceLock::new();
        *BEST.get_or_init(|| Self::available().last().copied().unwrap_or(Self::Scalar))
    }

    /// Every kernel this CPU runs, slowest first.
    pub(crate) fn available() -> Vec<Self> {
        let simd: Vec<Self> = {
            #[cfg(target_arch = "x86_64")]
            {
                let avx2 = x86::Avx2::detect().map(Self::Avx2);
                let avx512 = x86::Avx512Vnni::detect().map(Self::Avx512);
                avx2.into_iter().chain(avx512).collect()
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                Vec::new()
            }
        };
        std::iter::once(Self::Scalar).chain(simd).collect()
    }

    /// Products of panel `p` of `w` with rows `tokens` of `a`: `out[t × 16 + r]`
    /// for the `t`-th token of the range and the panel's `r`-th row.
    fn panel(self, w: &Q8Matrix, p: usize, a: &Q8Rows, tokens: Range<usize>, out: &mut [f32]) {
        let (quants, scales) = w.panel(p);
        let tile = Tile {
            quants,
            scales,
            a,
            tokens,
        };
        match self {
            Self::Scalar => scalar::tile(&tile, out),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(k) => k.tile(&tile, out),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512(k) => k.tile(&tile, out),
        }
    }
}

/// One panel's weights against a range of activation rows: what a kernel
/// computes, with its sizes checked by [`Tile::check`].
struct Tile<'a> {
    quants: &'a [u8],
    scales: &'a [f16],
    a: &'a Q8Rows,
    tokens: Range<usize>,
}

impl Tile<'_> {
    /// The blocks per row, after checking every size a kernel relies on:
    /// the panel holds `blocks` blocks, the rows exist and have as many
    /// blocks, and `out` holds 16 values per token.
    fn check(&self, out: &[f32]) -> usize {
        let blocks = self.a.blocks();
        assert!(
            self.quants.len() == blocks * PANEL_BLOCK
                && self.scales.len() == blocks * PANEL_ROWS
                && self.tokens.start <= self.tokens.end
                && self.tokens.end <= self.a.rows
                && self.a.quants.len() == self.a.rows * self.a.cols
                && self.a.scales.len() == self.a.rows * blocks
                && self.a.offsets.len() == self.a.rows * blocks
                && out.len() >= self.tokens.len() * PANEL_ROWS,
            "a tile's sizes do not match"
        );
        blocks
    }
}

thread_local! {
    /// Each thread's quantized activations and panel-major results, reused.
    static SCRATCH: RefCell<(Q8Rows, Vec<f32>)> = RefCell::default();
}

/// `out = x · wᵀ` for `rows` rows of `x` (row-major, `rows × w.rows()`).
pub(crate) fn product(w: &Q8Matrix, x: &[f32], rows: usize, out: &mut Vec<f32>) {
    product_with(Kernel::best(), w, x, rows, out);
}

/// [`product`] with a given kernel.
pub(crate) fn product_with(
    kernel: Kernel,
    w: &Q8Matrix,
    x: &[f32],
    rows: usize,
    out: &mut Vec<f32>,
) {
    let n = w.rows;
    out.clear();
    out.resize(rows * n, 0.0);
    if rows == 0 {
        return;
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let (a, panels_out) = &mut *scratch;
        a.quantize(x, rows, w.cols);
        let a = &*a;
        let panels = n / PANEL_ROWS;
        let per_item = (ITEM_WORK / (rows * w.cols * PANEL_ROWS)).clamp(1, panels);
        // One token: the results of consecutive panels are consecutive in `out`.
        // More: each work item writes its panels' results panel by panel
        // (`[panel][token][row]`), reordered into `out` afterwards.
        let target: &mut [f32] = if rows == 1 {
            out
        } else {
            panels_out.clear();
            panels_out.resize(rows * n, 0.0);
            panels_out
        };
        let mut items: Vec<(usize, &mut [f32])> = target
            .chunks_mut(per_item * PANEL_ROWS * rows)
            .enumerate()
            .map(|(i, chunk)| (i * per_item, chunk))
            .collect();
        pool::share(&mut items, &|(first, chunk): &mut (usize, &mut [f32])| {
            for (i, out) in chunk.chunks_exact_mut(PANEL_ROWS * rows).enumerate() {
                kernel.panel(w, *first + i, a, 0..rows, out);
            }
        });
        if rows > 1 {
            for (p, panel) in panels_out.chunks_exact(PANEL_ROWS * rows).enumerate() {
                for (t, values) in panel.chunks_exact(PANEL_ROWS).enumerate() {
                    out[t * n + p * PANEL_ROWS..][..PANEL_ROWS].copy_from_slice(values);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests;
