//! Every native protocol end to end over real sockets on loopback: Gemini Live (automatic and manual activity
//! detection), ElevenLabs agents (PCM and μ-law), Twilio Media Streams (voicebench as Twilio, against the sim's
//! agent server) and ws-pcm (16 and 24 kHz), each against its fixed-profile sim, with the sim's ground truth
//! joined to what the caller measured (TTFA, barge-in stop, tool calls); the sims' protocol errors; and the Gemini
//! key kept out of every output.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use voicebench::run::bench::{fixed_scenario_toml, join, quantile};
use voicebench::run::{RunOptions, run};

use super::{files_under, root, text, write_fixed_scenario};

const SIM: &str = "sim_options = { reply_delay_ms = 400, leading_silence_ms = 0, vad_silence_ms = 500, interrupt_delay_ms = 100, tool_delay_ms = 300, tool_arg_deltas = 8 }";

fn targets() -> String {
    let t = |name: &str, proto: &str, extra: &str| {
        format!("\n[[target]]\nname = \"{name}\"\nprotocol = \"{proto}\"\nsim = \"fixed\"\n{extra}{SIM}\n")
    };
    [
        t("gemini", "gemini-live", ""),
        t("gemini-manual", "gemini-live", "turn_detection = { type = \"none\", silence_duration_ms = 500 }\n"),
        t("elevenlabs", "elevenlabs", ""),
        t("elevenlabs-ulaw", "elevenlabs", "audio_format = \"g711_ulaw\"\n"),
        t("twilio", "twilio", ""),
        t("ws-pcm", "ws-pcm", ""),
        t("ws-pcm-24k", "ws-pcm", "sample_rate = 24000\n"),
    ]
    .concat()
}

