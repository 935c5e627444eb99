//! `LocalModelAgent` at the edges: broken GGUF files (sizes that overflow,
//! a zero alignment, unknown types, absurd counts) refused with clear errors,
//! a cached model file that is not the model, a load cut short by a timeout,
//! a huge input, and the pre-tokenizers' letters and numbers. Synthetic tiny
//! GGUF files where they do; the real default model where it matters.
#![cfg(feature = "local")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use claude_agent_sdk::agents::local::fetch::{self, DEFAULT_MODEL};
use claude_agent_sdk::agents::{LocalModel, LocalModelAgent, LocalModelError};
use claude_agent_sdk::orchestration::{Agent, AgentInput};

/// One test's scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("review-local-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A metadata value, as GGUF writes it.
#[derive(Clone)]
enum V {
    U32(u32),
    U64(u64),
    I32(i32),
    F32(f32),
    Str(String),
    Arr(u32, Vec<V>),
}

fn s(v: &str) -> V {
    V::Str(v.to_owned())
}

impl V {
    fn type_id(&self) -> u32 {
        match self {
            V::U32(_) => 4,
            V::I32(_) => 5,
            V::F32(_) => 6,
            V::Str(_) => 8,
            V::Arr(..) => 9,
            V::U64(_) => 10,
        }
    }

    fn write(&self, b: &mut Vec<u8>) {
        match self {
            V::U32(v) => b.extend_from_slice(&v.to_le_bytes()),
            V::U64(v) => b.extend_from_slice(&v.to_le_bytes()),
            V::I32(v) => b.extend_from_slice(&v.to_le_bytes()),
            V::F32(v) => b.extend_from_slice(&v.to_le_bytes()),
            V::Str(v) => {
                b.extend_from_slice(&(v.len() as u64).to_le_bytes());
                b.extend_from_slice(v.as_bytes());
            }
            V::Arr(t, items) => {
                b.extend_from_slice(&t.to_le_bytes());
                b.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for i in items {
                    i.write(b);
                }
            }
        }
    }
}

/// A tensor: name, dims in candle's order (`[rows, cols]`), GGML type, data.
struct T {
    name: String,
    dims: Vec<u64>,
    dtype: u32,
    data: Vec<u8>,
}

/// A GGUF v3 file, written by hand so that it can lie.
fn gguf(meta: &[(String, V)], tensors: &[T]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    b.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    for (k, v) in meta {
        s(k).write(&mut b);
        b.extend_from_slice(&v.type_id().to_le_bytes());
        v.write(&mut b);
    }
    let mut offset = 0u64;
    let mut offsets = Vec::new();
    for t in tensors {
        offsets.push(offset);
        offset += (t.data.len() as u64).div_ceil(32) * 32;
    }
    for (t, off) in tensors.iter().zip(&offsets) {
        s(&t.name).write(&mut b);
        b.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in t.dims.iter().rev() {
            b.extend_from_slice(&d.to_le_bytes());
        }
        b.extend_from_slice(&t.dtype.to_le_bytes());
        b.extend_from_slice(&off.to_le_bytes());
    }
    while b.len() % 32 != 0 {
        b.push(0);
    }
    for t in tensors {
        b.extend_from_slice(&t.data);
        while b.len() % 32 != 0 {
            b.push(0);
        }
    }
    b
}

/// GPT-2's printable stand-in for each byte.
fn byte_chars() -> Vec<char> {
    let mut extra = 0;
    (0..=255u8)
        .map(|b| {
            if matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF) {
                char::from(b)
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap()
            }
        })
        .collect()
}

const DIM: u64 = 8;
const FFN: u64 = 16;
const VOCAB: u64 = 258;

