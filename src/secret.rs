//! Keeping keys out of every output, and provider text bounded before it is kept.
//!
//! Some providers take the key in the URL (Gemini's `?key=`), WebSocket and HTTP errors like to quote URLs, and a
//! hostile or careless provider echoes the key back (in an error event, a close reason, a session id, a 401 body).
//! Two layers keep it out of every artefact:
//!
//! - each adapter scrubs the messages it produces with the [`Secrets`] of its session;
//! - the run registers every key value it can know (the environment variables the selected targets name, and the
//!   credential-like query parameters of their URLs) with [`register`], and every string that reaches a row, the
//!   summary, the pages, the terminal, an error chain or a panic message passes through [`scrub`] first.
//!
//! [`Secrets::scrub`] masks a key wherever it appears and also any long part of it (at least [`PARTIAL_LEN`]
//! bytes of a key of at least [`PARTIAL_MIN_KEY`] bytes), so a provider that echoes a key cut short or a prefix of
//! it does not carry it out either. Written by hand: no crate of the field redacts a set of runtime values with
//! partial matches; it is a few dozen lines over `str` and a hash set.

use std::collections::HashSet;
use std::sync::RwLock;

/// Query parameters whose values are credentials.
const SECRET_PARAMS: &[&str] = &[
    "key",
    "api_key",
    "apikey",
    "token",
    "access_token",
    "auth",
    "signature",
    "sig",
    "xi-api-key",
    "api-key",
    "conversation_signature",
];

/// What replaces a secret.
pub const MASK: &str = "***";

/// The shortest run of a key's bytes that is masked when only part of the key is echoed.
pub const PARTIAL_LEN: usize = 12;
/// Keys shorter than this are masked only whole (a 12-byte part of a short key would be most of it anyway).
pub const PARTIAL_MIN_KEY: usize = 16;

/// The most bytes of provider text (an error message, a close reason) a row keeps.
pub const MAX_TEXT: usize = 1024;
/// The most bytes of a provider-chosen identifier (a session id) a row keeps.
pub const MAX_ID: usize = 256;

/// A set of secret values.
#[derive(Clone, Default)]
pub struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

impl Secrets {
    /// The credential values in `url`'s query string (as written and percent-decoded).
    pub fn from_url(url: &str) -> Self {
        let mut s = Self::default();
        if let Some((_, q)) = url.split_once('?') {
            for kv in q.split('&') {
                if let Some((k, v)) = kv.split_once('=')
                    && SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str())
                {
                    s.add(v);
                    if let Ok(decoded) = percent_decode(v) {
                        s.add(&decoded);
                    }
                }
            }
        }
        s
    }

    /// Adds a secret (values shorter than 4 characters would mask ordinary text, and are not secrets anyway).
    pub fn add(&mut self, v: &str) {
        if v.len() >= 4 && !self.0.iter().any(|x| x == v) {
            self.0.push(v.to_string());
        }
    }

    /// Adds every secret of `other`.
    pub fn extend(&mut self, other: &Secrets) {
        for v in &other.0 {
            self.add(v);
        }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every secret masked, and every run of at least [`PARTIAL_LEN`] bytes of a long secret.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        // Longest first, so a key that contains another is masked whole.
        let mut keys: Vec<&String> = self.0.iter().collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
        for s in &keys {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        for s in keys.iter().filter(|k| k.len() >= PARTIAL_MIN_KEY) {
            out = mask_parts(&out, s);
        }
        out
    }
}

