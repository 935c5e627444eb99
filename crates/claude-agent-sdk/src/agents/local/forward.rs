//! The transformer's forward pass over shared [`ModelWeights`], with a
//! [`KvCache`] owned by each generation.
//!
//! A batch of tokens (a prompt chunk, or the one token being decoded) goes
//! through every layer together: each matrix product is one matrix × matrix
//! product ([`Matrix::product`](super::matrix::Matrix::product)), attention
//! covers the whole batch at once ([`attend`]), and only the last position's
//! logits are computed. The rest — RMS norm, rotary embeddings, SwiGLU — is
//! plain Rust over `f32` slices: at the sizes of small models that is as fast
//! as building tensors for it, and it keeps the cache an ordinary vector that
//! a generation can grow, copy or drop at will.

use super::attention::{attend, Heads};
use super::error::LocalModelError;
use super::model::{ModelWeights, RopeStyle};

/// The keys and values of the positions seen so far, per layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// An empty cache for `model`.
    pub(crate) fn new(model: &ModelWeights) -> Self {
        Self {
            keys: vec![Vec::new(); model.config.layers],
            values: vec![Vec::new(); model.config.layers],
            len: 0,
        }
    }

    /// The number of positions cached.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut Vec<f32>) {
    out.clear();
    for row in x.chunks_exact(weight.len()) {
        #[allow(clippy::cast_precision_loss)]
        let mean = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        out.extend(row.iter().zip(weight).map(|(v, w)| v * scale * w));
    }
}

fn add_bias(x: &mut [f32], bias: Option<&Vec<f32>>) {
    if let Some(b) = bias {
        for row in x.chunks_exact_mut(b.len()) {
            for (v, b) in row.iter_mut().zip(b) {
                *v += b;
            }
        }
    }
}

/// Rotates each head of each row of `x` (`heads` heads per row) by its position.
fn rope(m: &ModelWeights, x: &mut [f32], heads: usize, trig: &[(f32, f32)]) {
    let c = &m.config;
    let half = c.rope_dim / 2;
    for (t, row) in x.chunks_exact_mut(heads * c.head_dim).enumerate() {
        let trig = &trig[t * half..][..half];
        for head in row.chunks_exact_mut(c.head_dim) {
            for (i, &(cos, sin)) in trig.iter().enumerate() {
                let (a, b) = match c.rope_style {
                    RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                    RopeStyle::Halves => (i, i + half),
                };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * cos - x1 * sin;
                head[b] = x0 * sin + x1 * cos;
            }
        }
    }
}

/// Runs `tokens` (at positions `cache.len()..`) through the model, extending
/// the cache; returns the logits of the last token.
///
/// `check` runs before every layer: a long prompt chunk stops within one
/// layer when it fails. After an error the cache is partly extended and must
/// not be used again.
pub(crate) fn forward(
    m: &ModelWeights,
    tokens: &[u32],
    cache: &mut KvCache,
    check: &dyn Fn() -> Result<(), LocalModelError>,
) -> Result<Vec<f32>, LocalModelError> {
    let c = &m.config;
    let n = tokens.len();
    let start = cache.len;
    if n == 0 {
        return Err(LocalModelError::Compute("no tokens to process".into()));
    }
    let mut x = m.embedding.lookup(&m.output, tokens, c.dim)?;

    // cos/sin of every rotated pair at every new position, shared by all layers.
    let half = c.rope_dim / 2;
    let mut trig = Vec::with_capacity(n * half);
    for p in start..start + n {
        #[allow(clippy::cast_precision_loss)]
        let p = p as f32;
        trig.extend(c.inv_freq.iter().map(|f| {
            let (s, co) = (p * f).sin_cos();
            (co, s)
        }));
    }

    let heads = Heads {
        heads: c.heads,
        kv_heads: c.kv_heads,
        head_dim: c.head_dim,
    };
    let mut h = Vec::with_capacity(x.len());
    let mut attn = Vec::new();
    let (mut q, mut k, mut v, mut o) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut gate, mut up, mut down) = (Vec::new(), Vec::new(), Vec::new());
    for (layer, (keys, values)) in m
        .layers
        .iter()
        .zip(cache.keys.iter_mut().zip(cache.values.iter_mut()))
    {
        check()?;
        rms_norm(&x, &layer.attn_norm, c.eps, &mut h);
        layer.wq.product(&h, n, &mut q)?;
        layer.wk.product(&h, n, &mut k)?;
        layer.wv.product(&h, n, &mut v)?;
        add_bias(&mut q, layer.bq.as_ref());
        add_bias(&mut k, layer.bk.as_ref());
        add_bias(&mut v, layer.bv.as_ref());
        rope(m, &mut q, c.heads, &trig);
        rope(m, &mut k, c.kv_heads, &trig);
        keys.extend_from_slice(&k);
        values.extend_from_slice(&v);

        attend(heads, &q, keys, values, start, &mut attn);
        layer.wo.product(&attn, n, &mut o)?;
        for (x, o) in x.iter_mut().zip(&o) {
            *x += o;
        }

        rms_norm(&x, &layer.ffn_norm, c.eps, &mut h);
        layer.gate.product(&h, n, &mut gate)?;
        layer.up.product(&h, n, &mut up)?;
        for (u, g) in up.iter_mut().zip(&gate) {
            *u *= g / (1.0 + (-g).exp());
        }
        layer.down.product(&up, n, &mut down)?;
        for (x, d) in x.iter_mut().zip(&down) {
            *x += d;
        }
    }
    cache.len += n;

    let last = &x[(n - 1) * c.dim..];
    rms_norm(last, &m.out_norm, c.eps, &mut h);
    let mut logits = Vec::new();
    m.output.product(&h, 1, &mut logits)?;
    Ok(logits)
}
