//! The human-facing pages of a report directory: `report.md` (GitHub step summaries, PR comments) and the
//! self-contained `index.html`. Both are built from one [`Page`] — the facts as titled tables — so they say the
//! same thing; [`render_markdown`] and [`render_html`] only lay it out.
//!
//! Everything comes from the report directory (summary.json, turns.jsonl, the plots) and the verdicts made of it
//! (the gate's SLO checks, the comparison: [`Verdicts`], made by the caller), so `voicebench report DIR` rebuilds the
//! pages of old runs and merged shards. The pages sit at the top of the module graph: they read through
//! [`crate::report::read`] and show what the gate, compare and the plots make of it; nothing below imports them.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;

pub mod build;

pub use build::{Rendered, Verdicts, render_dir};

use crate::compare::Comparison;
use crate::gate::{CheckKind, GateReport};
use crate::metrics::Stats;
use crate::model::Metric;
use crate::report::{Summary, TargetSummary};

/// A table: header cells and rows of cells (plain text; the renderers escape).
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
}

/// A figure for the HTML page: a plot's files, relative to the report directory.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Title.
    pub title: String,
    /// What it shows and how to read it.
    pub caption: String,
    /// The target it belongs to, `None` for run-wide figures.
    pub target: Option<String>,
    /// PNG, relative to the report directory.
    pub png: String,
    /// SVG, relative to the report directory.
    pub svg: String,
    /// The recording of the call it draws, when there is one (relative to the report directory).
    pub listen: Option<String>,
}

/// A recorded call: its audio and what was said, turn by turn.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// Target.
    pub target: String,
    /// Call index.
    pub call: u32,
    /// Why it was kept: `failed`, `slowest`, `all`.
    pub why: String,
    /// The stereo WAV, relative to the report directory.
    pub file: String,
    /// The call's transcript view: one row per turn.
    pub turns: Table,
}

/// Everything the pages show.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// The run's summary.
    pub summary: &'a Summary,
    /// SLO verdicts (`None`: the scenario has no SLOs).
    pub gate: Option<&'a GateReport>,
    /// The head-to-head comparison (multi-target runs).
    pub compare: Option<&'a Comparison>,
    /// Plots.
    pub figures: &'a [Figure],
    /// Files of the report directory to link, relative names, in order.
    pub files: Vec<String>,
    /// Recorded calls, in target then call order.
    pub recordings: Vec<RecordedCall>,
}

/// A call's transcript view from its turn rows: what the caller said (the utterance), when and how fast the agent
/// answered, what it said (its transcript, redacted), and what failed.
pub fn call_transcript(turns: &[&crate::model::TurnRecord]) -> Table {
    let heard = turns.iter().any(|t| t.heard_text.is_some());
    let mut headers =
        vec!["turn", "kind", "caller (utterance)", "caller stops (s)", "TTFA (ms)", "agent said", "content", "error"];
    if heard {
        headers.insert(6, "caller heard");
    }
    let rows = turns
        .iter()
        .map(|t| {
            let mut row = vec![
                t.turn_id.clone(),
                t.kind.map_or("–".into(), |k| k.as_str().to_string()),
                t.utterance.clone(),
                format!("{:.2}", t.user_eos_ms / 1000.0),
                t.ttfa_ms.map_or("–".into(), |v| format!("{v:.0}")),
                t.agent_text.clone().unwrap_or_else(|| "–".into()),
                match (t.content_ok, &t.content_detail) {
                    (Some(true), _) => "ok".into(),
                    (Some(false), Some(d)) => format!("FAILED: {d}"),
                    (Some(false), None) => "FAILED".into(),
                    (None, _) => "–".into(),
                },
                match (&t.error, &t.error_message) {
                    (Some(c), Some(m)) => format!("{}: {m}", c.as_str()),
                    (Some(c), None) => c.as_str().to_string(),
                    _ => String::new(),
                },
            ];
            if heard {
                let unheard = t.unheard_words.filter(|n| *n > 0).map(|n| format!(" ({n} reported words not heard)"));
                row.insert(6, format!("{}{}", t.heard_text.as_deref().unwrap_or("–"), unheard.unwrap_or_default()));
            }
            row
        })
        .collect();
    Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows }
}

