//! Diagnostics for the files voicebench reads (scenarios above all, the corpus's `lines.toml` too):
//! `file:line:col: message`, the offending line with a caret, and a hint; and the "did you mean" every error that
//! names a key, kind, side or baseline offers. A leaf: it imports nothing from the crate.
//!
//! TOML/serde errors are rewritten into this form too: "unknown field `fram_ms`, expected one of …" becomes
//! "unknown key `fram_ms` in [defaults]" with "did you mean `frame_ms`?".

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a scenario file, located to the character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The scenario file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// The source line, for display.
    pub source_line: String,
    /// Width of the underlined span on that line, in characters (at least 1).
    pub width: usize,
}

impl Diagnostic {
    /// A diagnostic at a byte span of `src`.
    pub fn at(file: &Path, src: &str, span: Range<usize>, message: impl Into<String>, hint: Option<String>) -> Self {
        // A span off a character boundary (a caller's arithmetic, a lossy decoding) moves back to one, never panics.
        let floor = |i: usize| (0..=i.min(src.len())).rev().find(|i| src.is_char_boundary(*i)).unwrap_or(0);
        let start = floor(span.start);
        let (line, col) = line_col(src, start);
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let source_line = src[line_start..line_end].trim_end_matches('\r').to_string();
        let end = floor(span.end.clamp(start, line_end));
        let width = src[start..end].chars().count().max(1);
        Self { file: file.to_owned(), line, col, message: message.into(), hint, source_line, width }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.col, self.message)?;
        let gutter = self.line.to_string().len();
        writeln!(f, "{:gutter$} |", "")?;
        let (shown, col, width) = window(&self.source_line, self.col, self.width);
        writeln!(f, "{} | {shown}", self.line)?;
        write!(f, "{:gutter$} | {}{}", "", " ".repeat(col - 1), "^".repeat(width))?;
        if let Some(h) = &self.hint {
            write!(f, "\n{:gutter$} = hint: {h}", "")?;
        }
        Ok(())
    }
}

/// Widest source line a diagnostic shows whole, in characters; a longer one is cut to this many around the column.
pub const MAX_SHOWN: usize = 120;

/// The part of `line` a diagnostic shows, with the caret's column and width in it: the whole line when it is short,
/// else [`MAX_SHOWN`] characters around `col` with `…` where it was cut (a 10 kB line is not printed whole).
fn window(line: &str, col: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= MAX_SHOWN {
        return (line.to_string(), col.max(1), width);
    }
    let at = col.saturating_sub(1).min(chars.len());
    let start = at.saturating_sub(MAX_SHOWN / 3);
    let end = (start + MAX_SHOWN).min(chars.len());
    let mut shown: String = chars[start..end].iter().collect();
    let mut caret = at - start + 1;
    if start > 0 {
        shown.insert(0, '…');
        caret += 1;
    }
    if end < chars.len() {
        shown.push('…');
    }
    let width = width.clamp(1, (end - at).max(1));
    (shown, caret, width)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
    (line, col)
}

