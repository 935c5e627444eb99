//! [`Matrix`]: a weight matrix of the model and its product with rows of
//! activations.
//!
//! Q8_0 weights — as stored, or converted from Q4_1, Q5_0 or Q5_1 at load —
//! are repacked into panels for the crate's own kernels ([`super::q8`]),
//! which process a whole prompt chunk as one matrix × matrix product. Other
//! formats (Q4_0, the K-quants, floats) keep candle's `QMatMul`, one dot
//! product per token and row.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use super::error::{candle_message, LocalModelError};
use super::q8::{self, Q8Matrix};

/// A weight matrix, `rows × cols`: each row is dotted with an input row.
#[derive(Debug)]
pub(crate) enum Matrix {
    /// Q8_0 panels, multiplied by this crate's kernels.
    Q8(Q8Matrix),
    /// Any other format, multiplied by candle.
    Candle(QMatMul),
}

impl Matrix {
    /// The matrix a tensor becomes: Q8_0 panels when it is Q8_0 and whole
    /// panels, else candle's `QMatMul`.
    pub(crate) fn new(t: QTensor) -> Result<Self, String> {
        if let Some((rows, cols)) = q8_panels(&t) {
            let bytes = t.data().map_err(|e| candle_message(&e))?;
            return Q8Matrix::from_q8_0(&bytes, rows, cols).map(Self::Q8);
        }
        QMatMul::from_qtensor(t)
            .map(Self::Candle)
            .map_err(|e| candle_message(&e))
    }

    /// `out = x · selfᵀ`, for `rows` rows of `x`.
    pub(crate) fn product(
        &self,
        x: &[f32],
        rows: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), LocalModelError> {
        match self {
            Self::Q8(w) => {
                q8::product(w, x, rows, out);
                Ok(())
            }
            Self::Candle(w) => {
                let cols = x.len() / rows.max(1);
                let compute = |e: candle_core::Error| LocalModelError::Compute(candle_message(&e));
                let t = Tensor::from_slice(x, (rows, cols), &Device::Cpu).map_err(compute)?;
                *out = w
                    .forward(&t)
                    .and_then(|y| y.flatten_all())
                    .and_then(|y| y.to_vec1::<f32>())
                    .map_err(compute)?;
                Ok(())
            }
        }
    }
}

/// `(rows, cols)` when `t` is a Q8_0 matrix this crate's kernels take.
fn q8_panels(t: &QTensor) -> Option<(usize, usize)> {
    match *t.shape().dims() {
        [rows, cols] if t.dtype() == GgmlDType::Q8_0 && Q8Matrix::fits(rows, cols) => {
            Some((rows, cols))
        }
        _ => None,
    }
}

/// The token embeddings: a table of its own, or the rows of the output head
/// when the two are tied (one copy in memory).
#[derive(Debug)]
pub(crate) enum Embedding {
    /// A table as stored, looked up by candle.
    Table(Arc<QTensor>),
    /// The rows of the output head ([`Matrix::Q8`]).
    Output,
}

impl Embedding {
    pub(crate) fn table(t: QTensor) -> Self {
        Self::Table(Arc::new(t))
    }

    /// One tensor as both the embeddings and the output head: Q8_0 panels
    /// when it fits them, else the stored table for the lookups and candle's
    /// `QMatMul` of it for the head. (For float tables — F32, F16, BF16, the
    /// usual format of unquantized exports, SmolLM2's and Qwen2.5's tied
    /// heads among them — candle's head is a dequantized copy: the table
    /// cannot be taken back out of it, so both are kept.)
    pub(crate) fn tied(t: QTensor) -> Result<(Self, Matrix), String> {
        if q8_panels(&t).is_some() {
            return Matrix::new(t).map(|m| (Self::Output, m));
        }
        let t = Arc::new(t);
        let output = QMatMul::from_arc(Arc::clone(&t)).map_err(|e| candle_message(&e))?;
        Ok((Self::Table(t), Matrix::Candle(output)))
    }

    /// The embeddings of `tokens`, one row of `dim` values each.
    pub(crate) fn lookup(
        &self,
        output: &Matrix,
        tokens: &[u32],
        dim: usize,
    ) -> Result<Vec<f32>, LocalModelError> {
        let compute = |e: candle_core::Error| LocalModelError::Compute(candle_message(&e));
        match (self, output) {
            (Self::Table(t), _) => {
                let ids =
                    Tensor::from_slice(tokens, tokens.len(), &Device::Cpu).map_err(compute)?;
                t.embedding(&ids)
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(compute)
            }
            (Self::Output, Matrix::Q8(m)) => {
                let mut x = vec![0.0; tokens.len() * dim];
                for (&token, row) in tokens.iter().zip(x.chunks_exact_mut(dim)) {
                    let token = token as usize;
                    if token >= m.rows() || m.cols() != dim {
                        return Err(LocalModelError::Compute(format!(
                            "token {token} is outside the embedding table"
                        )));
                    }
                    m.dequantize_row(token, row);
                }
                Ok(x)
            }
            (Self::Output, Matrix::Candle(_)) => Err(LocalModelError::Compute(
                "tied embeddings without their output head".into(),
            )),
        }
    }
}