fn ms(v: f64) -> String {
    if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

fn stat(s: Option<&Stats>, f: impl Fn(&Stats) -> f64) -> String {
    s.map(|s| ms(f(s))).unwrap_or_else(|| "–".into())
}

fn rate(r: Option<f64>) -> String {
    r.map(|r| format!("{:.1} %", r * 100.0)).unwrap_or_else(|| "–".into())
}

fn name(t: &TargetSummary) -> String {
    if t.simulated { format!("{} (simulated)", t.name) } else { t.name.clone() }
}

/// The banner's text when the harness was overloaded: what was late, and which figures carry its lateness.
pub fn harness_warning(s: &Summary) -> Option<String> {
    s.harness.as_ref()?.warning()
}

/// The targets that are simulated, for the banner.
pub fn simulated_targets(s: &Summary) -> Vec<&str> {
    s.targets.iter().filter(|t| t.simulated).map(|t| t.name.as_str()).collect()
}

/// The summary table: one row per target. The content and task columns appear when some target has them.
pub fn summary_table(s: &Summary) -> Table {
    let content = s.targets.iter().any(|t| t.content_success_rate.is_some());
    let task = s.targets.iter().any(|t| t.task_success_rate.is_some());
    let mut headers = vec![
        "target",
        "protocol",
        "calls",
        "TTFA p50 (ms)",
        "TTFA p95",
        "TTFA p99",
        "barge-in stop p95",
        "tool success",
        "barge-in success",
    ];
    headers.extend(content.then_some("content success"));
    headers.extend(task.then_some("task success"));
    headers.extend(["error rate", "goodput"]);
    let rows = s
        .targets
        .iter()
        .map(|t| {
            let ttfa = t.metric(Metric::Ttfa);
            let mut row = vec![
                name(t),
                t.protocol.clone(),
                t.calls.to_string(),
                stat(ttfa, |s| s.p50),
                stat(ttfa, |s| s.p95),
                stat(ttfa, |s| s.p99),
                stat(t.metric(Metric::BargeInStop), |s| s.p95),
                rate(t.tool_success_rate),
                rate(t.barge_in_success_rate),
            ];
            row.extend(content.then(|| rate(t.content_success_rate)));
            row.extend(task.then(|| rate(t.task_success_rate)));
            row.extend([rate(Some(t.error_rate)), rate(t.goodput)]);
            row
        })
        .collect();
    Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows }
}

/// The SLO verdicts, one row per check.
pub fn slo_table(g: &GateReport) -> Table {
    let rows = g
        .checks
        .iter()
        .filter(|c| c.kind != CheckKind::Regression)
        .map(|c| {
            vec![c.target.clone(), c.name.clone(), if c.passed { "PASS" } else { "FAIL" }.to_string(), c.detail.clone()]
        })
        .collect();
    Table { headers: ["target", "check", "verdict", "detail"].iter().map(|h| h.to_string()).collect(), rows }
}

/// A target's latency table: every metric with samples, all percentiles.
pub fn latency_table(t: &TargetSummary) -> Table {
    let headers = ["metric (ms)", "n", "min", "p50", "p90", "p95", "p99", "p99.9", "max", "mean"];
    let rows = t
        .metrics
        .iter()
        .map(|(m, s)| {
            vec![
                Metric::from_name(m).map_or_else(|| m.to_string(), |m| m.label().to_string()),
                s.count.to_string(),
                ms(s.min),
                ms(s.p50),
                ms(s.p90),
                ms(s.p95),
                ms(s.p99),
                ms(s.p999),
                ms(s.max),
                ms(s.mean),
            ]
        })
        .collect();
    Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows }
}

