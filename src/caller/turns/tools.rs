//! Tool calls: the canned answer the caller sends back, and the call's score against the scenario's expected calls
//! (succeeded, early, late, unexpected, malformed).

use serde_json::Value as Json;
use tokio::time::Instant;

use super::{Action, MAX_TOOL_LOG, Tracker, ms};
use crate::model::ToolCallLog;

impl Tracker {
    /// A tool call: scored on the turn that owns it, answered with the scenario's canned result.
    pub(super) fn on_tool_call(&mut self, at: Instant, call_id: &str, name: &str, arguments: &str) -> Vec<Action> {
        let owner = self.reply_owner_at(at).or_else(|| self.latest_started(at));
        let tool = self.tools.iter().find(|t| t.name == name);
        let parsed: Option<Json> = serde_json::from_str::<Json>(arguments).ok().filter(|v| v.is_object());
        let output = match (tool, &parsed) {
            (Some(t), Some(args)) => t.result_for(args).to_string(),
            (Some(t), None) => t.default_result.to_string(),
            (None, _) => serde_json::json!({"error": format!("unknown tool {name}")}).to_string(),
        };
        // The arguments, when they are a JSON object that respects the tool's schema (any object for a tool the
        // scenario does not declare).
        let well_formed = match (tool, &parsed) {
            (_, None) => false,
            (Some(t), Some(args)) => conforms(args, &t.parameters),
            (None, Some(_)) => true,
        };
        // A tool that records a table adds a well-formed call's arguments as a row, whatever turn it came in (a
        // backend refuses a call that breaks its schema).
        let records = tool.and_then(|t| t.records.clone()).filter(|_| well_formed);
        let outcome = match owner {
            Some(j) => {
                if self.open_response.is_none() {
                    self.open_response = Some(j);
                }
                self.state[j].tools.first_at.get_or_insert(at);
                match parsed.as_ref().filter(|_| well_formed) {
                    None => {
                        self.state[j].tools.malformed += 1;
                        "malformed"
                    }
                    Some(args) => self.score(j, name, args),
                }
            }
            None => "unexpected",
        };
        self.log_call(owner, at, name, arguments, parsed.as_ref(), outcome);
        if let (Some(table), Some(args)) = (records, parsed) {
            self.tables.insert(&table, args);
        }
        vec![Action::ToolResult { call_id: call_id.to_string(), output }]
    }

    /// Logs a call for `calls.jsonl` (bounded), and learns the names its arguments carry for redaction.
    fn log_call(
        &mut self,
        turn: Option<usize>,
        at: Instant,
        name: &str,
        raw: &str,
        args: Option<&Json>,
        outcome: &str,
    ) {
        if let Some(a) = args {
            self.redactor.learn_from_args(a);
        }
        if self.tool_log.len() >= MAX_TOOL_LOG {
            return;
        }
        let arguments = match args {
            Some(a) => a.clone(),
            None => Json::String(raw.chars().take(1024).collect()),
        };
        self.tool_log.push(ToolCallLog {
            turn: turn.map(|j| j as u32),
            name: name.to_string(),
            arguments,
            outcome: outcome.to_string(),
            at_ms: ms(at.saturating_duration_since(self.t0)),
        });
    }

    /// Scores a well-formed call attributed to turn `j`; returns the outcome's name.
    fn score(&mut self, j: usize, name: &str, args: &Json) -> &'static str {
        let here = self.turns[j]
            .tool_calls
            .iter()
            .enumerate()
            .position(|(k, e)| !self.state[j].tools.satisfied[k] && e.matches(name, args));
        let early =
            || ((j + 1)..self.turns.len()).any(|i| self.turns[i].tool_calls.iter().any(|e| e.matches(name, args)));
        let late = || {
            (0..j).any(|i| {
                self.turns[i]
                    .tool_calls
                    .iter()
                    .enumerate()
                    .any(|(k, e)| !self.state[i].tools.satisfied[k] && e.matches(name, args))
            })
        };
        if let Some(k) = here {
            let score = &mut self.state[j].tools;
            score.satisfied[k] = true;
            score.succeeded += 1;
            "succeeded"
        } else if early() {
            self.state[j].tools.early += 1;
            "early"
        } else if late() {
            self.state[j].tools.late += 1;
            "late"
        } else {
            self.state[j].tools.unexpected += 1;
            "unexpected"
        }
    }
}

/// Whether tool arguments satisfy the basics of their JSON Schema: required properties present, declared
/// primitive types respected.
pub fn conforms(args: &Json, schema: &Json) -> bool {
    let Some(obj) = args.as_object() else { return false };
    if let Some(req) = schema["required"].as_array()
        && req.iter().filter_map(|r| r.as_str()).any(|r| !obj.contains_key(r))
    {
        return false;
    }
    let Some(props) = schema["properties"].as_object() else { return true };
    obj.iter().all(|(k, v)| match props.get(k).and_then(|p| p["type"].as_str()) {
        Some("integer") => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        Some("number") => v.is_number(),
        Some("string") => v.is_string(),
        Some("boolean") => v.is_boolean(),
        Some("array") => v.is_array(),
        Some("object") => v.is_object(),
        _ => true,
    })
}
