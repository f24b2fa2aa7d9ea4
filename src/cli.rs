//! Command-line interface (clap derive; the help text is these doc comments).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::gate::{GateError, GateOptions, GateReport};
use crate::scenario::Slo;

/// voicebench: measure how fast a voice agent answers, whether it stops when interrupted, and whether it calls
/// the right tool — native speech-to-speech endpoints and STT→LLM→TTS pipelines, head to head.
#[derive(Debug, Parser)]
#[command(name = "voicebench", version, about, max_term_width = 110)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// voicebench's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check scenario files: syntax, keys, values, WAVs, tools, matchers, targets. Exits 0 when all are valid, 2
    /// otherwise, printing every problem as file:line:col with a hint.
    Validate {
        /// Scenario files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a scenario: every target × `calls`, measuring TTFA, barge-in and tool calls. Writes the report
    /// directory (turns.csv/jsonl, calls.csv, HdrHistograms, summary.json) as the run goes, and prints a summary.
    /// Simulated targets need no key; a real target whose key variable is unset is skipped with a notice.
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Run only this target (repeatable).
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
        /// Calls per target (default: the scenario's `calls`).
        #[arg(long)]
        calls: Option<u32>,
        /// Calls in flight at once, closed loop (default: the scenario's `concurrency`).
        #[arg(long)]
        concurrency: Option<u32>,
        /// Report directory (default: reports/<scenario>-<UTC time>/).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Seed for call phases and simulated latencies (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Run shard I of N (1-based): every Nth call of the run, on its own seed stream; `voicebench merge`
        /// combines the shards' directories. In a Kubernetes Indexed Job, JOB_COMPLETION_INDEX (0-based) and
        /// VOICEBENCH_SHARDS set it instead. docs/scale.md.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Which calls to record as stereo WAVs (caller left, agent right, aligned on the call's start) under
        /// recordings/: `failures` (calls with a failed turn, content check or task, and each target's slowest
        /// call), `all`, or `none`. Default: failures, or none above 200 calls in flight.
        #[arg(long, value_name = "WHICH")]
        record: Option<crate::caller::recording::RecordMode>,
        /// Closed loop: start the calls evenly over DURATION (e.g. 5s) instead of all at once, as k6's and JMeter's
        /// ramp-up does; the i-th of n starts after i/n of it.
        #[arg(long, value_name = "DURATION")]
        ramp_up: Option<String>,
        /// Run the harness's threads at real-time priority (SCHED_RR; needs root or CAP_SYS_NICE), so that nothing
        /// else on the machine delays a frame; the embedded sims stay at normal priority. summary.json records what
        /// was granted. docs/bench.md.
        #[arg(long)]
        realtime: bool,
        /// The network between the caller and every target, over the scenario's `network` keys: `lan`, `wifi`,
        /// `4g`, `pstn`, `bad-cellular`, or `none` for a clean line. docs/network.md.
        #[arg(long, value_name = "PRESET", value_parser = network_preset)]
        network: Option<String>,
        #[command(flatten)]
        load: Box<LoadArgs>,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
        /// After the run, gate its report in the same step (as `voicebench gate` does): the SLOs and, with
        /// --baseline, regressions. Exit code 1 when a check fails.
        #[arg(long)]
        gate: bool,
        #[command(flatten)]
        gate_args: GateArgs,
    },
    /// The CI gate: judge a report directory against the scenario's SLOs (from its summary.json, overridden by
    /// --slo) and, with --baseline, against an earlier run (a bootstrap over whole calls of every latency
    /// metric's p50 and p95). Prints a verdict table; exit code 0 when every check passes, 1 when an SLO is breached
    /// or a latency regressed, 2 on an error. Appends a Markdown verdict to $GITHUB_STEP_SUMMARY when set.
    /// docs/gate.md defines every check.
    Gate {
        /// The report directory to judge (what `voicebench run` wrote).
        dir: PathBuf,
        #[command(flatten)]
        gate_args: GateArgs,
        /// What to print on stdout: the verdict table, Markdown, or the JSON document.
        #[arg(long, value_enum, default_value_t = GateFormat::Table)]
        format: GateFormat,
        /// After judging, save DIR's raw samples (turns.jsonl, calls.csv, summary.json) as the baseline NAME in
        /// the store (.voicebench/baselines, or $VOICEBENCH_BASELINES), replacing one of that name. With nothing to
        /// check (no SLOs, no --baseline), only saves, and exits 0.
        #[arg(long, value_name = "NAME")]
        save_baseline: Option<String>,
    },
    /// Rebuild a report directory's pages from the directory alone: plots/ (PNG and SVG), index.html (one
    /// self-contained page), report.md, and for two targets or more compare.md / compare.json. For old runs, merged
    /// shards, or after changing voicebench. The rows and histograms are only read.
    Report {
        /// The report directory (what `voicebench run` wrote; it needs summary.json and turns.jsonl).
        dir: PathBuf,
    },
    /// Combine the report directories of a sharded run's shards (`run --shard I/N`) into one: the rows
    /// concatenated, summary.json recomputed from them (exact percentiles of the pooled samples, counts summed),
    /// the HdrHistograms added, the pages built. report, compare and gate then work on it. docs/scale.md.
    Merge {
        /// The shards' report directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The merged report directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Merge even when some shards are missing (the summary is marked incomplete, naming them).
        #[arg(long)]
        allow_missing: bool,
    },
    /// Head to head: every target of the given report directories against a reference (the first, or
    /// --reference), metric by metric: ratios of p50 and p95 latencies and differences of rates, with 95 %
    /// bootstrap confidence intervals over whole calls and whether each difference is significant. One directory
    /// with two targets or more works too. docs/report.md defines the figures.
    Compare {
        /// Report directories.
        #[arg(required = true, num_args = 1..)]
        dirs: Vec<PathBuf>,
        /// The reference side, by label (a target name, or DIR/target when names repeat).
        #[arg(long, value_name = "LABEL")]
        reference: Option<String>,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: CompareFormat,
        /// Also write compare.md, compare.json and overlaid CDF plots (plots/compare-*.png/svg) into DIR.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Bootstrap resamples.
        #[arg(long, default_value_t = 2000)]
        resamples: usize,
        /// Bootstrap seed (the same inputs and seed give the same intervals).
        #[arg(long)]
        seed: Option<u64>,
        /// Compare only turns of this kind: plain, tool, barge_in, backchannel, no_takeover (e.g. `plain` when one
        /// side's protocol carries no tool calls).
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
    },
    /// Run the embedded simulated providers of a scenario standalone (real servers on 127.0.0.1), print their URLs,
    /// and serve until Ctrl-C — for testing your own tools against a known, labelled-simulated agent.
    Sim {
        /// The scenario whose simulated targets to serve.
        #[arg(default_value = "scenarios/booking.toml")]
        scenario: PathBuf,
        /// Seed for simulated latencies.
        #[arg(long)]
        seed: Option<u64>,
        /// Listen on 127.0.0.1:PORT (the next simulated targets on PORT+1, PORT+2, …; pipeline sims take ephemeral
        /// ports). 0, the default, takes an ephemeral port for each.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// On exit, write the sims' ground-truth log here (JSON lines).
        #[arg(long, value_name = "FILE")]
        ground_truth: Option<PathBuf>,
    },
    /// Benchmark the harness itself: for each count, that many concurrent calls of a short fixed-profile scenario
    /// against the embedded sim; prints frame pacing lateness, TTFA error against the sim's ground truth, and CPU
    /// and peak memory per call (harness and sim share the process, so both are counted; --sim-process counts them
    /// apart), checks each row against the harness's targets and says at which count it breaks. docs/bench.md.
    Bench {
        /// Concurrent-call counts to run, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1u32, 500, 1000, 1500])]
        calls: Vec<u32>,
        /// Run the sim in its own process (`voicebench sim --port …`, this binary) so that the harness's CPU and
        /// memory per call are measured apart from the sim's. The TTFA error needs the sim's ground truth on the
        /// harness's clock, so this mode does not report it.
        #[arg(long)]
        sim_process: bool,
        /// The corpus directory.
        #[arg(long, default_value = "audio-corpus")]
        corpus: PathBuf,
        /// Where the benchmark's reports go.
        #[arg(long, default_value = "reports/bench")]
        out: PathBuf,
        /// Start each level's calls evenly over DURATION, as real traffic arrives (`0s`: all at once, every agent
        /// replying in lockstep, the worst case). docs/bench.md.
        #[arg(long, value_name = "DURATION", default_value = "5s")]
        ramp_up: String,
        /// Keep the harness's threads at normal priority (by default they ask for real-time priority, and the header
        /// says whether it was granted). docs/bench.md.
        #[arg(long)]
        no_realtime: bool,
    },
    /// Build or check the audio corpus (the caller's utterances and the simulated agent's replies).
    Corpus {
        /// Build or check.
        #[command(subcommand)]
        action: CorpusAction,
    },
}

