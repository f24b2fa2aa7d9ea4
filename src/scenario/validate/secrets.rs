//! API keys written into a scenario: a scenario is shared and committed, so a key literal is an error, and it is
//! masked (each character replaced by `*`, so every span stays where it was) before any other check reads the text:
//! no diagnostic can print it. Keys are read from environment variables named by `api_key_env`.
//!
//! Found: a string value of a key-named field (`api_key`, `key`, `token`, `secret`, `password`, …), a key-named
//! query parameter in any string (`?api_key=…`, `&key=…`), and anything shaped like a provider key (`sk-…`,
//! `AIza…`).

use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;

use crate::diag::Diagnostic;

fn patterns() -> &'static [Regex; 3] {
    static P: OnceLock<[Regex; 3]> = OnceLock::new();
    P.get_or_init(|| {
        [
            // `api_key = "…"` (not `api_key_env`): the value between the quotes.
            Regex::new(
                r#"(?mi)^[ \t]*["']?(?:api[_-]?key|key|token|access[_-]?token|secret|password|bearer)["']?[ \t]*=[ \t]*["']([^"'\n]+)["']"#,
            )
            .expect("a valid pattern"),
            // A key in a URL's query (a value long enough to be one: `?key=…` in a comment is not).
            Regex::new(r#"(?i)[?&](?:api[_-]?key|key|token|access[_-]?token|secret)=([A-Za-z0-9_.~%+/=\-]{12,})"#)
                .expect("a valid pattern"),
            // Shapes of provider keys.
            Regex::new(r#"\b((?:sk-(?:proj-|ant-)?|sk_)[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{30,})"#)
                .expect("a valid pattern"),
        ]
    })
}

/// `src` with every key literal masked, and one diagnostic per literal (pointing at the masked text).
pub(super) fn mask_keys(path: &Path, src: &str) -> (String, Vec<Diagnostic>) {
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    for re in patterns() {
        for cap in re.captures_iter(src) {
            if let Some(m) = cap.get(1) {
                spans.push(m.range());
            }
        }
    }
    if spans.is_empty() {
        return (src.to_string(), Vec::new());
    }
    spans.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for r in spans {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    // Mask character by character with ASCII `*`: byte offsets change only inside the masked ranges, and a
    // multi-byte character becomes as many `*` as it had bytes, so every offset outside stays valid.
    let mut bytes = src.as_bytes().to_vec();
    for r in &merged {
        bytes[r.clone()].fill(b'*');
    }
    let masked = String::from_utf8(bytes).expect("ASCII replaced whole characters' bytes");
    let diags = merged
        .iter()
        .map(|r| {
            Diagnostic::at(
                path,
                &masked,
                r.clone(),
                "an API key is written in the scenario (masked here); a scenario is shared and committed, keys are not",
                Some(
                    "remove it, put the key in an environment variable and name the variable: \
                     `api_key_env = \"OPENAI_API_KEY\"`"
                        .to_string(),
                ),
            )
        })
        .collect();
    (masked, diags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_masked_and_named_and_env_names_are_not() {
        let src = "api_key_env = \"OPENAI_API_KEY\"\napi_key = \"sk-abcdefghijklmnopqrstuvwx\"\n\
                   url = \"wss://h/x?model=a&key=AIzaSyA0123456789abcdefghijklmnopqrstu\"\n";
        let (masked, diags) = mask_keys(Path::new("s.toml"), src);
        assert_eq!(masked.len(), src.len());
        assert!(!masked.contains("sk-abc") && !masked.contains("AIza"), "{masked}");
        assert!(masked.contains("OPENAI_API_KEY"), "{masked}");
        assert_eq!(diags.len(), 2, "{diags:?}");
        assert_eq!((diags[0].line, diags[0].col), (2, 12));
        assert!(diags.iter().all(|d| !d.to_string().contains("abcdefghijklmnop")));
        assert!(mask_keys(Path::new("s.toml"), "name = \"booking\"\n").1.is_empty());
        // What a comment says about keys is not one.
        assert!(mask_keys(Path::new("s.toml"), "x = 1 # sent as ?key=… redacted\n").1.is_empty());
    }
}
