//! What the agent must say and what the call must leave behind: a turn's content checks (`say` / `not_say`, scored
//! on the transcript of the agent's reply) and the end-state expectations (`[[expect_state]]`, scored on the rows
//! the scenario's tools recorded during the call, τ-bench's way to judge a task without a judge).
//!
//! A content check is a phrase (its words must appear in order, whole, case and punctuation ignored: `"eight
//! people"` matches "Eight people, this Friday") or `{ regex = "…" }` (case-insensitive, searched anywhere), or an
//! array of them. `say` passes when every entry is found; `not_say` when none is.

use regex::Regex;
use serde_json::Value as Json;

use super::matcher::Matcher;

/// One phrase or pattern of a content check.
#[derive(Debug, Clone)]
pub struct TextPattern {
    /// As written, for reports (`"eight"`, `/\beight\b/`).
    pub label: String,
    re: Regex,
}

impl TextPattern {
    /// Compiles one entry: a phrase string or a `{ regex = "…" }` table. The error is a message and a hint.
    pub fn compile(v: &toml::Value) -> Result<TextPattern, (String, String)> {
        match v {
            toml::Value::String(s) => {
                let words: Vec<String> = words(s).map(regex::escape).collect();
                if words.is_empty() {
                    return Err((
                        format!("the phrase `{s}` has no words to look for"),
                        "write the words the agent must say, e.g. `say = \"eight people\"`".into(),
                    ));
                }
                let re = Regex::new(&format!(r"(?i)\b{}\b", words.join(r"\W+"))).expect("escaped words compile");
                Ok(TextPattern { label: format!("\"{s}\""), re })
            }
            toml::Value::Table(t) if t.len() == 1 && t.contains_key("regex") => {
                let Some(s) = t["regex"].as_str() else {
                    return Err(("`regex` takes a string".into(), "write `{ regex = '\\beight\\b' }`".into()));
                };
                let re = regex::RegexBuilder::new(s)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| super::matcher::regex_error(s, &e))?;
                Ok(TextPattern { label: format!("/{s}/"), re })
            }
            other => Err((
                format!("a content check cannot be {}", describe(other)),
                "write a phrase (`say = \"eight\"`), `{ regex = '\\b(eight|8)\\b' }`, or an array of them".into(),
            )),
        }
    }

    /// The first match in `text`, when there is one.
    pub fn find<'t>(&self, text: &'t str) -> Option<&'t str> {
        self.re.find(text).map(|m| m.as_str())
    }
}

fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::Table(t) => {
            format!("a table with {}", t.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
        }
        other => format!("a {}", other.type_str()),
    }
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty())
}

/// A turn's content checks.
#[derive(Debug, Clone, Default)]
pub struct ContentCheck {
    /// Every one must be found in the reply.
    pub say: Vec<TextPattern>,
    /// None may be found.
    pub not_say: Vec<TextPattern>,
}

/// The verdict of a content check on a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentVerdict {
    /// Whether every `say` was found and no `not_say`.
    pub ok: bool,
    /// What was found or missing, e.g. `said "eight" ("eight"); did not say /four/`.
    pub detail: String,
}

impl ContentCheck {
    /// Whether the turn has any check.
    pub fn is_empty(&self) -> bool {
        self.say.is_empty() && self.not_say.is_empty()
    }

    /// Judges `text`, the agent's reply as its transcript reported it.
    pub fn judge(&self, text: &str) -> ContentVerdict {
        let mut ok = true;
        let mut parts = Vec::new();
        for p in &self.say {
            match p.find(text) {
                Some(m) => parts.push(format!("said {} (\"{}\")", p.label, cut(m))),
                None => {
                    ok = false;
                    parts.push(format!("did not say {}", p.label));
                }
            }
        }
        for p in &self.not_say {
            match p.find(text) {
                Some(m) => {
                    ok = false;
                    parts.push(format!("said {}, which it must not (\"{}\")", p.label, cut(m)));
                }
                None => parts.push(format!("did not say {}", p.label)),
            }
        }
        ContentVerdict { ok, detail: parts.join("; ") }
    }
}

