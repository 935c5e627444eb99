//! Pre-tokenization: how text is cut into pieces before byte-level BPE merges
//! run inside each piece.
//!
//! GGUF files name their pre-tokenizer (`tokenizer.ggml.pre`); llama.cpp maps
//! each name to a list of regular expressions. Rather than pull in a regex
//! engine, the families the supported models use are written out as small
//! scanners over `char`s (`\p{L}` is the Unicode general category Letter —
//! not [`char::is_alphabetic`], which counts combining marks such as
//! Devanagari's vowel signs too — `\p{N}` [`char::is_numeric`], `\s`
//! [`char::is_whitespace`]):
//!
//! - [`PreTokenizer::Gpt2`] (`gpt-2`, and a file that names none): GPT-2's
//!   pattern
//!   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
//! - [`PreTokenizer::Gpt2Digits`] (`smollm`, `starcoder`, `refact`, …): every
//!   digit on its own, then GPT-2's pattern;
//! - [`PreTokenizer::Llama3`] (`llama-bpe`, `qwen2`, …): the Llama 3 pattern
//!   `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//!   with groups of at most three digits (Llama 3) or one (Qwen2).
//!
//! The SmolLM2 scanner is checked against token ids llama.cpp produced (see
//! the tokenizer's tests); the Llama 3 one follows the pattern above.

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// A pre-tokenizer family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreTokenizer {
    /// GPT-2's pattern (numbers kept whole).
    Gpt2,
    /// Digits one by one, then GPT-2's pattern.
    Gpt2Digits,
    /// The Llama 3 pattern, digits in groups of at most `max_digits`.
    Llama3 {
        /// 3 for Llama 3, 1 for Qwen2.
        max_digits: usize,
    },
}

impl PreTokenizer {
    /// The family for a `tokenizer.ggml.pre` name, if it is one of ours.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "gpt-2" | "gpt2" => Some(Self::Gpt2),
            "smollm" | "starcoder" | "refact" | "codeshell" => Some(Self::Gpt2Digits),
            "llama-bpe" | "llama3" | "smaug-bpe" => Some(Self::Llama3 { max_digits: 3 }),
            "qwen2" | "deepseek-r1-qwen" => Some(Self::Llama3 { max_digits: 1 }),
            _ => None,
        }
    }

    /// Cuts `text` into pieces (byte ranges into `text`).
    pub(crate) fn split(self, text: &str) -> Vec<&str> {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let ends = match self {
            Self::Gpt2 => {
                let mut ends = Vec::new();
                gpt2(&chars, 0, &mut ends);
                ends
            }
            Self::Gpt2Digits => {
                let mut ends = Vec::new();
                // Digits first: each is a piece, and so is each run between them.
                let mut start = 0;
                let mut i = 0;
                while i < chars.len() {
                    if chars[i].1.is_numeric() {
                        if start < i {
                            gpt2(&chars[start..i], start, &mut ends);
                        }
                        ends.push(i + 1);
                        start = i + 1;
                    }
                    i += 1;
                }
                if start < chars.len() {
                    gpt2(&chars[start..], start, &mut ends);
                }
                ends
            }
            Self::Llama3 { max_digits } => llama3(&chars, max_digits),
        };
        let mut pieces = Vec::with_capacity(ends.len());
        let mut from = 0;
        for end in ends {
            let byte_end = chars.get(end).map_or(text.len(), |&(b, _)| b);
            let byte_from = chars.get(from).map_or(text.len(), |&(b, _)| b);
            if byte_end > byte_from {
                pieces.push(&text[byte_from..byte_end]);
            }
            from = end;
        }
        pieces
    }
}

/// `\p{L}`: the general category Letter (Lu, Ll, Lt, Lm, Lo).
fn is_letter(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Letter
}

fn is_number(c: char) -> bool {
    c.is_numeric()
}

fn is_other(c: char) -> bool {
    !c.is_whitespace() && !is_letter(c) && !is_number(c)
}

