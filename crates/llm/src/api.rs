//! The OpenAI API as the gateway checks it: the operations it serves, the
//! request bodies (typed, unknown fields refused as the OpenAI API refuses
//! them), the text in them that policy reads, and the error shape.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

/// An operation the gateway serves (`gen_ai.operation.name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/completions`.
    TextCompletion,
    /// `POST /v1/embeddings`.
    Embeddings,
}

impl Operation {
    /// The OpenTelemetry `gen_ai.operation.name`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::TextCompletion => "text_completion",
            Operation::Embeddings => "embeddings",
        }
    }

    /// The request path.
    pub fn path(self) -> &'static str {
        match self {
            Operation::Chat => "/v1/chat/completions",
            Operation::TextCompletion => "/v1/completions",
            Operation::Embeddings => "/v1/embeddings",
        }
    }
}

/// An error in the OpenAI shape: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
    /// `type`: `invalid_request_error`, `authentication_error`,
    /// `permission_error`, `rate_limit_error`, `server_error`, …
    pub kind: &'static str,
    /// The request parameter at fault (a JSON path), if any.
    pub param: Option<String>,
    /// A machine-readable code, if any.
    pub code: Option<&'static str>,
    /// Seconds to wait (`Retry-After`), for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `kind` and `message`.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), kind, param: None, code: None, retry_after: None }
    }

    /// A 400 `invalid_request_error` about `param`.
    pub fn invalid(param: Option<String>, message: impl Into<String>) -> Self {
        Self { param, ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message) }
    }

    /// Sets the code.
    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, s.into());
        }
        r
    }
}

/// A chat message (the fields of every role).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Message {
    role: Role,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<Value>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    function_call: Option<Value>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    audio: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

/// `POST /v1/chat/completions` (the OpenAI API reference's parameters).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ChatRequest {
    model: String,
    messages: Vec<Message>,
    audio: Option<Value>,
    frequency_penalty: Option<f64>,
    function_call: Option<Value>,
    functions: Option<Vec<Value>>,
    logit_bias: Option<serde_json::Map<String, Value>>,
    logprobs: Option<bool>,
    max_completion_tokens: Option<u32>,
    max_tokens: Option<u32>,
    metadata: Option<serde_json::Map<String, Value>>,
    modalities: Option<Vec<String>>,
    n: Option<u32>,
    parallel_tool_calls: Option<bool>,
    prediction: Option<Value>,
    presence_penalty: Option<f64>,
    prompt_cache_key: Option<String>,
    reasoning_effort: Option<String>,
    response_format: Option<Value>,
    safety_identifier: Option<String>,
    seed: Option<i64>,
    service_tier: Option<String>,
    stop: Option<Value>,
    store: Option<bool>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    temperature: Option<f64>,
    tool_choice: Option<Value>,
    tools: Option<Vec<Value>>,
    top_logprobs: Option<u32>,
    top_p: Option<f64>,
    user: Option<String>,
    verbosity: Option<String>,
    web_search_options: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct StreamOptions {
    include_usage: Option<bool>,
    include_obfuscation: Option<bool>,
}

/// `POST /v1/completions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CompletionRequest {
    model: String,
    prompt: Value,
    best_of: Option<u32>,
    echo: Option<bool>,
    frequency_penalty: Option<f64>,
    logit_bias: Option<serde_json::Map<String, Value>>,
    logprobs: Option<u32>,
    max_tokens: Option<u32>,
    n: Option<u32>,
    presence_penalty: Option<f64>,
    seed: Option<i64>,
    stop: Option<Value>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    suffix: Option<String>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    user: Option<String>,
}

/// `POST /v1/embeddings`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct EmbeddingsRequest {
    model: String,
    input: Value,
    dimensions: Option<u32>,
    encoding_format: Option<String>,
    user: Option<String>,
}

/// What the gateway needs from a checked request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestFacts {
    /// `model`.
    pub model: String,
    /// `stream`.
    pub stream: bool,
    /// Whether the caller asked for the usage chunk of a stream.
    pub include_usage: bool,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// `max_tokens` or `max_completion_tokens`.
    pub max_tokens: Option<u32>,
    /// `seed`.
    pub seed: Option<i64>,
}

fn range(v: Option<f64>, lo: f64, hi: f64, param: &str) -> Result<(), ApiError> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(ApiError::invalid(Some(param.into()), format!("{x} is out of range for `{param}`: expected {lo} to {hi}"))),
        _ => Ok(()),
    }
}

fn typed<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names an unknown field; the OpenAI API says it this way.
        let message = match inner.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
            Some(f) => format!("Unrecognized request argument supplied: {f}"),
            None => format!("invalid `{path}`: {inner}"),
        };
        ApiError::invalid((path != ".").then_some(path), message)
    })
}