/// Open-loop load (docs/metrics.md "Load"): calls started on a schedule, counted late or dropped when the agent
/// cannot keep up, instead of `--concurrency` calls in a closed loop.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Open loop: start this many calls per second on every target (2/s, 120/m, 0.5) for --duration.
    #[arg(long, value_name = "RATE", help_heading = "Open loop")]
    rate: Option<String>,
    /// How long to start calls at --rate (30s, 5m, 1h).
    #[arg(long, value_name = "DURATION", help_heading = "Open loop")]
    duration: Option<String>,
    /// Ramping stages instead of --rate/--duration, as k6 writes them: 30s:2/s,5m:10/s (each ramps linearly from
    /// the rate before it, the first from 0).
    #[arg(long, value_name = "STAGES", help_heading = "Open loop")]
    stages: Option<String>,
    /// How arrivals are spaced: evenly, or as a Poisson process (seeded) [default: constant].
    #[arg(long, value_enum, help_heading = "Open loop")]
    arrivals: Option<ArrivalsArg>,
    /// Calls in flight at most, all targets together; an arrival waits for a slot (late) [default: 1000].
    #[arg(long, value_name = "N", help_heading = "Open loop")]
    max_in_flight: Option<u32>,
    /// How long after its intended start a call may wait for a slot before it is dropped [default: 1s].
    #[arg(long, value_name = "DURATION", help_heading = "Open loop")]
    max_start_delay: Option<String>,
}