/// `text` with every run of at least [`PARTIAL_LEN`] bytes that also occurs in `key` replaced by [`MASK`].
fn mask_parts(text: &str, key: &str) -> String {
    let (t, k) = (text.as_bytes(), key.as_bytes());
    if t.len() < PARTIAL_LEN {
        return text.to_string();
    }
    let windows: HashSet<&[u8]> = k.windows(PARTIAL_LEN).collect();
    let mut masked = vec![false; t.len()];
    let mut any = false;
    for (i, w) in t.windows(PARTIAL_LEN).enumerate() {
        if windows.contains(w) {
            masked[i..i + PARTIAL_LEN].iter_mut().for_each(|m| *m = true);
            any = true;
        }
    }
    if !any {
        return text.to_string();
    }
    // Widen each masked run to whole characters, then replace it.
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if masked[i..i + c.len_utf8()].iter().any(|m| *m) {
            out.push_str(MASK);
            while let Some(&(j, d)) = chars.peek() {
                if !masked[j..j + d.len_utf8()].iter().any(|m| *m) {
                    break;
                }
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `%XX` sequences decoded; `Err` when the result is not UTF-8 (then only the raw form is a secret).
fn percent_decode(v: &str) -> Result<String, std::string::FromUtf8Error> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
}

/// `url` without its query string (which may carry credentials), for messages.
pub fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// `s` cut to at most `max` bytes at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `text` cut to at most `max` bytes (at a character boundary), with the original length noted when cut.
pub fn bound(text: &str, max: usize) -> String {
    match cut(text, max) {
        kept if kept.len() == text.len() => text.to_string(),
        kept => format!("{kept}… (truncated, {} bytes)", text.len()),
    }
}

/// The run's secrets, registered once the run knows them (see the module doc).
static RUN: RwLock<Option<Secrets>> = RwLock::new(None);

/// Adds `secrets` to the process-wide set that [`scrub`] masks.
pub fn register(secrets: &Secrets) {
    let mut run = RUN.write().unwrap_or_else(|e| e.into_inner());
    run.get_or_insert_with(Secrets::default).extend(secrets);
}

/// `text` with every registered secret masked.
pub fn scrub(text: &str) -> String {
    let run = RUN.read().unwrap_or_else(|e| e.into_inner());
    match run.as_ref() {
        Some(s) if !s.is_empty() => s.scrub(text),
        _ => text.to_string(),
    }
}

/// A JSON value (a tool call's arguments) with every registered secret masked in every string of it, keys too.
pub fn scrub_json(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(scrub(s)),
        Value::Array(a) => Value::Array(a.iter().map(scrub_json).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (scrub(k), scrub_json(x))).collect()),
        other => other.clone(),
    }
}

/// Provider text for a row: the run's secrets masked, then cut to `max` bytes, then masked again (a cut can leave
/// a key's head that only the partial rule catches).
pub fn for_row(text: &str, max: usize) -> String {
    scrub(&bound(&scrub(text), max))
}

/// Installs a panic hook that prints the panic message with every registered secret masked.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned());
        match msg {
            Some(m) => {
                let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                eprintln!("voicebench panicked{at}: {}", scrub(&m));
            }
            None => default(info),
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_keys_are_masked_everywhere() {
        let s = Secrets::from_url("wss://h/ws/x?key=AIzaSECRET123&alt=json");
        assert_eq!(s.scrub("GET /ws/x?key=AIzaSECRET123 failed: AIzaSECRET123"), "GET /ws/x?key=*** failed: ***");
        assert_eq!(s.scrub("alt=json"), "alt=json", "other parameters are not secrets");
        assert_eq!(format!("{s:?}"), "Secrets(1 redacted)");
        assert_eq!(without_query("ws://a/b?key=x"), "ws://a/b");
    }

    #[test]
    fn percent_encoded_keys_are_masked_in_both_forms() {
        let s = Secrets::from_url("wss://h/?api_key=sk%2Bcanary%2Fkey");
        assert_eq!(s.scrub("sk%2Bcanary%2Fkey and sk+canary/key"), "*** and ***");
    }

    #[test]
    fn a_long_part_of_a_key_is_masked_and_a_short_one_is_not() {
        let mut s = Secrets::default();
        s.add("sk-canary-0123456789abcdefghij");
        // A prefix, a middle part and a tail of at least 12 bytes are all masked.
        assert_eq!(s.scrub("bad key sk-canary-012345…"), "bad key ***…");
        assert_eq!(s.scrub("x 3456789abcdefg y"), "x *** y");
        assert_eq!(s.scrub("ends in 89abcdefghij."), "ends in ***.");
        // 11 bytes of it, or ordinary words, stay.
        assert_eq!(s.scrub("sk-canary-0 is fine"), "sk-canary-0 is fine");
        assert_eq!(s.scrub("the session expired"), "the session expired");
        // Multi-byte text around a part keeps its characters whole.
        assert_eq!(s.scrub("é0123456789abcé"), "é***é");
    }

    #[test]
    fn a_key_inside_another_is_masked_whole() {
        let mut s = Secrets::default();
        s.add("abcd");
        s.add("xxabcdyy");
        assert_eq!(s.scrub("xxabcdyy"), "***");
    }

    #[test]
    fn text_is_bounded_at_a_character_boundary_with_its_length() {
        assert_eq!(bound("short", 10), "short");
        let long = "é".repeat(600);
        let b = bound(&long, MAX_TEXT);
        assert!(b.len() <= MAX_TEXT + 40, "{}", b.len());
        assert!(b.ends_with("… (truncated, 1200 bytes)"), "{b}");
    }
}
