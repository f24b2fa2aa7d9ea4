//! OpenAI Realtime client events for the sim's OpenAI wire, in both dialects: parsed and validated the way the real
//! service validates them (docs/protocols.md §1.2, §1.9); every failure is the real `error` event's `error` object.

use serde_json::{Map, Value};

use super::session::{ApiError, Dialect, as_obj, as_str, as_u64, join, one_of, only};
use crate::sim::replies::WireFormat;

/// A validated client event.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `session.update`.
    SessionUpdate(Value),
    /// `input_audio_buffer.append` (decoded bytes).
    Append(Vec<u8>),
    /// `input_audio_buffer.commit`.
    Commit,
    /// `input_audio_buffer.clear`.
    Clear,
    /// `conversation.item.create`.
    ItemCreate {
        /// Where to insert.
        previous_item_id: Option<String>,
        /// The item.
        item: Value,
    },
    /// `conversation.item.truncate`.
    ItemTruncate {
        /// Item.
        item_id: String,
        /// Content part.
        content_index: u64,
        /// Audio heard, ms.
        audio_end_ms: u64,
    },
    /// `conversation.item.delete`.
    ItemDelete(String),
    /// `conversation.item.retrieve`.
    ItemRetrieve(String),
    /// `response.create`.
    ResponseCreate(Option<Value>),
    /// `response.cancel`.
    ResponseCancel(Option<String>),
}

const KNOWN: &[&str] = &[
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
];

fn req<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a Value, ApiError> {
    o.get(key).ok_or_else(|| ApiError::missing(key))
}

/// Parses and validates one client event. `audio_format` is the session's input format (for `append`).
/// On error, also returns the client's `event_id` when one could be read.
pub fn parse_event(
    text: &str,
    dialect: Dialect,
    audio_format: WireFormat,
    scratch: &mut Vec<u8>,
) -> Result<(Option<String>, ClientEvent), (Option<String>, ApiError)> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        (None, ApiError::new("invalid_json", format!("We could not parse the JSON body of your request. ({e})"), None))
    })?;
    let Some(o) = v.as_object() else {
        return Err((None, ApiError::new("invalid_event", "Expected a JSON object as the event.", None)));
    };
    let event_id = o.get("event_id").and_then(Value::as_str).map(str::to_string);
    let fail = |e: ApiError| (event_id.clone(), e);
    if let Some(id) = o.get("event_id")
        && !id.is_string()
    {
        return Err(fail(ApiError::wrong_type("event_id", "a string", id)));
    }
    let Some(ty) = o.get("type") else {
        return Err(fail(ApiError::new("invalid_event", "The 'type' field is missing.", None)));
    };
    let ty = one_of(ty, "type", KNOWN).map_err(fail)?;
    let ev = (|| -> Result<ClientEvent, ApiError> {
        Ok(match ty {
            "session.update" => {
                only(o, &["type", "event_id", "session"], "")?;
                let s = req(o, "session")?;
                as_obj(s, "session")?;
                ClientEvent::SessionUpdate(s.clone())
            }
            "input_audio_buffer.append" => append(o, audio_format, scratch)?,
            "input_audio_buffer.commit" => {
                only(o, &["type", "event_id"], "")?;
                ClientEvent::Commit
            }
            "input_audio_buffer.clear" => {
                only(o, &["type", "event_id"], "")?;
                ClientEvent::Clear
            }
            "conversation.item.create" => {
                only(o, &["type", "event_id", "previous_item_id", "item"], "")?;
                let prev = match o.get("previous_item_id") {
                    None | Some(Value::Null) => None,
                    Some(p) => Some(as_str(p, "previous_item_id")?.to_string()),
                };
                let item = req(o, "item")?;
                check_item(item, dialect)?;
                ClientEvent::ItemCreate { previous_item_id: prev, item: item.clone() }
            }
            "conversation.item.truncate" => {
                only(o, &["type", "event_id", "item_id", "content_index", "audio_end_ms"], "")?;
                ClientEvent::ItemTruncate {
                    item_id: as_str(req(o, "item_id")?, "item_id")?.to_string(),
                    content_index: as_u64(req(o, "content_index")?, "content_index")?,
                    audio_end_ms: as_u64(req(o, "audio_end_ms")?, "audio_end_ms")?,
                }
            }
            "conversation.item.delete" | "conversation.item.retrieve" => {
                only(o, &["type", "event_id", "item_id"], "")?;
                let id = as_str(req(o, "item_id")?, "item_id")?.to_string();
                if ty == "conversation.item.delete" {
                    ClientEvent::ItemDelete(id)
                } else {
                    ClientEvent::ItemRetrieve(id)
                }
            }
            "response.create" => response_create(o, dialect)?,
            "response.cancel" => {
                only(o, &["type", "event_id", "response_id"], "")?;
                ClientEvent::ResponseCancel(match o.get("response_id") {
                    None | Some(Value::Null) => None,
                    Some(r) => Some(as_str(r, "response_id")?.to_string()),
                })
            }
            _ => unreachable!("type checked against KNOWN"),
        })
    })()
    .map_err(fail)?;
    Ok((event_id, ev))
}

