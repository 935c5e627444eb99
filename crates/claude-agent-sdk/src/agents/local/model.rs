//! [`ModelWeights`]: a GGUF file read into memory — hyper-parameters, weights,
//! tokenizer and chat format — ready for [`forward`](super::forward).
//!
//! Why own the model code instead of `candle-transformers`' `quantized_llama`:
//! that crate compiles every model family (minutes of cold build for one
//! used file), its model keeps the KV cache inside itself (so one loaded model
//! could not serve many agents at once), and it gives no say over the weight
//! format. Here the weights are immutable and shared (`Arc`), every generation
//! owns its own [`KvCache`](super::forward::KvCache), and only `candle-core`
//! is used: its GGUF reader, its quantized tensors, and its matrix kernels
//! for the formats the crate's own do not cover.
//!
//! Weights stored as Q4_1, Q5_0 or Q5_1 are converted to Q8_0 when the model
//! loads, and Q8_0 matrices are repacked for the crate's own kernels
//! ([`Matrix`], [`super::q8`]), which have integer SIMD paths chosen at run
//! time — several times faster in the same portable build, for about 1.5×
//! the memory of Q4_1 weights. Q4_0, the K-quants and float weights are
//! kept as stored, for candle's kernels.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;

use super::chat::ChatFormat;
use super::error::{candle_message, LocalModelError};
use super::matrix::{Embedding, Matrix};
use super::tokenizer::{Tokenizer, Vocabulary};

/// How rotary position embeddings pair up a head's dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RopeStyle {
    /// Adjacent pairs `(2i, 2i+1)`: llama.cpp's `llama` (weights permuted at conversion).
    Interleaved,
    /// Halves `(i, i + d/2)`: `qwen2`.
    Halves,
}

/// The hyper-parameters of a model.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) architecture: String,
    pub(crate) layers: usize,
    pub(crate) dim: usize,
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) rope_dim: usize,
    pub(crate) rope_style: RopeStyle,
    pub(crate) eps: f32,
    pub(crate) context_length: usize,
    /// The inverse frequency of each rotated pair.
    pub(crate) inv_freq: Vec<f32>,
}

/// One transformer block's weights.
pub(crate) struct Layer {
    pub(crate) attn_norm: Vec<f32>,
    pub(crate) wq: Matrix,
    pub(crate) wk: Matrix,
    pub(crate) wv: Matrix,
    pub(crate) bq: Option<Vec<f32>>,
    pub(crate) bk: Option<Vec<f32>>,
    pub(crate) bv: Option<Vec<f32>>,
    pub(crate) wo: Matrix,
    pub(crate) ffn_norm: Vec<f32>,
    pub(crate) gate: Matrix,
    pub(crate) up: Matrix,
    pub(crate) down: Matrix,
}

/// A loaded model: immutable, shared by every agent and generation using it.
pub(crate) struct ModelWeights {
    pub(crate) path: PathBuf,
    pub(crate) name: String,
    pub(crate) config: Config,
    pub(crate) embedding: Embedding,
    pub(crate) layers: Vec<Layer>,
    pub(crate) out_norm: Vec<f32>,
    pub(crate) output: Matrix,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) chat: ChatFormat,
    /// Token ids that end the assistant's turn.
    pub(crate) end_of_turn: Vec<u32>,
    /// Bytes of weights held in memory.
    pub(crate) weight_bytes: usize,
}

impl std::fmt::Debug for ModelWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelWeights")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Reads GGUF metadata and tensors, with errors that name the file.
struct Loader<'a> {
    path: &'a Path,
    content: Content,
    reader: BufReader<File>,
    /// The file's length, which every tensor's data must fit in.
    file_len: u64,
    weight_bytes: usize,
}

