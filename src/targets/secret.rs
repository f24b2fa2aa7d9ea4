//! Keeping keys out of every output. Some providers take the key in the URL (Gemini's `?key=`), and WebSocket and
//! HTTP errors like to quote URLs, so an adapter scrubs every message it produces with the secrets it knows: the
//! values of credential-like query parameters of its URL, and the key it read from the environment.

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

/// The secrets one session knows.
#[derive(Clone, Default)]
pub struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

impl Secrets {
    /// The credential values in `url`'s query string.
    pub fn from_url(url: &str) -> Self {
        let mut s = Self::default();
        if let Some((_, q)) = url.split_once('?') {
            for kv in q.split('&') {
                if let Some((k, v)) = kv.split_once('=')
                    && SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str())
                {
                    s.add(v);
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

    /// `text` with every secret masked.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

/// `url` without its query string (which may carry credentials), for messages.
pub fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
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
}
