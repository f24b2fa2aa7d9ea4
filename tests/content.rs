//! Issue 18 over real sockets: what the agent said (each protocol's own transcript events), content checks on it,
//! task success from the tools' end state, `calls.jsonl`, and redaction of the caller's phone number and name from
//! every file of the report directory and everything the run prints.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{files_under, root, text, voicebench};

const FIXED: &str =
    "reply_delay_ms = 400, leading_silence_ms = 0, vad_silence_ms = 500, interrupt_delay_ms = 100, tool_delay_ms = 300";

/// One target per protocol that carries text (and Twilio, which does not), all honest, and one OpenAI Realtime agent
/// whose transcripts say the wrong numbers and whose tool calls carry a wrong argument.
fn scenario() -> String {
    let t = |name: &str, proto: &str, extra: &str| {
        format!(
            "\n[[target]]\nname = \"{name}\"\nprotocol = \"{proto}\"\nsim = \"fixed\"\nsim_options = {{ {FIXED}{extra} }}\n"
        )
    };
    let targets = [
        t("openai", "openai-realtime", ""),
        t("gemini", "gemini-live", ""),
        t("elevenlabs", "elevenlabs", ""),
        t("twilio", "twilio", ""),
        t("ws-pcm", "ws-pcm", ""),
        t("liar", "openai-realtime", ", misspeak_rate = 1.0, tool_arg_error_rate = 1.0"),
        "\n[[target]]\nname = \"pipeline\"\nprotocol = \"pipeline\"\nsim = \"fixed\"\n\
         endpointing = { mode = \"local\", silence_ms = 500, interrupt_min_ms = 300 }\n"
            .to_string(),
    ]
    .concat();
    format!(
        r#"name = "content"
corpus = {corpus:?}

[defaults]
calls = 2
concurrency = 14
turn_timeout_ms = 20000
seed = 11
gap_ms = 400
{targets}
[agent]
today = "2026-11-30"
[[agent.tool]]
name = "make_booking"
description = "Book a table."
parameters = {{ type = "object", required = ["name", "phone", "party_size"], properties = {{ name = {{ type = "string" }}, phone = {{ type = "string" }}, party_size = {{ type = "integer" }} }} }}
default_result = {{ booked = true }}
records = "bookings"

[[turn]]
utterance = "correction"
reply = "slots_eight"
say = "eight people"
not_say = {{ regex = '\bsix\b' }}

[[turn]]
utterance = "confirm"
reply = "readback"
say = ["table for eight", {{ regex = '\bJordan Lee\b' }}]
[[turn.tool_call]]
name = "make_booking"
args = {{ name = {{ ci = "jordan lee" }}, phone = {{ any = true }}, party_size = 8 }}
sim_args = {{ name = "Jordan Lee", phone = "555-0142" }}

# Every column checked: whichever argument the liar gets wrong, its booking is not this one.
[[expect_state]]
table = "bookings"
where = {{ party_size = 8, name = {{ ci = "jordan lee" }}, phone = {{ regex = '^555-0142$' }} }}
"#,
        corpus = root().join("audio-corpus").to_string_lossy()
    )
}