/// A target's TTFA by turn kind.
pub fn by_kind_table(t: &TargetSummary) -> Table {
    let rows = t
        .by_kind
        .iter()
        .filter_map(|(kind, m)| {
            let s = m.get("ttfa")?;
            Some(vec![kind.replace('_', "-"), s.count.to_string(), ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max)])
        })
        .collect();
    Table { headers: ["turn kind", "n", "TTFA p50", "p95", "p99", "max"].iter().map(|h| h.to_string()).collect(), rows }
}

/// A target's counts behind the rates, and errors by category.
pub fn counts_table(t: &TargetSummary) -> Table {
    let c = &t.counts;
    let mut rows = vec![
        vec!["tool calls succeeded / expected".into(), format!("{} / {}", c.tools_succeeded, c.tools_expected)],
        vec![
            "tool calls early / late / unexpected / malformed".into(),
            format!("{} / {} / {} / {}", c.tools_early, c.tools_late, c.tools_unexpected, c.tools_malformed),
        ],
        vec!["barge-ins failed / judged".into(), format!("{} / {}", c.barge_in_failed, c.barge_in_turns)],
        vec!["false stops / backchannels".into(), format!("{} / {}", c.false_stops, c.backchannel_turns)],
        vec![
            "premature take-overs / paused utterances".into(),
            format!("{} / {}", c.premature_takeovers, c.no_takeover_turns),
        ],
        vec!["failed turns / turns".into(), format!("{} / {}", c.turns_failed, t.turns)],
        vec!["failed calls / calls".into(), format!("{} / {}", c.calls_failed, t.calls)],
    ];
    for (cat, n) in &t.errors {
        rows.push(vec![format!("turn errors: {cat}"), n.to_string()]);
    }
    for (cat, n) in &t.call_errors {
        rows.push(vec![format!("call errors: {cat}"), n.to_string()]);
    }
    Table { headers: vec!["count".into(), "value".into()], rows }
}

/// Pipeline targets' mean TTFA by stage.
pub fn stages_table(s: &Summary) -> Option<Table> {
    let with: Vec<&TargetSummary> = s.targets.iter().filter(|t| t.stages.is_some()).collect();
    let first = with.first()?.stages.as_ref()?;
    let mut headers = vec!["target".to_string()];
    headers.extend(first.mean_ms.iter().map(|(k, _)| k.replace('_', " ")));
    headers.extend(["= mean TTFA".to_string(), "turns".to_string()]);
    let rows = with
        .iter()
        .filter_map(|t| {
            let b = t.stages.as_ref()?;
            let mut row = vec![name(t)];
            row.extend(b.mean_ms.iter().map(|(_, v)| ms(*v)));
            row.extend([ms(b.ttfa_mean_ms), b.turns.to_string()]);
            Some(row)
        })
        .collect();
    Some(Table { headers, rows })
}

/// The line each target's callers were on and what its packets met, when some target was not on a clean line
/// (docs/network.md).
pub fn network_table(s: &Summary) -> Option<Table> {
    let with: Vec<&TargetSummary> = s.targets.iter().filter(|t| t.telephone || t.network.is_some()).collect();
    if with.is_empty() {
        return None;
    }
    let headers = [
        "target",
        "line",
        "up lost",
        "up late",
        "up delay mean / max",
        "down lost",
        "down late",
        "down delay mean / max",
    ];
    let rows = s
        .targets
        .iter()
        .map(|t| {
            let mut row = vec![name(t), crate::report::summary::line_of(t).unwrap_or_else(|| "clean".into())];
            match &t.network {
                Some(n) => {
                    for d in [&n.measured.up, &n.measured.down] {
                        row.push(format!("{} of {} ({:.2} %)", d.lost, d.packets, d.lost_pct()));
                        row.push(d.late.to_string());
                        row.push(format!("{} / {}", ms(d.delay_mean_ms), ms(d.delay_max_ms)));
                    }
                }
                None => row.extend(std::iter::repeat_n("–".to_string(), 6)),
            }
            row
        })
        .collect();
    Some(Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows })
}

