//! The pipeline's LLM stage: OpenAI-compatible `POST /v1/chat/completions` with `stream: true` and tools
//! (docs/protocols.md §5.3). [`ChatDecoder`] turns the SSE chunks into content tokens and complete tool calls, by the
//! rules the recorded stream shows: tool-call fragments accumulate per `index` (the id and name come only in a
//! call's first fragment), the role-only first chunk (`content: ""`) is not the first token, and the usage chunk
//! has `choices: []`.

use serde_json::{Value as Json, json};

use crate::scenario::{Scenario, ToolSpec};

/// What a chunk contributed.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    /// Non-empty assistant text.
    Content(String),
    /// The model finished: `stop`, `tool_calls`, `length`, …
    Finish(String),
}

/// A tool call assembled from its fragments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolCallAcc {
    /// The provider's call id.
    pub id: String,
    /// Function name.
    pub name: String,
    /// Argument text, concatenated.
    pub arguments: String,
}

/// Decodes one response's chunks.
#[derive(Debug, Default)]
pub struct ChatDecoder {
    /// Tool calls by `index`.
    pub calls: Vec<ToolCallAcc>,
    /// The stream's error, if a chunk carried one.
    pub error: Option<String>,
    /// The first thing the stream did that breaks the protocol or a bound (an unparseable chunk, a tool-call
    /// index or arguments past their bound): the response is a Protocol failure.
    pub violation: Option<String>,
}

impl ChatDecoder {
    /// Decodes the data of one SSE event (`[DONE]` yields nothing).
    pub fn feed(&mut self, data: &str) -> Vec<LlmEvent> {
        let mut out = Vec::new();
        if data.trim() == "[DONE]" {
            return out;
        }
        let Ok(v) = serde_json::from_str::<Json>(data) else {
            self.violation.get_or_insert_with(|| format!("unparseable chunk: {}", truncate(data, 200)));
            return out;
        };
        if let Some(e) = v.get("error") {
            self.error = Some(e.get("message").and_then(Json::as_str).unwrap_or("error").to_string());
            return out;
        }
        let Some(choices) = v.get("choices").and_then(Json::as_array) else { return out };
        for c in choices {
            let delta = &c["delta"];
            if let Some(text) = delta.get("content").and_then(Json::as_str)
                && !text.is_empty()
            {
                out.push(LlmEvent::Content(text.to_string()));
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Json::as_array) {
                for tc in calls {
                    self.tool_delta(tc);
                }
            }
            if let Some(f) = c.get("finish_reason").and_then(Json::as_str) {
                out.push(LlmEvent::Finish(f.to_string()));
            }
        }
        out
    }
}

impl ChatDecoder {
    /// Adds one streamed tool-call fragment to the call at its `index`. The index, the name, the id and the
    /// arguments come from the provider, so each is bounded before it sizes anything: a fragment past a bound is
    /// the response's error (Protocol) and is dropped.
    fn tool_delta(&mut self, tc: &Json) {
        let i = tc.get("index").and_then(Json::as_u64).unwrap_or(self.calls.len() as u64);
        if i >= MAX_TOOL_CALLS as u64 {
            self.violation.get_or_insert_with(|| format!("tool-call index {i} is past the {MAX_TOOL_CALLS} allowed"));
            return;
        }
        let i = i as usize;
        while self.calls.len() <= i {
            self.calls.push(ToolCallAcc::default());
        }
        let acc = &mut self.calls[i];
        if let Some(id) = tc.get("id").and_then(Json::as_str) {
            acc.id = crate::secret::cut(id, MAX_NAME).to_string();
        }
        let f = tc.get("function");
        let name = f.and_then(|f| f.get("name")).and_then(Json::as_str).unwrap_or("");
        let args = f.and_then(|f| f.get("arguments")).and_then(Json::as_str).unwrap_or("");
        if acc.name.len() + name.len() > MAX_NAME || acc.arguments.len() + args.len() > MAX_ARGUMENTS {
            self.violation.get_or_insert_with(|| {
                format!("tool call {i}'s name or arguments went past {MAX_NAME} / {MAX_ARGUMENTS} bytes")
            });
            return;
        }
        acc.name.push_str(name);
        acc.arguments.push_str(args);
    }
}

