//! Argument matchers for expected tool calls and canned tool results.
//!
//! A scenario says what a tool argument must look like: `4` (a number, so `"4"` and `4.0` match too), `"Jordan"`
//! (exact string), or a table with one matcher: `{ exact = … }`, `{ ci = "jordan lee" }` (case- and
//! whitespace-insensitive), `{ number = 8, tol = 0 }`, `{ date = "2026-12-04" }` (any common spelling of that
//! date), `{ time = "19:30" }` (any common spelling of that time of day), `{ regex = "…" }`, `{ any = true }`.

use serde_json::Value as Json;

/// A compiled argument matcher.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal as JSON values.
    Exact(Json),
    /// Equal as strings after trimming, lower-casing and collapsing whitespace.
    CaseInsensitive(String),
    /// A number (or a numeric string, or a number word) within `tol` of `value`.
    Number {
        /// Expected value.
        value: f64,
        /// Allowed absolute difference.
        tol: f64,
    },
    /// A calendar date in any common spelling; the year is compared only when the argument gives one.
    Date(Date),
    /// A time of day in any common spelling, to the minute.
    Time(u32),
    /// A regular expression that must match somewhere in the argument's text.
    Regex(regex::Regex),
    /// Anything, as long as the argument is present.
    Any,
}

/// Matcher names accepted in a matcher table.
pub const MATCHER_KEYS: &[&str] = &["exact", "ci", "number", "tol", "date", "time", "regex", "any"];

impl Matcher {
    /// Compiles a matcher from its TOML form. The error is a message and a hint.
    pub fn compile(v: &toml::Value) -> Result<Matcher, (String, String)> {
        match v {
            toml::Value::Integer(i) => Ok(Matcher::Number { value: *i as f64, tol: 0.0 }),
            toml::Value::Float(f) => Ok(Matcher::Number { value: *f, tol: 0.0 }),
            toml::Value::String(_) | toml::Value::Boolean(_) => Ok(Matcher::Exact(toml_to_json(v))),
            toml::Value::Table(t) => compile_table(t),
            other => Err((
                format!("a matcher cannot be {}", other.type_str()),
                "write a value (exact match) or a table such as `{ ci = \"jordan lee\" }`, `{ number = 4, tol = 0 }`, `{ regex = \"…\" }`".into(),
            )),
        }
    }

    /// Whether an argument value matches.
    pub fn matches(&self, actual: &Json) -> bool {
        match self {
            Matcher::Exact(e) => e == actual,
            Matcher::CaseInsensitive(e) => as_text(actual).is_some_and(|a| normalise_ws(&a) == *e),
            Matcher::Number { value, tol } => as_number(actual).is_some_and(|a| (a - value).abs() <= *tol + 1e-9),
            Matcher::Date(e) => as_text(actual).and_then(|a| parse_date(&a)).is_some_and(|a| e.same_day(&a)),
            Matcher::Time(e) => as_text(actual).and_then(|a| parse_time(&a)) == Some(*e),
            Matcher::Regex(re) => as_text(actual).is_some_and(|a| re.is_match(&a)),
            Matcher::Any => !actual.is_null(),
        }
    }
}

fn compile_table(t: &toml::Table) -> Result<Matcher, (String, String)> {
    let kinds: Vec<&str> = t.keys().map(String::as_str).filter(|k| *k != "tol").collect();
    for k in t.keys() {
        if !MATCHER_KEYS.contains(&k.as_str()) {
            let hint = match crate::diag::closest(k, MATCHER_KEYS) {
                Some(c) => format!("did you mean `{c}`? matchers are: {}", MATCHER_KEYS.join(", ")),
                None => format!("matchers are: {}", MATCHER_KEYS.join(", ")),
            };
            return Err((format!("unknown matcher `{k}`"), hint));
        }
    }
    if kinds.len() != 1 {
        return Err((
            format!(
                "a matcher table needs exactly one matcher, found {}",
                if kinds.is_empty() { "none".into() } else { kinds.join(", ") }
            ),
            "e.g. `{ number = 8, tol = 0 }` or `{ ci = \"jordan lee\" }`".into(),
        ));
    }
    if t.contains_key("tol") && kinds[0] != "number" {
        return Err(("`tol` only goes with `number`".into(), "write `{ number = 8, tol = 0.5 }`".into()));
    }
    let val = &t[kinds[0]];
    let want_str = |what: &str| -> Result<&str, (String, String)> {
        val.as_str().ok_or_else(|| {
            (format!("`{what}` takes a string, found {}", val.type_str()), format!("write `{{ {what} = \"…\" }}`"))
        })
    };
    match kinds[0] {
        "exact" => Ok(Matcher::Exact(toml_to_json(val))),
        "ci" => Ok(Matcher::CaseInsensitive(normalise_ws(want_str("ci")?))),
        "number" => {
            let value = as_number(&toml_to_json(val)).ok_or_else(|| {
                (format!("`number` takes a number, found {}", val.type_str()), "write `{ number = 8 }`".into())
            })?;
            let tol = match t.get("tol") {
                None => 0.0,
                Some(x) => x.as_float().or_else(|| x.as_integer().map(|i| i as f64)).filter(|t| *t >= 0.0).ok_or_else(
                    || {
                        (
                            "`tol` must be a non-negative number".to_string(),
                            "write `{ number = 8, tol = 0.5 }`".to_string(),
                        )
                    },
                )?,
            };
            Ok(Matcher::Number { value, tol })
        }
        "date" => {
            let s = want_str("date")?;
            let d = parse_date(s).ok_or_else(|| {
                (
                    format!("cannot read `{s}` as a date"),
                    "write the expected date as YYYY-MM-DD, e.g. \"2026-12-04\"".into(),
                )
            })?;
            Ok(Matcher::Date(d))
        }
        "time" => {
            let s = want_str("time")?;
            let m = parse_time(s).ok_or_else(|| {
                (
                    format!("cannot read `{s}` as a time of day"),
                    "write the expected time as HH:MM, e.g. \"19:30\"".into(),
                )
            })?;
            Ok(Matcher::Time(m))
        }
        "regex" => {
            let s = want_str("regex")?;
            regex::Regex::new(s).map(Matcher::Regex).map_err(|e| regex_error(s, &e))
        }
        "any" => match val.as_bool() {
            Some(true) => Ok(Matcher::Any),
            _ => Err((
                "`any` must be `true`".into(),
                "write `{ any = true }`, or leave the argument out to not check it".into(),
            )),
        },
        _ => unreachable!("checked against MATCHER_KEYS"),
    }
}

