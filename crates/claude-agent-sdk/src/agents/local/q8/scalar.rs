//! The portable kernel, and the reference the SIMD kernels must match bit for
//! bit: per block, the exact integer dot product of a weight row and a token,
//! then `sum = dot × (weight scale × token scale) + sum`, one fused
//! multiply-add, blocks in order.

use super::{Tile, BLOCK, PANEL_BLOCK, PANEL_ROWS};

pub(super) fn tile(tile: &Tile<'_>, out: &mut [f32]) {
    let blocks = tile.check(out);
    let a = tile.a;
    for (t, out) in tile.tokens.clone().zip(out.chunks_exact_mut(PANEL_ROWS)) {
        let token = &a.quants[t * a.cols..][..a.cols];
        let token_scales = &a.scales[t * blocks..][..blocks];
        for (r, out) in out.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            for (b, (values, &token_scale)) in
                token.chunks_exact(BLOCK).zip(token_scales).enumerate()
            {
                let weights = &tile.quants[b * PANEL_BLOCK..][..PANEL_BLOCK];
                let mut dot = 0i32;
                for (group, values) in values.chunks_exact(4).enumerate() {
                    let at = (group * PANEL_ROWS + r) * 4;
                    for (&w, &v) in weights[at..at + 4].iter().zip(values) {
                        // The stored byte is the weight + 128.
                        dot += (i32::from(w) - 128) * i32::from(v);
                    }
                }
                let scale = tile.scales[b * PANEL_ROWS + r].to_f32() * token_scale;
                // |dot| < 2^24: exact as f32.
                #[allow(clippy::cast_precision_loss)]
                let dot = dot as f32;
                sum = dot.mul_add(scale, sum);
            }
            *out = sum;
        }
    }
}