/// Provenance lines: (label, value).
pub fn provenance(s: &Summary) -> Vec<(String, String)> {
    let mut v = vec![
        ("scenario".to_string(), format!("{} ({})", s.scenario.name, s.scenario.path)),
        ("scenario SHA-256".into(), s.scenario.sha256.clone()),
        ("corpus manifest SHA-256".into(), s.scenario.corpus_sha256.clone().unwrap_or_else(|| "– (no corpus)".into())),
        ("voicebench".into(), s.voicebench.clone()),
        ("started / finished (UTC)".into(), format!("{} / {}", s.started_at, s.finished_at)),
        (
            "calls per target / concurrency / seed / frame".into(),
            format!("{} / {} / {} / {} ms", s.run.calls, s.run.concurrency, s.run.seed, s.run.frame_ms),
        ),
        (
            "pacing (frame lateness)".into(),
            format!(
                "{} frames, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                s.pacing.frames, s.pacing.p50_ms, s.pacing.p99_ms, s.pacing.max_ms
            ),
        ),
    ];
    for t in &s.targets {
        v.push((
            format!("target {}", t.name),
            format!(
                "{}{}{}",
                t.protocol,
                t.model.as_ref().map(|m| format!(", model {m}")).unwrap_or_default(),
                if t.simulated { ", SIMULATED (embedded sim, not a real agent)" } else { "" }
            ),
        ));
    }
    v
}