/// Why a scenario's regular expression `src` does not compile, as a message and a hint (argument matchers, content
/// checks and redaction patterns alike).
pub fn regex_error(src: &str, e: &regex::Error) -> (String, String) {
    let detail = e.to_string().lines().last().unwrap_or_default().trim().to_string();
    (
        format!("bad regex `{src}`: {detail}"),
        "regex syntax: https://docs.rs/regex/#syntax; escape a backslash in TOML as \\\\ or use a 'literal string'"
            .into(),
    )
}

/// Converts a TOML value to JSON (dates become strings).
pub fn toml_to_json(v: &toml::Value) -> Json {
    match v {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Json::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
    }
}

fn as_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn normalise_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

fn as_number(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => {
            let t = s.trim().to_lowercase().replace(',', "");
            t.parse::<f64>().ok().or_else(|| NUMBER_WORDS.iter().position(|w| *w == t).map(|i| i as f64))
        }
        _ => None,
    }
}

/// A calendar date; the year is optional because callers say "Friday, December fourth".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    /// Year, when given.
    pub year: Option<i32>,
    /// Month, 1–12.
    pub month: u32,
    /// Day of month, 1–31.
    pub day: u32,
}

impl Date {
    fn same_day(&self, other: &Date) -> bool {
        self.month == other.month
            && self.day == other.day
            && (self.year.is_none() || other.year.is_none() || self.year == other.year)
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// A month from its name or an abbreviation of at least three letters (`dec`, `sept.`).
fn month_of(word: &str) -> Option<u32> {
    let w = word.trim_end_matches('.');
    (w.len() >= 3).then(|| MONTHS.iter().position(|m| m.starts_with(w)).map(|i| i as u32 + 1)).flatten()
}

fn valid(year: Option<i32>, month: u32, day: u32) -> Option<Date> {
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some(Date { year, month, day })
}

/// Reads a date in ISO (`2026-12-04`, also with a time after it), US numeric (`12/04/2026`, `12/04`), or words
/// (`December 4th, 2026`, `Friday, Dec 4`, `4 December 2026`).
pub fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim().to_lowercase();
    let head = s.split(['t', ' ']).next().unwrap_or("");
    let nums: Vec<&str> = head.split(['-', '/']).collect();
    if nums.len() == 3 && nums.iter().all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())) {
        let n: Vec<i64> = nums.iter().map(|x| x.parse().unwrap_or(0)).collect();
        return if nums[0].len() == 4 {
            valid(Some(n[0] as i32), n[1] as u32, n[2] as u32)
        } else {
            valid(Some(n[2] as i32), n[0] as u32, n[1] as u32)
        };
    }
    if nums.len() == 2 && s.contains('/') && nums.iter().all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    {
        return valid(None, nums[0].parse().ok()?, nums[1].parse().ok()?);
    }
    // Words: find a month name, a day number (1–31, with an optional ordinal suffix) and maybe a year.
    let words: Vec<&str> = s.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).collect();
    let mut month = None;
    let (mut day, mut year) = (None, None);
    for w in &words {
        if let Some(m) = month_of(w) {
            month = month.or(Some(m));
            continue;
        }
        let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '.');
        if let Ok(n) = digits.parse::<u32>() {
            if digits.len() == 4 {
                year = Some(n as i32);
            } else if (1..=31).contains(&n) {
                day = day.or(Some(n));
            }
        }
    }
    valid(year, month?, day?)
}