/// `--arrivals`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ArrivalsArg {
    Constant,
    Poisson,
}

impl LoadArgs {
    /// The open-loop load these flags ask for, `None` for a closed loop; refuses flags that do not go together.
    fn resolve(&self, calls: Option<u32>, concurrency: Option<u32>) -> Result<Option<crate::run::load::Load>> {
        use crate::run::load::{Arrivals, Load, LoadError, Stage, parse_duration, parse_rate, parse_stages};
        let flags = |s: &str| anyhow::Error::new(LoadError::Flags(s.to_owned()));
        let stages = match (&self.rate, &self.duration, &self.stages) {
            (None, None, None) => {
                if self.arrivals.is_some() || self.max_in_flight.is_some() || self.max_start_delay.is_some() {
                    return Err(flags(
                        "--arrivals, --max-in-flight and --max-start-delay shape an open loop: give --rate and --duration, or --stages",
                    ));
                }
                return Ok(None);
            }
            (Some(r), Some(d), None) => {
                let rate = parse_rate(r)?;
                vec![Stage { duration: parse_duration(d)?, from: rate, to: rate }]
            }
            (Some(_), None, None) => {
                return Err(flags("--rate needs --duration: how long to start calls at that rate"));
            }
            (None, Some(_), None) => return Err(flags("--duration goes with --rate (or use --stages)")),
            (_, _, Some(s)) => {
                if self.rate.is_some() || self.duration.is_some() {
                    return Err(flags("--stages replaces --rate and --duration: give one or the other"));
                }
                parse_stages(s)?
            }
        };
        if calls.is_some() || concurrency.is_some() {
            return Err(flags(
                "--calls and --concurrency are the closed loop's; an open loop starts the schedule's calls (--rate x --duration) with --max-in-flight at once",
            ));
        }
        let max_start_delay = match &self.max_start_delay {
            Some(d) => parse_duration(d)?,
            None => std::time::Duration::from_secs(1),
        };
        let arrivals = match self.arrivals {
            None | Some(ArrivalsArg::Constant) => Arrivals::Constant,
            Some(ArrivalsArg::Poisson) => Arrivals::Poisson,
        };
        let max_in_flight = self.max_in_flight.unwrap_or(1000);
        if max_in_flight == 0 {
            return Err(flags("--max-in-flight must be at least 1"));
        }
        Ok(Some(Load { stages, arrivals, max_in_flight, max_start_delay }))
    }
}

