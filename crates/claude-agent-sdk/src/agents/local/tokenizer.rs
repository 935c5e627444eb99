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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

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
    /// The most bytes one token stands for.
    longest_token: usize,
}

/// The id a symbol merged into its left neighbour is left with: no token's.
const GONE: u32 = u32::MAX;

/// One symbol of a piece being merged, linked to its live neighbours.
#[derive(Debug, Clone, Copy)]
struct Symbol {
    id: u32,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A merge waiting in the queue: ordered by rank, then leftmost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pair {
    rank: u32,
    left: usize,
    right: usize,
    /// The two ids when queued, to tell a stale entry.
    ids: (u32, u32),
    merged: u32,
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
        let longest_token = bytes
            .iter()
            .map(Vec::len)
            .chain(specials.iter().map(|(text, _)| text.len()))
            .max()
            .unwrap_or(1);
        Ok(Self {
            pre,
            ids,
            bytes,
            specials,
            merges,
            byte_ids,
            longest_token,
        })
    }

    /// The fewest tokens `len` bytes of text can encode to: no token stands
    /// for more than the longest one's bytes. A prompt this says is too long
    /// for the context window is refused without encoding it (megabytes of
    /// input would hold a generation thread for seconds).
    pub(crate) fn fewest_tokens(&self, len: usize) -> usize {
        len.div_ceil(self.longest_token.max(1))
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
    /// matched as themselves (the earliest first, the longest of those
    /// starting there).
    ///
    /// Each control token's next occurrence is remembered and searched for
    /// again only once the text before it is consumed: one pass over the
    /// text per control token. (Searching the whole rest for every control
    /// token after each match was quadratic in a text full of them.)
    pub(crate) fn encode(&self, text: &str, special: bool, out: &mut Vec<u32>) {
        if !special {
            self.encode_plain(text, out);
            return;
        }
        let mut next: Vec<Option<usize>> = self
            .specials
            .iter()
            .map(|(s, _)| text.find(s.as_str()))
            .collect();
        let mut from = 0;
        loop {
            for (at, (s, _)) in next.iter_mut().zip(&self.specials) {
                if at.is_some_and(|at| at < from) {
                    *at = text[from..].find(s.as_str()).map(|i| from + i);
                }
            }
            let earliest = next
                .iter()
                .zip(&self.specials)
                .filter_map(|(at, (s, id))| at.map(|at| (at, s.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, Reverse(len)));
            let Some((at, len, id)) = earliest else {
                self.encode_plain(&text[from..], out);
                return;
            };
            self.encode_plain(&text[from..at], out);
            out.push(id);
            from = at + len;
        }
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) {
        for piece in self.pre.split(text) {
            self.encode_piece(piece, out);
        }
    }

    /// BPE inside one piece: start from single bytes, merge the lowest-ranked
    /// adjacent pair (the leftmost of equals) until no pair merges.
    ///
    /// The candidate pairs wait in a heap and the symbols form a linked list,
    /// as in llama.cpp: O(n log n) in the piece's length. (Rescanning every
    /// pair after each merge is quadratic, and a piece is as long as the user
    /// makes it: a 64 000-letter "word" took minutes to tokenize, before the
    /// prompt was even found too long for the context window.)
    fn encode_piece(&self, piece: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(piece.len());
        for &b in piece.as_bytes() {
            // A byte the vocabulary cannot spell is skipped, as llama.cpp does.
            if let Some(id) = self.byte_ids[usize::from(b)] {
                let at = symbols.len();
                symbols.push(Symbol {
                    id,
                    prev: at.checked_sub(1),
                    next: Some(at + 1),
                });
            }
        }
        if let Some(last) = symbols.last_mut() {
            last.next = None;
        }
        let mut queue = BinaryHeap::new();
        for left in 0..symbols.len().saturating_sub(1) {
            self.queue_pair(&symbols, left, &mut queue);
        }
        while let Some(Reverse(pair)) = queue.pop() {
            let (left, right) = (pair.left, pair.right);
            // Stale: one side was merged away or into something else since.
            if symbols[left].next != Some(right)
                || symbols[left].id != pair.ids.0
                || symbols[right].id != pair.ids.1
            {
                continue;
            }
            let after = symbols[right].next;
            symbols[left].id = pair.merged;
            symbols[left].next = after;
            symbols[right].id = GONE;
            if let Some(after) = after {
                symbols[after].prev = Some(left);
                self.queue_pair(&symbols, left, &mut queue);
            }
            if let Some(before) = symbols[left].prev {
                self.queue_pair(&symbols, before, &mut queue);
            }
        }
        let mut at = (!symbols.is_empty()).then_some(0);
        while let Some(i) = at {
            out.push(symbols[i].id);
            at = symbols[i].next;
        }
    }

    /// Queues the pair starting at symbol `left`, if it merges.
    fn queue_pair(&self, symbols: &[Symbol], left: usize, queue: &mut BinaryHeap<Reverse<Pair>>) {
        let Some(right) = symbols[left].next else {
            return;
        };
        let ids = (symbols[left].id, symbols[right].id);
        if let Some(&(rank, merged)) = self.merges.get(&ids) {
            queue.push(Reverse(Pair {
                rank,
                left,
                right,
                ids,
                merged,
            }));
        }
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
    /// Adds bytes; returns the text they complete. Invalid bytes become
    /// U+FFFD as [`String::from_utf8_lossy`] would make them, and an
    /// incomplete sequence at the end waits for the next token even when
    /// invalid bytes come before it (replacing everything at the first
    /// invalid byte also broke a character split across the next tokens).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        let mut from = 0;
        while from < self.pending.len() {
            match std::str::from_utf8(&self.pending[from..]) {
                Ok(valid) => {
                    text.push_str(valid);
                    from = self.pending.len();
                }
                Err(e) => {
                    let valid = &self.pending[from..from + e.valid_up_to()];
                    text.push_str(&String::from_utf8_lossy(valid));
                    from += e.valid_up_to();
                    let Some(invalid) = e.error_len() else {
                        // An incomplete sequence at the end: keep it for the next token.
                        break;
                    };
                    text.push(char::REPLACEMENT_CHARACTER);
                    from += invalid;
                }
            }
        }
        self.pending.drain(..from);
        text
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

    #[test]
    fn utf8_stream_keeps_a_split_character_after_an_invalid_byte() {
        let euro = "€".as_bytes();
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"\xe2"), "");
        // The dangling byte is invalid, the `€` begun after `A` is not.
        let mut token = b"A".to_vec();
        token.extend_from_slice(&euro[..2]);
        assert_eq!(s.push(&token), "\u{fffd}A");
        assert_eq!(s.push(&euro[2..]), "€");
        // Token by token, the same text as decoding all the bytes at once.
        let bytes = b"\xe2A\xe2\x82\xac\xff\xf0\x9f\x90\xb1\x80ok\xf0\x9f";
        for split in 1..bytes.len() {
            let mut s = Utf8Stream::default();
            let mut text = s.push(&bytes[..split]);
            text += &s.push(&bytes[split..]);
            text += &s.finish();
            assert_eq!(text, String::from_utf8_lossy(bytes), "split at {split}");
        }
    }

    #[test]
    fn long_pieces_merge_as_rescanning_would() {
        let t = tiny();
        for text in ["aaaaab", "abababab", "bab ab ab", " abab", "ba", ""] {
            let mut ids = Vec::new();
            t.encode(text, false, &mut ids);
            let mut slow = Vec::new();
            for piece in t.pre.split(text) {
                slow.extend(rescan(&t, piece));
            }
            assert_eq!(ids, slow, "{text:?}");
        }
        // Linear-ish: a 200 000-letter word is one piece.
        let mut ids = Vec::new();
        t.encode(&"ab".repeat(100_000), false, &mut ids);
        assert_eq!(ids.len(), 100_000);
        assert!(ids.iter().all(|&id| id == 4));
    }

    #[test]
    fn a_text_full_of_control_tokens_is_matched_in_one_pass() {
        let t = tiny();
        let mut ids = Vec::new();
        t.encode(&"<|end|>ab".repeat(50_000), true, &mut ids);
        assert_eq!(ids.len(), 100_000);
        assert!(ids.chunks(2).all(|pair| pair == [0, 4]));
        ids.clear();
        t.encode("b<|end|><|end|>a", true, &mut ids);
        assert_eq!(ids, [2, 0, 0, 1]);
    }

    /// The reference: rescan every pair after each merge.
    fn rescan(t: &Tokenizer, piece: &str) -> Vec<u32> {
        let mut symbols: Vec<u32> = piece
            .bytes()
            .filter_map(|b| t.byte_ids[usize::from(b)])
            .collect();
        loop {
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, p)| t.merges.get(&(p[0], p[1])).map(|&m| (i, m)))
                .min_by_key(|&(i, (rank, _))| (rank, i));
            let Some((i, (_, merged))) = best else { break };
            symbols[i] = merged;
            symbols.remove(i + 1);
        }
        symbols
    }
}
