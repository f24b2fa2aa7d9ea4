//! Redaction: masks personal data in every text a run writes (the agent's transcripts, tool-call arguments, content
//! check details, error messages), before any row, page, plot or report sees it.
//!
//! A scenario's `redact` list picks what is masked: `phone` (numbers of 7 or more digits, written or spoken digit
//! by digit: "555-0142", "five five five, zero one four two"), `name` (every value the scenario or the agent gives
//! an argument whose name contains `name`, wherever it appears), `email`, `dates` (ISO, numeric and month-name
//! dates) and `{ regex = "…" }`. Masks are `[phone]`, `[name]`, `[email]`, `[date]` and `[redacted]`.
//!
//! Hand-written because what is masked is specific to a phone call's content: no maintained crate masks spoken
//! digit runs or the names a call's own tool arguments carry.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value as Json;

/// One kind of data to mask.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Phone numbers, in digits or spoken digit words.
    Phone,
    /// Names: values of arguments whose key contains `name`.
    Name,
    /// E-mail addresses.
    Email,
    /// Dates.
    Dates,
    /// A user pattern.
    Pattern(Regex),
}

/// The kind names a scenario may list.
pub const KIND_NAMES: &[&str] = &["phone", "name", "email", "dates"];

/// The default: the corpus's caller gives a phone number and a name.
pub fn default_kinds() -> Vec<Kind> {
    vec![Kind::Phone, Kind::Name]
}

const DIGIT: &str = "(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|[0-9])";

fn phone_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // Groups of digits with spaces, dots, dashes or brackets between them (7–15 digits in all and not a date:
        // see [`is_phone`]), an optional leading `+`; or four or more digits spoken one by one ("zero one four
        // two"): nobody says a quantity that way. A bare run of digits is not masked (byte counts in error texts).
        let words = "(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)";
        Regex::new(&format!(
            r"(?i)(?:\+|\b)\(?[0-9]{{1,4}}\)?(?:[\s.-]{{1,2}}\(?[0-9]{{2,4}}\)?){{1,4}}\b|\b{words}(?:[\s,.-]{{1,3}}{DIGIT}){{3,}}\b"
        ))
        .expect("phone pattern")
    })
}

/// Whether a match of the phone pattern is a phone number: spoken digits always; written ones when they have 7–15
/// digits and are not an ISO date.
fn is_phone(m: &str) -> bool {
    let digits = m.chars().filter(char::is_ascii_digit).count();
    if digits == 0 {
        return true;
    }
    let iso_date = m.len() == 10 && m.as_bytes()[4] == b'-' && m.as_bytes()[7] == b'-';
    (7..=15).contains(&digits) && !iso_date
}

fn email_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").expect("email pattern"))
}

fn date_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let month = "(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";
        let ordinal = "(?:[0-9]{1,2}(?:st|nd|rd|th)?|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|twenty[- ](?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|thirtieth|thirty[- ]first)";
        Regex::new(&format!(
            r"(?i)\b[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}\b|\b[0-9]{{1,2}}/[0-9]{{1,2}}(?:/[0-9]{{2,4}})?\b|\b{month}\.?\s+(?:the\s+)?{ordinal}\b(?:,?\s+[0-9]{{4}})?|\b{ordinal}\s+(?:of\s+)?{month}\b"
        ))
        .expect("date pattern")
    })
}

/// Masks what a scenario's `redact` list names.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    kinds: Vec<Kind>,
    /// The names learned, longest first, each with its pattern compiled once (masking runs on every row).
    names: Vec<(String, Regex)>,
}

/// The longest name a redactor learns (a longer "name" is not one, and would make masking slow).
const MAX_NAME: usize = 64;
/// The most names a redactor learns.
const MAX_NAMES: usize = 64;

impl Redactor {
    /// A redactor for `kinds`, knowing the names in `names` (the scenario's own).
    pub fn new(kinds: Vec<Kind>, names: impl IntoIterator<Item = String>) -> Redactor {
        let mut r = Redactor { kinds, names: Vec::new() };
        for n in names {
            r.learn_name(&n);
        }
        r
    }

    /// Whether it masks anything.
    pub fn is_off(&self) -> bool {
        self.kinds.is_empty()
    }

    fn masks_names(&self) -> bool {
        self.kinds.iter().any(|k| matches!(k, Kind::Name))
    }