/// The CI gate's options, shared by `voicebench gate` and `voicebench run --gate`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Gate")]
pub struct GateArgs {
    /// Compare with this baseline: a report directory, or a NAME saved with `voicebench gate DIR --save-baseline
    /// NAME` (looked up in .voicebench/baselines, or $VOICEBENCH_BASELINES).
    #[arg(long, value_name = "DIR|NAME")]
    pub baseline: Option<String>,
    /// An SLO to check, overriding the scenario's SLO of the same key (repeatable): `ttfa.p95=800ms`,
    /// `barge_in_stop.p95=0.6s`, `tool_success_rate=95%`, `error_rate=0.02`.
    #[arg(long = "slo", value_name = "KEY=VALUE", value_parser = parse_slo_arg)]
    pub slo: Vec<Slo>,
    /// Noise threshold of the regression test, relative: a change counts only when its whole 95 % confidence
    /// interval is beyond ± this [default: 0.05].
    #[arg(long, value_name = "FRACTION")]
    pub noise: Option<f64>,
    /// Also write the verdict as JUnit XML to FILE (one testsuite per target, one testcase per check).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the verdict as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Judge a report whose summary `voicebench report` rebuilt from the rows of a killed run (refused otherwise:
    /// the calls in flight when it was killed are missing).
    #[arg(long)]
    pub allow_incomplete: bool,
}

fn parse_slo_arg(s: &str) -> std::result::Result<Slo, String> {
    crate::gate::parse_slo(s).map_err(|e| e.to_string())
}

impl GateArgs {
    /// Whether any gate option was given.
    fn any(&self) -> bool {
        self.baseline.is_some()
            || !self.slo.is_empty()
            || self.noise.is_some()
            || self.junit.is_some()
            || self.json.is_some()
            || self.allow_incomplete
    }

    /// The gate's options, the baseline resolved in `store`.
    fn options(&self, store: &Path) -> Result<GateOptions> {
        let baseline = match &self.baseline {
            Some(arg) => Some(crate::gate::resolve_baseline(arg, store)?),
            None => None,
        };
        Ok(GateOptions {
            slo_overrides: self.slo.clone(),
            baseline,
            noise: self.noise.unwrap_or(crate::gate::DEFAULT_NOISE),
            allow_incomplete: self.allow_incomplete,
            ..GateOptions::default()
        })
    }
}

/// What `voicebench gate` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GateFormat {
    /// The verdict table.
    Table,
    /// GitHub-flavoured Markdown.
    Markdown,
    /// The JSON document (as --json writes it).
    Json,
}

/// What `voicebench compare` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    /// Aligned tables with a headline per pair.
    Table,
    /// GitHub-flavoured Markdown.
    Markdown,
    /// The JSON document.
    Json,
}

/// `voicebench corpus …`
#[derive(Debug, Subcommand)]
pub enum CorpusAction {
    /// Verify every WAV against the manifest: present, decodable, same SHA-256, same length and speech bounds.
    /// With --cross-check, also compare the bounds with an independent neural VAD (earshot).
    Check {
        /// The corpus directory.
        #[arg(long, default_value = "audio-corpus")]
        corpus: PathBuf,
        /// Compare every utterance's speech bounds with earshot's and report the differences.
        #[arg(long)]
        cross_check: bool,
        /// With --cross-check: the largest allowed difference, ms.
        #[arg(long, default_value_t = 30.0)]
        tolerance_ms: f64,
    },
    /// Regenerate the corpus: install the TTS engines (apt, pip venv), synthesise every line of
    /// audio-corpus/lines.toml, assemble, make the noisy and telephone variants, annotate with the energy VAD, and
    /// write manifest.json.
    Build {
        /// The corpus directory (holding lines.toml).
        #[arg(long, default_value = "audio-corpus")]
        corpus: PathBuf,
        /// Use already-synthesised raw audio from this directory instead of running the engines.
        #[arg(long)]
        raw: Option<PathBuf>,
    },
}

/// `--network`'s value: a preset name or `none`.
fn network_preset(s: &str) -> Result<String, String> {
    crate::scenario::network::resolve(&toml::Value::String(s.to_owned())).map(|_| s.to_owned())
}