impl Loader<'_> {
    fn missing(&self, key: &str) -> LocalModelError {
        LocalModelError::MissingMetadata {
            path: self.path.to_owned(),
            key: key.to_owned(),
        }
    }

    fn value(&self, key: &str) -> Result<&Value, LocalModelError> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| self.missing(key))
    }

    fn usize(&self, key: &str) -> Result<usize, LocalModelError> {
        let n = match self.value(key)? {
            Value::U8(v) => Some(u64::from(*v)),
            Value::U16(v) => Some(u64::from(*v)),
            Value::U32(v) => Some(u64::from(*v)),
            Value::U64(v) => Some(*v),
            Value::I8(v) => u64::try_from(*v).ok(),
            Value::I16(v) => u64::try_from(*v).ok(),
            Value::I32(v) => u64::try_from(*v).ok(),
            Value::I64(v) => u64::try_from(*v).ok(),
            _ => None,
        };
        n.and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.missing(key))
    }

    fn f32(&self, key: &str) -> Result<f32, LocalModelError> {
        match self.value(key)? {
            Value::F32(v) => Ok(*v),
            #[allow(clippy::cast_possible_truncation)]
            Value::F64(v) => Ok(*v as f32),
            _ => Err(self.missing(key)),
        }
    }

    fn string(&self, key: &str) -> Result<&str, LocalModelError> {
        match self.value(key)? {
            Value::String(s) => Ok(s),
            _ => Err(self.missing(key)),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<&str>, LocalModelError> {
        match self.value(key)? {
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.as_str()),
                    _ => Err(self.missing(key)),
                })
                .collect(),
            _ => Err(self.missing(key)),
        }
    }

    fn ints(&self, key: &str) -> Result<Vec<i32>, LocalModelError> {
        match self.value(key)? {
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::I32(n) => Ok(*n),
                    Value::U32(n) => i32::try_from(*n).map_err(|_| self.missing(key)),
                    _ => Err(self.missing(key)),
                })
                .collect(),
            _ => Err(self.missing(key)),
        }
    }

    fn bad(&self, name: &str, reason: impl ToString) -> LocalModelError {
        LocalModelError::BadTensor {
            path: self.path.to_owned(),
            name: name.to_owned(),
            reason: reason.to_string(),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// A tensor as stored, checked against the expected shape (`[rows, cols]`
    /// in candle's order, or `[len]`).
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<QTensor, LocalModelError> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| self.bad(name, "missing from the file"))?;
        if info.shape.dims() != shape {
            let found = info.shape.dims().to_vec();
            return Err(self.bad(name, format!("shape {found:?}, expected {shape:?}")));
        }
        // Checked here, not left to candle, whose size arithmetic can wrap
        // on a file's absurd shape (a tensor of 2^64 elements "fits" in 0).
        let dtype = info.ggml_dtype;
        let end = shape
            .iter()
            .try_fold(1_usize, |n, d| n.checked_mul(*d))
            .map(|elements| elements.div_ceil(dtype.block_size()))
            .and_then(|blocks| blocks.checked_mul(dtype.type_size()))
            .and_then(|bytes| u64::try_from(bytes).ok())
            .and_then(|bytes| bytes.checked_add(info.offset))
            .and_then(|bytes| bytes.checked_add(self.content.tensor_data_offset));
        match end {
            None => return Err(self.bad(name, "its size overflows")),
            Some(end) if end > self.file_len => {
                return Err(self.bad(name, "its data runs past the end of the file"))
            }
            Some(_) => {}
        }
        let tensor = info
            .read(
                &mut self.reader,
                self.content.tensor_data_offset,
                &Device::Cpu,
            )
            .map_err(|e| self.bad(name, candle_message(&e)))?;
        Ok(tensor)
    }

    fn vector(&mut self, name: &str, len: usize) -> Result<Vec<f32>, LocalModelError> {
        let t = self.tensor(name, &[len])?;
        let v = t
            .dequantize(&Device::Cpu)
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| self.bad(name, candle_message(&e)))?;
        self.weight_bytes += v.len() * 4;
        Ok(v)
    }

    /// A weight matrix, converted to Q8_0 when its format has no fast kernel.
    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<Matrix, LocalModelError> {
        let t = self.tensor(name, &[rows, cols])?;
        let t = self.fast_format(name, t)?;
        self.weight_bytes += t.storage_size_in_bytes();
        Matrix::new(t).map_err(|e| self.bad(name, e))
    }

    fn fast_format(&self, name: &str, t: QTensor) -> Result<QTensor, LocalModelError> {
        if !needs_conversion(t.dtype()) {
            return Ok(t);
        }
        t.dequantize(&Device::Cpu)
            .and_then(|f| QTensor::quantize(&f, GgmlDType::Q8_0))
            .map_err(|e| self.bad(name, candle_message(&e)))
    }
}

