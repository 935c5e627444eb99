//! [`Tokenizer`]: the byte-level BPE tokenizer a GGUF file carries in its
//! metadata (`tokenizer.ggml.*`), so any model of a supported family works
//! without extra files.
//!
//! Why not candle's GGUF tokenizer: it does not implement the `smollm`
//! pre-tokenizer and adds a prefix space, so "Hello" became 38699 instead of
//! llama.cpp's 19556. This one follows llama.cpp: pre-tokenize (see
//! [`PreTokenizer`]), map each byte to GPT-2's printable stand-in, merge by
//! rank, look the symbols up; no prefix space; control tokens are matched as
//! whole tokens only where the caller says so (in the chat template's own
//! text, never inside a user's message).

use std::collections::HashMap;

use super::pretokenize::PreTokenizer;

/// GGUF's token type for control tokens (`<|im_start|>`, `<|eot_id|>`, …).
const TOKEN_TYPE_CONTROL: i32 = 3;
/// GGUF's token type for user-defined tokens, matched like control tokens.
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// A byte-level BPE tokenizer.
#[derive(Debug)]
pub(crate) struct Tokenizer {
    pre: PreTokenizer,
    /// Token id by its (byte-mapped) text.
    ids: HashMap<String, u32>,
    /// Each token's bytes, for decoding (empty for control tokens).
    bytes: Vec<Vec<u8>>,
    /// Control tokens' texts, longest first, with their ids.
    specials: Vec<(String, u32)>,
    /// `(left id, right id)` → `(rank, merged id)`.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// The id of each byte's single-symbol token, where the vocabulary has it.
    byte_ids: [Option<u32>; 256],
}

/// What the metadata must provide.
pub(crate) struct Vocabulary<'a> {
    /// `tokenizer.ggml.tokens`.
    pub(crate) tokens: Vec<&'a str>,
    /// `tokenizer.ggml.token_type` (empty if absent).
    pub(crate) types: Vec<i32>,
    /// `tokenizer.ggml.merges`.
    pub(crate) merges: Vec<&'a str>,
    /// `tokenizer.ggml.pre`.
    pub(crate) pre: &'a str,
}

impl Tokenizer {
    /// Builds the tokenizer, or says why it cannot.
    pub(crate) fn new(vocab: &Vocabulary<'_>) -> Result<Self, String> {
        let pre = PreTokenizer::from_name(vocab.pre)
            .ok_or_else(|| format!("pre-tokenizer `{}` is not supported", vocab.pre))?;
        if vocab.tokens.is_empty() {
            return Err("the vocabulary is empty".into());
        }
        let unicode_to_byte = unicode_to_byte();
        let mut ids = HashMap::with_capacity(vocab.tokens.len());
        let mut bytes = Vec::with_capacity(vocab.tokens.len());
        let mut specials = Vec::new();
        for (id, &token) in vocab.tokens.iter().enumerate() {
            let id = u32::try_from(id).map_err(|_| "the vocabulary is too large".to_owned())?;
            let kind = vocab.types.get(id as usize).copied().unwrap_or(1);
            if kind == TOKEN_TYPE_CONTROL || kind == TOKEN_TYPE_USER_DEFINED {
                if !token.is_empty() {
                    specials.push((token.to_owned(), id));
                }
                // User-defined tokens are plain text when decoded; control tokens are not.
                bytes.push(if kind == TOKEN_TYPE_USER_DEFINED {
                    token.as_bytes().to_vec()
                } else {
                    Vec::new()
                });
            } else {
                bytes.push(
                    token
                        .chars()
                        .map(|c| unicode_to_byte.get(&c).copied())
                        .collect::<Option<Vec<u8>>>()
                        .unwrap_or_else(|| token.as_bytes().to_vec()),
                );
            }
            ids.entry(token.to_owned()).or_insert(id);
        }
        specials.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        let mut merges = HashMap::with_capacity(vocab.merges.len());
        for (rank, line) in vocab.merges.iter().enumerate() {
            let Some((left, right)) = line.split_once(' ') else {
                return Err(format!("merge {rank} (`{line}`) is not two symbols"));
            };
            let (Some(&l), Some(&r), Some(&m)) = (
                ids.get(left),
                ids.get(right),
                ids.get(&format!("{left}{right}")),
            ) else {
                continue;
            };
            let rank = u32::try_from(rank).map_err(|_| "too many merges".to_owned())?;
            merges.entry((l, r)).or_insert((rank, m));
        }
        let mut byte_ids = [None; 256];
        for (b, c) in byte_to_unicode().iter().enumerate() {
            byte_ids[b] = ids.get(&c.to_string()).copied();
        }
        Ok(Self {
            pre,
            ids,
            bytes,
            specials,
            merges,
            byte_ids,
        })
    }

    /// The number of tokens in the vocabulary.
    pub(crate) fn vocab_size(&self) -> usize {
        self.bytes.len()
    }