/// Runs a parsed command line; the returned code is the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Validate { files } => Ok(validate(&files)),
        Command::Run {
            scenario,
            targets,
            calls,
            concurrency,
            out,
            seed,
            shard,
            record,
            ramp_up,
            realtime,
            network,
            load,
            quiet,
            gate,
            gate_args,
        } => {
            let load = load.resolve(calls, concurrency)?;
            if load.is_some() && ramp_up.is_some() {
                bail!("--ramp-up spreads a closed loop's starts; an open loop (--rate, --stages) sets its own");
            }
            let ramp_up = ramp_up.as_deref().map(crate::run::load::parse_duration).transpose()?;
            let shard = match shard {
                Some(s) => Some(crate::model::Shard::parse(&s)?),
                None => crate::model::Shard::from_env(|k| std::env::var(k).ok())?,
            };
            let opts = crate::run::RunOptions {
                targets,
                calls,
                concurrency,
                out,
                seed,
                progress: !quiet,
                shard,
                load,
                record,
                network,
                ramp_up,
            };
            run_scenario(&scenario, &opts, gate, &gate_args, realtime)
        }
        Command::Merge { dirs, out, allow_missing } => merge(&dirs, &out, allow_missing),
        Command::Gate { dir, gate_args, format, save_baseline } => {
            gate_dir(&dir, &gate_args, format, save_baseline.as_deref())
        }
        Command::Report { dir } => report(&dir),
        Command::Compare { dirs, reference, format, out, resamples, seed, kind } => {
            let kind = kind.map(|k| crate::compare::parse_kind(&k)).transpose()?;
            let mut opts = crate::compare::CompareOptions { resamples, reference, kind, ..Default::default() };
            if let Some(s) = seed {
                opts.seed = s;
            }
            compare(&dirs, &opts, format, out.as_deref())
        }
        Command::Bench { calls, corpus, out, sim_process, ramp_up, no_realtime } => {
            let ramp_up = match ramp_up.trim() {
                "0" | "0s" | "0ms" => None,
                r => Some(crate::run::load::parse_duration(r)?),
            };
            bench(&calls, &corpus, &out, sim_process, ramp_up, !no_realtime)
        }
        Command::Sim { scenario, seed, port, ground_truth } => sim(&scenario, seed, port, ground_truth.as_deref()),
        Command::Corpus { action } => match action {
            CorpusAction::Check { corpus, cross_check, tolerance_ms } => {
                crate::corpus::check::run(&corpus, cross_check, tolerance_ms)
            }
            CorpusAction::Build { corpus, raw } => crate::corpus::build::run(&corpus, raw.as_deref()).map(|()| 0),
        },
    }
}

/// `voicebench run`: the run, its summary table and pages, and with `gate`, the gate's verdict on its report.
fn run_scenario(
    scenario: &Path,
    opts: &crate::run::RunOptions,
    gate: bool,
    gate_args: &GateArgs,
    realtime: bool,
) -> Result<i32> {
    if !gate && gate_args.any() {
        bail!("--baseline, --slo, --noise, --junit and --json are gate options: add --gate");
    }
    let sc = crate::scenario::load(scenario)?;
    // Everything the gate needs is checked before the run, so a typo fails at once, not after it.
    let gate_opts = if gate {
        let o = gate_args.options(&crate::gate::default_store())?;
        if sc.slo.is_empty() && o.slo_overrides.is_empty() && o.baseline.is_none() {
            return Err(GateError::NothingToCheck { dir: scenario.to_path_buf() }.into());
        }
        Some(o)
    } else {
        None
    };
    let rt = harness_runtime(realtime)?;
    let priority = crate::caller::priority::status();
    if let crate::caller::priority::Status::Refused(_) = priority {
        eprintln!("voicebench: --realtime: the harness runs at {}", priority.describe());
    }
    let outcome = rt.block_on(crate::run::run(&sc, opts, &|m| eprintln!("{m}")))?;
    print!("{}", crate::report::terminal_table(&outcome.summary));
    // A gated run is judged once: the verdict the exit code follows is the one the pages show.
    let gated = match (&gate_opts, outcome.interrupted) {
        (Some(o), false) => Some(crate::gate::evaluate(&outcome.out_dir, o)),
        _ => None,
    };
    print_pages(&outcome.out_dir, gated.as_ref().and_then(|g| g.as_ref().ok()).cloned());
    if outcome.interrupted {
        eprintln!("interrupted: the results measured so far are in {}", outcome.out_dir.display());
        return Ok(2);
    }
    // A target none of whose calls worked measured nothing: that is an error whatever the gate would say.
    let dead = dead_targets(&outcome.summary);
    if !dead.is_empty() {
        for d in &dead {
            eprintln!("error: {d}");
        }
        return Ok(2);
    }
    match gated {
        Some(report) => {
            let report = report?;
            println!();
            emit_gate(&report, gate_args, GateFormat::Table)
        }
        None => Ok(0),
    }
}

