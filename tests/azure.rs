//! Azure OpenAI end to end over real sockets: the OpenAI Realtime and pipeline sims in Azure mode
//! (`sim_options.azure`) serve Azure's URLs (`/openai/realtime?api-version=…&deployment=…`,
//! `/openai/deployments/{d}/…?api-version=…`) and refuse, as Azure does, a request without the right `api-key`
//! header (401) or without `api-version` (404). A realtime and a pipeline target with `auth = "api-key"` and a key
//! from the environment variable the scenario names must pass; the same targets sending the key as a Bearer token
//! must fail as `auth`; the key must appear in no output.

use super::{text, write_fixed_scenario};

const KEY: &str = "azure-test-key-5f1b9c0e7a2d4c68";
const VAR: &str = "VOICEBENCH_TEST_AZURE_KEY";

fn pipeline(name: &str, auth: &str) -> String {
    let stage =
        |which: &str| format!("[target.{which}]\nprovider = \"openai\"\napi_key_env = \"{VAR}\"\nauth = \"{auth}\"\n");
    format!(
        "\n[[target]]\nname = \"{name}\"\nprotocol = \"pipeline\"\nsim = \"fixed\"\nsim_options = {{ azure = true }}\n{}{}{}",
        stage("stt"),
        stage("llm"),
        stage("tts")
    )
}

#[test]
fn azure_realtime_and_pipeline_targets_pass_with_the_api_key_header_and_fail_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"
[[target]]
name = "azure-rt"
protocol = "openai-realtime"
sim = "fixed"
model = "gpt-realtime"
api_key_env = "{VAR}"
auth = "api-key"
sim_options = {{ azure = true, reply_delay_ms = 400, interrupt_delay_ms = 100 }}

[[target]]
name = "azure-rt-bearer"
protocol = "openai-realtime"
sim = "fixed"
api_key_env = "{VAR}"
sim_options = {{ azure = true }}
{}{}"#,
        pipeline("azure-pipe", "api-key"),
        pipeline("azure-pipe-bearer", "bearer")
    );
    let path = write_fixed_scenario(tmp.path(), "azure.toml", &extra);
    let out = tmp.path().join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_voicebench"))
        .args(["run", path.to_str().unwrap(), "--calls", "1", "--concurrency", "5", "--out", out.to_str().unwrap()])
        .env(VAR, KEY)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let (code, stdout, stderr) = text(&o);
    assert_ne!(code, 101, "the run panicked\n{stderr}");
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "the key was printed:\n{stdout}\n{stderr}");
    for p in super::files_under(&out) {
        let body = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
        assert!(!body.contains(KEY), "{} contains the key", p.display());
    }
    let turns: Vec<serde_json::Value> = std::fs::read_to_string(out.join("turns.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |name: &str| turns.iter().filter(|t| t["target"] == name).collect::<Vec<_>>();
    for name in ["azure-rt", "azure-pipe"] {
        let ts = of(name);
        assert_eq!(ts.len(), 3, "{name}: {turns:#?}");
        for t in ts {
            assert!(t["error"].is_null() && t["ttfa_ms"].is_number(), "{name} with the api-key header: {t:#}");
        }
    }
    // Refused at set-up, these calls have no turns: calls.csv has their category and Azure's status.
    let calls = std::fs::read_to_string(out.join("calls.csv")).unwrap();
    for name in ["azure-rt-bearer", "azure-pipe-bearer"] {
        let line = calls.lines().find(|l| l.starts_with(&format!("{name},"))).unwrap_or_else(|| panic!("{calls}"));
        let refused_call = line.contains(",auth,") && line.contains("401");
        let refused_turn =
            of(name).iter().any(|t| t["error"] == "auth" && t["error_message"].to_string().contains("401"));
        assert!(refused_call || refused_turn, "{name} must fail as auth with Azure's 401: {line}\n{:#?}", of(name));
        assert!(of(name).iter().all(|t| t["ttfa_ms"].is_null()), "{name} answered without the api-key header");
    }
}
