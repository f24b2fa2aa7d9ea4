//! Tests of the simulated provider over real sockets: a minimal raw tokio-tungstenite client talks to the server on
//! 127.0.0.1 and checks what a real client would see (event names and shapes, errors, timing against the ground
//! truth). Corpus WAVs are resampled to 24 kHz and streamed as 20 ms frames; most tests upload faster than real time
//! (the sim's VAD runs in audio time), the timing test paces in real time.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{GroundTruthKind, SimHandle, start_realtime};
use crate::audio::{frames, read_wav, resample::resample};
use crate::scenario::{self, Scenario};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const TOOL: &str = r#"
[agent]
today = "2026-11-30"
[[agent.tool]]
name = "check_availability"
description = "Find open tables."
parameters = { type = "object", properties = { party_size = { type = "integer" }, date = { type = "string" }, time = { type = "string" } } }
default_result = { available = false }
"#;

fn scenario(options: &str, turns: &str) -> Scenario {
    let src = format!(
        "name = \"simtest\"\n[defaults]\nseed = 7\n[[target]]\nname = \"sim\"\nprotocol = \"openai-realtime\"\n\
         sim = \"fixed\"\nsim_options = {{ {options} }}\n{TOOL}\n{turns}"
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/_simtest.toml");
    match scenario::parse(&path, &src) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

async fn start(s: &Scenario) -> SimHandle {
    start_realtime(s, &s.targets[0], 42).await.expect("sim starts")
}

async fn connect(h: &SimHandle, beta: bool) -> Client {
    let mut req = format!("{}?model=gpt-realtime", h.realtime_url()).into_client_request().unwrap();
    req.headers_mut().insert("Authorization", "Bearer sk-test".parse().unwrap());
    if beta {
        req.headers_mut().insert("OpenAI-Beta", "realtime=v1".parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("connects");
    ws
}

async fn next(ws: &mut Client) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(15), ws.next()).await.expect("an event within 15 s");
        match m.expect("socket open").expect("frame") {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON event"),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// Events up to and including the first of type `ty`.
async fn until(ws: &mut Client, ty: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let v = next(ws).await;
        let done = v["type"] == ty;
        seen.push(v);
        if done {
            return seen;
        }
    }
}

fn types(evs: &[Value]) -> Vec<&str> {
    evs.iter().map(|e| e["type"].as_str().unwrap_or("?")).collect()
}

async fn send(ws: &mut Client, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

async fn ga_update(ws: &mut Client, tools: bool) {
    let mut s = json!({"type": "realtime", "instructions": "test", "output_modalities": ["audio"],
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000},
            "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}}}});
    if tools {
        s["tools"] = json!([{"type": "function", "name": "check_availability", "description": "x",
            "parameters": {"type": "object"}}]);
    }
    send(ws, json!({"type": "session.update", "session": s})).await;
    assert_eq!(until(ws, "session.updated").await.len(), 1);
}

/// A caller line as base64 20 ms frames of 24 kHz PCM16, followed by `silence_ms` of digital silence.
fn frames_b64(line: &str, silence_ms: usize) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("audio-corpus/caller/joe/{line}.wav"));
    let mut pcm = resample(&read_wav(&path).unwrap(), 24_000);
    pcm.samples.extend(std::iter::repeat_n(0, silence_ms * 24));
    frames::frames(&pcm, 20).iter().map(|f| STANDARD.encode(frames::to_le_bytes(f))).collect()
}

async fn upload_fast(ws: &mut Client, frames: &[String]) {
    for f in frames {
        ws.feed(Message::text(json!({"type": "input_audio_buffer.append", "audio": f}).to_string())).await.unwrap();
    }
    ws.flush().await.unwrap();
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

use crate::protocol_fixture as fixture;

#[tokio::test]
async fn session_created_and_updated_have_the_captured_shape() {
    let s = scenario("", "[[turn]]\nutterance = \"greeting\"\nreply = \"hello\"\n");
    let h = start(&s).await;
    let mut ws = connect(&h, false).await;
    let created = next(&mut ws).await;
    assert_eq!(created["type"], "session.created");
    let cap = fixture("openai_realtime_ga_turn_captured.json");
    let want = &cap["session_start"][0];
    assert_eq!(keys(&created), keys(want));
    assert_eq!(keys(&created["session"]), keys(&want["session"]));
    for p in ["/audio/input", "/audio/input/turn_detection", "/audio/output", "/audio/input/format"] {
        let (a, b) = (created["session"].pointer(p).unwrap(), want["session"].pointer(p).unwrap());
        assert_eq!(keys(a), keys(b), "{p}");
    }
    let sess = &created["session"];
    assert!(sess["id"].as_str().unwrap().starts_with("sess_"));
    assert_eq!(sess["audio"]["input"]["format"], json!({"type": "audio/pcm", "rate": 24000}));
    assert_eq!(sess["audio"]["input"]["turn_detection"]["threshold"], 0.5);
    assert_eq!(sess["audio"]["input"]["turn_detection"]["prefix_padding_ms"], 300);
    assert_eq!(sess["audio"]["input"]["turn_detection"]["silence_duration_ms"], 500, "the fixed profile's window");
    // A second connection is another session.
    let mut ws2 = connect(&h, false).await;
    assert_ne!(next(&mut ws2).await["session"]["id"], sess["id"]);

    send(
        &mut ws,
        json!({"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief.",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 650}}}}}),
    )
    .await;
    let upd = next(&mut ws).await;
    assert_eq!(upd["type"], "session.updated");
    assert_eq!(keys(&upd["session"]), keys(&want["session"]));
    assert_eq!(upd["session"]["instructions"], "Be brief.");
    assert_eq!(upd["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"], 650);

    send(&mut ws, json!({"type": "session.update", "event_id": "u2", "session": {"instructions": "x"}})).await;
    let e = next(&mut ws).await;
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["code"], "missing_required_parameter");
    assert_eq!(e["error"]["param"], "session.type");
    assert_eq!(e["error"]["message"], "Missing required parameter: 'session.type'.");
    assert_eq!(e["error"]["event_id"], "u2");

    send(
        &mut ws,
        json!({"type": "session.update", "session": {"type": "realtime", "voice": "marin",
        "instructions": "changed"}}),
    )
    .await;
    let e = next(&mut ws).await;
    assert_eq!(
        (e["error"]["code"].as_str(), e["error"]["message"].as_str()),
        (Some("unknown_parameter"), Some("Unknown parameter: 'session.voice'."))
    );
    // The rejected update changed nothing.
    send(&mut ws, json!({"type": "session.update", "session": {"type": "realtime"}})).await;
    assert_eq!(next(&mut ws).await["session"]["instructions"], "Be brief.");
    h.shutdown().await;
}