/// A tiny llama model: 8 wide, F32 weights, the 256 byte tokens and ChatML's
/// two markers, the ChatML template.
fn tiny_meta(layers: u32) -> Vec<(String, V)> {
    let mut tokens: Vec<V> = byte_chars().iter().map(|c| s(&c.to_string())).collect();
    tokens.extend([s("<|im_start|>"), s("<|im_end|>")]);
    let mut types = vec![V::I32(1); 256];
    types.extend([V::I32(3), V::I32(3)]);
    [
        ("general.architecture", s("llama")),
        ("general.name", s("tiny")),
        ("llama.block_count", V::U32(layers)),
        ("llama.embedding_length", V::U32(DIM as u32)),
        ("llama.feed_forward_length", V::U32(FFN as u32)),
        ("llama.attention.head_count", V::U32(2)),
        ("llama.attention.head_count_kv", V::U32(1)),
        ("llama.attention.layer_norm_rms_epsilon", V::F32(1e-5)),
        ("llama.context_length", V::U32(256)),
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.pre", s("smollm")),
        ("tokenizer.ggml.tokens", V::Arr(8, tokens)),
        ("tokenizer.ggml.token_type", V::Arr(5, types)),
        ("tokenizer.ggml.merges", V::Arr(8, vec![])),
        (
            "tokenizer.chat_template",
            s("{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn set(meta: &mut Vec<(String, V)>, key: &str, value: V) {
    meta.retain(|(k, _)| k != key);
    meta.push((key.to_owned(), value));
}

fn f32_tensor(name: &str, dims: &[u64], seed: &mut u64) -> T {
    let len: u64 = dims.iter().product();
    let mut data = Vec::with_capacity(len as usize * 4);
    for _ in 0..len {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let v = (*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        data.extend_from_slice(&v.to_le_bytes());
    }
    T {
        name: name.to_owned(),
        dims: dims.to_vec(),
        dtype: 0,
        data,
    }
}

/// The tensors of the tiny model; with `ffn`, the three feed-forward
/// matrices get that many rows (or columns) and no data.
fn tiny_tensors(layers: u32, ffn: Option<u64>) -> Vec<T> {
    tiny_tensors_vocab(layers, ffn, VOCAB)
}

fn tiny_tensors_vocab(layers: u32, ffn: Option<u64>, vocab: u64) -> Vec<T> {
    let mut seed = 1;
    let kv = DIM / 2;
    let mut t = vec![
        f32_tensor("token_embd.weight", &[vocab, DIM], &mut seed),
        f32_tensor("output_norm.weight", &[DIM], &mut seed),
    ];
    for i in 0..layers {
        let p = |n: &str| format!("blk.{i}.{n}");
        t.push(f32_tensor(&p("attn_norm.weight"), &[DIM], &mut seed));
        t.push(f32_tensor(&p("attn_q.weight"), &[DIM, DIM], &mut seed));
        t.push(f32_tensor(&p("attn_k.weight"), &[kv, DIM], &mut seed));
        t.push(f32_tensor(&p("attn_v.weight"), &[kv, DIM], &mut seed));
        t.push(f32_tensor(&p("attn_output.weight"), &[DIM, DIM], &mut seed));
        t.push(f32_tensor(&p("ffn_norm.weight"), &[DIM], &mut seed));
        match ffn {
            None => {
                t.push(f32_tensor(&p("ffn_gate.weight"), &[FFN, DIM], &mut seed));
                t.push(f32_tensor(&p("ffn_up.weight"), &[FFN, DIM], &mut seed));
                t.push(f32_tensor(&p("ffn_down.weight"), &[DIM, FFN], &mut seed));
            }
            Some(ffn) => {
                for (n, dims) in [
                    ("ffn_gate.weight", vec![ffn, DIM]),
                    ("ffn_up.weight", vec![ffn, DIM]),
                    ("ffn_down.weight", vec![DIM, ffn]),
                ] {
                    t.push(T {
                        name: p(n),
                        dims,
                        dtype: 0,
                        data: Vec::new(),
                    });
                }
            }
        }
    }
    t
}

fn tiny() -> Vec<u8> {
    gguf(&tiny_meta(1), &tiny_tensors(1, None))
}

// ---------------------------------------------------------------------------

/// `feed_forward_length` = 2^61 with 8-wide rows: the FFN tensors' element
/// count, 2^64, overflows `usize`. In a debug build candle panics on the
/// multiplication (caught: "the loader panicked on this file"); in a release
/// build it wraps to 0, so tensors with no data at all "fit" the file, the
/// model LOADS, and the first generation dies with "capacity overflow" on
/// the generation thread. It must be refused, naming the tensor.
#[test]
fn a_tensor_whose_size_overflows_is_a_bad_tensor_not_a_panic() {
    let scratch = Scratch::new("overflow");
    let ffn = 1u64 << 61;
    let mut meta = tiny_meta(1);
    set(&mut meta, "llama.feed_forward_length", V::U64(ffn));
    let path = scratch.file("overflow.gguf", &gguf(&meta, &tiny_tensors(1, Some(ffn))));
    let err = LocalModel::load(path).unwrap_err();
    assert!(
        matches!(err, LocalModelError::BadTensor { ref name, .. } if name == "blk.0.ffn_gate.weight"),
        "{err}"
    );
}

/// `general.alignment = 0`: candle divides by it (a panic, printed to
/// stderr with a backtrace when RUST_BACKTRACE is set, then caught as "the
/// loader panicked on this file"). It must be a clear error naming the key.
#[test]
fn a_zero_alignment_is_a_clear_error_not_a_panic() {
    let scratch = Scratch::new("align");
    let mut meta = tiny_meta(1);
    set(&mut meta, "general.alignment", V::U32(0));
    let err =
        LocalModel::load(scratch.file("a.gguf", &gguf(&meta, &tiny_tensors(1, None)))).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, LocalModelError::InvalidFile { .. }) && msg.contains("alignment"),
        "{msg}"
    );
}

/// An unknown tensor type is an invalid file.
#[test]
fn unknown_tensor_type_is_invalid_file() {
    let scratch = Scratch::new("dtype");
    let mut t = tiny_tensors(1, None);
    t[1].dtype = 1234;
    let err = LocalModel::load(scratch.file("d.gguf", &gguf(&tiny_meta(1), &t))).unwrap_err();
    assert!(matches!(err, LocalModelError::InvalidFile { .. }), "{err}");
}

/// Header counts and string lengths of 2^60, a header cut short, tensor
/// data cut short: InvalidFile / BadTensor, with no huge allocation.
#[test]
fn absurd_counts_are_invalid_files() {
    let scratch = Scratch::new("absurd");
    let good = tiny();
    // tensor count
    let mut b = good.clone();
    b[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let err = LocalModel::load(scratch.file("tc.gguf", &b)).unwrap_err();
    assert!(matches!(err, LocalModelError::InvalidFile { .. }), "{err}");
    // first key length
    let mut b = good.clone();
    b[24..32].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let err = LocalModel::load(scratch.file("kl.gguf", &b)).unwrap_err();
    assert!(matches!(err, LocalModelError::InvalidFile { .. }), "{err}");
    // truncated header
    let err = LocalModel::load(scratch.file("th.gguf", &good[..30])).unwrap_err();
    assert!(matches!(err, LocalModelError::InvalidFile { .. }), "{err}");
    // truncated data
    let err = LocalModel::load(scratch.file("td.gguf", &good[..good.len() - 40])).unwrap_err();
    assert!(
        matches!(
            err,
            LocalModelError::InvalidFile { .. } | LocalModelError::BadTensor { .. }
        ),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// The real model (SmolLM2-135M-Instruct), as the other tests get it.

fn model_path() -> PathBuf {
    match fetch::fetch(&DEFAULT_MODEL, &mut |_| {}) {
        Ok(path) => path,
        Err(e) => panic!("these tests need the default model: {e}"),
    }
}

/// A cached model file of the right size whose bytes are not the model's
/// (a corrupt disk, an interrupted copy into place by hand, another file of
/// the same size) is not cached: `fetch` fetches it again rather than hand
/// it back as the verified model (it did, and `orchestra model list` said
/// it was there, while loading it failed).
///
/// Runs in a child process: the cache directory comes from the environment.
#[test]
fn a_cached_file_whose_checksum_is_wrong_is_not_cached() {
    const CHILD: &str = "LOCAL_EDGES_FETCH_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let dir = fetch::models_dir().unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join(DEFAULT_MODEL.file);
        let f = std::fs::File::create(&target).unwrap();
        f.set_len(DEFAULT_MODEL.size).unwrap();
        drop(f);
        // Of the right size but not the model: not cached, so `fetch` would
        // fetch it again rather than hand it out (not done here: no download
        // in a test).
        assert!(
            !fetch::is_cached(&DEFAULT_MODEL),
            "a file of zeros of the model's size passes for the cached model"
        );
        return;
    }
    let scratch = Scratch::new("fetch-corrupt");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_cached_file_whose_checksum_is_wrong_is_not_cached",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env(fetch::MODELS_DIR_ENV, &scratch.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .filter(|l| l.contains("cached") || l.contains("panicked"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The tiny model with extra (byte-mapped) tokens and merges, and the given
/// pre-tokenizer; returns the model and each extra token's id.
fn tiny_with_vocab(
    scratch: &Scratch,
    pre: &str,
    extra: &[String],
    merges: &[String],
) -> (LocalModel, Vec<u32>) {
    let mut meta = tiny_meta(1);
    let mut tokens: Vec<V> = byte_chars().iter().map(|c| s(&c.to_string())).collect();
    tokens.extend([s("<|im_start|>"), s("<|im_end|>")]);
    let mut types = vec![V::I32(1); 256];
    types.extend([V::I32(3), V::I32(3)]);
    let first = tokens.len() as u32;
    for t in extra {
        tokens.push(s(t));
        types.push(V::I32(1));
    }
    let vocab = tokens.len() as u64;
    set(&mut meta, "tokenizer.ggml.tokens", V::Arr(8, tokens));
    set(&mut meta, "tokenizer.ggml.token_type", V::Arr(5, types));
    set(
        &mut meta,
        "tokenizer.ggml.merges",
        V::Arr(8, merges.iter().map(|m| s(m)).collect()),
    );
    set(&mut meta, "tokenizer.ggml.pre", s(pre));
    let bytes = gguf(&meta, &tiny_tensors_vocab(1, None, vocab));
    let m = LocalModel::load(scratch.file(&format!("{pre}.gguf"), &bytes)).unwrap();
    let ids = (first..first + extra.len() as u32).collect();
    (m, ids)
}

/// A word's bytes, byte-mapped as GGUF vocabularies spell them.
fn mapped(text: &str) -> String {
    let chars = byte_chars();
    text.bytes().map(|b| chars[usize::from(b)]).collect()
}

/// `\p{L}` in the pre-tokenizer's pattern is the Unicode *letter* category;
/// the scanner uses `char::is_alphabetic`, which also takes in combining
/// vowel signs (category Mn/Mc, property Other_Alphabetic) of Devanagari,
/// Bengali, Thai, … So `ते` (त + the vowel sign े, U+0947) is one piece here,
/// where llama.cpp (and the model's Hugging Face tokenizer) cut it into `त`
/// and `े`: with merges that join the two, the ids differ from llama.cpp's.
#[test]
fn combining_vowel_signs_are_not_letters_for_the_pre_tokenizer() {
    let scratch = Scratch::new("marks");
    let ta = mapped("त"); // E0 A4 A4
    let e = mapped("े"); // E0 A5 87
    let ta_chars: Vec<char> = ta.chars().collect();
    let e_chars: Vec<char> = e.chars().collect();
    let ta2: String = ta_chars[..2].iter().collect();
    let e2: String = e_chars[..2].iter().collect();
    let extra = vec![
        ta2.clone(),
        ta.clone(),
        e2.clone(),
        e.clone(),
        format!("{ta}{e}"),
    ];
    let merges = vec![
        format!("{} {}", ta_chars[0], ta_chars[1]),
        format!("{ta2} {}", ta_chars[2]),
        format!("{} {}", e_chars[0], e_chars[1]),
        format!("{e2} {}", e_chars[2]),
        format!("{ta} {e}"),
    ];
    let (m, ids) = tiny_with_vocab(&scratch, "smollm", &extra, &merges);
    // त and े are two pieces: `त` (a letter) and `े` (a mark, `[^\s\p{L}\p{N}]+`).
    assert_eq!(m.tokenize("ते", false), [ids[1], ids[3]]);
}

/// llama.cpp's `gpt-2` pre-tokenizer is GPT-2's pattern alone (` ?\p{N}+`:
/// a number is one piece); only `smollm`, `starcoder`, `refact`, `codeshell`
/// split every digit first. Here `gpt-2` (and `gpt2`, and a file with no
/// `tokenizer.ggml.pre` at all) splits digits one by one, so "2024" can never
/// become the vocabulary's token for it.
#[test]
fn the_gpt2_pre_tokenizer_keeps_numbers_whole() {
    let scratch = Scratch::new("gpt2-digits");
    let extra = vec!["20".to_owned(), "24".to_owned(), "2024".to_owned()];
    let merges = vec!["2 0".to_owned(), "2 4".to_owned(), "20 24".to_owned()];
    let (m, ids) = tiny_with_vocab(&scratch, "gpt-2", &extra, &merges);
    assert_eq!(m.tokenize("2024", false), [ids[2]]);
}

/// A long input (a 12 MB document for an 8192-token model) is refused as
/// too long for the context window at once — it is not tokenized whole on a
/// generation thread first, which held the thread for seconds (in a release
/// build) after the attempt had timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_input_is_refused_before_it_is_tokenized() {
    let m = LocalModel::load_async(model_path()).await.unwrap();
    let huge = "The quick brown fox jumps over the lazy dog. ".repeat(12_000_000 / 45);
    let started = Instant::now();
    let error = LocalModelAgent::new("reader", &m)
        .execute(AgentInput::new(huge))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("context window"), "{error}");
    let refused = started.elapsed();
    assert!(
        refused < Duration::from_secs(2),
        "refused after {refused:?}"
    );
}