fn check_item(item: &Value, dialect: Dialect) -> Result<(), ApiError> {
    let o = as_obj(item, "item")?;
    let ty = req(o, "type").map_err(|_| ApiError::missing("item.type"))?;
    match one_of(ty, "item.type", &["message", "function_call", "function_call_output"])? {
        "function_call_output" => {
            only(o, &["type", "id", "object", "status", "call_id", "output"], "item")?;
            as_str(o.get("call_id").ok_or_else(|| ApiError::missing("item.call_id"))?, "item.call_id")?;
            as_str(o.get("output").ok_or_else(|| ApiError::missing("item.output"))?, "item.output")?;
        }
        "function_call" => {
            only(o, &["type", "id", "object", "status", "call_id", "name", "arguments"], "item")?;
            as_str(o.get("call_id").ok_or_else(|| ApiError::missing("item.call_id"))?, "item.call_id")?;
            as_str(o.get("name").ok_or_else(|| ApiError::missing("item.name"))?, "item.name")?;
            as_str(o.get("arguments").ok_or_else(|| ApiError::missing("item.arguments"))?, "item.arguments")?;
        }
        _ => {
            only(o, &["type", "id", "object", "status", "role", "content"], "item")?;
            one_of(
                o.get("role").ok_or_else(|| ApiError::missing("item.role"))?,
                "item.role",
                &["user", "assistant", "system"],
            )?;
            let content = o.get("content").ok_or_else(|| ApiError::missing("item.content"))?;
            let arr = content.as_array().ok_or_else(|| ApiError::wrong_type("item.content", "an array", content))?;
            let kinds: &[&str] = match dialect {
                Dialect::Ga => &["input_text", "input_audio", "input_image", "output_text", "output_audio"],
                Dialect::Beta => &["input_text", "input_audio", "item_reference", "text", "audio"],
            };
            for (i, c) in arr.iter().enumerate() {
                let cp = format!("item.content[{i}]");
                let co = as_obj(c, &cp)?;
                one_of(
                    co.get("type").ok_or_else(|| ApiError::missing(&join(&cp, "type")))?,
                    &join(&cp, "type"),
                    kinds,
                )?;
            }
        }
    }
    if let Some(id) = o.get("id") {
        as_str(id, "item.id")?;
    }
    Ok(())
}