#[tokio::test]
async fn malformed_events_get_the_real_error_and_the_session_stays_open() {
    let s = scenario("", "[[turn]]\nutterance = \"greeting\"\nreply = \"hello\"\n");
    let h = start(&s).await;
    let mut ws = connect(&h, false).await;
    next(&mut ws).await;
    let cases = [
        (json!({"type": "input_audio_buffer.append", "event_id": "c1", "audio": 12}).to_string(), "invalid_type"),
        (
            json!({"type": "input_audio_buffer.append", "event_id": "c2", "audio": "!!notbase64"}).to_string(),
            "invalid_value",
        ),
        (json!({"type": "input_audio_buffer.append", "event_id": "c3", "audio": "AAAA"}).to_string(), "invalid_value"),
        (json!({"type": "response.create", "event_id": "c4", "foo": 1}).to_string(), "unknown_parameter"),
        (
            json!({"type": "conversation.item.truncate", "event_id": "c5", "item_id": "x"}).to_string(),
            "missing_required_parameter",
        ),
        (json!({"type": "made.up", "event_id": "c6"}).to_string(), "invalid_value"),
        (json!({"event_id": "c7"}).to_string(), "invalid_event"),
        (json!({"type": "response.cancel", "event_id": "c8"}).to_string(), "response_cancel_not_active"),
        (json!({"type": "input_audio_buffer.commit", "event_id": "c9"}).to_string(), "input_audio_buffer_commit_empty"),
        ("{not json".to_string(), "invalid_json"),
    ];
    for (i, (text, code)) in cases.iter().enumerate() {
        ws.send(Message::text(text.clone())).await.unwrap();
        let e = next(&mut ws).await;
        assert_eq!(e["type"], "error", "{text}");
        assert!(e["event_id"].as_str().unwrap().starts_with("event_"));
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert_eq!(e["error"]["code"], *code, "{text}: {e}");
        assert!(e["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(e["error"].as_object().unwrap().contains_key("param"));
        let want_id = if i < 9 { json!(format!("c{}", i + 1)) } else { Value::Null };
        assert_eq!(e["error"]["event_id"], want_id, "{text}");
    }
    send(&mut ws, json!({"type": "input_audio_buffer.clear"})).await;
    assert_eq!(next(&mut ws).await["type"], "input_audio_buffer.cleared");
    h.shutdown().await;
}

/// A real-time streamed utterance: VAD events, a reply with audio, and the fixed profile's reply delay.
#[tokio::test]
async fn streamed_utterance_gets_vad_events_and_a_timed_reply() {
    let s = scenario("realtime_factor = 40", "[[turn]]\nutterance = \"greeting\"\nreply = \"hello\"\n");
    let h = start(&s).await;
    let mut ws = connect(&h, false).await;
    next(&mut ws).await;
    ga_update(&mut ws, false).await;
    let frames = frames_b64("greeting", 800);
    let (tx, mut rx) = futures_util::StreamExt::split(ws);
    let t0 = Instant::now();
    let sender = tokio::spawn(async move {
        let mut tx = tx;
        for (k, f) in frames.iter().enumerate() {
            tokio::time::sleep_until(t0 + Duration::from_millis(20 * (k as u64 + 1))).await;
            tx.send(Message::text(json!({"type": "input_audio_buffer.append", "audio": f}).to_string())).await.unwrap();
        }
        tx
    });
    let mut evs = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(15), rx.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            let done = v["type"] == "response.done";
            evs.push(v);
            if done {
                break;
            }
        }
    }
    let tys = types(&evs);
    let pos = |t: &str| tys.iter().position(|x| *x == t).unwrap_or_else(|| panic!("no {t} in {tys:?}"));
    assert!(pos("input_audio_buffer.speech_started") < pos("input_audio_buffer.speech_stopped"));
    assert!(pos("input_audio_buffer.speech_stopped") < pos("input_audio_buffer.committed"));
    assert!(pos("input_audio_buffer.committed") < pos("conversation.item.added"));
    assert!(pos("conversation.item.done") < pos("response.created"));
    assert!(pos("response.created") < pos("response.output_audio.delta"));
    assert!(pos("response.output_audio.done") < pos("response.done"));
    assert!(!tys.contains(&"response.audio.delta"), "GA names only");
    let started = &evs[pos("input_audio_buffer.speech_started")];
    // Onset of the line at 320 ms, minus the 300 ms prefix padding.
    assert!((15..=30).contains(&started["audio_start_ms"].as_u64().unwrap()), "{started}");
    let stopped = &evs[pos("input_audio_buffer.speech_stopped")];
    // The last voiced sample at ≈3290 ms plus the 500 ms window.
    let end = stopped["audio_end_ms"].as_u64().unwrap();
    assert!((3780..=3810).contains(&end), "{stopped}");
    assert_eq!(started["item_id"], stopped["item_id"]);
    let audio: usize = evs
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .map(|e| STANDARD.decode(e["delta"].as_str().unwrap()).unwrap().len())
        .sum();
    let transcript: String = evs
        .iter()
        .filter(|e| e["type"] == "response.output_audio_transcript.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let done = evs.last().unwrap();
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(done["response"]["output"][0]["content"][0]["type"], "output_audio");
    assert!(done["response"]["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(transcript.starts_with("Hello, and thanks for calling Bella Vista."), "{transcript}");

    let gt = h.ground_truth();
    assert_eq!(gt.len(), 1, "{gt:?}");
    let g = &gt[0];
    assert_eq!((g.kind, g.turn, g.status.as_deref()), (GroundTruthKind::Reply, 0, Some("completed")));
    let delay = (g.first_audio_at.unwrap() - g.eos_at.unwrap()).as_secs_f64() * 1000.0;
    assert!((delay - 400.0).abs() <= 3.0, "first audio {delay:.2} ms after speech_stopped, want 400 ± 3");
    assert_eq!(g.leading_silence_ms, Some(0.0));
    assert!((g.audio_sent_ms - audio as f64 / 48.0).abs() < 0.01, "{} vs {}", g.audio_sent_ms, audio as f64 / 48.0);
    assert!((g.eos_audio_ms.unwrap() - 3290.0).abs() < 15.0, "{:?}", g.eos_audio_ms);
    let tx = sender.await.unwrap();
    drop((tx, rx));
    h.shutdown().await;
}

#[tokio::test]
async fn tool_call_arguments_stream_in_deltas_then_the_reply_follows_the_result() {
    let turns = r#"
[[turn]]
utterance = "request"
reply = "slots_four"
[[turn.tool_call]]
name = "check_availability"
args = { party_size = 4, date = { date = "2026-12-04" }, time = { time = "19:00" } }
"#;
    let s = scenario("realtime_factor = 50", turns);
    let sim_args = s.turns[0].tool_calls[0].sim_args.clone();
    let h = start(&s).await;
    let mut ws = connect(&h, false).await;
    next(&mut ws).await;
    ga_update(&mut ws, true).await;
    upload_fast(&mut ws, &frames_b64("request", 800)).await;
    let evs = until(&mut ws, "response.done").await;
    let deltas: Vec<&str> = evs
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert!(deltas.len() >= 4, "{} deltas", deltas.len());
    let joined = deltas.concat();
    let done = evs.iter().find(|e| e["type"] == "response.function_call_arguments.done").unwrap();
    assert_eq!(done["arguments"], joined);
    assert_eq!(done["name"], "check_availability");
    let parsed: Value = serde_json::from_str(&joined).expect("arguments are JSON");
    assert_eq!(parsed, sim_args);
    assert_eq!(parsed, json!({"party_size": 4, "date": "2026-12-04", "time": "19:00"}));
    let call_id = done["call_id"].as_str().unwrap().to_string();
    assert!(call_id.starts_with("call_"));
    let rd = evs.last().unwrap();
    assert_eq!(rd["response"]["status"], "completed");
    assert_eq!(rd["response"]["output"][0]["type"], "function_call");
    assert_eq!(rd["response"]["output"][0]["arguments"], joined);
    assert!(!types(&evs).contains(&"response.output_audio.delta"));

    send(
        &mut ws,
        json!({"type": "conversation.item.create", "item": {"type": "function_call_output",
        "call_id": call_id, "output": "{\"available\":true}"}}),
    )
    .await;
    let added = until(&mut ws, "conversation.item.done").await;
    assert_eq!(added[0]["type"], "conversation.item.added");
    send(&mut ws, json!({"type": "response.create"})).await;
    let evs = until(&mut ws, "response.done").await;
    assert!(types(&evs).contains(&"response.output_audio.delta"));
    assert_eq!(evs.last().unwrap()["response"]["status"], "completed");

    let gt = h.ground_truth();
    assert_eq!(gt.iter().map(|g| g.kind).collect::<Vec<_>>(), [GroundTruthKind::ToolCall, GroundTruthKind::Reply]);
    let tc = &gt[0].tool_calls[0];
    assert_eq!((tc.deltas, tc.wrong_arg.as_deref()), (6, None));
    let d = (tc.first_delta_at.unwrap() - gt[0].eos_at.unwrap()).as_secs_f64() * 1000.0;
    assert!((d - 300.0).abs() <= 3.0, "first argument delta {d:.1} ms after speech_stopped");
    assert!(gt[1].response_create_at.is_some());
    h.shutdown().await;
}

#[tokio::test]
async fn barge_in_cancels_the_response_and_truncate_is_checked() {
    let turns = r#"
[[turn]]
utterance = "greeting"
reply = "hello"
[[turn]]
utterance = "correction"
start = "after_agent_start"
delay_ms = 300
expect = "stop"
"#;
    let s = scenario("", turns);
    let h = start(&s).await;
    let mut ws = connect(&h, false).await;
    next(&mut ws).await;
    ga_update(&mut ws, false).await;
    upload_fast(&mut ws, &frames_b64("greeting", 700)).await;
    let evs = until(&mut ws, "response.output_audio.delta").await;
    let item_id = evs.last().unwrap()["item_id"].as_str().unwrap().to_string();
    let resp_id = evs.last().unwrap()["response_id"].as_str().unwrap().to_string();
    // The onset arrives fast; the rest after the interrupt delay (a real caller takes seconds to say it).
    let frames = frames_b64("correction", 700);
    upload_fast(&mut ws, &frames[..30]).await;
    let evs = until(&mut ws, "input_audio_buffer.speech_started").await;
    upload_fast(&mut ws, &frames[30..]).await;
    assert!(types(&evs).iter().all(|t| *t != "response.done"), "{:?}", types(&evs));
    let evs = until(&mut ws, "response.done").await;
    let done = evs.last().unwrap();
    assert_eq!(done["response"]["id"], resp_id.as_str());
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(done["response"]["status_details"]["reason"], "turn_detected");
    // After the correction ends: its own turn; the turn has no reply, so an empty completed response.
    let evs = until(&mut ws, "response.done").await;
    assert!(types(&evs).contains(&"input_audio_buffer.speech_stopped"));
    assert_eq!(evs.last().unwrap()["response"]["status"], "completed");
    assert_eq!(evs.last().unwrap()["response"]["output"], json!([]));

    send(
        &mut ws,
        json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
        "audio_end_ms": 999_999}),
    )
    .await;
    let e = next(&mut ws).await;
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Audio content of ") && msg.ends_with("ms is already shorter than 999999ms"), "{msg}");
    send(
        &mut ws,
        json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
        "audio_end_ms": 100}),
    )
    .await;
    let t = next(&mut ws).await;
    assert_eq!((t["type"].as_str(), t["audio_end_ms"].as_u64()), (Some("conversation.item.truncated"), Some(100)));

    let gt = h.ground_truth();
    let kinds: Vec<_> = gt.iter().map(|g| g.kind).collect();
    assert_eq!(kinds, [GroundTruthKind::Reply, GroundTruthKind::Interrupt, GroundTruthKind::Reply], "{gt:#?}");
    let i = &gt[1];
    assert_eq!(i.interrupted_response.as_deref(), Some(resp_id.as_str()));
    let d = (i.speech_started_at.unwrap() - i.onset_at.unwrap()).as_secs_f64() * 1000.0;
    assert!((d - 100.0).abs() <= 3.0, "speech_started {d:.1} ms after the onset");
    assert_eq!(gt[0].status.as_deref(), Some("cancelled"));
    assert!(gt[0].audio_sent_ms < gt[0].audio_planned_ms);
    h.shutdown().await;
}

