//! The turn state machine's tests, on tokio's paused clock: each drives a [`Tracker`] with timestamped agent
//! events and checks the turn records it writes.

use super::*;
use crate::scenario::{AudioRef, ExpectedCall, Matcher};
use serde_json::Value as Json;
use std::path::PathBuf;

const RATE: u32 = 24_000;

fn ms_(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// A turn whose utterance has speech from 300 ms to 1300 ms of its WAV.
fn turn(i: usize, expect: Expect, start: StartSpec) -> TurnSpec {
    TurnSpec {
        index: i,
        id: format!("t{i}"),
        audio: AudioRef {
            path: PathBuf::new(),
            id: format!("u{i}"),
            text: None,
            sample_rate: RATE,
            duration_ms: 1600.0,
            speech_start_ms: 300.0,
            speech_end_ms: 1300.0,
            pauses_ms: vec![],
        },
        start,
        expect,
        tool_calls: vec![],
        reply: None,
        content: Default::default(),
    }
}

fn id() -> CallId {
    CallId { target: "t".into(), simulated: true, call: 0 }
}

fn done(gap: u32) -> StartSpec {
    StartSpec::AfterAgentDone { gap_ms: gap }
}

fn loud(ms: u64) -> Vec<i16> {
    (0..(RATE as u64 * ms / 1000)).map(|i| if i % 2 == 0 { 8000 } else { -8000 }).collect()
}

fn quiet(ms: u64) -> Vec<i16> {
    vec![0; (RATE as u64 * ms / 1000) as usize]
}

fn tracker(turns: Vec<TurnSpec>, t0: Instant) -> Tracker {
    Tracker::new(turns, vec![], t0, RATE, ms_(5000), id())
}

fn audio(tr: &mut Tracker, at: Instant, item: u32, samples: Vec<i16>) {
    tr.on_event(&AgentEvent::Audio { at, item, samples });
}

fn response_done(tr: &mut Tracker, at: Instant) {
    tr.on_event(&AgentEvent::ResponseDone { at, status: ResponseStatus::Completed, had_tool_call: false });
}

#[tokio::test(start_paused = true)]
async fn pipeline_stages_are_the_last_before_the_reply_audio() {
    let t0 = Instant::now();
    let mut tr = tracker(vec![turn(0, Expect::Respond, done(0))], t0);
    assert_eq!(tr.schedule(0, ms_(20)), Some(0));
    let eos = t0 + ms_(1300);
    let stage = |tr: &mut Tracker, ms: u64, stage: Stage| {
        tr.on_event(&AgentEvent::Stage { at: eos + ms_(ms), stage });
    };
    stage(&mut tr, 500, Stage::EndOfTurn);
    stage(&mut tr, 650, Stage::Transcript);
    // A tool round: the first chat request is replaced by the one whose answer is spoken.
    stage(&mut tr, 651, Stage::LlmRequest);
    stage(&mut tr, 1100, Stage::LlmRequest);
    stage(&mut tr, 1500, Stage::LlmFirstToken);
    stage(&mut tr, 1560, Stage::TtsRequest);
    stage(&mut tr, 1700, Stage::TtsFirstByte);
    audio(&mut tr, eos + ms_(1700), 0, quiet(30));
    audio(&mut tr, eos + ms_(1701), 0, loud(400));
    // After the reply's first audio, later requests (the next sentences) do not count.
    stage(&mut tr, 1900, Stage::TtsRequest);
    stage(&mut tr, 2000, Stage::TtsFirstByte);
    response_done(&mut tr, eos + ms_(2100));
    assert!(tr.poll(eos + ms_(2300)));
    let r = tr.take_records().pop().unwrap();
    assert_eq!(r.endpointing_ms, Some(500.0));
    assert_eq!(r.stt_ms, Some(650.0));
    assert_eq!(r.llm_start_ms, Some(1100.0));
    assert_eq!(r.llm_ttft_ms, Some(400.0));
    assert_eq!(r.tts_start_ms, Some(1560.0));
    assert_eq!(r.tts_ttfb_ms, Some(140.0));
    assert_eq!(r.ttfa_ms, Some(1730.0));
    let parts = r.tts_start_ms.unwrap() + r.tts_ttfb_ms.unwrap() + r.leading_silence_ms.unwrap();
    assert_eq!(r.ttfa_ms, Some(parts));
}

#[tokio::test(start_paused = true)]
async fn ttfa_is_ttfb_plus_leading_silence() {
    let t0 = Instant::now();
    let mut tr = tracker(vec![turn(0, Expect::Respond, done(0))], t0);
    assert_eq!(tr.schedule(0, ms_(20)), Some(0));
    let eos = t0 + ms_(1300);
    tr.on_event(&AgentEvent::SpeechStopped { at: eos + ms_(200) });
    // First chunk 500 ms after eos: 120 ms of silence, then speech; sent in a burst.
    audio(&mut tr, eos + ms_(500), 0, quiet(120));
    audio(&mut tr, eos + ms_(501), 0, loud(400));
    response_done(&mut tr, eos + ms_(510));
    assert!(!tr.poll(eos + ms_(600)), "the reply is still playing");
    assert!(tr.poll(eos + ms_(1100)));
    let r = tr.take_records().pop().unwrap();
    assert_eq!(r.ttfb_ms, Some(500.0));
    assert_eq!(r.leading_silence_ms, Some(120.0));
    assert_eq!(r.ttfa_ms, Some(620.0));
    assert_eq!(r.ttfa_ms.unwrap(), r.ttfb_ms.unwrap() + r.leading_silence_ms.unwrap());
    assert_eq!(r.endpointing_ms, Some(200.0));
    assert_eq!(r.talk_over_ms, None);
    assert_eq!(r.max_silence_ms, Some(620.0));
    assert_eq!(r.error, None);
}

#[tokio::test(start_paused = true)]
async fn talk_over_is_reported_not_clamped() {
    let t0 = Instant::now();
    let mut tr = tracker(vec![turn(0, Expect::NoTakeover, done(0))], t0);
    tr.schedule(0, ms_(20));
    let eos = t0 + ms_(1300);
    audio(&mut tr, eos - ms_(200), 0, loud(300));
    response_done(&mut tr, eos);
    assert!(tr.poll(eos + ms_(200)));
    let r = tr.take_records().pop().unwrap();
    assert_eq!(r.ttfa_ms, Some(-200.0));
    assert_eq!(r.talk_over_ms, Some(200.0));
    assert_eq!(r.premature_takeover, Some(true));
    assert_eq!(r.value(crate::model::Metric::Ttfa), None, "a negative TTFA never enters the TTFA distribution");
}

#[tokio::test(start_paused = true)]
async fn underrun_mid_reply_counts_as_silence() {
    let t0 = Instant::now();
    let mut tr = tracker(vec![turn(0, Expect::Respond, done(0))], t0);
    tr.schedule(0, ms_(20));
    let eos = t0 + ms_(1300);
    audio(&mut tr, eos + ms_(300), 0, loud(200));
    // The next chunk comes 900 ms later: the caller hears 700 ms of nothing mid-reply.
    audio(&mut tr, eos + ms_(1200), 0, loud(200));
    response_done(&mut tr, eos + ms_(1200));
    assert!(tr.poll(eos + ms_(2000)));
    let r = tr.take_records().pop().unwrap();
    assert_eq!(r.ttfa_ms, Some(300.0));
    assert_eq!(r.max_silence_ms, Some(700.0));
}

/// Turn 0 gets a 5-second reply sent in one burst; turn 1 barges in 1 s after it became audible.
fn barge_setup(t0: Instant) -> (Tracker, Instant) {
    let mut tr = tracker(
        vec![turn(0, Expect::Respond, done(0)), turn(1, Expect::Stop, StartSpec::AfterAgentStart { delay_ms: 1000 })],
        t0,
    );
    tr.schedule(0, ms_(20));
    let eos = t0 + ms_(1300);
    for _ in 0..50 {
        audio(&mut tr, eos + ms_(400), 0, loud(100));
    }
    // Turn 1 is anchored on turn 0's first audible sample (eos + 400 ms) + 1000 ms.
    assert_eq!(tr.schedule(50, ms_(20)), Some(((1300 + 400 + 1000) / 20) as u64));
    (tr, eos)
}

#[tokio::test(start_paused = true)]
async fn barge_in_stop_is_measured_to_the_cut() {
    let t0 = Instant::now();
    let (mut tr, eos) = barge_setup(t0);
    let onset = eos + ms_(1400) + ms_(300);
    let acts = tr.on_event(&AgentEvent::SpeechStarted { at: onset + ms_(250) });
    assert!(matches!(acts[..], [Action::Truncate { item: 0, played_ms: 1550 }]), "{acts:?}");
    // The provider keeps sending 300 ms of the cancelled item: post-cancel audio, not played.
    audio(&mut tr, onset + ms_(260), 0, loud(300));
    tr.on_event(&AgentEvent::ResponseDone {
        at: onset + ms_(270),
        status: ResponseStatus::Cancelled,
        had_tool_call: false,
    });
    // The reply to the barge-in.
    let eos1 = t0 + ms_(2700 + 1300);
    audio(&mut tr, eos1 + ms_(400), 1, loud(300));
    response_done(&mut tr, eos1 + ms_(400));
    assert!(tr.poll(eos1 + ms_(1000)));
    let recs = tr.take_records();
    let r = recs.iter().find(|r| r.turn == 1).unwrap();
    assert_eq!(r.barge_in_stop_ms, Some(250.0));
    assert_eq!(r.barge_in_ack_ms, Some(250.0));
    assert_eq!(r.post_cancel_audio_ms, Some(300.0));
    assert_eq!(r.barge_in_failed, Some(false));
    assert_eq!(r.ttfa_ms, Some(400.0));
}

#[tokio::test(start_paused = true)]
async fn missed_barge_in_fails_after_two_seconds() {
    let t0 = Instant::now();
    let (mut tr, eos) = barge_setup(t0);
    let onset = eos + ms_(1700);
    // No interruption signal; the 5 s reply plays out (ends at eos + 400 + 5000).
    response_done(&mut tr, eos + ms_(500));
    let eos1 = t0 + ms_(2700 + 1300);
    audio(&mut tr, eos + ms_(5500), 1, loud(100));
    response_done(&mut tr, eos + ms_(5500));
    assert!(tr.poll(eos1 + ms_(6000)));
    let r = tr.take_records().into_iter().find(|r| r.turn == 1).unwrap();
    assert_eq!(r.barge_in_failed, Some(true));
    assert_eq!(r.barge_in_stop_ms, Some(((eos + ms_(5400)) - onset).as_secs_f64() * 1000.0));
    assert_eq!(r.barge_in_ack_ms, None);
}

#[tokio::test(start_paused = true)]
async fn backchannel_flush_is_a_false_stop() {
    let t0 = Instant::now();
    let mut tr = tracker(
        vec![turn(0, Expect::Respond, done(0)), turn(1, Expect::Ignore, StartSpec::AfterAgentStart { delay_ms: 500 })],
        t0,
    );
    tr.schedule(0, ms_(20));
    let eos = t0 + ms_(1300);
    audio(&mut tr, eos + ms_(300), 0, loud(3000));
    tr.schedule(10, ms_(20));
    let onset = eos + ms_(800) + ms_(300);
    tr.on_event(&AgentEvent::SpeechStarted { at: onset + ms_(100) });
    tr.on_event(&AgentEvent::ResponseDone {
        at: onset + ms_(120),
        status: ResponseStatus::Cancelled,
        had_tool_call: false,
    });
    assert!(tr.poll(onset + ms_(2000)));
    let r = tr.take_records().into_iter().find(|r| r.turn == 1).unwrap();
    assert_eq!(r.false_stop, Some(true));
}

#[tokio::test(start_paused = true)]
async fn no_reply_times_out_as_a_result() {
    let t0 = Instant::now();
    let mut tr = tracker(vec![turn(0, Expect::Respond, done(0)), turn(1, Expect::Respond, done(500))], t0);
    tr.schedule(0, ms_(20));
    let eos = t0 + ms_(1300);
    assert!(!tr.poll(eos + ms_(4999)));
    assert!(tr.poll(eos + ms_(5001)));
    let recs = tr.take_records();
    assert_eq!(recs.len(), 1, "the second turn never started");
    assert_eq!(recs[0].error, Some(ErrorCategory::Timeout));
    assert_eq!(recs[0].ttfa_ms, None);
}

/// An agent that sends 186 s of audio within 2 s and then says it is done: the turn ends at the turn timeout as a
/// `timeout`, not when the audio would have finished playing three minutes later.
#[tokio::test(start_paused = true)]
async fn a_reply_that_plays_past_the_turn_timeout_is_cut_there() {
    let t0 = Instant::now();
    let mut tr = tracker(vec![turn(0, Expect::Respond, done(0))], t0);
    tr.schedule(0, ms_(20));
    let eos = t0 + ms_(1300);
    for k in 0..93 {
        audio(&mut tr, eos + ms_(500 + k * 15), 0, loud(2000));
    }
    response_done(&mut tr, eos + ms_(2000));
    assert!(!tr.poll(eos + ms_(4999)));
    assert!(tr.poll(eos + ms_(5001)), "the call ends at the turn timeout");
    let recs = tr.take_records();
    assert_eq!(recs[0].error, Some(ErrorCategory::Timeout));
    let msg = recs[0].error_message.as_deref().unwrap();
    assert!(msg.contains("plays past the 5000 ms turn timeout"), "{msg}");
    assert_eq!(recs[0].ttfa_ms, Some(500.0), "what was measured is kept");
}

/// Every frame from the one carrying the end of speech on went out at least 3 ms late: `user_eos` moves 3 ms and
/// TTFA is 3 ms shorter, so the harness's lateness is not charged to the agent. One frame far later than the rest
/// (9 ms) moves it no further, and a late frame before the window (7 ms) not at all.
#[tokio::test(start_paused = true)]
async fn user_eos_moves_with_the_lateness_its_frames_share() {
    let t0 = Instant::now();
    let mut tr = tracker(vec![turn(0, Expect::Respond, done(0))], t0);
    tr.schedule(0, ms_(20));
    // Speech ends at 1300 ms: one past the last voiced sample, which frame 64 ([1280, 1300) ms) carries.
    tr.sent(63, ms_(7));
    tr.sent(64, ms_(9));
    for k in 65..74 {
        tr.sent(k, ms_(3 + (k % 3)));
    }
    tr.sent(74, ms_(1));
    let eos = t0 + ms_(1300);
    audio(&mut tr, eos + ms_(500), 0, loud(400));
    response_done(&mut tr, eos + ms_(600));
    assert!(tr.poll(eos + ms_(2000)));
    let r = &tr.take_records()[0];
    assert_eq!(r.user_eos_ms, 1303.0);
    assert_eq!(r.ttfa_ms, Some(497.0));
    assert_eq!(r.user_onset_ms, 300.0, "the onset's frame (15) went out on time");
}

#[tokio::test(start_paused = true)]
async fn tool_calls_are_scored_and_answered() {
    let t0 = Instant::now();
    let mut a = turn(0, Expect::Respond, done(0));
    let matcher =
        |src: &str| Matcher::compile(&toml::from_str::<toml::Table>(&format!("x = {src}")).unwrap()["x"]).unwrap();
    a.tool_calls =
        vec![ExpectedCall { name: "check".into(), args: vec![("n".into(), matcher("4"))], sim_args: Json::Null }];
    let mut b = turn(1, Expect::Respond, done(0));
    b.tool_calls = vec![ExpectedCall { name: "book".into(), args: vec![], sim_args: Json::Null }];
    let tools = vec![
        ToolSpec {
            name: "check".into(),
            description: String::new(),
            parameters: serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
            results: vec![(vec![("n".into(), matcher("4"))], serde_json::json!({"ok": 4}))],
            default_result: serde_json::json!({"ok": false}),
            records: None,
        },
        ToolSpec {
            name: "book".into(),
            description: String::new(),
            parameters: serde_json::json!({"type": "object"}),
            results: vec![],
            default_result: serde_json::json!({"booked": true}),
            records: Some("bookings".into()),
        },
    ];
    let mut tr = Tracker::new(vec![a, b], tools, t0, RATE, ms_(5000), id());
    tr.schedule(0, ms_(20));
    let eos = t0 + ms_(1300);
    let call = |tr: &mut Tracker, at: Instant, name: &str, args: &str| {
        tr.on_event(&AgentEvent::ToolCall {
            at,
            first_at: at,
            call_id: "c".into(),
            name: name.into(),
            arguments: args.into(),
        })
    };
    let acts = call(&mut tr, eos + ms_(100), "check", r#"{"n": 8}"#);
    assert_eq!(acts, vec![Action::ToolResult { call_id: "c".into(), output: r#"{"ok":false}"#.into() }]);
    let acts = call(&mut tr, eos + ms_(200), "check", r#"{"n": 4}"#);
    assert_eq!(acts, vec![Action::ToolResult { call_id: "c".into(), output: r#"{"ok":4}"#.into() }]);
    call(&mut tr, eos + ms_(300), "book", "{}");
    call(&mut tr, eos + ms_(400), "check", r#"{"n": "#);
    call(&mut tr, eos + ms_(500), "check", r#"{"m": 1}"#);
    audio(&mut tr, eos + ms_(600), 0, loud(100));
    response_done(&mut tr, eos + ms_(600));
    tr.poll(eos + ms_(800));
    let r = tr.take_records().into_iter().find(|r| r.turn == 0).unwrap();
    assert_eq!(
        (r.tools_expected, r.tools_succeeded, r.tools_early, r.tools_unexpected, r.tools_malformed),
        (1, 1, 1, 1, 2)
    );
    assert_eq!(r.tool_call_ms, Some(100.0));
}

fn transcript(tr: &mut Tracker, at: Instant, text: &str, segment: bool) {
    tr.on_event(&AgentEvent::Transcript { at, text: text.into(), segment });
}

#[tokio::test(start_paused = true)]
async fn transcripts_go_to_the_reply_they_belong_to_and_are_judged() {
    let t0 = Instant::now();
    let mut a = turn(0, Expect::Respond, done(0));
    let patterns = |src: &str| {
        crate::scenario::content::compile_patterns(&toml::from_str::<toml::Table>(&format!("x = {src}")).unwrap()["x"])
            .unwrap()
    };
    a.content = crate::scenario::ContentCheck { say: patterns(r#""eight people""#), not_say: patterns(r#""four""#) };
    let mut b = turn(1, Expect::Respond, done(100));
    b.content = crate::scenario::ContentCheck { say: patterns(r#""booked""#), not_say: vec![] };
    let redactor = crate::redact::Redactor::new(crate::redact::default_kinds(), ["Jordan Lee".to_string()]);
    let mut tr = tracker(vec![a, b], t0).with_redactor(redactor);
    tr.schedule(0, ms_(20));
    let eos = t0 + ms_(1300);
    // Deltas before the audio (Gemini sends text first) and during it, concatenated as sent.
    transcript(&mut tr, eos + ms_(400), "For eight", false);
    audio(&mut tr, eos + ms_(500), 0, loud(400));
    transcript(&mut tr, eos + ms_(510), " people, Jordan Lee, 555-0142.", false);
    response_done(&mut tr, eos + ms_(520));
    tr.poll(eos + ms_(1000));
    let r = tr.take_records().pop().unwrap();
    assert_eq!(r.agent_text.as_deref(), Some("For eight people, [name], [phone]."));
    assert_eq!(r.content_ok, Some(true), "{:?}", r.content_detail);
    // The second reply comes as a whole segment and says nothing the check wants.
    assert!(tr.schedule(100, ms_(20)).is_some());
    let eos2 = eos + ms_(1000) + ms_(100) + ms_(1300);
    transcript(&mut tr, eos2 + ms_(300), "Sorry,", true);
    transcript(&mut tr, eos2 + ms_(301), "Jordan, we are full.", true);
    audio(&mut tr, eos2 + ms_(400), 1, loud(300));
    response_done(&mut tr, eos2 + ms_(410));
    assert!(tr.poll(eos2 + ms_(1000)));
    let r = tr.take_records().pop().unwrap();
    assert_eq!(r.agent_text.as_deref(), Some("Sorry, [name], we are full."));
    assert_eq!(r.content_ok, Some(false));
    assert_eq!(r.content_detail.as_deref(), Some(r#"did not say "booked""#));
}

#[tokio::test(start_paused = true)]
async fn a_provider_without_transcripts_leaves_content_unjudged_and_text_is_bounded() {
    let t0 = Instant::now();
    let mut a = turn(0, Expect::Respond, done(0));
    let v: toml::Table = toml::from_str(r#"x = "eight""#).unwrap();
    a.content.say = crate::scenario::content::compile_patterns(&v["x"]).unwrap();
    let mut tr = tracker(vec![a.clone()], t0);
    tr.schedule(0, ms_(20));
    let eos = t0 + ms_(1300);
    audio(&mut tr, eos + ms_(500), 0, loud(300));
    response_done(&mut tr, eos + ms_(510));
    tr.poll(eos + ms_(1000));
    let r = tr.take_records().pop().unwrap();
    assert_eq!((r.agent_text, r.content_ok), (None, None));
    // A provider that streams text without end: the turn keeps MAX_SAID bytes, cut on a character boundary.
    let mut tr = tracker(vec![a], t0);
    tr.schedule(0, ms_(20));
    for i in 0..10_000 {
        transcript(&mut tr, eos + ms_(400), "é eight ", i > 0 && i % 2 == 0);
    }
    audio(&mut tr, eos + ms_(500), 0, loud(300));
    response_done(&mut tr, eos + ms_(510));
    tr.poll(eos + ms_(1000));
    let r = tr.take_records().pop().unwrap();
    let text = r.agent_text.unwrap();
    assert!(text.len() <= super::MAX_SAID + 4 && text.ends_with('…'), "{}", text.len());
    assert_eq!(r.content_ok, Some(true));
}

#[tokio::test(start_paused = true)]
async fn recording_tools_fill_the_state_the_task_is_judged_on() {
    let t0 = Instant::now();
    let tools = vec![ToolSpec {
        name: "book".into(),
        description: String::new(),
        parameters: serde_json::json!({"type": "object", "properties": {"size": {"type": "integer"}, "name": {"type": "string"}}, "required": ["size"]}),
        results: vec![],
        default_result: serde_json::json!({"booked": true}),
        records: Some("bookings".into()),
    }];
    let redactor = crate::redact::Redactor::new(crate::redact::default_kinds(), []);
    let mut tr =
        Tracker::new(vec![turn(0, Expect::Respond, done(0))], tools, t0, RATE, ms_(5000), id()).with_redactor(redactor);
    tr.schedule(0, ms_(20));
    let eos = t0 + ms_(1300);
    let call = |tr: &mut Tracker, ms: u64, args: &str| {
        tr.on_event(&AgentEvent::ToolCall {
            at: eos + ms_(ms),
            first_at: eos + ms_(ms),
            call_id: "c".into(),
            name: "book".into(),
            arguments: args.into(),
        })
    };
    call(&mut tr, 100, r#"{"size": 8, "name": "Maria Okafor"}"#);
    // Breaks the schema: a backend refuses it, so it makes no row.
    call(&mut tr, 200, r#"{"size": "wrong"}"#);
    transcript(&mut tr, eos + ms_(300), "Booked for Maria.", false);
    let expect = |count| crate::scenario::StateExpect {
        table: "bookings".into(),
        matchers: vec![("size".into(), crate::scenario::Matcher::compile(&toml::Value::Integer(8)).unwrap())],
        count,
    };
    let o = tr.call_outcome(&[expect(1)]);
    assert_eq!(o.task, Some((true, "1 expectation held".into())));
    assert!(!tr.call_outcome(&[expect(2)]).task.unwrap().0);
    assert_eq!(tr.call_outcome(&[]).task, None);
    // The log has both calls, their outcomes, and the name the agent gave masked (it was learned from the call).
    let log: Vec<(&str, String)> = o.tool_calls.iter().map(|c| (c.outcome.as_str(), c.arguments.to_string())).collect();
    assert_eq!(
        log,
        vec![
            ("unexpected", r#"{"name":"[name]","size":8}"#.to_string()),
            ("malformed", r#"{"size":"wrong"}"#.to_string())
        ]
    );
    audio(&mut tr, eos + ms_(400), 0, loud(300));
    response_done(&mut tr, eos + ms_(410));
    tr.poll(eos + ms_(1000));
    assert_eq!(tr.take_records().pop().unwrap().agent_text.as_deref(), Some("Booked for [name]."));
}
