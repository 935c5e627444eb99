//! Causal grouped-query attention of a batch of new positions over the
//! cache: every query head of every new position against the keys and
//! values of the positions up to its own.
//!
//! For a prompt chunk this is the largest piece of work outside the matrix
//! products (it grows with the square of the chunk), so it is shared out by
//! heads to the idle generation threads ([`pool::share`]) like the products,
//! and its loops are compiled a second time for AVX2 and chosen at run time,
//! so that a portable build still gets 256-bit vectors. Both versions are
//! the same Rust code: Rust neither reassociates nor fuses float operations,
//! so they compute the same values.

use super::pool;

/// The shape of the attention: heads, key/value heads, dimensions per head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads {
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
}

/// Below this many multiply-adds the heads are computed here, not shared.
const SHARE_WORK: usize = 1 << 16;

/// `out` (`n × heads × head_dim`) for the `n` queries in `q` (same shape) at
/// positions `start..start + n`, over `keys` and `values` (`start + n`
/// positions × `kv_heads × head_dim`).
pub(crate) fn attend(
    shape: Heads,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    start: usize,
    out: &mut Vec<f32>,
) {
    let Heads {
        heads, head_dim, ..
    } = shape;
    let dim = heads * head_dim;
    let n = q.len() / dim;
    let mut per_head = vec![0.0f32; n * dim];
    let mut items: Vec<(usize, &mut [f32])> =
        per_head.chunks_mut(n * head_dim).enumerate().collect();
    let work = |(head, out): &mut (usize, &mut [f32])| {
        let job = Head {
            shape,
            head: *head,
            q,
            keys,
            values,
            start,
        };
        job.run(out);
    };
    if n * (start + n) * dim < SHARE_WORK {
        items.iter_mut().for_each(work);
    } else {
        pool::share(&mut items, &work);
    }
    out.clear();
    out.resize(n * dim, 0.0);
    for (head, values) in per_head.chunks_exact(n * head_dim).enumerate() {
        for (t, values) in values.chunks_exact(head_dim).enumerate() {
            out[t * dim + head * head_dim..][..head_dim].copy_from_slice(values);
        }
    }
}

/// One query head over every new position.
struct Head<'a> {
    shape: Heads,
    head: usize,
    q: &'a [f32],
    keys: &'a [f32],
    values: &'a [f32],
    start: usize,
}

impl Head<'_> {
    /// Writes `out[t × head_dim ..]` for each new position `t`, with the
    /// widest vectors the CPU has.
    fn run(&self, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            unsafe { self.run_avx2(out) };
            return;
        }
        self.compute(out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(&self, out: &mut [f32]) {
        self.compute(out);
    }

    #[inline(always)]
    fn compute(&self, out: &mut [f32]) {
        let Heads {
            heads,
            kv_heads,
            head_dim,
        } = self.shape;
        let (dim, kv_dim) = (heads * head_dim, kv_heads * head_dim);
        let kv_head = self.head / (heads / kv_heads);
        #[allow(clippy::cast_precision_loss)]
        let scale = 1.0 / (head_dim as f32).sqrt();
        let mut scores = Vec::with_capacity(self.start + out.len() / head_dim);
        for (t, out) in out.chunks_exact_mut(head_dim).enumerate() {
            let q = &self.q[t * dim + self.head * head_dim..][..head_dim];
            let visible = self.start + t + 1;
            scores.clear();
            let mut max = f32::NEG_INFINITY;
            for key in self.keys.chunks_exact(kv_dim).take(visible) {
                let s = dot(q, &key[kv_head * head_dim..][..head_dim]) * scale;
                max = max.max(s);
                scores.push(s);
            }
            let mut sum = 0.0;
            for s in &mut scores {
                *s = (*s - max).exp();
                sum += *s;
            }
            out.fill(0.0);
            for (s, value) in scores.iter().zip(self.values.chunks_exact(kv_dim)) {
                let w = s / sum;
                let value = &value[kv_head * head_dim..][..head_dim];
                for (o, v) in out.iter_mut().zip(value) {
                    *o += w * v;
                }
            }
        }
    }
}

/// A dot product with 16 running sums, which the compiler keeps in vector
/// registers, added up in a fixed order.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let whole = a.len() / LANES * LANES;
    for (x, y) in a[..whole]
        .chunks_exact(LANES)
        .zip(b[..whole].chunks_exact(LANES))
    {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a[whole..].iter().zip(&b[whole..]).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook computation, one position and head at a time.
    fn reference(shape: Heads, q: &[f32], k: &[f32], v: &[f32], start: usize) -> Vec<f32> {
        let Heads {
            heads,
            kv_heads,
            head_dim,
        } = shape;
        let (dim, kv_dim) = (heads * head_dim, kv_heads * head_dim);
        let n = q.len() / dim;
        let mut out = vec![0.0; n * dim];
        for t in 0..n {
            for h in 0..heads {
                let kvh = h / (heads / kv_heads);
                let qh = &q[t * dim + h * head_dim..][..head_dim];
                let scores: Vec<f32> = (0..=start + t)
                    .map(|j| {
                        let kj = &k[j * kv_dim + kvh * head_dim..][..head_dim];
                        qh.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>()
                            / (head_dim as f32).sqrt()
                    })
                    .collect();
                let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
                let total: f32 = scores.iter().map(|s| (s - max).exp()).sum();
                for (j, s) in scores.iter().enumerate() {
                    let w = (s - max).exp() / total;
                    for d in 0..head_dim {
                        out[t * dim + h * head_dim + d] += w * v[j * kv_dim + kvh * head_dim + d];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn batched_attention_is_the_textbook_one() {
        let shape = Heads {
            heads: 6,
            kv_heads: 2,
            head_dim: 20,
        };
        let (start, n) = (5, 40);
        let value = |i: usize| (i * 7919 % 1000) as f32 / 500.0 - 1.0;
        let q: Vec<f32> = (0..n * 120).map(value).collect();
        let k: Vec<f32> = (0..(start + n) * 40).map(|i| value(i + 3)).collect();
        let v: Vec<f32> = (0..(start + n) * 40).map(|i| value(i + 11)).collect();
        let mut out = Vec::new();
        attend(shape, &q, &k, &v, start, &mut out);
        let expected = reference(shape, &q, &k, &v, start);
        assert_eq!(out.len(), expected.len());
        for (a, b) in out.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{a} against {b}");
        }
    }
}