/// One line per target all of whose calls failed, with the failures by category.
fn dead_targets(summary: &crate::report::Summary) -> Vec<String> {
    summary
        .targets
        .iter()
        .filter(|t| t.calls > 0 && t.counts.calls_failed == t.calls)
        .map(|t| {
            let why: Vec<String> = t.call_errors.iter().map(|(c, n)| format!("{c} {n}")).collect();
            format!("target `{}`: all {} calls failed ({})", t.name, t.calls, why.join(", "))
        })
        .collect()
}

/// The verdicts the pages show, made once here: `gate` (a gated run's) or else the checks of the run's own SLOs,
/// and with two targets or more the head to head, written as `compare.md` and `compare.json`. What cannot be made
/// is a warning on the pages.
fn page_verdicts(
    report: &crate::report::read::Report,
    gate: Option<crate::gate::GateReport>,
) -> crate::pages::Verdicts {
    let mut warnings = Vec::new();
    let has_slos = report.summary.as_ref().is_some_and(|s| !s.slo.is_empty());
    let gate = match gate {
        Some(g) => Some(g),
        None if has_slos => crate::gate::evaluate(&report.dir, &crate::gate::GateOptions::default())
            .map_err(|e| warnings.push(format!("SLO verdicts: {e}")))
            .ok(),
        None => None,
    };
    let compare = if report.targets.len() >= 2 {
        // One directory's targets have distinct names: the sides come from the rows already read.
        let sides = crate::compare::sides_of(report);
        crate::compare::compare(&sides, &crate::compare::CompareOptions::default())
            .and_then(|c| crate::compare::write_outputs(&c, &report.dir).map(|_| c))
            .map_err(|e| warnings.push(format!("comparison: {e}")))
            .ok()
    } else {
        None
    };
    crate::pages::Verdicts { gate, compare, warnings }
}

/// Reads `dir`, makes the verdicts ([`page_verdicts`]) and builds the pages; the comparison comes back with them.
fn build_pages(
    dir: &Path,
    gate: Option<crate::gate::GateReport>,
) -> Result<(crate::pages::Rendered, Option<crate::compare::Comparison>), crate::pages::build::PagesError> {
    let report = crate::report::read::Report::read(dir, true)?;
    let verdicts = page_verdicts(&report, gate);
    let compare = verdicts.compare.clone();
    Ok((crate::pages::render_dir(&report, verdicts)?, compare))
}

/// After a run: the pages, from the directory as `voicebench report` makes them, and the head to head when there
/// is one. Failing to draw them loses nothing measured, so it is a warning.
fn print_pages(out_dir: &Path, gate: Option<crate::gate::GateReport>) {
    match build_pages(out_dir, gate) {
        Ok((r, compare)) => {
            if let Some(c) = &compare {
                println!();
                print!("{}", crate::compare::render_terminal(c));
            }
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            println!("report: {} ({})", out_dir.display(), r.html.display());
        }
        Err(e) => {
            eprintln!("warning: the report pages could not be written: {e}");
            println!("report: {}", out_dir.display());
        }
    }
}

/// `voicebench gate`: judge `dir`, then save it as a baseline when asked.
fn gate_dir(dir: &Path, gate_args: &GateArgs, format: GateFormat, save_baseline: Option<&str>) -> Result<i32> {
    let store = crate::gate::default_store();
    let opts = gate_args.options(&store)?;
    let code = match crate::gate::evaluate(dir, &opts) {
        Ok(report) => emit_gate(&report, gate_args, format)?,
        // Nothing to check, but a baseline to save: saving is the whole job.
        Err(GateError::NothingToCheck { .. }) if save_baseline.is_some() => 0,
        Err(e) => return Err(e.into()),
    };
    if let Some(name) = save_baseline {
        let path = crate::gate::save_baseline(dir, name, &store)?;
        eprintln!("saved baseline `{name}` in {}", path.display());
    }
    Ok(code)
}