/// Loads the model at `path` (not cached: see [`super::cache`]).
pub(crate) fn load(path: &Path) -> Result<ModelWeights, LocalModelError> {
    let file = open(path)?;
    let file_len = file
        .metadata()
        .map_err(|source| LocalModelError::Io {
            path: path.to_owned(),
            source,
        })?
        .len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let content = read_header(&mut reader).map_err(|reason| LocalModelError::InvalidFile {
        path: path.to_owned(),
        reason,
    })?;
    let mut l = Loader {
        path,
        content,
        reader,
        file_len,
        weight_bytes: 0,
    };
    let architecture = l.string("general.architecture")?.to_owned();
    let rope_style = match architecture.as_str() {
        "llama" => RopeStyle::Interleaved,
        "qwen2" => RopeStyle::Halves,
        _ => {
            return Err(LocalModelError::UnsupportedArchitecture {
                path: path.to_owned(),
                architecture,
            })
        }
    };
    let name = l
        .string("general.name")
        .map_or_else(|_| file_stem(path), str::to_owned);
    let a = architecture.as_str();
    let layers = l.usize(&format!("{a}.block_count"))?;
    let dim = l.usize(&format!("{a}.embedding_length"))?;
    let ffn = l.usize(&format!("{a}.feed_forward_length"))?;
    let heads = l.usize(&format!("{a}.attention.head_count"))?;
    let kv_heads = l
        .usize(&format!("{a}.attention.head_count_kv"))
        .unwrap_or(heads);
    let eps = l.f32(&format!("{a}.attention.layer_norm_rms_epsilon"))?;
    let base = l.f32(&format!("{a}.rope.freq_base")).unwrap_or(10_000.0);
    let context_length = l.usize(&format!("{a}.context_length")).unwrap_or(2048);
    if heads == 0
        || kv_heads == 0
        || dim == 0
        || dim % heads != 0
        || heads % kv_heads != 0
        || layers == 0
    {
        return Err(LocalModelError::InvalidFile {
            path: path.to_owned(),
            reason: format!("inconsistent shape: {layers} layers, {dim} wide, {heads} heads, {kv_heads} key/value heads"),
        });
    }
    let head_dim = dim / heads;
    let rope_dim = l
        .usize(&format!("{a}.rope.dimension_count"))
        .unwrap_or(head_dim)
        .min(head_dim)
        & !1;

    let tokenizer = build_tokenizer(&l)?;
    let template =
        l.string("tokenizer.chat_template")
            .map_err(|_| LocalModelError::ChatTemplate {
                path: path.to_owned(),
                reason: "the file has no `tokenizer.chat_template`".into(),
            })?;
    let chat = ChatFormat::recognise(template).map_err(|reason| LocalModelError::ChatTemplate {
        path: path.to_owned(),
        reason,
    })?;
    let mut end_of_turn: Vec<u32> = chat
        .end_of_turn()
        .iter()
        .filter_map(|t| tokenizer.token_id(t))
        .collect();
    if let Ok(eos) = l.usize("tokenizer.ggml.eos_token_id") {
        end_of_turn.extend(u32::try_from(eos).ok());
    }
    end_of_turn.sort_unstable();
    end_of_turn.dedup();

    let vocab = tokenizer.vocab_size();
    // Read before anything is sized by the metadata's numbers: the table's
    // shape must agree with them and its bytes must be in the file, so a
    // header that lies (a width of 2^40) fails here instead of asking for
    // terabytes below.
    let embd = "token_embd.weight";
    let table = l.tensor(embd, &[vocab, dim])?;
    l.weight_bytes += table.storage_size_in_bytes();
    let rope_factors = if l.has("rope_freqs.weight") {
        Some(l.vector("rope_freqs.weight", rope_dim / 2)?)
    } else {
        None
    };
    #[allow(clippy::cast_precision_loss)]
    let inv_freq = (0..rope_dim / 2)
        .map(|i| {
            let f = base.powf(-((2 * i) as f32) / rope_dim as f32);
            f / rope_factors.as_ref().map_or(1.0, |r| r[i])
        })
        .collect();
    let config = Config {
        architecture,
        layers,
        dim,
        heads,
        kv_heads,
        head_dim,
        rope_dim,
        rope_style,
        eps,
        context_length,
        inv_freq,
    };

    let kv_dim = kv_heads * head_dim;
    let (embedding, output) = if l.has("output.weight") {
        (
            Embedding::table(table),
            l.matrix("output.weight", vocab, dim)?,
        )
    } else if needs_conversion(table.dtype()) {
        // Tied, in a slow format: the output head is a Q8_0 copy.
        let t = table
            .dequantize(&Device::Cpu)
            .and_then(|f| QTensor::quantize(&f, GgmlDType::Q8_0))
            .map_err(|e| l.bad(embd, candle_message(&e)))?;
        l.weight_bytes += t.storage_size_in_bytes();
        let output = Matrix::new(t).map_err(|e| l.bad(embd, e))?;
        (Embedding::table(table), output)
    } else {
        // Tied: one copy serves as both (a float table keeps a second, see
        // `Embedding::tied`).
        Embedding::tied(table).map_err(|e| l.bad(embd, e))?
    };
    let out_norm = l.vector("output_norm.weight", dim)?;
    // Grown as the blocks are read, not reserved: `layers` is the file's
    // word, and a lying block count must end at the first missing tensor,
    // not in an allocation of `layers` blocks.
    let mut blocks = Vec::new();
    for i in 0..layers {
        let p = |s: &str| format!("blk.{i}.{s}");
        let bias = |l: &mut Loader<'_>, s: &str, n: usize| {
            let name = p(s);
            if l.has(&name) {
                l.vector(&name, n).map(Some)
            } else {
                Ok(None)
            }
        };
        blocks.push(Layer {
            attn_norm: l.vector(&p("attn_norm.weight"), dim)?,
            wq: l.matrix(&p("attn_q.weight"), dim, dim)?,
            wk: l.matrix(&p("attn_k.weight"), kv_dim, dim)?,
            wv: l.matrix(&p("attn_v.weight"), kv_dim, dim)?,
            bq: bias(&mut l, "attn_q.bias", dim)?,
            bk: bias(&mut l, "attn_k.bias", kv_dim)?,
            bv: bias(&mut l, "attn_v.bias", kv_dim)?,
            wo: l.matrix(&p("attn_output.weight"), dim, dim)?,
            ffn_norm: l.vector(&p("ffn_norm.weight"), dim)?,
            gate: l.matrix(&p("ffn_gate.weight"), ffn, dim)?,
            up: l.matrix(&p("ffn_up.weight"), ffn, dim)?,
            down: l.matrix(&p("ffn_down.weight"), dim, ffn)?,
        });
    }
    Ok(ModelWeights {
        path: path.to_owned(),
        name,
        config,
        embedding,
        layers: blocks,
        out_norm,
        output,
        tokenizer,
        chat,
        end_of_turn,
        weight_bytes: l.weight_bytes,
    })
}