#[tokio::test]
async fn pauses_and_backchannels_follow_the_script() {
    // name_number has a ~700 ms pause: one turn, not two. The backchannel turn is ignored: no VAD events at all.
    let turns = r#"
[[turn]]
utterance = "name_number"
expect = "no_takeover"
reply = "readback"
[[turn]]
utterance = "backchannel"
start = "after_agent_start"
delay_ms = 500
expect = "ignore"
"#;
    let s = scenario("", turns);
    let h = start(&s).await;
    let mut ws = connect(&h, false).await;
    next(&mut ws).await;
    ga_update(&mut ws, false).await;
    upload_fast(&mut ws, &frames_b64("name_number", 700)).await;
    let evs = until(&mut ws, "response.output_audio.delta").await;
    let n_stopped = types(&evs).iter().filter(|t| **t == "input_audio_buffer.speech_stopped").count();
    assert_eq!(n_stopped, 1, "{:?}", types(&evs));
    upload_fast(&mut ws, &frames_b64("backchannel", 700)).await;
    let evs = until(&mut ws, "response.done").await;
    assert!(!types(&evs).iter().any(|t| t.starts_with("input_audio_buffer.")), "{:?}", types(&evs));
    assert_eq!(evs.last().unwrap()["response"]["status"], "completed");
    h.shutdown().await;
}

