//! Where a runner's trace records get their texts: copies packed into shared
//! chunks instead of one allocation each.
//!
//! A trace keeps the text of every attempt's output, and a run keeps its trace
//! until the caller drops it: thousands of texts that are allocated one by one
//! and freed all at once, the costliest pattern for a general-purpose allocator.
//! A [`TextArena`] copies them into chunks it allocates a few at a time (their
//! size doubling up to [`MAX_CHUNK`]); each text is a
//! [`ByteString`] that holds a reference to its chunk,
//! so a chunk is freed when the last text in it is dropped.

use bytes::BytesMut;
use bytestring::ByteString;

/// The first chunk's size: a runner that records one short text allocates little.
const FIRST_CHUNK: usize = 1024;

/// The size chunks stop doubling at: beyond it, the allocations a chunk saves no
/// longer matter, and a trace that outlives most of its texts keeps little alive.
pub(crate) const MAX_CHUNK: usize = 64 * 1024;

/// Copies texts into shared chunks (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct TextArena {
    chunk: BytesMut,
    next_chunk: usize,
}

impl TextArena {
    /// A copy of `text` in the arena's current chunk (a new chunk when it is full).
    pub(crate) fn copy(&mut self, text: &str) -> ByteString {
        if text.is_empty() {
            return ByteString::new();
        }
        if self.chunk.capacity() - self.chunk.len() < text.len() {
            let size = self.next_chunk.max(FIRST_CHUNK);
            self.next_chunk = size.saturating_mul(2).min(MAX_CHUNK);
            // The texts cut from the old chunk keep it alive; this one is new.
            self.chunk = BytesMut::with_capacity(size.max(text.len()));
        }
        self.chunk.extend_from_slice(text.as_bytes());
        let bytes = self.chunk.split().freeze();
        // The bytes were copied from a `str`, so they are UTF-8 and this never
        // falls back; the fallback keeps the arena free of `unsafe`.
        ByteString::try_from(bytes).unwrap_or_else(|_| ByteString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_share_chunks_and_outlive_the_arena() {
        let mut arena = TextArena::default();
        let first = arena.copy("first");
        let second = arena.copy("second");
        assert_eq!(first, "first");
        assert_eq!(second, "second");
        // Both were cut from the same chunk, one after the other.
        assert_eq!(
            first.as_bytes().as_ptr().wrapping_add(first.len()),
            second.as_bytes().as_ptr()
        );
        drop(arena);
        assert_eq!(format!("{first} {second}"), "first second");
    }

    #[test]
    fn long_texts_and_full_chunks_get_new_chunks() {
        let mut arena = TextArena::default();
        let long = "x".repeat(3 * MAX_CHUNK);
        assert_eq!(arena.copy(&long), long.as_str());
        let texts: Vec<_> = (0..2000)
            .map(|i| arena.copy(&format!("text {i}")))
            .collect();
        assert!(texts
            .iter()
            .enumerate()
            .all(|(i, t)| *t == format!("text {i}")));
        assert_eq!(arena.copy(""), "");
    }
}