/// Reads a time of day as minutes after midnight: `19:30`, `19:30:00`, `7:30 pm`, `7pm`, `7 p.m.`, `noon`, or an
/// ISO date-time (`2026-12-04T19:30:00`).
pub fn parse_time(s: &str) -> Option<u32> {
    let mut s = s.trim().to_lowercase();
    if let Some(i) = s.find('t').filter(|&i| s[..i].contains('-')) {
        s = s[i + 1..].to_string();
    }
    match s.as_str() {
        "noon" | "midday" => return Some(12 * 60),
        "midnight" => return Some(0),
        _ => {}
    }
    let compact: String = s.chars().filter(|c| !c.is_whitespace() && *c != '.').collect();
    let (clock, meridiem) = if let Some(c) = compact.strip_suffix("am") {
        (c.to_string(), Some(false))
    } else if let Some(c) = compact.strip_suffix("pm") {
        (c.to_string(), Some(true))
    } else {
        // Drop a trailing zone or fraction such as "Z" or "+01:00" after HH:MM:SS.
        (compact.trim_end_matches('z').split('+').next().unwrap_or("").to_string(), None)
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let mut h: u32 = parts[0].parse().ok()?;
    let m: u32 = if parts.len() > 1 { parts[1].parse().ok()? } else { 0 };
    if m > 59 {
        return None;
    }
    match meridiem {
        Some(pm) => {
            if !(1..=12).contains(&h) {
                return None;
            }
            h = (h % 12) + if pm { 12 } else { 0 };
        }
        None if parts.len() == 1 => return None, // a bare "7" is not a time
        None => {}
    }
    (h < 24).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(src: &str) -> Matcher {
        let v: toml::Table = toml::from_str(&format!("x = {src}")).unwrap();
        Matcher::compile(&v["x"]).unwrap()
    }

    fn err(src: &str) -> String {
        let v: toml::Table = toml::from_str(&format!("x = {src}")).unwrap();
        Matcher::compile(&v["x"]).unwrap_err().0
    }

    #[test]
    fn numbers() {
        assert!(m("4").matches(&json!(4)));
        assert!(m("4").matches(&json!("4")));
        assert!(m("4").matches(&json!("four")));
        assert!(!m("4").matches(&json!(8)));
        assert!(m("{ number = 8, tol = 0.5 }").matches(&json!(8.4)));
        assert!(!m("{ number = 8, tol = 0.5 }").matches(&json!(8.6)));
    }

    #[test]
    fn strings() {
        assert!(m("\"Jordan Lee\"").matches(&json!("Jordan Lee")));
        assert!(!m("\"Jordan Lee\"").matches(&json!("jordan lee")));
        assert!(m("{ ci = \"jordan lee\" }").matches(&json!("  Jordan   LEE ")));
        assert!(m(r#"{ regex = '555\D*0142' }"#).matches(&json!("+1 (555) 0142")));
        assert!(!m(r#"{ regex = '555\D*0142' }"#).matches(&json!("555 0143")));
        assert!(m("{ any = true }").matches(&json!("whatever")));
        assert!(!m("{ any = true }").matches(&json!(null)));
    }

    #[test]
    fn dates() {
        let d = m("{ date = \"2026-12-04\" }");
        for ok in [
            "2026-12-04",
            "12/04/2026",
            "12/4",
            "December 4th",
            "Friday, Dec 4, 2026",
            "4 December 2026",
            "2026-12-04T19:00:00",
        ] {
            assert!(d.matches(&json!(ok)), "{ok}");
        }
        for bad in ["2025-12-04", "December 5", "Friday", "tomorrow", "12/05/2026"] {
            assert!(!d.matches(&json!(bad)), "{bad}");
        }
    }

    #[test]
    fn times() {
        let t = m("{ time = \"19:30\" }");
        for ok in ["19:30", "19:30:00", "7:30 pm", "7:30PM", "7:30 p.m.", "2026-12-04T19:30:00Z"] {
            assert!(t.matches(&json!(ok)), "{ok}");
        }
        for bad in ["7:30 am", "19:00", "7", "half past seven", "25:00"] {
            assert!(!t.matches(&json!(bad)), "{bad}");
        }
        assert_eq!(parse_time("12am"), Some(0));
        assert_eq!(parse_time("12pm"), Some(720));
        assert_eq!(parse_time("7pm"), Some(19 * 60));
    }

    #[test]
    fn compile_errors() {
        assert!(err("{ regex = \"(unclosed\" }").starts_with("bad regex"));
        assert!(err("{ numbr = 4 }").contains("unknown matcher `numbr`"));
        assert!(err("{ ci = \"a\", regex = \"b\" }").contains("exactly one matcher"));
        assert!(err("{ date = \"someday\" }").contains("as a date"));
        assert!(err("{ any = false }").contains("must be `true`"));
        assert!(err("[1, 2]").contains("cannot be array"));
    }
}