#[tokio::test]
async fn beta_dialect_uses_beta_names() {
    let s = scenario("realtime_factor = 50", "[[turn]]\nutterance = \"choose\"\nreply = \"ask_name\"\n");
    let h = start(&s).await;
    let mut ws = connect(&h, true).await;
    let created = next(&mut ws).await;
    assert_eq!(created["session"]["input_audio_format"], "pcm16");
    assert!(created["session"].get("audio").is_none());
    assert_eq!(created["session"]["turn_detection"]["type"], "server_vad");
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"modalities": ["text", "audio"],
        "input_audio_format": "pcm16", "output_audio_format": "pcm16",
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "session.updated");
    send(&mut ws, json!({"type": "session.update", "session": {"type": "realtime"}})).await;
    assert_eq!(next(&mut ws).await["error"]["code"], "unknown_parameter");
    upload_fast(&mut ws, &frames_b64("choose", 700)).await;
    let evs = until(&mut ws, "response.done").await;
    let tys = types(&evs);
    for t in
        ["conversation.item.created", "response.audio.delta", "response.audio_transcript.delta", "response.audio.done"]
    {
        assert!(tys.contains(&t), "no {t} in {tys:?}");
    }
    for t in ["conversation.item.added", "response.output_audio.delta", "response.output_audio_transcript.delta"] {
        assert!(!tys.contains(&t), "GA {t} in beta: {tys:?}");
    }
    let done = evs.last().unwrap();
    assert_eq!(done["response"]["output"][0]["content"][0]["type"], "audio");
    assert_eq!(done["response"]["modalities"], json!(["text", "audio"]));
    h.shutdown().await;
}