/// Checks `body` against `op`'s parameters (types, ranges, unknown
/// fields, a non-empty prompt) and returns what the gateway records.
///
/// # Errors
/// A 400 [`ApiError`] naming the parameter.
pub fn check_request(op: Operation, body: &Value) -> Result<RequestFacts, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid(None, "the request body must be a JSON object"));
    }
    let facts = match op {
        Operation::Chat => {
            let r: ChatRequest = typed(body)?;
            if r.messages.is_empty() {
                return Err(ApiError::invalid(Some("messages".into()), "`messages` must hold at least one message"));
            }
            for (i, m) in r.messages.iter().enumerate() {
                match &m.content {
                    None | Some(Value::Null | Value::String(_) | Value::Array(_)) => {}
                    Some(_) => return Err(ApiError::invalid(Some(format!("messages[{i}].content")), "content must be a string, an array of parts, or null")),
                }
            }
            range(r.temperature, 0.0, 2.0, "temperature")?;
            range(r.top_p, 0.0, 1.0, "top_p")?;
            range(r.frequency_penalty, -2.0, 2.0, "frequency_penalty")?;
            range(r.presence_penalty, -2.0, 2.0, "presence_penalty")?;
            if r.n == Some(0) {
                return Err(ApiError::invalid(Some("n".into()), "`n` must be at least 1"));
            }
            RequestFacts {
                model: r.model,
                stream: r.stream.unwrap_or(false),
                include_usage: r.stream_options.and_then(|o| o.include_usage).unwrap_or(false),
                temperature: r.temperature,
                max_tokens: r.max_completion_tokens.or(r.max_tokens),
                seed: r.seed,
            }
        }
        Operation::TextCompletion => {
            let r: CompletionRequest = typed(body)?;
            match &r.prompt {
                Value::String(_) => {}
                Value::Array(a) if !a.is_empty() => {}
                _ => return Err(ApiError::invalid(Some("prompt".into()), "`prompt` must be a string or a non-empty array")),
            }
            range(r.temperature, 0.0, 2.0, "temperature")?;
            range(r.top_p, 0.0, 1.0, "top_p")?;
            RequestFacts {
                model: r.model,
                stream: r.stream.unwrap_or(false),
                include_usage: r.stream_options.and_then(|o| o.include_usage).unwrap_or(false),
                temperature: r.temperature,
                max_tokens: r.max_tokens,
                seed: r.seed,
            }
        }
        Operation::Embeddings => {
            let r: EmbeddingsRequest = typed(body)?;
            match &r.input {
                Value::String(s) if !s.is_empty() => {}
                Value::Array(a) if !a.is_empty() => {}
                _ => return Err(ApiError::invalid(Some("input".into()), "`input` must be a non-empty string or array")),
            }
            if let Some(f) = r.encoding_format.as_deref().filter(|f| !["float", "base64"].contains(f)) {
                return Err(ApiError::invalid(Some("encoding_format".into()), format!("`encoding_format` must be float or base64, not {f:?}")));
            }
            RequestFacts { model: r.model, ..RequestFacts::default() }
        }
    };
    if facts.model.is_empty() {
        return Err(ApiError::invalid(Some("model".into()), "`model` must not be empty"));
    }
    Ok(facts)
}

/// Calls `f` on every piece of prompt text in a request body, mutably
/// (chat message contents and their text parts, `prompt`, `input`).
pub fn request_texts(op: Operation, body: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match op {
        Operation::Chat => {
            for m in body.get_mut("messages").and_then(Value::as_array_mut).into_iter().flatten() {
                match m.get_mut("content") {
                    Some(Value::String(s)) => f(s),
                    Some(Value::Array(parts)) => {
                        for p in parts {
                            if let Some(Value::String(s)) = p.get_mut("text") {
                                f(s);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Operation::TextCompletion => strings(body.get_mut("prompt"), f),
        Operation::Embeddings => strings(body.get_mut("input"), f),
    }
}

fn strings(v: Option<&mut Value>, f: &mut dyn FnMut(&mut String)) {
    match v {
        Some(Value::String(s)) => f(s),
        Some(Value::Array(items)) => {
            for i in items {
                if let Value::String(s) = i {
                    f(s);
                }
            }
        }
        _ => {}
    }
}

/// Calls `f` on every piece of generated text in a (non-streamed)
/// response body: `choices[].message.content` or `choices[].text`.
pub fn response_texts(body: &mut Value, f: &mut dyn FnMut(&mut String)) {
    for c in body.get_mut("choices").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(Value::String(s)) = c.get_mut("message").and_then(|m| m.get_mut("content")) {
            f(s);
        }
        if let Some(Value::String(s)) = c.get_mut("text") {
            f(s);
        }
    }
}

/// The generated text of one streamed chunk's choice: `delta.content`
/// (chat) or `text` (completions).
pub fn chunk_text(choice: &mut Value) -> Option<&mut String> {
    if choice.get("delta").is_some() {
        match choice.get_mut("delta").and_then(|d| d.get_mut("content")) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    } else {
        match choice.get_mut("text") {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_bad_types_are_named() {
        let e = check_request(Operation::Chat, &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temprature": 1})).unwrap_err();
        assert_eq!(e.message, "Unrecognized request argument supplied: temprature");
        let e = check_request(Operation::Chat, &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("temperature"));
        let e = check_request(Operation::Chat, &json!({"model": "m", "messages": [{"role": "wizard", "content": "hi"}]})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
        let ok = check_request(Operation::Chat, &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true, "seed": 7})).unwrap();
        assert!(ok.stream && ok.seed == Some(7));
    }
}
