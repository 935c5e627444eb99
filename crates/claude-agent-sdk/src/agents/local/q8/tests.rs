use proptest::prelude::*;

use super::*;

/// GGUF Q8_0 bytes of a `rows × cols` matrix: per row, per block, the scale
/// as `f16` and 32 `i8`.
fn q8_0_bytes(quants: &[i8], scales: &[f32], cols: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (b, block) in quants.chunks_exact(BLOCK).enumerate() {
        bytes.extend(f16::from_f32(scales[b]).to_le_bytes());
        bytes.extend(block.iter().map(|q| q.to_ne_bytes()[0]));
    }
    assert_eq!(bytes.len(), quants.len() / cols * (cols / BLOCK) * 34);
    bytes
}

/// A matrix and its dequantized values (`rows × cols`, row-major).
fn matrix(quants: &[i8], scales: &[f32], rows: usize, cols: usize) -> (Q8Matrix, Vec<f32>) {
    let m = Q8Matrix::from_q8_0(&q8_0_bytes(quants, scales, cols), rows, cols).unwrap();
    let values = quants
        .chunks_exact(BLOCK)
        .zip(scales)
        .flat_map(|(block, &d)| {
            let d = f16::from_f32(d).to_f32();
            block.iter().map(move |&q| f32::from(q) * d)
        })
        .collect();
    (m, values)
}

#[derive(Debug, Clone)]
struct Case {
    rows: usize,
    cols: usize,
    tokens: usize,
    quants: Vec<i8>,
    scales: Vec<f32>,
    x: Vec<f32>,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=4, 1usize..=6, 1usize..=19).prop_flat_map(|(panels, blocks, tokens)| {
        let (rows, cols) = (panels * PANEL_ROWS, blocks * BLOCK);
        (
            proptest::collection::vec(any::<i8>(), rows * cols),
            proptest::collection::vec(1e-4f32..0.1, rows * blocks),
            proptest::collection::vec(-4.0f32..4.0, tokens * cols),
        )
            .prop_map(move |(quants, scales, x)| Case {
                rows,
                cols,
                tokens,
                quants,
                scales,
                x,
            })
    })
}

#[test]
fn repacking_keeps_every_weight() {
    let (rows, cols) = (32, 64);
    #[allow(clippy::cast_possible_truncation)]
    let quants: Vec<i8> = (0..rows * cols).map(|i| (i % 256) as u8 as i8).collect();
    let scales: Vec<f32> = (0..rows * cols / BLOCK).map(|i| 0.5 + i as f32).collect();
    let (m, values) = matrix(&quants, &scales, rows, cols);
    assert_eq!(
        (m.rows(), m.cols(), m.size_in_bytes()),
        (rows, cols, rows * cols / 32 * 34)
    );
    let mut row = vec![0.0; cols];
    for r in 0..rows {
        m.dequantize_row(r, &mut row);
        assert_eq!(row, values[r * cols..][..cols], "row {r}");
    }
}

#[test]
fn malformed_sizes_are_refused() {
    assert!(Q8Matrix::from_q8_0(&[0; 34 * 16], 16, 32).is_ok());
    assert!(Q8Matrix::from_q8_0(&[0; 34 * 16], 16, 64).is_err());
    assert!(Q8Matrix::from_q8_0(&[0; 34 * 8], 8, 32).is_err());
    assert!(Q8Matrix::from_q8_0(&[0; 34 * 16 + 1], 16, 32).is_err());
}

#[test]
fn activations_quantize_as_q8_0() {
    let mut a = Q8Rows::default();
    let mut x: Vec<f32> = (0..64).map(|i| i as f32 - 20.0).collect();
    x[40..].fill(0.0);
    a.quantize(&x, 1, 64);
    assert_eq!(a.scales[0], 20.0 / 127.0);
    assert_eq!(a.quants[0], -127);
    assert_eq!(a.quants[20], 0);
    // An all-zero block: scale 0, integers 0.
    assert_eq!(a.scales[1], 19.0 / 127.0);
    a.quantize(&[0.0; 32], 1, 32);
    assert_eq!((a.scales[0], a.offsets[0]), (0.0, 0));
    assert!(a.quants.iter().all(|&q| q == 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every kernel this CPU runs gives the scalar kernel's results, bit for bit.
    #[test]
    fn every_kernel_matches_the_scalar_one(c in case()) {
        let (m, _) = matrix(&c.quants, &c.scales, c.rows, c.cols);
        let mut reference = Vec::new();
        product_with(Kernel::Scalar, &m, &c.x, c.tokens, &mut reference);
        for kernel in Kernel::available() {
            let mut out = Vec::new();
            product_with(kernel, &m, &c.x, c.tokens, &mut out);
            let same = out.iter().zip(&reference).all(|(a, b)| a.to_bits() == b.to_bits());
            prop_assert!(same && out.len() == reference.len(), "{kernel:?}");
        }
    }

    /// The product is `x · wᵀ` up to the activations' quantization: each
    /// activation moves by at most half its block's scale, so each result by
    /// at most `Σ |w| × scale / 2` (plus float rounding).
    #[test]
    fn the_product_is_close_to_the_float_one(c in case()) {
        let (m, w) = matrix(&c.quants, &c.scales, c.rows, c.cols);
        let mut out = Vec::new();
        product(&m, &c.x, c.tokens, &mut out);
        prop_assert_eq!(out.len(), c.tokens * c.rows);
        for t in 0..c.tokens {
            let x = &c.x[t * c.cols..][..c.cols];
            for r in 0..c.rows {
                let w = &w[r * c.cols..][..c.cols];
                let exact: f32 = w.iter().zip(x).map(|(w, x)| w * x).sum();
                let mut bound = 0.0f32;
                for (w, x) in w.chunks_exact(BLOCK).zip(x.chunks_exact(BLOCK)) {
                    let scale = x.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
                    bound += w.iter().map(|w| w.abs()).sum::<f32>() * scale / 2.0;
                }
                let got = out[t * c.rows + r];
                prop_assert!(
                    (got - exact).abs() <= bound * 1.001 + 1e-4,
                    "token {}, row {}: {} against {} (bound {})", t, r, got, exact, bound
                );
            }
        }
    }
}