/// Opens the model file; a directory is an I/O error naming it, not a file
/// that fails to parse ("Is a directory" read as a corrupt download).
/// The file's header (metadata and tensor table), read by candle. A panic
/// there is an error too: candle divides by the file's `general.alignment`,
/// which a broken file may give as 0 (the one division in its header reader).
fn read_header(reader: &mut BufReader<File>) -> Result<Content, String> {
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Content::read(reader)));
    match read {
        Ok(content) => content.map_err(|e| candle_message(&e)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|m| (*m).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if message.contains("divide by zero") {
                Err("`general.alignment` is 0: the tensor data cannot be aligned to it".into())
            } else {
                Err(format!("its header could not be read ({message})"))
            }
        }
    }
}

fn open(path: &Path) -> Result<File, LocalModelError> {
    let io = |source| LocalModelError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "a directory, not a GGUF file",
        )));
    }
    Ok(file)
}

fn build_tokenizer(l: &Loader<'_>) -> Result<Tokenizer, LocalModelError> {
    let err = |reason: String| LocalModelError::Tokenizer {
        path: l.path.to_owned(),
        reason,
    };
    let model = l.string("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(err(format!(
            "tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)"
        )));
    }
    let vocab = Vocabulary {
        tokens: l.strings("tokenizer.ggml.tokens")?,
        types: l.ints("tokenizer.ggml.token_type").unwrap_or_default(),
        merges: l.strings("tokenizer.ggml.merges")?,
        pre: l.string("tokenizer.ggml.pre").unwrap_or("gpt2"),
    };
    Tokenizer::new(&vocab).map_err(err)
}

/// Whether weights of this format are converted to Q8_0 at load.
fn needs_conversion(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned())
}
