//! [`Located`]: a value together with where it was written in the workflow file.
//!
//! TOML and YAML each have their own "spanned" wrapper (`toml::Spanned`,
//! `serde_saphyr::Spanned`), which only their own deserializer understands. The
//! workflow schema is written once for both, so [`Located`] picks the wrapper of
//! the format being read: [`with_format`] sets it for the current thread while a
//! file is deserialized. Anywhere else (JSON, tests) a `Located` reads the bare
//! value and has no span.

use std::borrow::Cow;
use std::cell::Cell;

use serde::{Deserialize, Deserializer};

/// The syntax of a workflow file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML (`.toml`).
    Toml,
    /// YAML (`.yaml`, `.yml`).
    Yaml,
}

thread_local! {
    static FORMAT: Cell<Option<Format>> = const { Cell::new(None) };
}

/// Runs `read` with [`Located`] values taking their spans from `format`.
pub fn with_format<R>(format: Format, read: impl FnOnce() -> R) -> R {
    struct Restore(Option<Format>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORMAT.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(FORMAT.with(|cell| cell.replace(Some(format))));
    read()
}

/// A byte range in the workflow file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first byte.
    pub start: usize,
    /// One past the last byte (equal to `start` when the length is unknown).
    pub end: usize,
}

impl Span {
    /// The range `start..end`.
    #[must_use]
    pub fn new(start: usize, end: usize) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }
}

/// A value and the place in the file it came from (when known).
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Option<Span>,
}

impl<T> Located<T> {
    /// A value with no known place, for defaults and tests.
    #[must_use]
    pub fn unplaced(value: T) -> Self {
        Self { value, span: None }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match FORMAT.with(Cell::get) {
            Some(Format::Toml) => {
                let spanned = toml::Spanned::<T>::deserialize(deserializer)?;
                let range = spanned.span();
                Ok(Self {
                    span: Some(Span::new(range.start, range.end)),
                    value: spanned.into_inner(),
                })
            }
            Some(Format::Yaml) => {
                let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
                let place = spanned.referenced.span();
                let span = place.byte_offset().and_then(|start| {
                    let start = usize::try_from(start).ok()?;
                    let len = place
                        .byte_len()
                        .and_then(|len| usize::try_from(len).ok())
                        .unwrap_or(0);
                    Some(Span::new(start, start.saturating_add(len)))
                });
                Ok(Self {
                    value: spanned.value,
                    span,
                })
            }
            None => Ok(Self::unplaced(T::deserialize(deserializer)?)),
        }
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        name: Located<String>,
    }

    #[test]
    fn both_formats_give_byte_spans() {
        let toml_doc: Doc = with_format(Format::Toml, || toml::from_str("name = \"abc\"\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(toml_doc.name.value, "abc");
        assert_eq!(toml_doc.name.span, Some(Span::new(7, 12)));

        let yaml_doc: Doc = with_format(Format::Yaml, || serde_saphyr::from_str("name: abc\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(yaml_doc.name.value, "abc");
        assert_eq!(yaml_doc.name.span.map(|s| s.start), Some(6));
    }

    #[test]
    fn other_formats_read_the_bare_value() {
        let doc: Doc = serde_json::from_str(r#"{"name": "x"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(doc.name.value, "x");
        assert_eq!(doc.name.span, None);
    }
}