#[tokio::test]
async fn pcmu_sessions_get_mulaw_audio_and_ground_truth_is_written() {
    let s = scenario("realtime_factor = 50", "[[turn]]\nutterance = \"choose\"\nreply = \"ask_name\"\n");
    let h = start(&s).await;
    let mut ws = connect(&h, false).await;
    next(&mut ws).await;
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"type": "realtime",
        "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}}}),
    )
    .await;
    assert_eq!(next(&mut ws).await["session"]["audio"]["output"]["format"], json!({"type": "audio/pcmu"}));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-corpus/caller/joe/choose.wav");
    let mut pcm = resample(&read_wav(&path).unwrap(), 8_000);
    pcm.samples.extend(std::iter::repeat_n(0, 8 * 700));
    for f in frames::frames(&pcm, 20) {
        let b = STANDARD.encode(crate::audio::mulaw::encode_all(&f));
        ws.feed(Message::text(json!({"type": "input_audio_buffer.append", "audio": b}).to_string())).await.unwrap();
    }
    ws.flush().await.unwrap();
    let evs = until(&mut ws, "response.done").await;
    let bytes: usize = evs
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .map(|e| STANDARD.decode(e["delta"].as_str().unwrap()).unwrap().len())
        .sum();
    let g = &h.ground_truth()[0];
    assert!((g.audio_sent_ms - bytes as f64 / 8.0).abs() < 0.01, "μ-law is 8 bytes per ms");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gt.jsonl");
    h.write_ground_truth(&out, &crate::redact::Redactor::default()).unwrap();
    let line: Value = serde_json::from_str(std::fs::read_to_string(&out).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(line["kind"], "reply");
    assert!(line["first_audio_ms"].as_f64().unwrap() > line["eos_ms"].as_f64().unwrap());
    h.shutdown().await;
}

