//! A small OpenAI-compatible server that stands in for an LLM provider in
//! tests and benchmarks, since no provider is reachable from where they
//! run. It is not a model: it answers `You said: <the last prompt>`, one
//! word per streamed chunk, with token counts of one per word.
//!
//! Markers in the prompt make it misbehave as real upstreams do:
//! `[[500]]` answers HTTP 500; `[[slow]]` waits 300 ms before the first
//! token; `[[break]]` cuts a stream off halfway (no `[DONE]`);
//! `[[card]]` and `[[email]]` put a Luhn-valid card number or an e-mail
//! address in the answer (the card split across chunks). The model
//! `impostor` is answered as `gpt-unallowed`. `GET /_standin/last` returns
//! the last request it received (its `Authorization` header and body), so
//! a test can see what the gateway forwarded.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

#[derive(Default)]
struct Seen {
    last: Mutex<Value>,
}

/// Serves the stand-in on `addr` (port 0: any free port) until the
/// process ends; returns the address it listens on.
///
/// # Errors
/// If it cannot listen.
pub async fn start(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/_standin/last", get(last))
        .with_state(seen);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(local)
}

fn remember(seen: &Seen, headers: &HeaderMap, body: &Value) {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Ok(mut l) = seen.last.lock() {
        *l = json!({"authorization": auth, "body": body});
    }
}

async fn last(State(seen): State<Arc<Seen>>) -> Json<Value> {
    Json(seen.last.lock().map(|l| l.clone()).unwrap_or_default())
}

async fn models() -> Json<Value> {
    let m = |id: &str| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "standin"});
    Json(json!({"object": "list", "data": [m("gpt-4o-mini"), m("text-embedding-3-small"), m("gpt-unallowed")]}))
}

/// The prompt text of a chat or completion request.
fn prompt_of(body: &Value) -> String {
    if let Some(msgs) = body.get("messages").and_then(Value::as_array) {
        return msgs
            .iter()
            .rev()
            .find_map(|m| match m.get("content") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Array(parts)) => Some(parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")),
                _ => None,
            })
            .unwrap_or_default();
    }
    match body.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    }
}

fn reply_to(prompt: &str) -> String {
    let mut reply = format!("You said: {prompt}");
    if prompt.contains("[[card]]") {
        reply.push_str(" My card is 4111 1111 1111 1111 thanks.");
    }
    if prompt.contains("[[email]]") {
        reply.push_str(" Write to carol@example.com today.");
    }
    reply
}

fn served_model(body: &Value) -> String {
    match body.get("model").and_then(Value::as_str) {
        Some("impostor") => "gpt-unallowed".into(),
        Some(m) => m.to_owned(),
        None => "unknown".into(),
    }
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

async fn chat(State(seen): State<Arc<Seen>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    answer(&seen, &headers, body, true).await
}

async fn completions(State(seen): State<Arc<Seen>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    answer(&seen, &headers, body, false).await
}

async fn answer(seen: &Seen, headers: &HeaderMap, body: Value, chat: bool) -> Response {
    remember(seen, headers, &body);
    let prompt = prompt_of(&body);
    if prompt.contains("[[500]]") {
        let e = json!({"error": {"message": "the stand-in upstream failed on purpose", "type": "server_error", "param": null, "code": null}});
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(e)).into_response();
    }
    let slow = prompt.contains("[[slow]]");
    let reply = reply_to(&prompt);
    let model = served_model(&body);
    let id = format!("{}-{}", if chat { "chatcmpl" } else { "cmpl" }, &hex::encode(Sha256::digest(prompt.as_bytes()))[..12]);
    let usage = json!({"prompt_tokens": words(&prompt), "completion_tokens": words(&reply), "total_tokens": words(&prompt) + words(&reply)});
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        if slow {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let choice = if chat {
            json!({"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop", "logprobs": null})
        } else {
            json!({"index": 0, "text": reply, "finish_reason": "stop", "logprobs": null})
        };
        let object = if chat { "chat.completion" } else { "text_completion" };
        return Json(json!({"id": id, "object": object, "created": 1_700_000_000, "model": model, "choices": [choice], "usage": usage})).into_response();
    }
    let include_usage = body.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
    let object = if chat { "chat.completion.chunk" } else { "text_completion" };
    let chunk = |text: Option<&str>, finish: Option<&str>| {
        let choice = if chat {
            json!({"index": 0, "delta": text.map_or(json!({}), |t| json!({"content": t})), "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text.unwrap_or(""), "finish_reason": finish})
        };
        json!({"id": id, "object": object, "created": 1_700_000_000, "model": model, "choices": [choice]})
    };
    let pieces: Vec<String> = reply.split_inclusive(' ').map(str::to_owned).collect();
    let mut events: Vec<Value> = Vec::new();
    if chat {
        events.push(json!({"id": id, "object": object, "created": 1_700_000_000, "model": model, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}));
    }
    events.extend(pieces.iter().map(|p| chunk(Some(p), None)));
    events.push(chunk(None, Some("stop")));
    if include_usage {
        events.push(json!({"id": id, "object": object, "created": 1_700_000_000, "model": model, "choices": [], "usage": usage}));
    }
    let broken = prompt.contains("[[break]]");
    let cut = if broken { events.len() / 2 } else { usize::MAX };
    let stream = futures_util::stream::unfold((events.into_iter().enumerate(), slow, false), move |(mut it, slow, finished)| async move {
        if finished {
            return None;
        }
        match it.next() {
            Some((i, _)) if i >= cut => Some((Err(std::io::Error::other("the stand-in cut the stream off")), (it, slow, true))),
            Some((i, e)) => {
                if i == 0 && slow {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                if cut != usize::MAX {
                    // Let what comes before the break reach the wire first.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(format!("data: {e}\n\n"))), (it, slow, false)))
            }
            None => Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), (it, slow, true))),
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn embeddings(State(seen): State<Arc<Seen>>, headers: HeaderMap, Json(body): Json<Value>) -> Result<Json<Value>, Infallible> {
    remember(&seen, &headers, &body);
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect(),
        _ => Vec::new(),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let h = Sha256::digest(s.as_bytes());
            let v: Vec<f64> = h.iter().take(8).map(|b| f64::from(*b) / 255.0).collect();
            json!({"object": "embedding", "index": i, "embedding": v})
        })
        .collect();
    let n: u64 = inputs.iter().map(|s| words(s)).sum();
    Ok(Json(json!({"object": "list", "data": data, "model": served_model(&body), "usage": {"prompt_tokens": n, "total_tokens": n}})))
}
