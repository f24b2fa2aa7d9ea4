//! Reading a scenario into its shape ([`ScenarioFile`]) with every structural problem found in one pass.
//!
//! serde stops at the first problem it meets (an unknown key, a wrong type, a missing key), so a file with six
//! typos would take six rounds of `validate` to fix. Instead the document is parsed once into toml's spanned
//! tree (`DeTable`, every syntax error at once), deserialised, and on each error the smallest piece of the tree that
//! holds it (the key, or the `[[target]]`/`[[turn]]` element, or the table) is cut out and the shape read again,
//! until it reads or nothing is left to cut. Spans stay those of the original text, so each error is located as
//! precisely as serde locates it. No crate does this pruning (toml and serde stop at the first error); it is
//! ~150 lines over toml's own public tree types.
//!
//! Cutting a key can leave a hole that later checks would misread (a cut `[agent]` makes every tool "unknown"), so
//! the pass also says whether the semantic checks can still run on what it read: they can when every cut was an
//! unknown key (its absence changes nothing) or a value under `[defaults]` or `[slo]` (defaults stand in for it).

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::super::schema::ScenarioFile;
use crate::diag::{Diagnostic, from_toml_error};

/// At most this many structural problems are collected (a file that is not a scenario at all can have thousands).
const MAX_PROBLEMS: usize = 100;

/// What [`read`] found.
pub(super) struct Shape {
    /// The scenario as read, with the problem pieces cut out; `None` when no shape could be read.
    pub file: Option<ScenarioFile>,
    /// Every syntax or structural problem, in file order.
    pub diags: Vec<Diagnostic>,
    /// Whether the semantic checks can run on `file` without misreading a cut piece.
    pub checks_can_run: bool,
}

/// One step of a path into the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Reads `src` (already key-masked) into a [`ScenarioFile`], collecting every syntax and structural problem.
pub(super) fn read(path: &Path, src: &str) -> Shape {
    let (doc, syntax) = DeTable::parse_recoverable(src);
    if !syntax.is_empty() {
        // What follows a syntax error is guesswork: report the syntax errors alone (all of them).
        let mut diags: Vec<Diagnostic> =
            syntax.iter().take(MAX_PROBLEMS).map(|e| from_toml_error(path, src, e)).collect();
        diags.dedup_by(|a, b| a.line == b.line && a.col == b.col);
        return Shape { file: None, diags, checks_can_run: false };
    }
    let mut doc = doc;
    let mut diags = Vec::new();
    let mut cut: Vec<Vec<Step>> = Vec::new();
    let mut checks_can_run = true;
    while diags.len() < MAX_PROBLEMS {
        let err = match ScenarioFile::deserialize(toml::de::Deserializer::from(doc.clone())) {
            Ok(file) => return Shape { file: Some(file), diags, checks_can_run },
            Err(e) => e,
        };
        let Some(span) = err.span() else {
            diags.push(from_toml_error(path, src, &err));
            break;
        };
        let mut at = locate(&doc, &span);
        let message = err.message();
        if let Some(field) = message.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            // `at` is the table that lacks the key. Missing because a piece was cut is not the user's problem.
            let mut key = at.clone();
            key.push(Step::Key(field.to_string()));
            if !cut.contains(&key) {
                diags.push(from_toml_error(path, src, &err));
            }
        } else {
            diags.push(from_toml_error(path, src, &err));
            let unknown_key = message.starts_with("unknown field `");
            let replaced_by_default =
                matches!(at.first(), Some(Step::Key(k)) if k == "defaults" || k == "slo") && at.len() >= 2;
            if !(unknown_key || replaced_by_default) {
                checks_can_run = false;
            }
            if at.is_empty() {
                break;
            }
            if !cut_at(&mut doc, &at) {
                break;
            }
            cut.push(at);
            continue;
        }
        // A missing key: cut the table that lacks it, or the `[[…]]` element it is.
        checks_can_run = false;
        if at.is_empty() || !cut_at(&mut doc, &at) {
            break;
        }
        cut.push(std::mem::take(&mut at));
    }
    diags.sort_by_key(|d| (d.line, d.col));
    Shape { file: None, diags, checks_can_run: false }
}

fn contains(span: &Range<usize>, at: &Range<usize>) -> bool {
    span.start <= at.start && at.start < span.end.max(span.start + 1)
}

/// The path to the innermost key or array element whose key or value holds `at`'s start (empty: none does).
/// A table's own span is its header only, so every table's entries are searched, whatever its span.
fn locate(doc: &Spanned<DeTable<'_>>, at: &Range<usize>) -> Vec<Step> {
    let mut path = Vec::new();
    in_table(doc.get_ref(), at, &mut path);
    path
}