/// The most tool calls one response may make (indices 0 to this − 1).
pub const MAX_TOOL_CALLS: usize = 64;
/// The longest tool name or call id kept.
pub const MAX_NAME: usize = 256;
/// The longest arguments text of one tool call.
pub const MAX_ARGUMENTS: usize = 64 << 10;

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The `tools` array of a request, from the scenario's tools.
pub fn tools_json(tools: &[ToolSpec]) -> Json {
    Json::Array(
        tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect(),
    )
}

/// The system message: the scenario's instructions, exactly as native targets get them.
pub fn system_message(scenario: &Scenario) -> Json {
    json!({"role": "system", "content": scenario.agent.instructions.clone().unwrap_or_default()})
}

/// The request body for one completion.
pub fn request_body(model: Option<&str>, messages: &[Json], tools: &Json) -> Json {
    let mut b = json!({
        "model": model.unwrap_or("gpt-4o-mini"),
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if tools.as_array().is_some_and(|a| !a.is_empty()) {
        b["tools"] = tools.clone();
        b["tool_choice"] = json!("auto");
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Json {
        crate::protocol_fixture("openai_chat_completions_stream_recorded.json")
    }

    fn run(name: &str) -> (ChatDecoder, Vec<LlmEvent>) {
        let f = fixture();
        let mut d = ChatDecoder::default();
        let mut evs = Vec::new();
        for e in f[name]["events"].as_array().unwrap() {
            evs.extend(d.feed(&e.to_string()));
        }
        evs.extend(d.feed("[DONE]"));
        (d, evs)
    }

    #[test]
    fn recorded_single_tool_call_assembles() {
        let (d, evs) = run("single_tool_call");
        assert_eq!(d.calls.len(), 1);
        assert_eq!(d.calls[0].name, "GetWeatherArgs");
        assert!(d.calls[0].id.starts_with("call_"));
        let args: Json = serde_json::from_str(&d.calls[0].arguments).expect("fragments concatenate to JSON");
        assert!(args.is_object());
        assert_eq!(evs, vec![LlmEvent::Finish("tool_calls".into())]);
        assert!(d.error.is_none());
    }

    #[test]
    fn recorded_parallel_tool_calls_accumulate_by_index() {
        let (d, evs) = run("parallel_tool_calls");
        assert!(d.calls.len() >= 2);
        for c in &d.calls {
            assert!(c.id.starts_with("call_") && !c.name.is_empty());
            assert!(serde_json::from_str::<Json>(&c.arguments).unwrap().is_object());
        }
        assert!(evs.contains(&LlmEvent::Finish("tool_calls".into())));
    }

    #[test]
    fn recorded_text_answer_skips_the_role_only_chunk() {
        let (d, evs) = run("plain_text");
        assert!(d.calls.is_empty());
        let text: String =
            evs.iter().filter_map(|e| if let LlmEvent::Content(t) = e { Some(t.as_str()) } else { None }).collect();
        assert!(!text.is_empty());
        assert!(matches!(evs.first(), Some(LlmEvent::Content(t)) if !t.is_empty()));
        assert_eq!(evs.last(), Some(&LlmEvent::Finish("stop".into())));
    }

    #[test]
    fn a_tool_call_index_bomb_is_an_error_not_an_allocation() {
        let mut d = ChatDecoder::default();
        let bomb = r#"{"choices":[{"delta":{"tool_calls":[{"index":100000000,"id":"c","function":{"name":"x","arguments":"{}"}}]}}]}"#;
        d.feed(bomb);
        assert!(d.calls.is_empty(), "nothing sized from the index");
        assert!(d.violation.as_deref().unwrap().contains("index 100000000"), "{:?}", d.violation);
        // Arguments that never stop growing are cut off too.
        let mut d = ChatDecoder::default();
        let chunk =
            json!({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"a".repeat(40_000)}}]}}]});
        d.feed(&chunk.to_string());
        d.feed(&chunk.to_string());
        assert_eq!(d.calls[0].arguments.len(), 40_000);
        assert!(d.violation.is_some());
    }

    #[test]
    fn errors_and_garbage_are_reported() {
        let mut d = ChatDecoder::default();
        assert!(d.feed(r#"{"error":{"message":"rate limited"}}"#).is_empty());
        assert_eq!(d.error.as_deref(), Some("rate limited"));
        let mut d = ChatDecoder::default();
        d.feed("{not json");
        assert!(d.violation.unwrap().starts_with("unparseable chunk"));
    }
}