/// `voicebench report`: rebuild `dir`'s pages and print what was written; a directory a killed run left without
/// `summary.json` gets one rebuilt from its rows first, marked incomplete.
fn report(dir: &Path) -> Result<i32> {
    if crate::report::recover::recoverable(dir) {
        let s = crate::report::recover::recover(dir)?;
        let (calls, turns): (u64, u64) =
            s.targets.iter().map(|t| (t.calls, t.turns)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        eprintln!(
            "{} had no summary.json (the run was killed): rebuilt it from the rows ({calls} calls, {turns} turns), marked incomplete",
            dir.display()
        );
    }
    let (r, compare) = build_pages(dir, None)?;
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    println!("{}", r.html.display());
    println!("{}", r.markdown.display());
    if compare.is_some() {
        println!("{}", dir.join("compare.md").display());
        println!("{}", dir.join("compare.json").display());
    }
    println!("{} plot files in {}", r.plots.len(), dir.join("plots").display());
    Ok(0)
}

/// `voicebench merge`: the shards combined into `out`, its pages built; prints what was merged and the merged
/// terminal table.
fn merge(dirs: &[PathBuf], out: &Path, allow_missing: bool) -> Result<i32> {
    let opts = crate::report::merge::MergeOptions { allow_missing };
    let summary = crate::report::merge::merge(dirs, out, &opts)?;
    if let Some(m) = &summary.merged {
        let missing = if m.missing.is_empty() {
            String::new()
        } else {
            format!(
                "; missing {} (marked incomplete)",
                m.missing.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
            )
        };
        eprintln!("merged {} of {} shards into {}{missing}", m.shards.len(), m.count, out.display());
    }
    print!("{}", crate::report::terminal_table(&summary));
    let (r, _) = build_pages(out, None)?;
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    println!("{}", r.html.display());
    Ok(0)
}

/// `voicebench compare`: the head to head on stdout, with `out` written there too, and the step summary.
fn compare(
    dirs: &[PathBuf],
    opts: &crate::compare::CompareOptions,
    format: CompareFormat,
    out: Option<&Path>,
) -> Result<i32> {
    let sides = crate::compare::load_sides(dirs)?;
    let c = crate::compare::compare(&sides, opts)?;
    print!(
        "{}",
        match format {
            CompareFormat::Table => crate::compare::render_terminal(&c),
            CompareFormat::Markdown => crate::compare::render_markdown(&c),
            CompareFormat::Json => crate::compare::render_json(&c),
        }
    );
    if let Some(out) = out {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        let mut written = crate::compare::write_outputs(&c, out)?;
        let plots = out.join("plots");
        std::fs::create_dir_all(&plots).with_context(|| format!("cannot create {}", plots.display()))?;
        for metric in [crate::model::Metric::Ttfa, crate::model::Metric::BargeInStop] {
            let series = crate::compare::metric_values(&sides, metric);
            if series.len() >= 2 {
                let p = crate::plots::cdf_overlay(&series, metric, &plots, &format!("compare-{metric}"))
                    .with_context(|| format!("cannot draw the {metric} CDF"))?;
                written.extend([plots.join(&p.png), plots.join(&p.svg)]);
            }
        }
        for w in written {
            eprintln!("wrote {}", w.display());
        }
    }
    append_step_summary(&crate::compare::render_markdown(&c));
    Ok(0)
}

/// `voicebench bench`: one row per concurrent-call count, then where the harness breaks.
fn bench(
    calls: &[u32],
    corpus: &Path,
    out: &Path,
    sim_process: bool,
    ramp_up: Option<std::time::Duration>,
    realtime: bool,
) -> Result<i32> {
    use crate::run::bench::{SimProcess, bench_once, render};
    // The corpus first: the sim child would otherwise fail on it with its own, later error.
    if !corpus.join("manifest.json").is_file() {
        anyhow::bail!(
            "no corpus at {}: {} is missing (run from the repository's root, or pass --corpus DIR)",
            corpus.display(),
            corpus.join("manifest.json").display()
        );
    }
    let rt = harness_runtime(realtime)?;
    let priority = crate::caller::priority::status().describe();
    let exe = std::env::current_exe().context("finding this executable to run the sim")?;
    let mut rows = Vec::new();
    for &n in calls {
        // A fresh sim per level, so each level's sim memory is its own.
        let sim =
            if sim_process { Some(SimProcess::spawn(&exe, corpus, &out.join(format!("sim-{n}")))?) } else { None };
        rows.push(rt.block_on(bench_once(corpus, out, n, sim.as_ref(), ramp_up))?);
        drop(sim);
        // Print as the levels finish (a long bench shows its progress).
        let table = render(&rows, sim_process, ramp_up, &priority);
        let lines: Vec<&str> = table.lines().collect();
        if rows.len() == 1 {
            println!("{}\n{}", lines[0], lines[1]);
        }
        println!("{}", lines[1 + rows.len()]);
    }
    let table = render(&rows, sim_process, ramp_up, &priority);
    for l in table.lines().skip(2 + rows.len()) {
        println!("{l}");
    }
    Ok(0)
}

/// `voicebench sim`: serve the scenario's simulated targets until Ctrl-C, each labelled with its protocol.
fn sim(scenario: &Path, seed: Option<u64>, port: u16, ground_truth: Option<&Path>) -> Result<i32> {
    let sc = crate::scenario::load(scenario)?;
    let seed = seed.unwrap_or(sc.defaults.seed);
    let protocol = |name: &str| {
        sc.targets.iter().find(|t| t.name.get_ref() == name).map_or("?", |t| t.protocol.get_ref().as_str())
    };
    runtime()?
        .block_on(crate::sim::serve_forever(&sc, seed, port, ground_truth, |urls, skipped| {
            for (t, why) in skipped {
                eprintln!("not served: `{t}`: {why}");
            }
            for (t, url) in urls {
                println!("{t} (simulated, {}): {url}", protocol(t));
            }
            eprintln!("serving; Ctrl-C to stop");
        }))
        .with_context(|| {
            if port == 0 { "serving the sims".to_string() } else { format!("serving the sims from port {port}") }
        })?;
    Ok(0)
}

/// Appends `markdown` to `$GITHUB_STEP_SUMMARY` when it is set; a failure is a warning.
fn append_step_summary(markdown: &str) {
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(markdown.as_bytes()));
        if let Err(e) = appended {
            eprintln!("warning: cannot append to $GITHUB_STEP_SUMMARY ({}): {e}", Path::new(&path).display());
        }
    }
}