/// Length of a contraction (`'s`, `'re`, …) at the start of `s`, if any.
fn contraction(s: &[(usize, char)], case_insensitive: bool) -> usize {
    if s.first().map(|&(_, c)| c) != Some('\'') {
        return 0;
    }
    let lower = |i: usize| {
        s.get(i).map(|&(_, c)| {
            if case_insensitive {
                c.to_ascii_lowercase()
            } else {
                c
            }
        })
    };
    match (lower(1), lower(2)) {
        (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => 3,
        (Some('s' | 't' | 'm' | 'd'), _) => 2,
        _ => 0,
    }
}

/// Length of the run at the start of `s` whose chars satisfy `f`.
fn run(s: &[(usize, char)], f: impl Fn(char) -> bool) -> usize {
    s.iter().take_while(|&&(_, c)| f(c)).count()
}

/// Length of `\s+(?!\S)|\s+` at the start of `s` (which starts with whitespace).
fn whitespace(s: &[(usize, char)]) -> usize {
    let n = run(s, char::is_whitespace);
    if n > 1 && n < s.len() {
        n - 1
    } else {
        n
    }
}

/// GPT-2's pattern over `s`; pushes piece ends (offset by `base`) to `ends`.
fn gpt2(s: &[(usize, char)], base: usize, ends: &mut Vec<usize>) {
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let c = rest[0].1;
        let mut n = contraction(rest, false);
        if n == 0 {
            let (skip, next) = if c == ' ' {
                (1, rest.get(1).map(|&(_, c)| c))
            } else {
                (0, Some(c))
            };
            n = match next {
                Some(d) if is_letter(d) => skip + run(&rest[skip..], is_letter),
                Some(d) if is_number(d) => skip + run(&rest[skip..], is_number),
                Some(d) if is_other(d) => skip + run(&rest[skip..], is_other),
                _ => whitespace(rest),
            };
        }
        let n = n.max(1);
        i += n;
        ends.push(base + i);
    }
}

/// The Llama 3 pattern over `s`, returning piece ends.
fn llama3(s: &[(usize, char)], max_digits: usize) -> Vec<usize> {
    let mut ends = Vec::new();
    let is_newline = |c: char| c == '\r' || c == '\n';
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let c = rest[0].1;
        let mut n = contraction(rest, true);
        if n == 0 {
            // [^\r\n\p{L}\p{N}]?\p{L}+
            let lead = usize::from(!is_newline(c) && !is_letter(c) && !is_number(c));
            if rest.get(lead).is_some_and(|&(_, d)| is_letter(d)) {
                n = lead + run(&rest[lead..], is_letter);
            } else if is_number(c) {
                n = run(rest, is_number).min(max_digits.max(1));
            } else {
                // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
                let skip = usize::from(c == ' ');
                let others = rest.get(skip..).map_or(0, |r| run(r, is_other));
                if others > 0 {
                    n = skip + others;
                    n += run(&rest[n..], is_newline);
                } else {
                    // `\s*[\r\n]+`: whitespace up to and including the last newline of the run.
                    let ws = run(rest, char::is_whitespace);
                    let last_newline = rest[..ws].iter().rposition(|&(_, d)| is_newline(d));
                    n = match last_newline {
                        Some(p) => p + 1,
                        None => whitespace(rest),
                    };
                }
            }
        }
        let n = n.max(1);
        i += n;
        ends.push(i);
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_with_digits_splits_like_llama_cpp() {
        let p = PreTokenizer::Gpt2Digits;
        assert_eq!(p.split("Hello, world!"), ["Hello", ",", " world", "!"]);
        assert_eq!(
            p.split("year 2024: 12"),
            ["year", " ", "2", "0", "2", "4", ":", " ", "1", "2"]
        );
        assert_eq!(p.split("it's  ok\n"), ["it", "'s", " ", " ok", "\n"]);
        assert_eq!(p.split(""), Vec::<&str>::new());
    }

    #[test]
    fn llama3_groups_digits_and_keeps_newlines_apart() {
        let p = PreTokenizer::Llama3 { max_digits: 3 };
        assert_eq!(p.split("12345 I'M"), ["123", "45", " I", "'M"]);
        assert_eq!(p.split("a\n\nb"), ["a", "\n\n", "b"]);
        assert_eq!(p.split("(x)"), ["(x", ")"]);
    }
}
