//! `voicebench validate`: the booking scenario passes; each kind of mistake exits 2 and points at file:line:col.

use std::path::Path;

use super::{root, text, voicebench};

/// Writes `scenario` next to a copy of nothing else, in a temp dir whose parent-walk finds no corpus unless given.
fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

/// The booking scenario with one line replaced, `corpus` pointed at the repo's corpus.
fn booking_with(replace: &str, with: &str) -> String {
    let src = std::fs::read_to_string(root().join("scenarios/booking.toml")).unwrap();
    assert!(src.contains(replace), "booking.toml no longer contains {replace:?}");
    let corpus = root().join("audio-corpus");
    let src = src.replacen(replace, with, 1);
    format!("corpus = {:?}\n{src}", corpus.to_string_lossy())
}

/// Line and column (1-based) of the first occurrence of `needle` in `src`.
fn pos(src: &str, needle: &str) -> (usize, usize) {
    let off = src.find(needle).unwrap_or_else(|| panic!("{needle:?} not in scenario"));
    let line = src[..off].matches('\n').count() + 1;
    let col = off - src[..off].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// Runs validate on a scenario body and returns (code, stderr), asserting the diagnostic location.
fn expect_error(name: &str, body: &str, at: &str, message: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("not-audio.wav"), "this is a text file, not audio").unwrap();
    let path = write(tmp.path(), name, body);
    let (code, _, err) = text(&voicebench(tmp.path(), &["validate", &path]));
    assert_eq!(code, 2, "{name}: expected exit 2\n{err}");
    let (line, col) = pos(body, at);
    let loc = format!("{path}:{line}:{col}: ");
    assert!(err.contains(&loc), "{name}: expected a diagnostic at {loc}\n{err}");
    assert!(err.contains(message), "{name}: expected {message:?}\n{err}");
    err
}