/// Prints the verdict on stdout in `format`, writes the --junit and --json files, appends the Markdown verdict to
/// `$GITHUB_STEP_SUMMARY` when set; returns the exit code (0 pass, 1 fail).
fn emit_gate(report: &GateReport, args: &GateArgs, format: GateFormat) -> Result<i32> {
    print!(
        "{}",
        match format {
            GateFormat::Table => crate::gate::render_table(report),
            GateFormat::Markdown => crate::gate::render_markdown(report),
            GateFormat::Json => crate::gate::render_json(report),
        }
    );
    if let Some(path) = &args.junit {
        std::fs::write(path, crate::gate::render_junit(report))
            .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, crate::gate::render_json(report))
            .with_context(|| format!("cannot write the JSON report {}", path.display()))?;
    }
    append_step_summary(&crate::gate::render_markdown(report));
    Ok(if report.passed() { 0 } else { 1 })
}

/// The async runtime: one worker per core (the callers' timers and sockets share them; more threads than cores
/// only add contention on a loaded machine).
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(per_core().0.build()?)
}

/// A multi-thread runtime's builder with one worker per core (timers and I/O on), and the number of cores.
fn per_core() -> (tokio::runtime::Builder, usize) {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(cores).enable_all();
    (b, cores)
}

/// The runtime a run's callers go on, with the embedded sims moved to a runtime of their own (normal priority,
/// threads `voicebench-sim`), as a provider's work is on its own machine. With `realtime`, the harness's threads ask
/// for real-time priority as they start (`crate::caller::priority`); the sims' threads are started first, from
/// this normal thread, so they never inherit it.
fn harness_runtime(realtime: bool) -> Result<tokio::runtime::Runtime> {
    static SIMS: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if SIMS.get().is_none() {
        let sims = per_core().0.thread_name("voicebench-sim").build().context("starting the sims' runtime")?;
        crate::sim::use_runtime(sims.handle().clone());
        let _ = SIMS.set(sims);
    }
    let (mut b, cores) = per_core();
    if realtime {
        b.on_thread_start(|| {
            let _ = crate::caller::priority::raise(crate::caller::priority::Role::Worker);
        });
    }
    let rt = b.build()?;
    // The workers start in the background; what they were granted is reported, so wait for them (briefly).
    let asked = std::time::Instant::now();
    while realtime && crate::caller::priority::asked() < cores && asked.elapsed() < std::time::Duration::from_secs(2) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(rt)
}

fn validate(files: &[PathBuf]) -> i32 {
    let mut failed = 0;
    for f in files {
        match crate::scenario::load(f) {
            Ok(s) => {
                let n_tools: usize = s.turns.iter().map(|t| t.tool_calls.len()).sum();
                println!(
                    "{}: ok — scenario `{}`, {} target(s), {} turn(s), {} expected tool call(s), {} SLO(s)",
                    f.display(),
                    s.name,
                    s.targets.len(),
                    s.turns.len(),
                    n_tools,
                    s.slo.len()
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("{e}\n");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} scenario file(s) invalid", files.len());
        2
    } else {
        0
    }
}