/// A cell that reads as a number (`1187`, `95.8 %`, `–`, `8 / 9`): right-aligned.
fn is_numeric(c: &str) -> bool {
    c.starts_with(|ch: char| ch.is_ascii_digit() || "+-–−".contains(ch))
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_table(out: &mut String, t: &Table) {
    let _ = writeln!(out, "| {} |", t.headers.iter().map(|h| md_cell(h)).collect::<Vec<_>>().join(" | "));
    let align: String = (0..t.headers.len())
        .map(|i| if i > 0 && t.rows.iter().all(|r| r.get(i).is_some_and(|c| is_numeric(c))) { "---:|" } else { "---|" })
        .collect();
    let _ = writeln!(out, "|{align}");
    for r in &t.rows {
        let _ = writeln!(out, "| {} |", r.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | "));
    }
    out.push('\n');
}

fn title(s: &Summary) -> String {
    format!("voicebench: {}", s.scenario.name)
}

fn verdict_line(g: &GateReport) -> String {
    let failed = g.failures().count();
    if failed == 0 {
        format!("SLOs: PASS (all {} checks)", g.checks.len())
    } else {
        format!("SLOs: FAIL ({failed} of {} checks failed)", g.checks.len())
    }
}

/// `report.md`.
pub fn render_markdown(p: &Page) -> String {
    let s = p.summary;
    let mut out = format!("# {}\n\n", title(s));
    let sim = simulated_targets(s);
    if !sim.is_empty() {
        let _ = writeln!(
            out,
            "> **Simulated:** {} — the embedded simulated provider, not a real agent; its figures measure the \
             harness and the sim's configured profile.\n",
            sim.join(", ")
        );
    }
    if let Some(w) = harness_warning(s) {
        let _ = writeln!(out, "> **Overloaded harness:** {w}\n");
    }
    if s.incomplete {
        out.push_str(
            "> **Incomplete:** the run was killed before it wrote its summary; these figures were rebuilt from the \
             rows, and the calls in flight at the kill are missing.\n\n",
        );
    } else if s.interrupted {
        out.push_str(
            "> **Interrupted:** the run was stopped early; these figures cover the calls measured until then.\n\n",
        );
    }
    if let Some(g) = p.gate {
        let _ = writeln!(out, "**{}**\n", verdict_line(g));
    }
    out.push_str("## Summary\n\n");
    md_table(&mut out, &summary_table(s));
    if let Some(g) = p.gate {
        out.push_str("## SLOs\n\n");
        md_table(&mut out, &slo_table(g));
    }
    if let Some(st) = stages_table(s) {
        out.push_str("## Pipeline: mean TTFA by stage (ms)\n\n");
        md_table(&mut out, &st);
    }
    if let Some(nt) = network_table(s) {
        out.push_str("## The line: network impairment applied and measured\n\n");
        md_table(&mut out, &nt);
    }
    if let Some(c) = p.compare {
        out.push_str(&crate::compare::render_markdown(c));
        out.push('\n');
    }
    if !p.recordings.is_empty() {
        out.push_str("## Recorded calls\n\n");
        for r in &p.recordings {
            let _ = writeln!(out, "### {} call {} ({}): [{}]({})\n", md_cell(&r.target), r.call, r.why, r.file, r.file);
            md_table(&mut out, &r.turns);
        }
    }
    out.push_str("## Provenance\n\n");
    for (k, v) in provenance(s) {
        let _ = writeln!(out, "- {k}: {}", md_cell(&v));
    }
    out
}

/// HTML escaping: the XML escaping the JUnit writer uses serves text and attribute values alike.
fn esc(s: &str) -> String {
    crate::report::escape(s)
}

fn html_table(out: &mut String, t: &Table, class: &str) {
    let _ = write!(out, "<table class=\"{class}\"><thead><tr>");
    for h in &t.headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for c in r {
            let numeric = is_numeric(c);
            let cls = match c.as_str() {
                "PASS" => " class=\"pass\"",
                "FAIL" => " class=\"fail\"",
                _ if numeric => "",
                _ => " class=\"t\"",
            };
            let _ = write!(out, "<td{cls}>{}</td>", esc(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1200px;\
padding:0 1rem;color:#1a1a1a;line-height:1.45}h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;\
padding-bottom:.2rem;margin-top:2.2rem}table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.92rem}\
th,td{border:1px solid #d5d5d5;padding:.25rem .55rem;text-align:right}th:first-child,td:first-child,td.t{text-align:left}\
thead th{background:#f3f4f6}td.pass{color:#05660f;font-weight:600}td.fail{color:#b00020;font-weight:700}\
.banner{padding:.6rem .9rem;border-radius:6px;margin:.8rem 0}.sim{background:#fff5d6;border:1px solid #e3c15a}\
.int{background:#fde8e8;border:1px solid #e39a9a}.verdict{font-size:1.15rem;font-weight:700}\
.verdict.pass{color:#05660f}.verdict.fail{color:#b00020}figure{margin:1rem 0 2rem}figure img{max-width:100%;\
border:1px solid #e5e5e5}figcaption{font-size:.9rem;color:#444}dl.prov{display:grid;grid-template-columns:\
max-content 1fr;gap:.2rem 1rem;font-size:.9rem}dl.prov dt{font-weight:600}dl.prov dd{margin:0;\
font-family:ui-monospace,monospace;word-break:break-all}nav a{margin-right:1rem}.headline{font-weight:600}\
ul.files{columns:2}";

/// `index.html`: one self-contained page. Plots are embedded as SVG data URIs (links go to the PNG and SVG files
/// beside it); there is no script and no request leaves the page.
pub fn render_html(p: &Page, dir: &Path) -> String {
    let s = p.summary;
    let mut o = html_head(p);
    o.push_str("<h2 id=\"summary\">Summary</h2>\n");
    html_table(&mut o, &summary_table(s), "summary");
    if let Some(g) = p.gate {
        o.push_str("<h3>SLO verdicts</h3>\n");
        html_table(&mut o, &slo_table(g), "slo");
    }
    if let Some(st) = stages_table(s) {
        o.push_str("<h3>Pipeline: mean TTFA by stage (ms)</h3>\n");
        html_table(&mut o, &st, "stages");
    }
    if let Some(nt) = network_table(s) {
        o.push_str("<h3>The line: network impairment applied and measured</h3>\n");
        html_table(&mut o, &nt, "network");
    }
    if let Some(c) = p.compare {
        html_compare(&mut o, c);
    }
    o.push_str("<h2 id=\"plots\">Plots</h2>\n");
    if p.figures.is_empty() {
        o.push_str("<p>No plots: the run has no samples to draw.</p>\n");
    }
    for f in p.figures.iter().filter(|f| f.target.is_none()) {
        figure_html(&mut o, f, dir);
    }
    html_targets(&mut o, p, dir);
    o.push_str("<h2 id=\"provenance\">Provenance</h2>\n<dl class=\"prov\">");
    for (k, v) in provenance(s) {
        let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", esc(&k), esc(&v));
    }
    o.push_str("</dl>\n<h2 id=\"files\">Files</h2>\n<ul class=\"files\">");
    for f in &p.files {
        let _ = write!(o, "<li><a href=\"{}\">{}</a></li>", esc(f), esc(f));
    }
    o.push_str(
        "</ul>\n<p><small>Written by voicebench. Definitions of every number: docs/metrics.md; of this directory: \
                docs/report.md (in voicebench's repository).</small></p>\n</body></html>\n",
    );
    o
}

/// The page's head, title, navigation, banners (simulated, overloaded harness, incomplete, interrupted) and the
/// gate's verdict line.
fn html_head(p: &Page) -> String {
    let s = p.summary;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data: 'self'; media-src 'self'; style-src 'unsafe-inline'\">\
         <title>{}</title><style>{CSS}</style></head><body>\n",
        esc(&title(s))
    );
    let _ = writeln!(o, "<h1>{}</h1>", esc(&title(s)));
    let _ = writeln!(
        o,
        "<p>{} target(s), {} call(s) each, run {} → {}</p>",
        s.targets.len(),
        s.run.calls,
        esc(&s.started_at),
        esc(&s.finished_at)
    );
    o.push_str("<nav><a href=\"#summary\">Summary</a>");
    if p.compare.is_some() {
        o.push_str("<a href=\"#compare\">Head to head</a>");
    }
    o.push_str("<a href=\"#plots\">Plots</a>");
    for (i, t) in s.targets.iter().enumerate() {
        let _ = write!(o, "<a href=\"#target-{i}\">{}</a>", esc(&t.name));
    }
    o.push_str("<a href=\"#provenance\">Provenance</a><a href=\"#files\">Files</a></nav>\n");
    let sim = simulated_targets(s);
    if !sim.is_empty() {
        let _ = writeln!(
            o,
            "<div class=\"banner sim\"><strong>Simulated:</strong> {} — the embedded simulated provider, not a real \
             agent; its figures measure the harness and the sim's configured profile.</div>",
            esc(&sim.join(", "))
        );
    }
    if let Some(w) = harness_warning(s) {
        let _ = writeln!(o, "<div class=\"banner int\"><strong>Overloaded harness:</strong> {}</div>", esc(&w));
    }
    if s.incomplete {
        o.push_str(
            "<div class=\"banner int\"><strong>Incomplete:</strong> the run was killed before it wrote its summary; \
             these figures were rebuilt from the rows, and the calls in flight at the kill are missing.</div>\n",
        );
    } else if s.interrupted {
        o.push_str(
            "<div class=\"banner int\"><strong>Interrupted:</strong> the run was stopped early; these figures cover \
             the calls measured until then.</div>\n",
        );
    }
    if let Some(g) = p.gate {
        let cls = if g.passed() { "pass" } else { "fail" };
        let _ = writeln!(o, "<p class=\"verdict {cls}\">{}</p>", esc(&verdict_line(g)));
    }
    o
}

/// The head to head section: per pair its headline, notes and table.
fn html_compare(o: &mut String, c: &crate::compare::Comparison) {
    o.push_str("<h2 id=\"compare\">Head to head</h2>\n");
    for pair in &c.pairs {
        if let Some(h) = crate::compare::render::headline(c, pair) {
            let _ = writeln!(o, "<p class=\"headline\">{}</p>", esc(&h));
        }
        for n in &pair.notes {
            let _ = writeln!(o, "<p class=\"banner sim\">Note: {}</p>", esc(n));
        }
        let mut t = Table {
            headers: vec![
                "metric".into(),
                c.reference.clone(),
                pair.other.clone(),
                "ratio / difference [95 % CI]".into(),
                "verdict".into(),
            ],
            rows: Vec::new(),
        };
        t.rows.extend(pair.rows.iter().map(|r| crate::compare::render::cells(r).to_vec()));
        html_table(o, &t, "compare");
    }
    let _ = writeln!(
        o,
        "<p><small>Ratio = other / {}; bootstrap over whole calls ({} resamples). Details: \
         <a href=\"compare.md\">compare.md</a>, <a href=\"compare.json\">compare.json</a>.</small></p>",
        esc(&c.reference),
        c.resamples
    );
}

/// One section per target: latency, by-kind and counts tables, and its own figures.
fn html_targets(o: &mut String, p: &Page, dir: &Path) {
    let s = p.summary;
    for (i, t) in s.targets.iter().enumerate() {
        let _ = writeln!(o, "<h2 id=\"target-{i}\">{}</h2>", esc(&name(t)));
        let _ = writeln!(
            o,
            "<p>{}{} · {} calls · {} turns</p>",
            esc(&t.protocol),
            t.model.as_ref().map(|m| format!(" · model {}", esc(m))).unwrap_or_default(),
            t.calls,
            t.turns
        );
        html_table(o, &latency_table(t), "latency");
        let bk = by_kind_table(t);
        if !bk.rows.is_empty() {
            html_table(o, &bk, "kinds");
        }
        html_table(o, &counts_table(t), "counts");
        for f in p.figures.iter().filter(|f| f.target.as_deref() == Some(t.name.as_str())) {
            figure_html(o, f, dir);
        }
        let recorded: Vec<&RecordedCall> = p.recordings.iter().filter(|r| r.target == t.name).collect();
        if !recorded.is_empty() {
            let _ = writeln!(
                o,
                "<h3 id=\"recordings-{i}\">Recorded calls</h3>\n<p>Stereo: the caller as sent on the left, the agent as \
                 the caller heard it on the right, from the call's start.</p>"
            );
        }
        for r in recorded {
            let why = match r.why.as_str() {
                "failed" => "a turn, content check or task failed",
                "slowest" => "the target's slowest call (its worst TTFA)",
                _ => "every call is recorded",
            };
            let _ = writeln!(
                o,
                "<h4 id=\"call-{}-{}\">Call {} — {}</h4>\n<p><audio controls preload=\"metadata\" src=\"{}\"></audio> \
                 <a href=\"{}\">{}</a></p>",
                i,
                r.call,
                r.call,
                esc(why),
                esc(&r.file),
                esc(&r.file),
                esc(&r.file)
            );
            html_table(o, &r.turns, "transcript");
        }
    }
}

fn figure_html(o: &mut String, f: &Figure, dir: &Path) {
    // The SVG is embedded: a tenth of the PNG's bytes (the page of a two-target run stays near 300 KB, not 3 MB).
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    let src = match (std::fs::read(dir.join(&f.svg)), std::fs::read(dir.join(&f.png))) {
        (Ok(svg), _) => format!("data:image/svg+xml;base64,{}", b64(svg)),
        (_, Ok(png)) => format!("data:image/png;base64,{}", b64(png)),
        _ => f.png.clone(),
    };
    let _ = writeln!(
        o,
        "<figure><img src=\"{}\" alt=\"{}\"><figcaption><strong>{}</strong> — {} (<a href=\"{}\">PNG</a>, \
         <a href=\"{}\">SVG</a>{})</figcaption></figure>",
        src,
        esc(&f.title),
        esc(&f.title),
        esc(&f.caption),
        esc(&f.png),
        esc(&f.svg),
        f.listen.as_ref().map(|l| format!(", <a href=\"{}\">listen to this call</a>", esc(l))).unwrap_or_default()
    );
}
