//! Text helpers of the agent brain: ids like the real services' ids, argument JSON split into streamed deltas, and
//! the one wrong argument a model sometimes gives.

use serde_json::{Value, json};

use crate::sim::ProfileKind;
use crate::stats::SplitMix64;

/// 21 base62 characters, like the real service's ids.
pub(crate) fn rand_id(rng: &mut SplitMix64) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = String::with_capacity(21);
    let mut x = rng.next_u64();
    for i in 0..21 {
        if i == 10 {
            x = rng.next_u64();
        }
        s.push(A[(x % 62) as usize] as char);
        x /= 62;
    }
    s
}

/// Splits JSON text into `n` non-empty pieces (fewer if the text is shorter) at char boundaries: evenly under
/// `fixed`, at random positions under `native`.
pub(crate) fn split_text(text: &str, n: usize, rng: &mut SplitMix64, kind: ProfileKind) -> Vec<String> {
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).skip(1).collect();
    let n = n.min(bounds.len() + 1).max(1);
    let mut cuts: Vec<usize> = match kind {
        ProfileKind::Fixed => (1..n).map(|k| bounds[k * bounds.len() / n]).collect(),
        ProfileKind::Native => {
            let mut pool = bounds.clone();
            let mut chosen = Vec::with_capacity(n - 1);
            for _ in 1..n {
                let j = (rng.next_u64() % pool.len() as u64) as usize;
                chosen.push(pool.swap_remove(j));
            }
            chosen
        }
    };
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut prev = 0;
    for c in cuts {
        out.push(text[prev..c].to_string());
        prev = c;
    }
    out.push(text[prev..].to_string());
    out
}

/// Makes one argument wrong, the way a model gets one wrong: a number off by one, the next day, an hour later, a
/// misspelt name. Returns the argument's name.
pub(crate) fn corrupt_one(args: &mut Value, checked: &[String], rng: &mut SplitMix64) -> Option<String> {
    let obj = args.as_object_mut()?;
    if obj.is_empty() {
        return None;
    }
    // An argument the expectation checks, so the mistake is one (any argument when it checks none).
    let mut keys: Vec<String> = obj.keys().filter(|k| checked.contains(k)).cloned().collect();
    if keys.is_empty() {
        keys = obj.keys().cloned().collect();
    }
    keys.sort();
    let k = keys[(rng.next_u64() % keys.len() as u64) as usize].clone();
    let v = obj.get_mut(&k)?;
    *v = match v.take() {
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!(i + 1),
            None => json!(n.as_f64().unwrap_or(0.0) + 1.0),
        },
        Value::Bool(b) => json!(!b),
        Value::String(s) => json!(wrong_string(&s)),
        other => other,
    };
    Some(k)
}

fn wrong_string(s: &str) -> String {
    let b = s.as_bytes();
    // YYYY-MM-DD: the next day.
    if b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && let (Ok(y), Ok(m), Ok(d)) = (s[..4].parse::<u32>(), s[5..7].parse::<u32>(), s[8..].parse::<u32>())
    {
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let len = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (y, m, d) = if d < len {
            (y, m, d + 1)
        } else if m >= 12 {
            (y + 1, 1, 1)
        } else {
            (y, m + 1, 1)
        };
        return format!("{y:04}-{m:02}-{d:02}");
    }
    // HH:MM: an hour later.
    if b.len() == 5
        && b[2] == b':'
        && let (Ok(h), Ok(mi)) = (s[..2].parse::<u32>(), s[3..].parse::<u32>())
    {
        return format!("{:02}:{mi:02}", (h + 1) % 24);
    }
    if s.is_empty() { "x".into() } else { format!("{s}e") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_lossless_and_counts() {
        let text = r#"{"date":"2026-12-04","party_size":4,"time":"19:00"}"#;
        let mut rng = SplitMix64::new(1);
        for kind in [super::ProfileKind::Fixed, super::ProfileKind::Native] {
            for n in [1, 4, 6, 20] {
                let p = split_text(text, n, &mut rng, kind);
                assert_eq!(p.len(), n);
                assert!(p.iter().all(|x| !x.is_empty()));
                assert_eq!(p.concat(), text);
            }
        }
        assert_eq!(split_text("ab", 6, &mut rng, super::ProfileKind::Native).len(), 2);
    }

    #[test]
    fn corrupting_changes_exactly_one_argument() {
        let mut rng = SplitMix64::new(5);
        let all: Vec<String> = ["party_size", "date", "time", "name"].map(String::from).to_vec();
        for _ in 0..20 {
            let orig = json!({"party_size": 4, "date": "2026-12-04", "time": "19:00", "name": "Jordan Lee"});
            let mut v = orig.clone();
            let k = corrupt_one(&mut v, &all, &mut rng).unwrap();
            let changed: Vec<_> = orig.as_object().unwrap().keys().filter(|key| orig[*key] != v[*key]).collect();
            assert_eq!(changed, vec![&k]);
        }
        // Only an argument the expectation checks is changed (a `time = { any = true }` would stay right).
        let checked: Vec<String> = vec!["party_size".into(), "date".into()];
        for _ in 0..50 {
            let mut v = json!({"party_size": 8, "date": "2026-12-04", "time": "any"});
            let k = corrupt_one(&mut v, &checked, &mut rng).unwrap();
            assert!(checked.contains(&k), "{k}");
            assert_eq!(v["time"], "any");
        }
        assert_eq!(wrong_string("2026-12-31"), "2027-01-01");
        assert_eq!(wrong_string("2026-12-04"), "2026-12-05");
        assert_eq!(wrong_string("2028-02-28"), "2028-02-29");
        assert_eq!(wrong_string("19:30"), "20:30");
    }
}