/// `input_audio_buffer.append`: the audio decoded into `scratch`, a whole number of samples.
fn append(o: &Map<String, Value>, audio_format: WireFormat, scratch: &mut Vec<u8>) -> Result<ClientEvent, ApiError> {
    only(o, &["type", "event_id", "audio"], "")?;
    let a = as_str(req(o, "audio")?, "audio")?;
    scratch.clear();
    base64::Engine::decode_vec(&base64::engine::general_purpose::STANDARD, a, scratch).map_err(|_| {
        ApiError::new("invalid_value", "Invalid 'audio'. Expected base64-encoded audio data.", Some("audio".into()))
    })?;
    let bps = audio_format.bytes_per_sample();
    if !scratch.len().is_multiple_of(bps) {
        return Err(ApiError::new(
            "invalid_value",
            format!("Invalid 'audio': {} bytes is not a whole number of {bps}-byte PCM16 samples.", scratch.len()),
            Some("audio".into()),
        ));
    }
    Ok(ClientEvent::Append(std::mem::take(scratch)))
}

/// `response.create`, with its optional `response` parameters checked against the dialect's.
fn response_create(o: &Map<String, Value>, dialect: Dialect) -> Result<ClientEvent, ApiError> {
    only(o, &["type", "event_id", "response"], "")?;
    Ok(match o.get("response") {
        None | Some(Value::Null) => ClientEvent::ResponseCreate(None),
        Some(r) => {
            let ro = as_obj(r, "response")?;
            let allowed: &[&str] = match dialect {
                Dialect::Ga => &[
                    "output_modalities",
                    "instructions",
                    "tools",
                    "tool_choice",
                    "conversation",
                    "input",
                    "metadata",
                    "audio",
                    "max_output_tokens",
                    "prompt",
                ],
                Dialect::Beta => &[
                    "modalities",
                    "instructions",
                    "voice",
                    "output_audio_format",
                    "tools",
                    "tool_choice",
                    "temperature",
                    "max_output_tokens",
                    "max_response_output_tokens",
                    "conversation",
                    "metadata",
                    "input",
                ],
            };
            only(ro, allowed, "response")?;
            if let Some(c) = ro.get("conversation") {
                one_of(c, "response.conversation", &["auto", "none"])?;
            }
            ClientEvent::ResponseCreate(Some(r.clone()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_validated() {
        let mut s = Vec::new();
        let p = |t: &str, s: &mut Vec<u8>| parse_event(t, Dialect::Ga, WireFormat::Pcm24, s);
        assert_eq!(p(r#"{"event_id":"e1"}"#, &mut s).unwrap_err().1.message, "The 'type' field is missing.");
        let (id, e) = p(r#"{"type":"input_audio_buffer.append","event_id":"e2","audio":"AAAA"}"#, &mut s).unwrap_err();
        assert_eq!((id.as_deref(), e.code), (Some("e2"), Some("invalid_value")));
        let (_, e) = p(r#"{"type":"input_audio_buffer.append","audio":"%%%"}"#, &mut s).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("audio"));
        match p(r#"{"type":"input_audio_buffer.append","audio":"AAAAAA=="}"#, &mut s).unwrap().1 {
            ClientEvent::Append(b) => assert_eq!(b.len(), 4),
            e => panic!("{e:?}"),
        }
        let (_, e) = p(r#"{"type":"conversation.item.truncate","item_id":"x","content_index":0}"#, &mut s).unwrap_err();
        assert_eq!(e.message, "Missing required parameter: 'audio_end_ms'.");
        let (_, e) = p(r#"{"type":"response.cancel","response_id":5}"#, &mut s).unwrap_err();
        assert_eq!(e.code, Some("invalid_type"));
        let (_, e) = p(r#"{"type":"nope"}"#, &mut s).unwrap_err();
        assert_eq!((e.code, e.param.as_deref()), (Some("invalid_value"), Some("type")));
        let (_, e) = p(r#"{"type":"response.create","foo":1}"#, &mut s).unwrap_err();
        assert_eq!(e.code, Some("unknown_parameter"));
        let ok =
            r#"{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"c","output":"{}"}}"#;
        assert!(p(ok, &mut s).is_ok());
        let (_, e) =
            p(r#"{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"c"}}"#, &mut s)
                .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("item.output"));
    }
}