    /// The id of a token given by its exact text (control tokens included).
    pub(crate) fn token_id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// Encodes `text`; with `special`, control tokens written in it are
    /// matched as themselves.
    pub(crate) fn encode(&self, text: &str, special: bool, out: &mut Vec<u32>) {
        if !special {
            self.encode_plain(text, out);
            return;
        }
        let mut rest = text;
        while !rest.is_empty() {
            let next = self
                .specials
                .iter()
                .filter_map(|(s, id)| rest.find(s.as_str()).map(|at| (at, s.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, std::cmp::Reverse(len)));
            match next {
                Some((at, len, id)) => {
                    self.encode_plain(&rest[..at], out);
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_plain(rest, out);
                    break;
                }
            }
        }
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) {
        for piece in self.pre.split(text) {
            self.encode_piece(piece, out);
        }
    }

    /// BPE inside one piece: start from single bytes, merge the lowest-ranked
    /// adjacent pair until no pair merges.
    fn encode_piece(&self, piece: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<u32> = Vec::with_capacity(piece.len());
        for &b in piece.as_bytes() {
            match self.byte_ids[usize::from(b)] {
                Some(id) => symbols.push(id),
                // A byte the vocabulary cannot spell: skip it, as llama.cpp does.
                None => continue,
            }
        }
        loop {
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, pair)| self.merges.get(&(pair[0], pair[1])).map(|&m| (i, m)))
                .min_by_key(|&(i, (rank, _))| (rank, i));
            let Some((i, (_, merged))) = best else { break };
            symbols[i] = merged;
            symbols.remove(i + 1);
        }
        out.extend_from_slice(&symbols);
    }

    /// The bytes of one token (nothing for control tokens and unknown ids).
    pub(crate) fn token_bytes(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// Decodes ids to text (invalid UTF-8 replaced).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&id| self.token_bytes(id).iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// GPT-2's map from bytes to printable characters.
fn byte_to_unicode() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        map[usize::from(b)] = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(256 + extra).unwrap_or('\0');
            extra += 1;
            c
        };
    }
    map
}

fn unicode_to_byte() -> HashMap<char, u8> {
    byte_to_unicode()
        .iter()
        .enumerate()
        .filter_map(|(b, &c)| u8::try_from(b).ok().map(|b| (c, b)))
        .collect()
}

/// Turns a stream of token bytes into text, holding back an incomplete UTF-8
/// sequence until its last byte arrives.
#[derive(Debug, Default)]
pub(crate) struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds bytes; returns the text they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        match std::str::from_utf8(&self.pending) {
            Ok(text) => {
                let text = text.to_owned();
                self.pending.clear();
                text
            }
            Err(e) if e.error_len().is_none() => {
                // An incomplete sequence at the end: keep it for the next token.
                let valid = e.valid_up_to();
                let text = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
                self.pending.drain(..valid);
                text
            }
            Err(_) => {
                let text = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                text
            }
        }
    }

    /// Whatever is left, invalid bytes replaced.
    pub(crate) fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        let g = |s: &str| s.replace(' ', "Ġ");
        let tokens: Vec<String> = ["<|end|>", "a", "b", "Ġ", "ab", "Ġab", "1"]
            .iter()
            .map(|s| g(s))
            .collect();
        let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
        Tokenizer::new(&Vocabulary {
            tokens: refs,
            types: vec![3, 1, 1, 1, 1, 1, 1],
            merges: vec!["a b", "Ġ ab"],
            pre: "smollm",
        })
        .unwrap()
    }

    #[test]
    fn merges_by_rank_and_matches_specials_only_when_asked() {
        let t = tiny();
        let mut ids = Vec::new();
        t.encode("ab ab<|end|>", true, &mut ids);
        assert_eq!(ids, [4, 5, 0]);
        ids.clear();
        t.encode("<|end|>", false, &mut ids);
        assert!(!ids.contains(&0));
        assert_eq!(t.decode(&[4, 5, 0]), "ab ab");
    }

    #[test]
    fn rejects_unknown_pre_tokenizers_and_bad_merges() {
        let bad_pre = Tokenizer::new(&Vocabulary {
            tokens: vec!["a"],
            types: vec![],
            merges: vec![],
            pre: "mystery",
        });
        assert!(bad_pre.unwrap_err().contains("mystery"));
        let bad_merge = Tokenizer::new(&Vocabulary {
            tokens: vec!["a"],
            types: vec![],
            merges: vec!["nospace"],
            pre: "smollm",
        });
        assert!(bad_merge.is_err());
    }

    #[test]
    fn utf8_stream_holds_back_partial_characters() {
        let mut s = Utf8Stream::default();
        let e = "é".as_bytes();
        assert_eq!(s.push(&e[..1]), "");
        assert_eq!(s.push(&e[1..]), "é");
        assert_eq!(s.push(b"x\xff"), "x\u{fffd}");
        assert_eq!(s.finish(), "");
    }
}