fn in_table(table: &DeTable<'_>, at: &Range<usize>, path: &mut Vec<Step>) -> bool {
    for (k, v) in table.iter() {
        path.push(Step::Key(k.get_ref().to_string()));
        if contains(&k.span(), at) || in_value(v, at, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn in_value(v: &Spanned<DeValue<'_>>, at: &Range<usize>, path: &mut Vec<Step>) -> bool {
    let inside = match v.get_ref() {
        DeValue::Table(t) => in_table(t, at, path),
        DeValue::Array(items) => items.iter().enumerate().any(|(i, item)| {
            path.push(Step::Index(i));
            let found = in_value(item, at, path);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    };
    inside || contains(&v.span(), at)
}

/// Cuts the key or element at `path` out of `doc`; false if it is not there.
fn cut_at(doc: &mut Spanned<DeTable<'_>>, path: &[Step]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut value: Option<&mut Spanned<DeValue<'_>>> = None;
    for step in parents {
        let next = match (value.take(), step) {
            (None, Step::Key(k)) => doc.get_mut().get_mut(k.as_str()),
            (Some(v), Step::Key(k)) => match v.get_mut() {
                DeValue::Table(t) => t.get_mut(k.as_str()),
                _ => None,
            },
            (Some(v), Step::Index(i)) => match v.get_mut() {
                DeValue::Array(a) => a.get_mut(*i),
                _ => None,
            },
            (None, Step::Index(_)) => None,
        };
        let Some(next) = next else { return false };
        value = Some(next);
    }
    match (value, last) {
        (None, Step::Key(k)) => doc.get_mut().remove(k.as_str()).is_some(),
        (Some(v), Step::Key(k)) => match v.get_mut() {
            DeValue::Table(t) => t.remove(k.as_str()).is_some(),
            _ => false,
        },
        (Some(v), Step::Index(i)) => match v.get_mut() {
            DeValue::Array(a) if *i < a.len() => {
                let kept = std::mem::replace(a, toml::de::DeArray::new())
                    .into_iter()
                    .enumerate()
                    .filter(|(j, _)| j != i)
                    .map(|(_, x)| x);
                *a = kept.collect();
                true
            }
            _ => false,
        },
        (None, Step::Index(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(src: &str) -> (Vec<String>, bool, bool) {
        let shape = read(Path::new("s.toml"), src);
        let msgs = shape.diags.iter().map(|d| format!("{}:{} {}", d.line, d.col, d.message)).collect();
        (msgs, shape.file.is_some(), shape.checks_can_run)
    }

    const GOOD: &str = "name = \"x\"\n[defaults]\ncalls = 2\n[[target]]\nname = \"a\"\nprotocol = \"openai-realtime\"\nsim = \"native\"\n[[turn]]\nutterance = \"greeting\"\n";

    #[test]
    fn a_good_file_reads_with_no_problem() {
        let (msgs, read, run) = problems(GOOD);
        assert!(msgs.is_empty(), "{msgs:?}");
        assert!(read && run);
    }

    #[test]
    fn unknown_keys_everywhere_are_all_reported_and_the_checks_still_run() {
        let src = GOOD
            .replace("calls = 2", "calls = 2\nfram_ms = 20")
            .replace("sim = \"native\"", "sim = \"native\"\nmodle = \"m\"")
            .replace("utterance = \"greeting\"", "utterance = \"greeting\"\nexpekt = \"stop\"")
            + "colour = 1\n";
        let (msgs, read, run) = problems(&src);
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        for k in ["fram_ms", "modle", "expekt", "colour"] {
            assert!(msgs.iter().any(|m| m.contains(&format!("unknown key `{k}`"))), "{k}: {msgs:?}");
        }
        assert!(read && run);
    }

    #[test]
    fn wrong_types_in_two_elements_and_a_missing_key_are_all_reported() {
        let src = GOOD.replace("calls = 2", "calls = \"two\"").replace("protocol = \"openai-realtime\"\n", "")
            + "[[turn]]\nutterance = 7\n[[turn]]\nutterance = \"request\"\ndelay_ms = -1\n";
        let (msgs, read, run) = problems(&src);
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("3:9 ") && m.contains("wrong type")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("4:1 missing key `protocol` in [[target]]")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("10:13 wrong type in [[turn]]")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("13:12 bad value in [[turn]]")), "{msgs:?}");
        assert!(read && !run, "the pruned shape reads, but the checks wait");
    }

    #[test]
    fn a_wrong_value_cut_out_does_not_also_report_it_missing() {
        let src = GOOD.replace("protocol = \"openai-realtime\"", "protocol = \"opneai\"");
        let (msgs, _, run) = problems(&src);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].contains("unknown value `opneai`"), "{msgs:?}");
        assert!(!run);
    }

    #[test]
    fn every_syntax_error_is_reported_and_nothing_else() {
        let src = "name = \"x\"\ncalls = = 2\n[defaults\nfoo = \"unterminated\n";
        let (msgs, read, _) = problems(src);
        assert!(msgs.len() >= 2, "{msgs:?}");
        assert!(!read);
    }

    #[test]
    fn problems_are_capped() {
        let src: String = (0..500).map(|i| format!("k{i} = 1\n")).collect::<String>() + "name = \"x\"\n";
        let (msgs, _, _) = problems(&src);
        assert_eq!(msgs.len(), MAX_PROBLEMS);
    }
}