    /// Learns a name to mask wherever it appears (and each of its words of 3 letters or more, so "Jordan" alone is
    /// masked too).
    pub fn learn_name(&mut self, name: &str) {
        let name = name.trim();
        if !self.masks_names() || name.is_empty() || name.len() > MAX_NAME || self.names.len() >= MAX_NAMES {
            return;
        }
        let mut add = |n: &str| {
            if !self.names.iter().any(|(x, _)| x.eq_ignore_ascii_case(n))
                && self.names.len() < MAX_NAMES
                && let Some(re) = name_pattern(n)
            {
                self.names.push((n.to_string(), re));
            }
        };
        add(name);
        for w in name.split_whitespace().filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 3) {
            add(w.trim_matches(|c: char| !c.is_alphanumeric()));
        }
        // Longest first, so "Jordan Lee" is masked whole before "Jordan".
        self.names.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    }

    /// Learns the names among a tool call's arguments (values of keys containing `name`).
    pub fn learn_from_args(&mut self, args: &Json) {
        if let Json::Object(o) = args {
            for (k, v) in o {
                if k.to_ascii_lowercase().contains("name")
                    && let Json::String(s) = v
                {
                    self.learn_name(s);
                }
            }
        }
    }

    /// `text` with everything this redactor masks replaced by its mask.
    pub fn text(&self, text: &str) -> String {
        if self.kinds.is_empty() {
            return text.to_string();
        }
        let mut out = text.to_string();
        for k in &self.kinds {
            out = match k {
                Kind::Phone => phone_re()
                    .replace_all(
                        &out,
                        |c: &regex::Captures| {
                            if is_phone(&c[0]) { "[phone]".to_string() } else { c[0].to_string() }
                        },
                    )
                    .into_owned(),
                Kind::Email => email_re().replace_all(&out, "[email]").into_owned(),
                Kind::Dates => date_re().replace_all(&out, "[date]").into_owned(),
                Kind::Pattern(re) => re.replace_all(&out, "[redacted]").into_owned(),
                Kind::Name => {
                    for (_, re) in &self.names {
                        out = re.replace_all(&out, "[name]").into_owned();
                    }
                    out
                }
            };
        }
        out
    }

    /// A JSON value with every string in it masked (object keys are kept: they are the tool's schema).
    pub fn json(&self, v: &Json) -> Json {
        match v {
            Json::String(s) => Json::String(self.text(s)),
            Json::Array(a) => Json::Array(a.iter().map(|x| self.json(x)).collect()),
            Json::Object(o) => Json::Object(o.iter().map(|(k, x)| (k.clone(), self.json(x))).collect()),
            Json::Number(n) if self.kinds.iter().any(|k| matches!(k, Kind::Phone)) && n.to_string().len() >= 7 => {
                Json::String("[phone]".into())
            }
            other => other.clone(),
        }
    }
}

/// The pattern that masks a name, case-insensitively: a single name as a whole word ("Lee" must not mask "sleepy"),
/// a full name anywhere (it is masked even inside a pattern like `\bJordan Lee\b`).
fn name_pattern(name: &str) -> Option<Regex> {
    let escaped = regex::escape(name);
    let src = if name.contains(' ') { format!("(?i){escaped}") } else { format!(r"(?i)\b{escaped}\b") };
    Regex::new(&src).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_in_digits_and_in_words_are_masked_and_quantities_are_not() {
        let r = Redactor::new(vec![Kind::Phone], []);
        assert_eq!(r.text("call 555-0142 or +1 (415) 555 0142"), "call [phone] or [phone]");
        assert_eq!(
            r.text("So that's Jordan Lee, five five five, zero one four two, a table for eight"),
            "So that's Jordan Lee, [phone], a table for eight"
        );
        assert_eq!(
            r.text("For four people at seven fifteen, 2 or 3 tables"),
            "For four people at seven fifteen, 2 or 3 tables"
        );
        assert_eq!(
            r.json(&serde_json::json!({"phone": 5550142, "n": 8})),
            serde_json::json!({"phone": "[phone]", "n": 8})
        );
        // Dates, times, versions and byte counts are not phone numbers.
        let keep = "on 2026-12-04 at 19:30, 16777218 bytes, v1.2.3, 12 34";
        assert_eq!(r.text(keep), keep);
    }

    #[test]
    fn names_come_from_the_scenario_and_the_agents_arguments() {
        let mut r = Redactor::new(default_kinds(), ["Jordan Lee".to_string()]);
        assert_eq!(r.text("Thank you, jordan LEE. Jordan, your table"), "Thank you, [name]. [name], your table");
        r.learn_from_args(&serde_json::json!({"name": "Maria Okafor", "party_size": 8}));
        assert_eq!(r.text("booked for Maria Okafor"), "booked for [name]");
        // A name is a whole word: "Lee" does not mask "sleepy", and short words are not learned alone.
        assert_eq!(r.text("a sleepy Lee"), "a sleepy [name]");
        // A full name is masked wherever it appears, even glued to other text (a content check's label).
        assert_eq!(r.text(r"said /\bJordan Lee\b/"), r"said /\b[name]\b/");
        let off = Redactor::new(vec![Kind::Phone], ["Jordan Lee".to_string()]);
        assert_eq!(off.text("Jordan Lee"), "Jordan Lee");
    }

    #[test]
    fn emails_dates_and_patterns() {
        let r = Redactor::new(vec![Kind::Email, Kind::Dates, Kind::Pattern(Regex::new("BV-[0-9-]+").unwrap())], []);
        assert_eq!(r.text("mail jo.lee@example.com"), "mail [email]");
        assert_eq!(
            r.text("on 2026-12-04, 12/4, December fourth, Dec 4th 2026 and the 4th of December; ref BV-20261204-0142"),
            "on [date], [date], [date], [date] and the [date]; ref [redacted]"
        );
        assert!(Redactor::default().is_off());
        assert_eq!(Redactor::default().text("555-0142"), "555-0142");
    }
}