/// Issue 7: each protocol's TTFA and barge-in stop against its sim's ground truth, and its tool calls.
#[test]
fn every_protocol_matches_ground_truth() {
    let _timing = super::timing_lock();
    let tmp = tempfile::tempdir().unwrap();
    let path = write_fixed_scenario(tmp.path(), "protocols.toml", &targets());
    let scenario = voicebench::scenario::load(&path).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let opts = RunOptions {
        calls: Some(2),
        concurrency: Some(16),
        out: Some(tmp.path().join("out")),
        progress: false,
        ..Default::default()
    };
    let outcome = rt.block_on(run(&scenario, &opts, &|_| {})).unwrap();
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    let failed: Vec<_> = outcome.turns.iter().filter(|t| t.error.is_some()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(outcome.calls.len(), 16);
    assert_eq!(outcome.turns.len(), 48);

    let j = join(&outcome, 500.0, 400.0);
    let mut by_target: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (t, e) in &j.ttfa_by_target {
        by_target.entry(t.clone()).or_default().push(*e);
    }
    for (t, errs) in &by_target {
        let abs: Vec<f64> = errs.iter().map(|e| e.abs()).collect();
        eprintln!(
            "{t:>16}: TTFA − truth over {} turns: p50 {:.3} ms, max {:.3} ms (signed: {:?})",
            errs.len(),
            quantile(&abs, 0.5),
            quantile(&abs, 1.0),
            errs.iter().map(|e| (e * 1000.0).round() / 1000.0).collect::<Vec<_>>()
        );
    }
    // Every reply turn of every target is joined: 2 calls × 3 turns × 8 targets.
    assert_eq!(by_target.len(), 8, "{by_target:?}");
    for (t, errs) in &by_target {
        assert_eq!(errs.len(), 6, "{t}: {errs:?}");
        let abs: Vec<f64> = errs.iter().map(|e| e.abs()).collect();
        assert!(quantile(&abs, 0.5) <= 2.0, "{t}: TTFA error p50 {:.3} ms: {errs:?}", quantile(&abs, 0.5));
        assert!(quantile(&abs, 1.0) <= 5.0, "{t}: TTFA error max {:.3} ms: {errs:?}", quantile(&abs, 1.0));
    }

    // Barge-in: each protocol's flush signal (Gemini interrupted, ElevenLabs interruption, Twilio clear, ws-pcm
    // clear) cuts playback when the sim sent it.
    assert_eq!(j.barge_in_stop.len(), 16, "{j:?}");
    for (m, t) in &j.barge_in_stop {
        assert!((m - t).abs() <= 5.0, "barge-in stop {m} vs true {t}");
    }
    let barge: Vec<_> = outcome.turns.iter().filter(|t| t.turn == 2).collect();
    assert!(barge.iter().all(|t| t.barge_in_failed == Some(false)), "{barge:#?}");
    assert!(barge.iter().all(|t| t.post_cancel_audio_ms == Some(0.0)), "{barge:#?}");

    // Tool calls where the protocol has them; none scored where it cannot show them (Twilio, ws-pcm).
    let tools = |target: &str| -> (u32, u32, u32) {
        outcome
            .turns
            .iter()
            .filter(|t| t.target == target)
            .fold((0, 0, 0), |a, t| (a.0 + t.tools_expected, a.1 + t.tools_succeeded, a.2 + t.tools_unexpected))
    };
    for t in ["gemini", "gemini-manual", "elevenlabs", "elevenlabs-ulaw"] {
        assert_eq!(tools(t), (4, 4, 0), "{t}");
    }
    for t in ["twilio", "ws-pcm", "ws-pcm-24k"] {
        assert_eq!(tools(t), (0, 0, 0), "{t}");
    }
    let summary = &outcome.summary;
    let rate = |name: &str| summary.targets.iter().find(|t| t.name == name).unwrap().tool_success_rate;
    assert_eq!(rate("gemini"), Some(1.0));
    assert_eq!(rate("elevenlabs"), Some(1.0));
    assert_eq!(rate("twilio"), None);
    // The Gemini sim's key never reaches the report directory.
    for p in files_under(&outcome.out_dir) {
        let body = std::fs::read(&p).unwrap();
        let needle = voicebench::sim::SIM_GEMINI_KEY.as_bytes();
        assert!(!body.windows(needle.len()).any(|w| w == needle), "{} contains the key", p.display());
    }
}

/// Issue 7: Gemini errors arrive as close codes and are reported with their category and code; the key (from
/// `api_key_env`, in the URL) appears in no output: stdout, stderr, and every file of the report.
#[test]
fn gemini_close_codes_are_errors_and_the_key_never_leaks() {
    const KEY: &str = "AIzaSy-test-secret-key-4f9a2b7c";
    let tmp = tempfile::tempdir().unwrap();
    // A server that accepts the upgrade, reads the setup, and refuses it the way the real service refuses a bad
    // key: close 1008 with the reason, no JSON error.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else { return };
                let _ = ws.next().await;
                let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 1008.into(),
                    reason: "API key not valid. Please pass a valid API key.".into(),
                };
                let _ = ws.send(Message::Close(Some(frame))).await;
            });
        }
    });
    let extra = format!(
        r#"
[[target]]
name = "gemini-refused"
protocol = "gemini-live"
url = "ws://127.0.0.1:{port}/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
api_key_env = "VOICEBENCH_TEST_GEMINI_KEY"

[[target]]
name = "gemini-nobody"
protocol = "gemini-live"
url = "ws://127.0.0.1:9/ws/live"
api_key_env = "VOICEBENCH_TEST_GEMINI_KEY"
"#
    );
    let path = write_fixed_scenario(tmp.path(), "s.toml", &extra);
    let out = tmp.path().join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_voicebench"))
        .args(["run", path.to_str().unwrap(), "--calls", "1", "--out", out.to_str().unwrap()])
        .env("VOICEBENCH_TEST_GEMINI_KEY", KEY)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let (code, stdout, stderr) = text(&o);
    assert_ne!(code, 101, "the run panicked\n{stderr}");
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "the key was printed:\n{stdout}\n{stderr}");
    let files = files_under(&out);
    for p in &files {
        let body = String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
        assert!(!body.contains(KEY), "{} contains the key:\n{body}", p.display());
    }
    let files = files.len();
    assert!(files >= 3, "{files} report files");
    let calls = std::fs::read_to_string(out.join("calls.csv")).unwrap();
    let refused = calls.lines().find(|l| l.starts_with("gemini-refused,")).unwrap_or_else(|| panic!("{calls}"));
    assert!(refused.contains(",auth,") && refused.contains("1008"), "{refused}");
    let nobody = calls.lines().find(|l| l.starts_with("gemini-nobody,")).unwrap_or_else(|| panic!("{calls}"));
    assert!(nobody.contains(",connect,"), "{nobody}");
    // The sim target of the same run is unaffected.
    assert!(calls.lines().any(|l| l.starts_with("fixed,") && !l.contains(",connect,")), "{calls}");
}

