//! The verdict as text: the terminal table, Markdown (for `$GITHUB_STEP_SUMMARY` and PR comments) and JSON. Each
//! is a function from a [`GateReport`] to a string; the CLI writes them.

use serde::Serialize;

use super::compare::pct;
use super::slo::num;
use super::{Check, CheckKind, GateReport};
use crate::scenario::RATES;

/// The measured value and the threshold of a check, as text with units.
fn value(c: &Check, v: Option<f64>) -> String {
    let Some(v) = v else { return "–".into() };
    match c.kind {
        CheckKind::Regression => pct(v),
        CheckKind::Goodput => format!("{:.1} %", v * 100.0),
        CheckKind::Slo => {
            let key = c.name.split(' ').next().unwrap_or("");
            if RATES.iter().any(|(r, _)| *r == key) {
                format!("{:.1} %", v * 100.0)
            } else {
                format!("{} ms", num((v * 10.0).round() / 10.0))
            }
        }
    }
}

fn limit(c: &Check) -> String {
    match (c.kind, c.threshold) {
        (CheckKind::Regression, Some(n)) => format!("±{:.1} %", n * 100.0),
        _ => value(c, c.threshold),
    }
}

fn verdict_line(r: &GateReport) -> String {
    let failed: Vec<&Check> = r.failures().collect();
    let regressions = failed.iter().filter(|c| c.kind == CheckKind::Regression).count();
    if failed.is_empty() {
        format!("PASS: all {} check(s) passed", r.checks.len())
    } else {
        format!(
            "FAIL: {} of {} check(s) failed ({} SLO breach(es), {} regression(s))",
            failed.len(),
            r.checks.len(),
            failed.len() - regressions,
            regressions
        )
    }
}

fn header(r: &GateReport) -> String {
    let mut s = format!("gate: {}", r.report_dir.display());
    if let Some(b) = &r.baseline {
        s.push_str(&format!(
            "  (baseline {}; bootstrap over whole calls, {} resamples, noise ±{:.1} %)",
            b.display(),
            r.bootstrap,
            r.noise * 100.0
        ));
    }
    s
}

/// The verdict table for a terminal: one line per check, PASS/FAIL, then notes and the verdict.
pub fn render_table(r: &GateReport) -> String {
    let rows: Vec<[String; 6]> = r
        .checks
        .iter()
        .map(|c| {
            [
                c.target.clone(),
                c.name.clone(),
                value(c, c.measured),
                limit(c),
                if c.passed { "PASS" } else { "FAIL" }.into(),
                c.detail.clone(),
            ]
        })
        .collect();
    let head = ["target", "check", "measured", "limit", "result", "detail"].map(String::from);
    let width = |i: usize| rows.iter().chain([&head]).map(|r| r[i].chars().count()).max().unwrap_or(0);
    let w: Vec<usize> = (0..5).map(width).collect();
    let mut out = header(r);
    out.push('\n');
    for row in [&head].into_iter().chain(rows.iter()) {
        let pad = |s: &str, n: usize| format!("{s}{}", " ".repeat(n.saturating_sub(s.chars().count())));
        let lpad = |s: &str, n: usize| format!("{}{s}", " ".repeat(n.saturating_sub(s.chars().count())));
        out.push_str(&format!(
            "  {}  {}  {}  {}  {}  {}\n",
            pad(&row[0], w[0]),
            pad(&row[1], w[1]),
            lpad(&row[2], w[2]),
            lpad(&row[3], w[3]),
            pad(&row[4], w[4]),
            row[5]
        ));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(&verdict_line(r));
    out.push('\n');
    out
}

/// A Markdown cell: pipes escaped, line breaks flattened.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// The verdict as GitHub-flavoured Markdown: a heading with the verdict, the table, the notes.
pub fn render_markdown(r: &GateReport) -> String {
    let pass = r.passed();
    let mut out = format!("### voicebench gate: {} {}\n\n", if pass { "✅" } else { "❌" }, cell(&verdict_line(r)));
    out.push_str(&format!("{}\n\n", cell(&header(r))));
    if !r.checks.is_empty() {
        out.push_str("| target | check | measured | limit | result | detail |\n|---|---|---:|---:|---|---|\n");
        for c in &r.checks {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                cell(&c.target),
                cell(&c.name),
                cell(&value(c, c.measured)),
                cell(&limit(c)),
                if c.passed { "PASS" } else { "**FAIL**" },
                cell(&c.detail)
            ));
        }
        out.push('\n');
    }
    for n in &r.notes {
        out.push_str(&format!("- note: {}\n", cell(n)));
    }
    if !r.notes.is_empty() {
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
struct JsonDoc<'a> {
    passed: bool,
    failed: usize,
    #[serde(flatten)]
    report: &'a GateReport,
}

