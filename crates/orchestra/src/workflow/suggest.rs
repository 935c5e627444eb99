//! "Did you mean …?": the nearest valid name for a typo.

/// The longest name that is taken for a typo: comparing two names costs the
/// product of their lengths, and a file can hold names of any length (two of
/// 60,000 letters once took minutes and gigabytes).
const MAX_TYPO_CHARS: usize = 100;

/// The candidate closest to `typo` by edit distance, when it is close enough to
/// be a plausible typo (at most a third of the word's letters changed, and at
/// least one).
pub fn nearest<'a, I>(typo: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let length = typo.chars().count();
    if length > MAX_TYPO_CHARS {
        return None;
    }
    let limit = (length / 3).max(1);
    candidates
        .into_iter()
        .filter(|candidate| *candidate != typo)
        // Names whose lengths differ by more than the limit are further apart.
        .filter(|candidate| candidate.chars().count().abs_diff(length) <= limit)
        .map(|candidate| (distance(typo, candidate), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// "did you mean `x`?" for the nearest candidate, if any.
pub fn did_you_mean<'a, I>(typo: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    nearest(typo, candidates).map(|name| format!("did you mean `{name}`?"))
}

/// Levenshtein distance, counting an adjacent transposition as one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    for (j, cell) in rows.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        rows[i * width] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[(i - 1) * width + j] + 1)
                .min(rows[i * width + j - 1] + 1)
                .min(rows[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[(i - 2) * width + j - 2] + 1);
            }
            rows[i * width + j] = best;
        }
    }
    rows[a.len() * width + b.len()]
}

/// The names listed after "expected" in a serde message such as
/// "unknown field `knd`, expected one of `id`, `kind`" or
/// "expected `all` or `any`".
pub fn expected_names(message: &str) -> Vec<&str> {
    let Some((_, list)) = message.split_once("expected ") else {
        return Vec::new();
    };
    let list = list.strip_prefix("one of ").unwrap_or(list);
    list.split(',')
        .flat_map(|part| part.split(" or "))
        .map(|name| name.trim().trim_matches('`').trim())
        .filter(|name| !name.is_empty() && !name.contains(' '))
        .collect()
}

/// The name quoted first in a serde message ("unknown field `knd`, ..." → `knd`).
pub fn quoted_name(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_close_names_only() {
        let names = ["writer", "researcher", "editor"];
        assert_eq!(nearest("writter", names), Some("writer"));
        assert_eq!(nearest("editro", names), Some("editor"));
        assert_eq!(nearest("zzz", names), None);
        assert_eq!(nearest("writer", names), None);
    }

    #[test]
    fn names_too_long_to_be_typos_are_not_compared() {
        let declared = "a".repeat(60_000);
        let written = format!("{}b", "a".repeat(59_999));
        assert_eq!(nearest(&written, [declared.as_str()]), None);
        let too_long = "b".repeat(MAX_TYPO_CHARS + 1);
        assert_eq!(nearest(&too_long, [format!("{too_long}x").as_str()]), None);
        let longest = "c".repeat(MAX_TYPO_CHARS);
        let declared = format!("{longest}x");
        assert_eq!(
            nearest(&longest, [declared.as_str()]),
            Some(declared.as_str())
        );
    }

    #[test]
    fn reads_serde_expectations() {
        let toml = "unknown field `knd`, expected `id` or `kind`";
        assert_eq!(expected_names(toml), ["id", "kind"]);
        let yaml = "unknown field `knd`, expected one of id, kind, description";
        assert_eq!(expected_names(yaml), ["id", "kind", "description"]);
        let listed = "unknown variant `comand`, expected one of `claude`, `command`";
        assert_eq!(expected_names(listed), ["claude", "command"]);
        assert_eq!(quoted_name(toml), Some("knd"));
    }
}
