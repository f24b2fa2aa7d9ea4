//! A [`Comparison`] as text: the terminal table, Markdown (report.md, `$GITHUB_STEP_SUMMARY`) and JSON, plus the
//! one-line headline per pair ("fixed answered 1.91× sooner than pipeline [1.84–1.99]").

use std::fmt::Write as _;

use super::{Comparison, Measure, Pair, Row};
use crate::model::Metric;

fn ms(v: f64) -> String {
    if v >= 100.0 { format!("{v:.0} ms") } else { format!("{v:.1} ms") }
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

fn points(v: f64) -> String {
    format!("{:+.1} pt", v * 100.0)
}

/// The reference's and the other's values.
fn values(r: &Row) -> (String, String) {
    if r.is_rate() { (pct(r.reference), pct(r.other)) } else { (ms(r.reference), ms(r.other)) }
}

/// A row's cells, in table order: metric (and statistic), reference, other, figure, verdict.
pub fn cells(r: &Row) -> [String; 5] {
    let (va, vb) = values(r);
    let name = if r.is_rate() { r.metric.label().to_string() } else { format!("{} {}", r.metric.label(), r.stat) };
    [name, va, vb, figure(r), verdict(r)]
}

/// The compared figure with its interval: `1.91× [1.84–1.99]` or `−12.0 pt [−20.0 – −4.0]`.
pub fn figure(r: &Row) -> String {
    if r.is_rate() {
        let ci = r.ci.map(|(lo, hi)| format!(" [{} … {}]", points(lo), points(hi))).unwrap_or_default();
        format!("{}{ci}", points(r.value))
    } else {
        let ci = r.ci.map(|(lo, hi)| format!(" [{lo:.2}–{hi:.2}]")).unwrap_or_default();
        format!("{:.2}×{ci}", r.value)
    }
}

/// What the figure says: significant or not, with the p-value.
pub fn verdict(r: &Row) -> String {
    match r.p_value {
        None => format!("too few calls ({} vs {}; need 3 each)", r.calls.0, r.calls.1),
        Some(p) if r.significant => format!("significant (p {})", p_text(p)),
        Some(p) => format!("not significant (p {})", p_text(p)),
    }
}

fn p_text(p: f64) -> String {
    if p < 0.001 { "< 0.001".into() } else { format!("= {p:.3}") }
}

/// One sentence for the pair's TTFA p50 (the number people ask for), or `None` without TTFA on both sides.
pub fn headline(c: &Comparison, pair: &Pair) -> Option<String> {
    let r = pair.rows.iter().find(|r| r.metric == Measure::Latency(Metric::Ttfa) && r.stat == "p50")?;
    let name = |label: &str| c.side(label).map(|s| display(s.label.as_str(), s.simulated)).unwrap_or_default();
    let (a, b) = (name(&c.reference), name(&pair.other));
    let ci = r.ci.map(|(lo, hi)| format!(" [{lo:.2}–{hi:.2}]")).unwrap_or_default();
    Some(match r.p_value {
        Some(p) if !r.significant => format!(
            "{a} vs {b}: no significant difference in median TTFA ({} vs {}, ratio {:.2}{ci}, p {})",
            ms(r.reference),
            ms(r.other),
            r.value,
            p_text(p)
        ),
        None => format!(
            "{a} vs {b}: median TTFA {} vs {} (ratio {:.2}; too few calls for an interval)",
            ms(r.reference),
            ms(r.other),
            r.value
        ),
        Some(p) if r.value >= 1.0 => format!(
            "{a} answered {:.2}× sooner than {b}{ci} (median TTFA {} vs {}), significant (p {})",
            r.value,
            ms(r.reference),
            ms(r.other),
            p_text(p)
        ),
        Some(p) => {
            let inv = r.ci.map(|(lo, hi)| format!(" [{:.2}–{:.2}]", 1.0 / hi, 1.0 / lo)).unwrap_or_default();
            format!(
                "{b} answered {:.2}× sooner than {a}{inv} (median TTFA {} vs {}), significant (p {})",
                1.0 / r.value,
                ms(r.other),
                ms(r.reference),
                p_text(p)
            )
        }
    })
}

fn display(label: &str, simulated: bool) -> String {
    if simulated { format!("{label} (simulated)") } else { label.to_string() }
}

fn explain(c: &Comparison) -> String {
    let only = c.kind.as_ref().map(|k| format!("Only {} turns. ", k.replace('_', "-"))).unwrap_or_default();
    format!(
        "{only}ratio = other / {reference} (latencies: above 1 means slower than {reference}); rates: difference in \
         percentage points. 95 % bootstrap intervals over whole calls ({} resamples, seed {}); significant when \
         p < 0.05 and the interval excludes no difference.",
        c.resamples,
        c.seed,
        reference = c.reference
    )
}

/// The comparison for a terminal: per pair, a headline and an aligned table.
pub fn render_terminal(c: &Comparison) -> String {
    let mut out = String::new();
    for pair in &c.pairs {
        let a = c.side(&c.reference).map(|s| display(&s.label, s.simulated)).unwrap_or_default();
        let b = c.side(&pair.other).map(|s| display(&s.label, s.simulated)).unwrap_or_default();
        let _ = writeln!(out, "compare: {a}  vs  {b}");
        if let Some(h) = headline(c, pair) {
            let _ = writeln!(out, "  {h}");
        }
        for n in &pair.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        let (wa, wb) = (c.reference.len().max(9), pair.other.len().max(9));
        let _ = writeln!(
            out,
            "  {:<22} {:>wa$} {:>wb$}  {:<28} verdict",
            "metric", c.reference, pair.other, "ratio / difference"
        );
        for r in &pair.rows {
            let [name, va, vb, fig, verdict] = cells(r);
            let _ = writeln!(out, "  {name:<22} {va:>wa$} {vb:>wb$}  {fig:<28} {verdict}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", explain(c));
    out
}

/// The comparison in Markdown: a headline and a table per pair.
pub fn render_markdown(c: &Comparison) -> String {
    let mut out = String::from("## Head to head\n\n");
    for pair in &c.pairs {
        let a = c.side(&c.reference).map(|s| display(&s.label, s.simulated)).unwrap_or_default();
        let b = c.side(&pair.other).map(|s| display(&s.label, s.simulated)).unwrap_or_default();
        let _ = writeln!(out, "### {a} vs {b}\n");
        if let Some(h) = headline(c, pair) {
            let _ = writeln!(out, "**{h}**\n");
        }
        for n in &pair.notes {
            let _ = writeln!(out, "> Note: {n}\n");
        }
        let _ = writeln!(out, "| metric | {} | {} | ratio / difference [95 % CI] | verdict |", c.reference, pair.other);
        out.push_str("|---|---:|---:|---|---|\n");
        for r in &pair.rows {
            let _ = writeln!(out, "| {} |", cells(r).join(" | "));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "_{}_", explain(c));
    out
}

/// The comparison as JSON (pretty, with a trailing newline).
pub fn render_json(c: &Comparison) -> String {
    let mut s = serde_json::to_string_pretty(c).expect("a comparison serialises");
    s.push('\n');
    s
}