/// Issue 7: the Gemini sim rejects what the real service rejects, by closing with 1007 and the real reason.
#[test]
fn gemini_sim_closes_with_1007_on_media_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = "\n[[target]]\nname = \"g\"\nprotocol = \"gemini-live\"\nsim = \"fixed\"\n";
    let path = write_fixed_scenario(tmp.path(), "s.toml", extra);
    let scenario = voicebench::scenario::load(&path).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let h = voicebench::sim::start(&scenario, &scenario.targets[1], 1).await.unwrap();
        assert!(h.url().contains("?key="), "{}", h.url());
        let (mut ws, _) = tokio_tungstenite::connect_async(h.url()).await.unwrap();
        ws.send(Message::text(r#"{"setup":{"model":"models/x"}}"#)).await.unwrap();
        let m = ws.next().await.unwrap().unwrap();
        assert!(matches!(&m, Message::Binary(b) if b.starts_with(b"{\"setupComplete\"")), "{m:?}");
        ws.send(Message::text(r#"{"realtimeInput":{"mediaChunks":[{"data":"AAAA","mimeType":"audio/pcm"}]}}"#))
            .await
            .unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        match m {
            Message::Close(Some(c)) => {
                assert_eq!(u16::from(c.code), 1007);
                assert_eq!(
                    c.reason.as_str(),
                    "realtime_input.media_chunks is deprecated. Use audio, video, or text instead."
                );
            }
            other => panic!("{other:?}"),
        }
        h.shutdown().await;
    });
}

/// Issue 7: the ElevenLabs sim answers pings and closes with 1008 on a chunk that does not fit its input format.
#[test]
fn elevenlabs_sim_checks_the_input_format() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = "\n[[target]]\nname = \"el\"\nprotocol = \"elevenlabs\"\nsim = \"fixed\"\n";
    let path = write_fixed_scenario(tmp.path(), "s.toml", extra);
    let scenario = voicebench::scenario::load(&path).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let h = voicebench::sim::start(&scenario, &scenario.targets[1], 1).await.unwrap();
        let (mut ws, _) = tokio_tungstenite::connect_async(h.url()).await.unwrap();
        ws.send(Message::text(r#"{"type":"conversation_initiation_client_data"}"#)).await.unwrap();
        let m = ws.next().await.unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        assert_eq!(v["conversation_initiation_metadata_event"]["user_input_audio_format"], "pcm_16000");
        // Three bytes are not PCM16.
        ws.send(Message::text(r#"{"user_audio_chunk":"AAAA"}"#)).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        match m {
            Message::Close(Some(c)) => {
                assert_eq!(u16::from(c.code), 1008);
                assert!(c.reason.contains("could not broadcast input array"), "{}", c.reason);
            }
            other => panic!("{other:?}"),
        }
        h.shutdown().await;
    });
}

/// Issue 7: validation knows each native protocol's keys, and points at the offending value with a fix.
#[test]
fn validation_points_at_protocol_keys_that_do_not_apply() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "protocol = \"twilio\"\nurl = \"ws://127.0.0.1:8080/media-stream\"\naudio_format = \"pcm16\"\n",
            "\"pcm16\"",
            "`audio_format` does not apply to a `twilio` target",
            "remove it",
        ),
        (
            "protocol = \"gemini-live\"\nsim = \"fixed\"\nturn_detection = { type = \"semantic_vad\" }\n",
            "\"semantic_vad\"",
            "gemini-live has no `semantic_vad` turn detection",
            "`none`",
        ),
        (
            "protocol = \"gemini-live\"\nsim = \"fixed\"\nturn_detection = { type = \"server_vad\", threshold = 0.5 }\n",
            "0.5",
            "gemini-live takes no VAD `threshold`",
            "remove it",
        ),
        (
            "protocol = \"elevenlabs\"\nsim = \"fixed\"\nturn_detection = { type = \"none\" }\n",
            "{ type = \"none\" }",
            "`turn_detection` does not apply to a `elevenlabs` target",
            "openai-realtime and gemini-live",
        ),
        (
            "protocol = \"elevenlabs\"\nurl = \"wss://api.elevenlabs.io/v1/convai/conversation\"\n",
            "\"proto-target\"",
            "needs `agent_id`",
            "dashboard",
        ),
        (
            "protocol = \"ws-pcm\"\nsim = \"fixed\"\nsample_rate = 22050\n",
            "22050",
            "sample_rate 22050 is not supported",
            "16000",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (i, (target, at, message, hint)) in cases.iter().enumerate() {
        let extra = format!("\n[[target]]\nname = \"proto-target\"\n{target}");
        let body = fixed_scenario_toml(&root().join("audio-corpus"), &extra);
        let path = tmp.path().join(format!("case{i}.toml"));
        std::fs::write(&path, &body).unwrap();
        let (code, _, err) = text(&super::voicebench(tmp.path(), &["validate", path.to_str().unwrap()]));
        assert_eq!(code, 2, "case {i}: expected exit 2\n{err}");
        // The diagnostic's position: the needle's first occurrence after the target's name.
        let start = body.find("name = \"proto-target\"").unwrap();
        let off = if *at == "\"proto-target\"" { start + 7 } else { start + body[start..].find(at).unwrap() };
        let line = body[..off].matches('\n').count() + 1;
        let col = off - body[..off].rfind('\n').map_or(0, |p| p + 1) + 1;
        let loc = format!("{}:{line}:{col}: ", path.display());
        assert!(err.contains(&loc), "case {i}: expected a diagnostic at {loc}\n{err}");
        assert!(err.contains(message), "case {i}: expected {message:?}\n{err}");
        assert!(err.contains(hint), "case {i}: expected the hint {hint:?}\n{err}");
    }
    // And the new scenarios are valid.
    for f in ["scenarios/protocols.toml", "scenarios/providers.toml"] {
        let (code, out, err) = text(&super::voicebench(&root(), &["validate", f]));
        assert_eq!(code, 0, "{f}\n{out}{err}");
    }
}