#[test]
fn booking_scenario_is_valid() {
    let (code, out, err) = text(&voicebench(&root(), &["validate", "scenarios/booking.toml"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok — scenario `booking`, 2 target(s), 8 turn(s), 3 expected tool call(s)"), "{out}");
}

#[test]
fn unknown_key_names_the_key_and_suggests() {
    let body = booking_with("frame_ms = 20", "fram_ms = 20");
    let err = expect_error("unknown-key.toml", &body, "fram_ms", "unknown key `fram_ms` in [defaults]");
    assert!(err.contains("did you mean `frame_ms`?"), "{err}");
}

#[test]
fn a_key_in_the_file_is_refused_without_echoing_it() {
    let body =
        booking_with("sim = \"native\"", "url = \"wss://example.invalid/v1/realtime\"\napi_key = \"sk-secret-123\"");
    let err = expect_error("key.toml", &body, "api_key = ", "unknown key `api_key`");
    assert!(err.contains("api_key_env"), "{err}");
    // The literal is itself an error, pointed at, and masked in every line shown: it is never printed.
    let (line, col) = pos(&body, "sk-secret-123");
    assert!(err.contains(&format!(":{line}:{col}: an API key is written in the scenario (masked here)")), "{err}");
    assert_eq!(err.matches("sk-secret-123").count(), 0, "{err}");
}

#[test]
fn a_key_in_a_url_is_refused_without_echoing_it() {
    let key = "AIzaSyA0123456789abcdefghijklmnopqrstu";
    let body = booking_with("sim = \"native\"", &format!("url = \"wss://example.invalid/v1?alt=1&key={key}\""));
    let err = expect_error("url-key.toml", &body, key, "an API key is written in the scenario");
    assert!(!err.contains("AIzaSy"), "{err}");
}

#[test]
fn malformed_urls_and_ports_are_located() {
    let body = booking_with("sim = \"native\"", "url = \"ws://127.0.0.1:99999/x\"");
    expect_error("port.toml", &body, "\"ws://127.0.0.1:99999/x\"", "the port `99999` is not a number in 1–65535");
    let body = booking_with("sim = \"native\"", "url = \"wss://exa mple.com/x\"");
    expect_error("space.toml", &body, "\"wss://exa mple.com/x\"", "is not a valid WebSocket URL: it contains ' '");
    let body = booking_with("sim = \"native\"", "url = \"ws://:8080/x\"");
    expect_error("host.toml", &body, "\"ws://:8080/x\"", "it has no host");
}

#[test]
fn a_directory_given_as_a_wav_says_so() {
    let body = booking_with("utterance = \"choose\"", "wav = \".\"");
    expect_error("dir.toml", &body, "\".\"", "is a directory, not a WAV file");
}

#[test]
fn a_long_line_is_cut_in_the_diagnostic() {
    let long = "a".repeat(10_000);
    let body = booking_with("frame_ms = 20", &format!("frame_ms = 20\nfram_x = \"{long}\""));
    let err = expect_error("long.toml", &body, "fram_x", "unknown key `fram_x`");
    assert!(err.len() < 2_000 && err.contains("…"), "{} bytes:\n{err}", err.len());
}

#[test]
fn non_utf8_input_is_located() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = b"name = \"booking\"\ndescription = \"caf".to_vec();
    bytes.extend([0xE9, b'"', b'\n']);
    let path = tmp.path().join("latin1.toml");
    std::fs::write(&path, &bytes).unwrap();
    let (code, _, err) = text(&voicebench(tmp.path(), &["validate", &path.to_string_lossy()]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{}:2:19: the file is not UTF-8 text: byte 0xe9", path.display())), "{err}");
}

#[test]
fn wrong_type_says_what_was_expected() {
    let body = booking_with("calls = 20 ", "calls = \"20\" ");
    let err = expect_error("type.toml", &body, "\"20\"", "wrong type in [defaults]: found string \"20\"");
    assert!(err.contains("write the number without quotes: 20"), "{err}");
}

#[test]
fn missing_wav_is_located() {
    let body = booking_with("utterance = \"choose\"", "wav = \"missing.wav\"");
    expect_error("missing.toml", &body, "\"missing.wav\"", "WAV file not found");
}

#[test]
fn non_wav_file_is_located_and_explained() {
    let body = booking_with("utterance = \"choose\"", "wav = \"not-audio.wav\"");
    expect_error("nonwav.toml", &body, "\"not-audio.wav\"", "not a WAV file");
}

#[test]
fn unknown_tool_suggests_the_right_one() {
    let body = booking_with("name = \"make_booking\"\nargs", "name = \"make_bookng\"\nargs");
    let err = expect_error("tool.toml", &body, "\"make_bookng\"", "unknown tool `make_bookng`");
    assert!(err.contains("did you mean `make_booking`?"), "{err}");
}

#[test]
fn bad_regex_is_located() {
    let body = booking_with("regex = '^\\D*(1\\D*)?555", "regex = '^\\D*(1\\D*?555");
    expect_error("regex.toml", &body, "{ regex = '^", "bad regex");
}

#[test]
fn unknown_corpus_line_and_voice() {
    let body = booking_with("utterance = \"choose\"", "utterance = \"chose\"");
    let err = expect_error("line.toml", &body, "\"chose\"", "the corpus has no caller line `chose`");
    assert!(err.contains("did you mean `choose`?"), "{err}");
    let body = booking_with("voice = \"joe\"", "voice = \"jo\"");
    expect_error("voice.toml", &body, "\"jo\"", "no `greeting` line in voice `jo`");
}

#[test]
fn incomplete_and_contradictory_targets() {
    let body = booking_with("sim = \"native\"", "model = \"gpt-realtime\"");
    expect_error("target.toml", &body, "\"sim-native\"", "has neither `url` nor `sim`");
    let body = booking_with("sim = \"pipeline\"\n", "").replacen(
        "provider = \"openai\"      # OpenAI-compatible /v1/audio/transcriptions after local endpointing",
        "provider = \"deepgram\"\nurl = \"https://x\"",
        1,
    );
    expect_error("pipe.toml", &body, "\"https://x\"", "is not a WebSocket URL");
    let body = booking_with("sim = \"native\"", "sim = \"nativ\"");
    let err = expect_error("sim.toml", &body, "\"nativ\"", "unknown sim profile `nativ`");
    assert!(err.contains("did you mean `native`?"), "{err}");
}

#[test]
fn turn_timing_rules() {
    let body = booking_with("delay_ms = 1500\n", "");
    expect_error("delay.toml", &body, "\"after_agent_start\"", "needs `delay_ms`");
    let body = booking_with("expect = \"no_takeover\"", "expect = \"stop\"");
    expect_error("stop.toml", &body, "\"stop\"            #", "needs the utterance to overlap the agent");
}

#[test]
fn every_problem_is_reported_at_once() {
    let body = booking_with("utterance = \"choose\"", "utterance = \"chose\"").replacen(
        "name = \"make_booking\"\nargs",
        "name = \"nope\"\nargs",
        1,
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "two.toml", &body);
    let (code, _, err) = text(&voicebench(tmp.path(), &["validate", &path]));
    assert_eq!(code, 2);
    assert!(err.contains("2 problems in"), "{err}");
}

/// Structural mistakes (which stop serde at the first) are all reported in one run: unknown keys in four tables
/// together with the checks behind them; wrong types in two elements and a misspelt value together, then the rest.
#[test]
fn every_structural_problem_is_reported_in_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, body: &str| {
        let path = write(tmp.path(), name, body);
        let (code, _, err) = text(&voicebench(tmp.path(), &["validate", &path]));
        assert_eq!(code, 2, "{err}");
        (err, body.to_string())
    };
    let at = |err: &str, body: &str, needle: &str, message: &str| {
        let (line, col) = pos(body, needle);
        assert!(err.contains(&format!(":{line}:{col}: {message}")), "expected {message:?} at {line}:{col}\n{err}");
    };
    // Unknown keys cut out change nothing, so the semantic checks run too: five problems, one run.
    let body = booking_with("frame_ms = 20", "fram_ms = 20")
        .replacen("sim = \"native\"", "sim = \"native\"\nmodle = \"m\"", 1)
        .replacen("stream = true ", "streem = true ", 1)
        .replacen("utterance = \"choose\"", "utterance = \"chose\"\nexpekt = 1", 1)
        .replacen("seed = 42", "seed = 42\ncolour = \"red\"", 1);
    let (err, body) = run("keys.toml", &body);
    assert!(err.contains("6 problems in"), "{err}");
    for (needle, message) in [
        ("fram_ms", "unknown key `fram_ms` in [defaults]"),
        ("modle", "unknown key `modle` in [[target]]"),
        ("streem", "unknown key `streem` in [target.stt]"),
        ("expekt", "unknown key `expekt` in [[turn]]"),
        ("colour", "unknown key `colour` in [defaults]"),
        ("\"chose\"", "the corpus has no caller line `chose`"),
    ] {
        at(&err, &body, needle, message);
    }
    // Wrong types and a misspelt value: all of them in the first run, the checks behind them in the next.
    let body = booking_with("calls = 20 ", "calls = \"20\" ")
        .replacen("protocol = \"pipeline\"", "protocol = \"pipelin\"", 1)
        .replacen("utterance = \"choose\"", "utterance = 77777", 1)
        .replacen("delay_ms = 1500", "delay_ms = -1500", 1)
        .replacen("utterance = \"goodbye\"", "utterance = \"goodby\"", 1);
    let (err, body) = run("types.toml", &body);
    assert!(err.contains("4 problems in"), "{err}");
    at(&err, &body, "\"20\"", "wrong type in [defaults]");
    at(&err, &body, "\"pipelin\"", "unknown value `pipelin`");
    at(&err, &body, "77777", "wrong type in [[turn]]");
    at(&err, &body, "-1500", "bad value in [[turn]]");
    assert!(!err.contains("goodby"), "the semantic checks wait for the shape:\n{err}");
}

#[test]
fn slo_keys_are_checked() {
    let body = booking_with("\"ttfa.p95\" = 2500", "\"ttfa.p96\" = 2500");
    expect_error("slo.toml", &body, "\"ttfa.p96\"", "unknown statistic `p96`");
    let body = booking_with("tool_success_rate = 0.85 ", "tool_success_rate = 90 ");
    expect_error("rate.toml", &body, "90          #", "is a rate between 0 and 1");
}

#[test]
fn unreadable_file_exits_2() {
    let (code, _, err) = text(&voicebench(&root(), &["validate", "scenarios/does-not-exist.toml"]));
    assert_eq!(code, 2);
    assert!(err.contains("scenarios/does-not-exist.toml"), "{err}");
}

#[test]
fn http_timeouts_auth_and_azure_are_checked() {
    let body = booking_with(
        "frame_ms = 20          # outgoing audio frame",
        "frame_ms = 20\nfirst_byte_timeout_ms = 50\nidle_timeout_ms = 10\n",
    );
    expect_error("fbt.toml", &body, "50\n", "`first_byte_timeout_ms` must be at least 100");
    expect_error("idle.toml", &body, "10\n", "`idle_timeout_ms` must be at least 100");
    let body = booking_with(
        "sim = \"native\"",
        "url = \"wss://r.openai.azure.com/openai/realtime?api-version=1&deployment=d\"\napi_key_env = \"K\"\nauth = \"apikey\"",
    );
    let err = expect_error("auth.toml", &body, "\"apikey\"", "unknown auth `apikey`");
    assert!(err.contains("api-key"), "{err}");
    // A simulated target may name a key only when its sim checks it (Azure mode).
    let body = booking_with("sim = \"native\"", "sim = \"native\"\napi_key_env = \"K\"");
    expect_error("simkey.toml", &body, "\"K\"", "a simulated target needs no API key");
    let body =
        booking_with("sim = \"native\"", "sim = \"native\"\napi_key_env = \"K\"\nsim_options = { azure = true }");
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "azure.toml", &body);
    let (code, out, err) = text(&voicebench(tmp.path(), &["validate", &path]));
    assert_eq!(code, 0, "{out}{err}");
}

/// Issue 18: content checks, state expectations and redaction are validated at file:line:col like every key.
#[test]
fn content_state_and_redaction_mistakes_point_at_their_value() {
    let body = booking_with(r#"say = "eight people""#, r#"say = ["eight people", { regex = "(eight" }]"#);
    expect_error("bad-say.toml", &body, r#"{ regex = "(eight" }"#, "`say`: bad regex `(eight`");
    let body = booking_with(r#"not_say = "four people""#, r#"not_say = { regx = "four" }"#);
    expect_error("bad-not-say.toml", &body, r#"{ regx = "four" }"#, "a content check cannot be a table with `regx`");
    let body = booking_with(r#"table = "bookings""#, r#"table = "bokings""#);
    let err = expect_error("bad-table.toml", &body, r#""bokings""#, "no tool records a table `bokings`");
    assert!(err.contains("did you mean `bookings`?"), "{err}");
    let body = booking_with(r#"where = { party_size = 8,"#, r#"where = { party = 8,"#);
    expect_error("bad-column.toml", &body, "party =", "tool `make_booking` has no parameter `party`");
    let body = booking_with(r#"redact = ["phone", "name"]"#, r#"redact = ["phone", "nmae"]"#);
    let err = expect_error("bad-redact.toml", &body, r#""nmae""#, "unknown redaction `nmae`");
    assert!(err.contains("valid kinds: `phone`, `name`, `email`, `dates`, or `{ regex"), "{err}");
    let body = booking_with("expect = \"ignore\"\n", "expect = \"ignore\"\nsay = \"hm\"\n");
    expect_error("say-on-ignore.toml", &body, r#""hm""#, "an `ignore` turn (a backchannel) gets no reply to check");
    let body = booking_with(r#"records = "bookings""#, r#"records = "book ings""#);
    expect_error("bad-records.toml", &body, r#""book ings""#, "is not a table name");
}

#[test]
fn network_mistakes_point_at_their_value_and_the_telephony_scenario_is_valid() {
    let (code, out, err) = text(&voicebench(&root(), &["validate", "scenarios/telephony.toml"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("scenario `telephony`, 3 target(s)"), "{out}");
    let sim = "sim = \"native\"\n";
    let body = booking_with(sim, "sim = \"native\"\nnetwork = \"3g\"\n");
    let err = expect_error("bad-preset.toml", &body, "\"3g\"", "unknown network preset `3g`");
    assert!(err.contains("use `lan`, `wifi`, `4g`, `pstn`, `bad-cellular`, or `none`"), "{err}");
    let body = booking_with(sim, "sim = \"native\"\nnetwork = { preset = \"4g\", los = 0.1 }\n");
    let err = expect_error("bad-net-key.toml", &body, "{ preset", "unknown `network` key `los`");
    assert!(err.contains("see docs/network.md"), "{err}");
    let body = booking_with(sim, "sim = \"native\"\nnetwork = { loss = 0.9 }\n");
    expect_error("bad-loss.toml", &body, "{ loss", "`loss` must be 0–0.5, not 0.9");
    let body = booking_with(sim, "sim = \"native\"\ntelephone = \"yes\"\n");
    expect_error("bad-telephone.toml", &body, "\"yes\"", "telephone");
    // The command line's preset is checked before anything runs.
    let (code, _, err) = text(&voicebench(&root(), &["run", "scenarios/booking.toml", "--network", "5g"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown network preset `5g`"), "{err}");
}