fn jsonl(path: &std::path::Path) -> Vec<Json> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn what_the_agent_said_is_judged_on_every_protocol_and_no_personal_data_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("content.toml"), scenario()).unwrap();
    let out = tmp.path().join("out");
    let o = voicebench(tmp.path(), &["run", "content.toml", "--out", out.to_str().unwrap()]);
    let (code, stdout, stderr) = text(&o);
    // The liar's failed tool calls are not errors: the run itself has none.
    assert!(code == 0 || code == 1, "exit {code}\n{stdout}\n{stderr}");

    let turns = jsonl(&out.join("turns.jsonl"));
    assert_eq!(turns.len(), 7 * 2 * 2, "{stderr}");
    let mut by_target: BTreeMap<String, Vec<&Json>> = BTreeMap::new();
    for t in &turns {
        assert!(t["error"].is_null(), "{t}");
        by_target.entry(t["target"].as_str().unwrap().to_string()).or_default().push(t);
    }
    for (target, rows) in &by_target {
        for r in rows {
            let said = r["agent_text"].as_str();
            match target.as_str() {
                // Twilio Media Streams carries no text: nothing to judge, and not a failure.
                "twilio" => assert!(said.is_none() && r["content_ok"].is_null(), "{r}"),
                "liar" => {
                    assert_eq!(r["content_ok"], false, "{r}");
                    let detail = r["content_detail"].as_str().unwrap();
                    assert!(detail.contains("did not say") || detail.contains("which it must not"), "{detail}");
                }
                _ => {
                    assert_eq!(r["content_ok"], true, "{target}: {r}");
                    let said = said.unwrap_or_else(|| panic!("{target} has no transcript: {r}"));
                    if r["turn"] == 0 {
                        assert!(said.starts_with("No problem. For eight people this Friday"), "{target}: {said:?}");
                    } else {
                        // The readback says the name and the number: masked, and the check still saw them.
                        assert!(said.contains("So that's [name], [phone], a table for eight"), "{target}: {said:?}");
                    }
                }
            }
        }
    }
    let liar_said = by_target["liar"][0]["agent_text"].as_str().unwrap();
    assert!(liar_said.contains("six people"), "{liar_said}");

    // Task success: judged where the protocol shows tool calls.
    let calls = jsonl(&out.join("calls.jsonl"));
    assert_eq!(calls.len(), 14);
    for c in &calls {
        let target = c["target"].as_str().unwrap();
        assert_eq!(c["outcome"], "ok", "{c}");
        match target {
            "twilio" | "ws-pcm" => assert!(c["task_ok"].is_null() && c["tool_calls"] == Json::Array(vec![]), "{c}"),
            "liar" => {
                assert_eq!(c["task_ok"], false, "{c}");
                assert!(c["task_detail"].as_str().unwrap().starts_with("bookings: 0 matching rows"), "{c}");
                assert_eq!(c["content_failed"], 2, "{c}");
            }
            _ => {
                assert_eq!(c["task_ok"], true, "{c}");
                let call = &c["tool_calls"][0];
                assert_eq!(
                    (&call["name"], &call["outcome"], &call["turn"]),
                    (&"make_booking".into(), &"succeeded".into(), &1.into()),
                    "{c}"
                );
                assert_eq!(
                    c["slots"],
                    serde_json::json!({"name": "[name]", "phone": "[phone]", "party_size": 8}),
                    "{c}"
                );
                assert_eq!((&c["content_checked"], &c["content_failed"]), (&2.into(), &0.into()), "{c}");
                assert!(
                    c["ttfa_p50_ms"].as_f64().unwrap() > 0.0 && c["ttfa_max_ms"].as_f64() >= c["ttfa_p50_ms"].as_f64()
                );
            }
        }
    }

    // The summary's rates, the terminal's lines, and compare's rows with intervals.
    let summary: Json = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let target = |n: &str| summary["targets"].as_array().unwrap().iter().find(|t| t["name"] == n).unwrap().clone();
    assert_eq!(
        (target("openai")["content_success_rate"].as_f64(), target("openai")["task_success_rate"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(
        (target("liar")["content_success_rate"].as_f64(), target("liar")["task_success_rate"].as_f64()),
        (Some(0.0), Some(0.0))
    );
    assert!(target("twilio")["content_success_rate"].is_null() && target("twilio")["task_success_rate"].is_null());
    assert_eq!(target("pipeline")["counts"]["content_turns"], 4);
    assert!(stdout.contains("content success") && stdout.contains("task success"), "{stdout}");
    let compare = std::fs::read_to_string(out.join("compare.json")).unwrap();
    assert!(compare.contains("\"content_success_rate\"") && compare.contains("\"task_success_rate\""), "{compare}");

    // No original anywhere: not in any file of the directory, not in what the run printed.
    let originals = ["jordan", "555-0142", "555 0142", "five five five", "zero one four two"];
    let mut texts: Vec<(String, String)> = vec![("stdout".into(), stdout), ("stderr".into(), stderr)];
    for f in files_under(&out) {
        let bytes = std::fs::read(&f).unwrap();
        texts.push((f.display().to_string(), String::from_utf8_lossy(&bytes).to_lowercase()));
    }
    for (name, body) in &texts {
        for o in originals {
            assert!(!body.to_lowercase().contains(o), "{name} contains {o:?}");
        }
    }
    // The mask is there instead (so the test is not passing on empty files).
    assert!(texts.iter().any(|(_, b)| b.contains("[phone]")) && texts.iter().any(|(_, b)| b.contains("[name]")));
}

/// A recording's two channels line up with the turn rows' timestamps within one frame: the caller's speech starts
/// at each turn's `user_onset_ms` on the left, the agent's at `agent_audio_start_ms` on the right, and the reply a
/// barge-in cut goes silent on the right at its `agent_audio_end_ms`. Over OpenAI Realtime (16 kHz caller, 24 kHz
/// agent), Twilio (μ-law 8 kHz both ways) and the pipeline.
#[test]
fn recordings_line_up_with_the_turns_within_a_frame() {
    use voicebench::audio::{Pcm, vad::EnergyVad};
    let tmp = tempfile::tempdir().unwrap();
    let extra = format!(
        "\n[[target]]\nname = \"twilio\"\nprotocol = \"twilio\"\nsim = \"fixed\"\nsim_options = {{ {FIXED} }}\n\
         \n[[target]]\nname = \"pipeline\"\nprotocol = \"pipeline\"\nsim = \"fixed\"\n\
         endpointing = {{ mode = \"local\", silence_ms = 500, interrupt_min_ms = 300 }}\n"
    );
    let path = super::write_fixed_scenario(tmp.path(), "rec.toml", &extra);
    let out = tmp.path().join("out");
    let o = voicebench(
        tmp.path(),
        &["run", path.to_str().unwrap(), "--out", out.to_str().unwrap(), "--record", "all", "-q"],
    );
    let (code, stdout, stderr) = text(&o);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let turns = jsonl(&out.join("turns.jsonl"));
    let calls = jsonl(&out.join("calls.jsonl"));
    const FRAME_MS: f64 = 20.0;
    for target in ["fixed", "twilio", "pipeline"] {
        let call = calls.iter().find(|c| c["target"] == target).unwrap();
        let file = call["recording"].as_str().unwrap_or_else(|| panic!("{target}: no recording in {call}"));
        let mut wav = hound::WavReader::open(out.join(file)).unwrap();
        let (channels, rate) = (wav.spec().channels, wav.spec().sample_rate);
        assert_eq!(channels, 2);
        let s: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
        let left: Vec<i16> = s.iter().step_by(2).copied().collect();
        let right: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
        let at = |ms: f64| ((ms.max(0.0) * rate as f64 / 1000.0) as usize).min(left.len());
        // The first audible sample in `ch` from `from_ms` on, in ms.
        let onset = |ch: &[i16], from_ms: f64| -> f64 {
            let from = at(from_ms);
            let i = EnergyVad::default().first_audible(&Pcm::new(rate, ch[from..].to_vec())).expect("audible");
            (from + i) as f64 * 1000.0 / rate as f64
        };
        for t in turns.iter().filter(|t| t["target"] == target) {
            let id = t["turn_id"].as_str().unwrap();
            let user_onset = t["user_onset_ms"].as_f64().unwrap();
            let measured = onset(&left, user_onset - 150.0);
            assert!(
                (measured - user_onset).abs() <= FRAME_MS,
                "{target} {id}: caller onset {measured:.1} vs {user_onset:.1}"
            );
            if let Some(start) = t["agent_audio_start_ms"].as_f64() {
                let measured = onset(&right, start - 150.0);
                assert!((measured - start).abs() <= FRAME_MS, "{target} {id}: agent start {measured:.1} vs {start:.1}");
            }
        }
        // The reply the barge-in cut: audio up to its end, digital silence for 100 ms after it.
        let cut = turns.iter().find(|t| t["target"] == target && t["turn"] == 1).unwrap();
        let end = cut["agent_audio_end_ms"].as_f64().unwrap();
        let before = &right[at(end - FRAME_MS)..at(end)];
        let after = &right[at(end + 1.0)..at(end + 100.0)];
        assert!(before.iter().any(|s| *s != 0), "{target}: no agent audio in the frame before the cut at {end:.1}");
        assert!(after.iter().all(|s| *s == 0), "{target}: agent audio after the cut at {end:.1}");
    }
    // The page lists the recordings with a player each, and report.md links them.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(html.matches("<audio controls").count(), 3, "three recorded calls");
    assert!(html.contains("listen to this call"), "the timeline links its call's recording");
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("## Recorded calls"));
}

/// `transcribe`: what the caller heard of each reply, transcribed (here by the simulated transcriber, which knows
/// the agent's lines): a reply cut by a barge-in was reported in full but heard only in part (`unheard_words`), a
/// misspoken transcript disagrees with its audio, and Twilio's replies, which carry no text, are judged on what was
/// heard.
#[test]
fn heard_audio_is_transcribed_and_reveals_what_was_reported_but_not_heard() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = format!(
        "\n[[target]]\nname = \"twilio\"\nprotocol = \"twilio\"\nsim = \"fixed\"\nsim_options = {{ {FIXED} }}\n\
         \n[[target]]\nname = \"liar\"\nprotocol = \"openai-realtime\"\nsim = \"fixed\"\nsim_options = {{ {FIXED}, misspeak_rate = 1.0 }}\n"
    );
    let path = super::write_fixed_scenario(tmp.path(), "heard.toml", &extra);
    let toml = std::fs::read_to_string(&path).unwrap();
    // The barge-in's answer says numbers (so a misspoken transcript shows), and is checked.
    let toml = format!("transcribe = {{ sim = true }}\n{toml}").replacen(
        "expect = \"stop\"\nreply = \"noted\"",
        "expect = \"stop\"\nreply = \"slots_eight\"\nsay = \"eight people\"",
        1,
    );
    assert!(toml.contains("say = \"eight people\""), "the scenario changed: {toml}");
    std::fs::write(&path, toml).unwrap();
    let out = tmp.path().join("out");
    let o = voicebench(tmp.path(), &["run", path.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
    let (code, stdout, stderr) = text(&o);
    assert!(code == 0 || code == 1, "exit {code}\n{stdout}\n{stderr}");
    assert!(!stderr.contains("could not be transcribed"), "{stderr}");
    let turns = jsonl(&out.join("turns.jsonl"));
    let row = |target: &str, turn: u64| turns.iter().find(|t| t["target"] == target && t["turn"] == turn).unwrap();
    for target in ["fixed", "twilio", "liar"] {
        // The first reply, heard whole.
        let r = row(target, 0);
        assert_eq!(r["heard_text"], "Got it, thank you.", "{target}: {r}");
        // The reply the barge-in cut: heard in part.
        let cut = row(target, 1);
        let heard = cut["heard_text"].as_str().unwrap_or_else(|| panic!("{target}: {cut}"));
        assert!(heard.starts_with("Let me check"), "{target}: {heard:?}");
        assert!(heard.split_whitespace().count() < 21, "{target}: the cut reply was heard whole: {heard:?}");
    }
    // The provider's transcript ran ahead of what was heard when the barge-in cut it.
    assert!(row("fixed", 1)["unheard_words"].as_u64().unwrap() > 0, "{}", row("fixed", 1));
    assert_eq!(row("fixed", 2)["unheard_words"], 0, "{}", row("fixed", 2));
    assert_eq!(row("fixed", 2)["content_ok"], true);
    // A misspoken transcript disagrees with its audio, and fails its check.
    assert!(row("liar", 2)["unheard_words"].as_u64().unwrap() >= 4, "{}", row("liar", 2));
    assert_eq!(row("liar", 2)["content_ok"], false);
    // Twilio sends no text: nothing to compare, and the check is judged on what was heard.
    let tw = row("twilio", 2);
    assert!(tw["agent_text"].is_null() && tw["unheard_words"].is_null(), "{tw}");
    assert_eq!(tw["content_ok"], true, "{tw}");
    assert!(tw["content_detail"].as_str().unwrap().ends_with("(on the heard audio)"), "{tw}");
    let summary: Json = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let twilio = summary["targets"].as_array().unwrap().iter().find(|t| t["name"] == "twilio").unwrap();
    assert_eq!(twilio["content_success_rate"], 1.0);
}

/// A call that never connected did not do its task: it counts as a failed task, not as one left out.
#[test]
fn a_call_that_never_connected_failed_its_task() {
    let tmp = tempfile::tempdir().unwrap();
    let full = scenario();
    let start = full.find("\n[[target]]").unwrap();
    let end = full.find("\n[agent]").unwrap();
    let broken = "\n[[target]]\nname = \"broken\"\nprotocol = \"openai-realtime\"\nsim = \"fixed\"\nsim_options = { fault = \"http-500\" }\n\n";
    let toml = format!("{}{broken}{}", &full[..start], &full[end..]).replace("calls = 2", "calls = 1");
    std::fs::write(tmp.path().join("broken.toml"), toml).unwrap();
    let out = tmp.path().join("out");
    let (code, stdout, stderr) =
        text(&voicebench(tmp.path(), &["run", "broken.toml", "--out", out.to_str().unwrap(), "-q"]));
    assert_eq!(code, 2, "every call failed: {stdout}{stderr}");
    let calls = jsonl(&out.join("calls.jsonl"));
    assert_eq!(calls.len(), 1);
    assert_eq!((&calls[0]["outcome"], &calls[0]["task_ok"]), (&"provider_error".into(), &false.into()), "{}", calls[0]);
    assert_eq!(calls[0]["task_detail"], "the call never connected");
    let summary: Json = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["targets"][0]["task_success_rate"], 0.0);
}