/// Levenshtein distance, for "did you mean".
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be what the user meant.
pub fn closest<'a, S: AsRef<str>>(word: &str, candidates: &'a [S]) -> Option<&'a str> {
    let w = word.to_lowercase();
    candidates
        .iter()
        .map(|c| c.as_ref())
        .map(|c| (edit_distance(&w, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(w.len()) / 3).max(1) || c.contains(&w) && w.len() >= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A "did you mean" hint, or the full list of valid choices.
pub fn suggest<S: AsRef<str>>(word: &str, what: &str, candidates: &[S]) -> String {
    let list = candidates.iter().map(|c| format!("`{}`", c.as_ref())).collect::<Vec<_>>().join(", ");
    match closest(word, candidates) {
        Some(c) => format!("did you mean `{c}`? valid {what}: {list}"),
        None => format!("valid {what}: {list}"),
    }
}

/// The `[table]` or `[[array]]` header that encloses a byte offset, for messages like "in [defaults]".
pub fn enclosing_table(src: &str, offset: usize) -> Option<String> {
    let mut end = offset.min(src.len());
    while !src.is_char_boundary(end) {
        end -= 1;
    }
    // A span that starts at a table's header (a missing key) is in that table.
    if src[end..].starts_with('[') {
        end = src[end..].find('\n').map_or(src.len(), |i| end + i);
    }
    src[..end]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim().to_string())
}

/// Rewrites a TOML/serde error into a diagnostic with a hint.
pub fn from_toml_error(file: &Path, src: &str, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let msg = e.message().trim().to_string();
    let table =
        enclosing_table(src, span.start).map(|t| format!(" in {t}")).unwrap_or_else(|| " at the top level".into());
    let (message, hint) = if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (name, expected) = split_expected(rest);
        let hint = match name.as_str() {
            "api_key" | "key" | "token" => "never put a key in a scenario: set it in an environment variable and name the variable with `api_key_env = \"OPENAI_API_KEY\"`".to_string(),
            _ if expected.is_empty() => "this table takes no keys".to_string(),
            _ => suggest(&name, "keys here", &expected),
        };
        (format!("unknown key `{name}`{table}"), Some(hint))
    } else if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let (name, expected) = split_expected(rest);
        (format!("unknown value `{name}`{table}"), Some(suggest(&name, "values", &expected)))
    } else if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        (format!("wrong type{table}: found {found}, expected {}", friendly_type(expected)), type_hint(found, expected))
    } else if let Some(rest) = msg.strip_prefix("invalid value: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        (format!("bad value{table}: {found}, expected {}", friendly_type(expected)), None)
    } else if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        (format!("missing key `{name}`{table}"), Some(format!("add `{name} = …`; docs/scenario.md lists every key")))
    } else if let Some(rest) = msg.strip_prefix("duplicate field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        (format!("key `{name}` is set twice{table}"), Some("remove one of them".into()))
    } else {
        (msg.replace('\n', " "), None)
    };
    Diagnostic::at(file, src, span, message, hint)
}

fn split_expected(rest: &str) -> (String, Vec<String>) {
    let name = rest.split('`').next().unwrap_or(rest).to_string();
    let expected = rest
        .split_once("expected ")
        .map(|(_, list)| list.split('`').enumerate().filter(|(i, _)| i % 2 == 1).map(|(_, s)| s.to_string()).collect())
        .unwrap_or_default();
    (name, expected)
}

fn friendly_type(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number ≥ 0".into(),
        "i32" | "i64" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a string" => "a string in quotes".into(),
        "a sequence" => "an array `[…]` (or repeated [[tables]])".into(),
        "" => "something else".into(),
        other => other.to_string(),
    }
}

fn type_hint(found: &str, expected: &str) -> Option<String> {
    let quoted_number = found.starts_with("string \"")
        && found.trim_start_matches("string \"").trim_end_matches('"').parse::<f64>().is_ok();
    if quoted_number && expected.starts_with(['u', 'i', 'f']) {
        let n = found.trim_start_matches("string \"").trim_end_matches('"');
        return Some(format!("write the number without quotes: {n}"));
    }
    if expected == "a string" {
        return Some("put the value in double quotes".into());
    }
    if expected.starts_with('u') && found.starts_with("integer `-") {
        return Some("this value cannot be negative".into());
    }
    if expected.starts_with('u') && found.starts_with("floating point") {
        return Some("write a whole number (milliseconds and counts are integers)".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, src.find('=').unwrap()), (1, 3));
        assert_eq!(line_col(src, src.rfind('=').unwrap()), (2, 4));
    }

    #[test]
    fn did_you_mean() {
        let keys = ["calls", "concurrency", "frame_ms", "turn_timeout_ms", "seed"];
        assert_eq!(closest("fram_ms", &keys), Some("frame_ms"));
        assert_eq!(closest("frame", &keys), Some("frame_ms"));
        assert_eq!(closest("concurency", &keys), Some("concurrency"));
        assert_eq!(closest("xyzzy", &keys), None);
    }

    #[test]
    fn renders_with_caret() {
        let src = "[defaults]\nfram_ms = 20\n";
        let d = Diagnostic::at(
            Path::new("s.toml"),
            src,
            11..18,
            "unknown key `fram_ms`",
            Some("did you mean `frame_ms`?".into()),
        );
        let text = d.to_string();
        assert!(text.starts_with("s.toml:2:1: unknown key `fram_ms`"), "{text}");
        assert!(text.contains("2 | fram_ms = 20\n  | ^^^^^^^"), "{text}");
    }
}