#[tokio::test]
async fn a_takeover_replies_in_the_pause_and_the_turn_goes_on() {
    let turns = "[[turn]]\nutterance = \"name_number\"\nexpect = \"no_takeover\"\nreply = \"readback\"\n";
    let s = scenario("takeover_rate = 1.0", turns);
    let h = start(&s).await;
    let mut ws = connect(&h, false).await;
    next(&mut ws).await;
    ga_update(&mut ws, false).await;
    let frames = frames_b64("name_number", 700);
    // Up to the middle of the ~700 ms pause (3159–3851 ms into the line).
    upload_fast(&mut ws, &frames[..188]).await;
    let evs = until(&mut ws, "response.output_audio.delta").await;
    assert!(types(&evs).contains(&"input_audio_buffer.speech_stopped"));
    upload_fast(&mut ws, &frames[188..]).await;
    let evs = until(&mut ws, "response.done").await;
    assert_eq!(evs.last().unwrap()["response"]["status"], "cancelled");
    let evs = until(&mut ws, "response.done").await;
    assert_eq!(evs.last().unwrap()["response"]["status"], "completed");
    let gt = h.ground_truth();
    let kinds: Vec<_> = gt.iter().map(|g| (g.kind, g.turn)).collect();
    assert_eq!(kinds, [(GroundTruthKind::Takeover, 0), (GroundTruthKind::Interrupt, 0), (GroundTruthKind::Reply, 0)]);
    h.shutdown().await;
}