/// The verdict as a JSON document: `passed`, `failed`, `report_dir`, `baseline`, `slo`, `noise`, `bootstrap`,
/// `checks[]` (target, name, kind, passed, measured, threshold, detail, change), `notes[]`. Pretty-printed.
pub fn render_json(r: &GateReport) -> String {
    let doc = JsonDoc { passed: r.passed(), failed: r.failures().count(), report: r };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gate::{Change, ChangeVerdict};

    /// A report with a passing SLO, a breached rate with a `|` and a `<` in its target name, and a regression.
    pub(crate) fn sample() -> GateReport {
        let slo = |target: &str, name: &str, passed, measured, threshold, detail: &str| Check {
            target: target.into(),
            name: name.into(),
            kind: CheckKind::Slo,
            passed,
            measured,
            threshold,
            detail: detail.into(),
            change: None,
        };
        GateReport {
            report_dir: "reports/x".into(),
            baseline: Some(".voicebench/baselines/main".into()),
            slo: vec![("ttfa.p95".into(), 800.0), ("tool_success_rate".into(), 0.9)],
            noise: 0.05,
            bootstrap: 2000,
            checks: vec![
                slo("sim", "ttfa.p95 <= 800 ms", true, Some(612.34), Some(800.0), "p95 ttfa = 612.34 ms"),
                slo(
                    "a|b<c>&\"d\"",
                    "tool_success_rate >= 0.9",
                    false,
                    Some(0.5),
                    Some(0.9),
                    "tool_success_rate = 50.0 % (1 of 2 <expected> & \"quoted\")\nsecond line",
                ),
                Check {
                    target: "sim".into(),
                    name: "regression ttfa.p95".into(),
                    kind: CheckKind::Regression,
                    passed: false,
                    measured: Some(0.2),
                    threshold: Some(0.05),
                    detail: "ttfa.p95 600 → 720 ms".into(),
                    change: Some(Change {
                        metric: crate::model::Metric::Ttfa,
                        stat: "p95".into(),
                        base: 600.0,
                        current: 720.0,
                        rel_change: 0.2,
                        ci_low: 0.12,
                        ci_high: 0.28,
                        p_value: 0.0005,
                        verdict: ChangeVerdict::Regressed,
                    }),
                },
            ],
            notes: vec!["target `x` is not in the baseline: not compared".into()],
        }
    }

    #[test]
    fn table_has_every_check_and_the_verdict() {
        let t = render_table(&sample());
        assert!(t.contains("ttfa.p95 <= 800 ms") && t.contains("612.3 ms") && t.contains("PASS"), "{t}");
        assert!(t.contains("50.0 %") && t.contains("90.0 %"), "{t}");
        assert!(t.contains("+20.0 %") && t.contains("±5.0 %"), "{t}");
        assert!(t.contains("note: target `x`"), "{t}");
        assert!(t.trim_end().ends_with("FAIL: 2 of 3 check(s) failed (1 SLO breach(es), 1 regression(s))"), "{t}");
    }

    #[test]
    fn markdown_rows_stay_rows() {
        let md = render_markdown(&sample());
        assert!(md.starts_with("### voicebench gate: ❌ FAIL"), "{md}");
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), 2 + 3, "{md}");
        // Every row has the header's 6 cells: escaped pipes do not split cells.
        for r in rows {
            let cells = r.replace("\\|", "").matches('|').count() - 1;
            assert_eq!(cells, 6, "{r}");
        }
        assert!(md.contains("a\\|b"), "{md}");
    }

    #[test]
    fn json_round_trips() {
        let v: serde_json::Value = serde_json::from_str(&render_json(&sample())).unwrap();
        assert_eq!(v["passed"], false);
        assert_eq!(v["failed"], 2);
        assert_eq!(v["checks"][2]["change"]["verdict"], "regressed");
        assert_eq!(v["checks"][0]["kind"], "slo");
        assert_eq!(v["slo"], serde_json::json!({"ttfa.p95": 800.0, "tool_success_rate": 0.9}));
    }
}