/// At most 80 characters of a match, for a report.
fn cut(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Compiles `say` / `not_say`: one entry or an array of entries. Errors come with the index of the entry at fault
/// (`None` for the value as a whole).
pub fn compile_patterns(v: &toml::Value) -> Result<Vec<TextPattern>, (Option<usize>, String, String)> {
    match v {
        toml::Value::Array(a) if a.is_empty() => {
            Err((None, "an empty list checks nothing".into(), "leave the key out, or list phrases".into()))
        }
        toml::Value::Array(a) => {
            a.iter().enumerate().map(|(i, x)| TextPattern::compile(x).map_err(|(m, h)| (Some(i), m, h))).collect()
        }
        one => TextPattern::compile(one).map(|p| vec![p]).map_err(|(m, h)| (None, m, h)),
    }
}

/// One `[[expect_state]]`: how many rows of a table must match, at the end of every call.
#[derive(Debug, Clone)]
pub struct StateExpect {
    /// The table (a tool's `records`).
    pub table: String,
    /// Column matchers; all must match a row.
    pub matchers: Vec<(String, Matcher)>,
    /// Rows that must match.
    pub count: u32,
}

/// The most rows a call's state table keeps: an agent that calls a recording tool in a loop cannot grow a run's
/// memory without bound.
pub const MAX_STATE_ROWS: usize = 256;

/// The rows a call's tools recorded, per table.
#[derive(Debug, Clone, Default)]
pub struct State {
    tables: Vec<(String, Vec<Json>)>,
    /// Rows refused because a table was full.
    pub dropped: u32,
}

impl State {
    /// Records one tool call's arguments as a row of `table`.
    pub fn insert(&mut self, table: &str, row: Json) {
        let rows = match self.tables.iter_mut().find(|(t, _)| t == table) {
            Some((_, rows)) => rows,
            None => {
                self.tables.push((table.to_string(), Vec::new()));
                &mut self.tables.last_mut().expect("just pushed").1
            }
        };
        if rows.len() < MAX_STATE_ROWS {
            rows.push(row);
        } else {
            self.dropped += 1;
        }
    }

    /// The rows of `table`.
    pub fn rows(&self, table: &str) -> &[Json] {
        self.tables.iter().find(|(t, _)| t == table).map_or(&[], |(_, r)| r.as_slice())
    }

    /// Judges every expectation: `(ok, detail)`, the detail naming each one that failed with what was found.
    pub fn judge(&self, expects: &[StateExpect]) -> (bool, String) {
        let mut failed = Vec::new();
        for e in expects {
            let rows = self.rows(&e.table);
            let n = rows
                .iter()
                .filter(|r| e.matchers.iter().all(|(k, m)| m.matches(r.get(k).unwrap_or(&Json::Null))))
                .count();
            if n != e.count as usize {
                failed.push(format!(
                    "{}: {n} matching row{} of {}, expected {}",
                    e.table,
                    if n == 1 { "" } else { "s" },
                    rows.len(),
                    e.count
                ));
            }
        }
        if failed.is_empty() {
            (true, format!("{} expectation{} held", expects.len(), if expects.len() == 1 { "" } else { "s" }))
        } else {
            (false, failed.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(src: &str) -> Vec<TextPattern> {
        let v: toml::Table = toml::from_str(&format!("x = {src}")).unwrap();
        compile_patterns(&v["x"]).unwrap()
    }

    #[test]
    fn phrases_match_whole_words_in_order_ignoring_case_and_punctuation() {
        let p = pat(r#""eight people""#);
        assert_eq!(p[0].find("No problem. For Eight people, this Friday"), Some("Eight people"));
        assert_eq!(p[0].find("eighty people"), None);
        assert_eq!(p[0].find("people: eight"), None);
        let p = pat(r#""seven-thirty""#);
        assert!(p[0].find("at seven thirty").is_some());
    }

    #[test]
    fn say_and_not_say_report_what_was_found() {
        let check =
            ContentCheck { say: pat(r#"["eight", { regex = '\b7:?30|seven thirty\b' }]"#), not_say: pat("\"four\"") };
        let v = check.judge("Great, seven thirty for eight people.");
        assert!(v.ok, "{v:?}");
        assert!(v.detail.contains(r#"said "eight" ("eight")"#), "{}", v.detail);
        let v = check.judge("Great, seven thirty for four people.");
        assert!(!v.ok);
        assert!(v.detail.contains(r#"did not say "eight""#) && v.detail.contains("which it must not"), "{}", v.detail);
    }

    #[test]
    fn bad_entries_are_refused_with_their_index() {
        let v: toml::Table = toml::from_str(r#"x = ["ok", { regex = "(" }, 3]"#).unwrap();
        let (i, msg, _) = compile_patterns(&v["x"]).unwrap_err();
        assert_eq!(i, Some(1));
        assert!(msg.starts_with("bad regex"), "{msg}");
        let v: toml::Table = toml::from_str(r#"x = { regx = "a" }"#).unwrap();
        let (i, msg, _) = compile_patterns(&v["x"]).unwrap_err();
        assert_eq!(i, None);
        assert!(msg.contains("`regx`"), "{msg}");
        let v: toml::Table = toml::from_str(r#"x = "...""#).unwrap();
        assert!(compile_patterns(&v["x"]).is_err());
    }

    #[test]
    fn state_counts_matching_rows_and_stays_bounded() {
        let m =
            |src: &str| Matcher::compile(&toml::from_str::<toml::Table>(&format!("x = {src}")).unwrap()["x"]).unwrap();
        let mut s = State::default();
        s.insert("bookings", serde_json::json!({"party_size": 8, "time": "7:30 pm"}));
        let expect = |count| StateExpect {
            table: "bookings".into(),
            matchers: vec![("party_size".into(), m("8")), ("time".into(), m(r#"{ time = "19:30" }"#))],
            count,
        };
        assert!(s.judge(&[expect(1)]).0);
        let (ok, detail) = s.judge(&[expect(2)]);
        assert!(!ok);
        assert_eq!(detail, "bookings: 1 matching row of 1, expected 2");
        s.insert("bookings", serde_json::json!({"party_size": 6}));
        assert!(s.judge(&[expect(1)]).0);
        for _ in 0..1000 {
            s.insert("bookings", serde_json::json!({}));
        }
        assert_eq!(s.rows("bookings").len(), MAX_STATE_ROWS);
        assert_eq!(s.dropped as usize, 1002 - MAX_STATE_ROWS);
        assert!(s.rows("other").is_empty());
    }
}