#[tokio::test]
async fn booking_targets_start_or_say_why_not() {
    let s = scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/booking.toml")).unwrap();
    let native = s.targets.iter().find(|t| t.sim.as_ref().is_some_and(|x| x.get_ref() == "native")).unwrap();
    let h = start_realtime(&s, native, 1).await.unwrap();
    assert!(h.realtime_url().starts_with("ws://127.0.0.1:") && h.realtime_url().ends_with("/v1/realtime"));
    let mut ws = connect(&h, false).await;
    assert_eq!(next(&mut ws).await["type"], "session.created");
    h.shutdown().await;
    let pipeline = s.targets.iter().find(|t| t.sim.as_ref().is_some_and(|x| x.get_ref() == "pipeline")).unwrap();
    let e = start_realtime(&s, pipeline, 1).await.err().expect("the realtime sim does not play a pipeline");
    assert!(e.to_string().contains("needs `protocol = \"pipeline\"`"), "{e}");
    let h = super::start(&s, pipeline, 1).await.unwrap();
    let pointed = h.point(pipeline);
    for st in [&pointed.stt, &pointed.llm, &pointed.tts] {
        let url = st.as_ref().unwrap().get_ref().url.as_ref().unwrap().get_ref().clone();
        assert_eq!(url, format!("http://{}/v1", h.addr()));
    }
    h.shutdown().await;
    let (sims, skipped) = super::start_all(&s, 1).await.unwrap();
    assert_eq!((sims.len(), skipped.len()), (2, 0));
    for h in sims {
        h.shutdown().await;
    }
}

/// A thousand callers dialling at once must all be let in: the sim's listener queues 600 handshakes that nobody has
/// accepted yet (std's and mio's backlog of 128 dropped the SYNs past it, and the kernel resent them a second later).
#[tokio::test]
async fn the_listener_queues_hundreds_of_unaccepted_handshakes() {
    let listener = super::listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let dials = (0..600)
        .map(|_| tokio::time::timeout(std::time::Duration::from_millis(700), tokio::net::TcpStream::connect(addr)));
    let results = futures_util::future::join_all(dials).await;
    let refused = results.iter().filter(|r| !matches!(r, Ok(Ok(_)))).count();
    assert_eq!(refused, 0, "{refused} of 600 handshakes were not completed while the listener was not accepting");
    drop(listener);
}
