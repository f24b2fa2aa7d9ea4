//! The pipeline sim's LLM service: `POST /v1/chat/completions` streamed as the recorded OpenAI chunks — the
//! turn's tool calls (id and name first, then argument fragments, then `finish_reason: "tool_calls"`) or the
//! reply's text one word-token at a time.

use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::time::Instant;

use super::{Exchange, finish, mark_first, truth, wait_or_cancel};
use crate::sim::GroundTruthKind;
use crate::sim::ToolCallTruth;
use crate::sim::profile::{chance, log_uniform};

fn chunk_json(id: &str, delta: Json, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": "sim-pipeline",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

/// `POST /v1/chat/completions`.
pub(super) async fn chat(x: &mut Exchange<'_>) -> std::io::Result<bool> {
    let Exchange { c, req, ctx, shared, idx, rng } = x;
    let (ctx, shared, idx) = (*ctx, *shared, *idx);
    let Ok(body) = serde_json::from_slice::<Json>(&req.body) else {
        c.error(400, "the body is not JSON").await?;
        return Ok(true);
    };
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let declared: Vec<String> = body["tools"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["function"]["name"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    let last_user = msgs.iter().rposition(|m| m["role"] == "user");
    let turn = last_user.and_then(|u| ctx.turn_of(msgs[u]["content"].as_str().unwrap_or("")));
    let answered = last_user.is_some_and(|u| {
        msgs[u..].iter().any(|m| m["role"] == "assistant" && m.get("tool_calls").is_some_and(|t| !t.is_null()))
    });
    let calls: Vec<(String, Json)> = match turn {
        Some(t) if !answered => ctx.turns[t].tools.iter().filter(|(n, _)| declared.contains(n)).cloned().collect(),
        _ => Vec::new(),
    };
    let i = truth(shared, idx, turn, GroundTruthKind::Llm, req.complete_at);
    let id = format!("chatcmpl-sim{idx}x{i}");
    c.start_stream("text/event-stream").await?;
    let ttft = ctx.profile.draw(rng, ctx.profile.llm_ttft_ms, 0.3);
    let first_at = req.complete_at + Duration::from_secs_f64(ttft / 1000.0);
    if calls.is_empty() {
        let mut text = turn.and_then(|t| ctx.turns[t].reply_text.clone()).unwrap_or_else(|| ctx.fallback_text.clone());
        // No draw at rate 0: the random stream stays what it was without the option.
        let misspoke = ctx.profile.misspeak_rate > 0.0 && chance(rng, ctx.profile.misspeak_rate);
        if misspoke {
            text = crate::sim::replies::misspeak(&text);
        }
        shared.update(i, |g| {
            g.text = Some(text.clone());
            g.misspoke = misspoke;
        });
        c.chunk(chunk_json(&id, json!({"role": "assistant", "content": ""}), None).as_bytes()).await?;
        let token = if ctx.profile.fixed { ctx.profile.token_ms } else { log_uniform(rng, ctx.profile.token_ms, 1.6) };
        let words: Vec<&str> = text.split_whitespace().collect();
        for (k, w) in words.iter().enumerate() {
            let due = first_at + Duration::from_secs_f64(k as f64 * token / 1000.0);
            if !wait_or_cancel(c, shared, i, due).await {
                return Ok(false);
            }
            if k == 0 {
                mark_first(shared, i, Instant::now());
            }
            let piece = if k == 0 { (*w).to_string() } else { format!(" {w}") };
            c.chunk(chunk_json(&id, json!({"content": piece}), None).as_bytes()).await?;
        }
        let end = first_at + Duration::from_secs_f64(words.len() as f64 * token / 1000.0);
        if !wait_or_cancel(c, shared, i, end).await {
            return Ok(false);
        }
        c.chunk(chunk_json(&id, json!({}), Some("stop")).as_bytes()).await?;
    } else {
        if !wait_or_cancel(c, shared, i, first_at).await {
            return Ok(false);
        }
        mark_first(shared, i, Instant::now());
        let (out, truths) = tool_call_chunks(&id, &calls, idx, i, ctx, rng);
        c.chunk(out.as_bytes()).await?;
        shared.update(i, |g| g.tool_calls = truths);
    }
    let usage = json!({"id": id, "object": "chat.completion.chunk", "choices": [],
                       "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}});
    c.chunk(format!("data: {usage}\n\ndata: [DONE]\n\n").as_bytes()).await?;
    c.end_stream().await?;
    finish(shared, i, false);
    Ok(true)
}

/// The chunks of a tool-call answer (each call's id and name, then its argument fragments, then
/// `finish_reason: "tool_calls"`) and the truth of each call.
fn tool_call_chunks(
    id: &str,
    calls: &[(String, Json)],
    idx: u64,
    i: usize,
    ctx: &super::Ctx,
    rng: &mut crate::stats::SplitMix64,
) -> (String, Vec<ToolCallTruth>) {
    let mut out = String::new();
    let mut truths = Vec::new();
    for (k, (name, args)) in calls.iter().enumerate() {
        let mut args = args.clone();
        let mut wrong = None;
        if chance(rng, ctx.profile.tool_arg_error_rate)
            && let Some(obj) = args.as_object_mut()
            && let Some(key) = obj.keys().next().cloned()
        {
            obj.insert(key.clone(), json!("wrong"));
            wrong = Some(key);
        }
        let text = args.to_string();
        let call_id = format!("call_sim{idx}x{i}x{k}");
        out.push_str(&chunk_json(
            id,
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": k, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
            None,
        ));
        let n = ctx.profile.tool_arg_deltas.max(1) as usize;
        let chars: Vec<char> = text.chars().collect();
        let per = chars.len().div_ceil(n).max(1);
        let mut deltas = 0;
        for piece in chars.chunks(per) {
            let piece: String = piece.iter().collect();
            out.push_str(&chunk_json(
                id,
                json!({"tool_calls": [{"index": delta_index(ctx, k), "function": {"arguments": piece}}]}),
                None,
            ));
            deltas += 1;
        }
        truths.push(ToolCallTruth {
            call_id,
            name: name.clone(),
            arguments: text,
            wrong_arg: wrong,
            deltas,
            first_delta_at: None,
            first_delta_ms: None,
            done_at: None,
            done_ms: None,
        });
    }
    out.push_str(&chunk_json(id, json!({}), Some("tool_calls")));
    (out, truths)
}

/// The `index` of a call's argument deltas: its own, or under `tool-index-bomb` 100000000.
fn delta_index(ctx: &super::Ctx, k: usize) -> usize {
    if ctx.fault == Some(crate::scenario::schema::SimFault::ToolIndexBomb) { 100_000_000 } else { k }
}
