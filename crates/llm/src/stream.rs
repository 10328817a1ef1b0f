//! Policy on text as it passes: the PII [`Guard`] that holds back the tail
//! of generated text until it is safe to release, and the [`SseFilter`]
//! that applies it to an OpenAI server-sent-event stream chunk by chunk.
//!
//! A match can span chunks ("4111 1111" now, " 1111 1111" later), so text
//! is released only up to a cut that lies at least [`HOLD_BACK`] bytes
//! before the end of what has arrived, at a whitespace boundary (so a
//! token is never split) and never inside a match. When the choice
//! finishes, everything left is released. A `block` finding stops the
//! stream as soon as it is seen, even in held-back text.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::chunk_text;
use crate::pii::{redact, Entity, Finding, Scanner};
use crate::policy::{Action, PiiRules};

/// Bytes of generated text held back before release: longer than any
/// match with separators in it (an IBAN with spaces is 42).
pub const HOLD_BACK: usize = 128;

/// Findings counted by where they were seen, entity and action taken.
pub type Counts = BTreeMap<(&'static str, Entity, Action), u64>;

/// Checks text against the PII rules and counts what it found.
pub struct Guard<'a> {
    scanner: &'a Scanner,
    rules: PiiRules,
    place: &'static str,
    /// What was found so far.
    pub counts: Counts,
}

impl<'a> Guard<'a> {
    /// A guard for text seen at `place` (`request` or `response`).
    pub fn new(scanner: &'a Scanner, rules: PiiRules, place: &'static str) -> Self {
        Self { scanner, rules, place, counts: Counts::new() }
    }

    fn note(&mut self, f: &Finding) -> Action {
        let a = self.rules.action(f.entity);
        *self.counts.entry((self.place, f.entity, a)).or_default() += 1;
        a
    }

    /// Checks a whole text: `Err(entity)` if a `block` rule matched (all
    /// findings counted), else the text with `redact` findings replaced.
    pub fn whole(&mut self, text: &str) -> Result<Option<String>, Entity> {
        let found = self.scanner.find(text);
        let mut blocked = None;
        let mut to_redact = Vec::new();
        for f in &found {
            match self.note(f) {
                Action::Block => blocked = blocked.or(Some(f.entity)),
                Action::Redact => to_redact.push(*f),
                Action::Flag => {}
            }
        }
        match blocked {
            Some(e) => Err(e),
            None if to_redact.is_empty() => Ok(None),
            None => Ok(Some(redact(text, &to_redact))),
        }
    }

    /// Runs [`Guard::whole`] on each text `visit` hands it, redacting in
    /// place; the first entity a `block` rule matched, if any (every text
    /// is still checked and counted).
    pub fn apply(&mut self, visit: impl FnOnce(&mut dyn FnMut(&mut String))) -> Option<Entity> {
        let mut blocked = None;
        visit(&mut |text| match self.whole(text) {
            Ok(Some(redacted)) => *text = redacted,
            Ok(None) => {}
            Err(e) => blocked = blocked.or(Some(e)),
        });
        blocked
    }

    /// Takes what of `pending` is safe to release (all of it when `last`),
    /// redacted; `Err(entity)` as soon as a `block` finding is anywhere in it.
    pub fn release(&mut self, pending: &mut String, last: bool) -> Result<String, Entity> {
        let found = self.scanner.find(pending);
        if let Some(f) = found.iter().find(|f| self.rules.action(f.entity) == Action::Block) {
            let f = *f;
            self.note(&f);
            return Err(f.entity);
        }
        let mut cut = pending.len();
        if !last {
            cut = cut.saturating_sub(HOLD_BACK);
            while !pending.is_char_boundary(cut) {
                cut -= 1;
            }
            cut = pending[..cut].rfind(char::is_whitespace).map_or(0, |i| i + pending[i..].chars().next().map_or(1, char::len_utf8));
            for f in found.iter().rev() {
                if f.start < cut && cut < f.end {
                    cut = f.start;
                }
            }
        }
        let released: Vec<Finding> = found.into_iter().filter(|f| f.end <= cut).collect();
        let mut to_redact = Vec::new();
        for f in &released {
            if self.note(f) == Action::Redact {
                to_redact.push(*f);
            }
        }
        let out = redact(&pending[..cut], &to_redact);
        pending.drain(..cut);
        Ok(out)
    }
}

/// What the filter learned about the call from the stream.
#[derive(Clone, Debug, Default)]
pub struct StreamFacts {
    /// `id` of the chunks.
    pub id: Option<String>,
    /// `model` of the chunks.
    pub model: Option<String>,
    /// Each choice's `finish_reason`, by index.
    pub finish_reasons: BTreeMap<u64, String>,
    /// `usage.prompt_tokens`.
    pub input_tokens: Option<u64>,
    /// `usage.completion_tokens`.
    pub output_tokens: Option<u64>,
    /// Whether `data: [DONE]` arrived.
    pub done: bool,
    /// Whether any generated text arrived yet.
    pub first_token_seen: bool,
}

/// One step's outcome.
pub enum Step {
    /// Bytes to send to the client (possibly none).
    Send(Vec<u8>),
    /// A `block` rule matched: send these bytes (an error event and
    /// `[DONE]`) and end the stream.
    Blocked(Vec<u8>, Entity),
    /// The upstream sent something that is not an OpenAI event stream.
    Malformed(String),
}

/// Applies the PII rules to an OpenAI SSE stream, event by event.
pub struct SseFilter<'a> {
    buf: Vec<u8>,
    held: BTreeMap<u64, String>,
    guard: Option<Guard<'a>>,
    include_usage: bool,
    /// What was learned.
    pub facts: StreamFacts,
    /// The events as delivered (JSON values; `"[DONE]"` as a string): the
    /// response document's `stream`.
    pub delivered: Vec<Value>,
}

impl<'a> SseFilter<'a> {
    /// A filter; `guard` is `None` when responses are not scanned;
    /// `include_usage`: whether the caller asked for the usage chunk (the
    /// gateway always asks the upstream for it, and drops it otherwise).
    pub fn new(guard: Option<Guard<'a>>, include_usage: bool) -> Self {
        Self { buf: Vec::new(), held: BTreeMap::new(), guard, include_usage, facts: StreamFacts::default(), delivered: Vec::new() }
    }

    /// The guard's counts.
    pub fn counts(&self) -> Counts {
        self.guard.as_ref().map(|g| g.counts.clone()).unwrap_or_default()
    }

    /// Feeds bytes from the upstream.
    pub fn feed(&mut self, bytes: &[u8]) -> Step {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, sep)) = find_event_end(&self.buf) {
            let raw: Vec<u8> = self.buf.drain(..end + sep).collect();
            let text = String::from_utf8_lossy(&raw[..end]).into_owned();
            let data: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| d.strip_prefix(' ').unwrap_or(d)).collect();
            if data.is_empty() {
                continue; // comments, keep-alives, `event:` lines alone
            }
            let data = data.join("\n");
            if data == "[DONE]" {
                self.facts.done = true;
                match self.flush_held() {
                    Ok(Some(chunk)) => out.extend(self.emit(chunk)),
                    Ok(None) => {}
                    Err(e) => return self.block(out, e),
                }
                self.delivered.push(Value::String("[DONE]".into()));
                out.extend_from_slice(b"data: [DONE]\n\n");
                continue;
            }
            let mut chunk: Value = match serde_json::from_str(&data) {
                Ok(v) => v,
                Err(e) => return Step::Malformed(format!("an event's data is not JSON ({e})")),
            };
            if chunk.get("error").is_some() {
                self.delivered.push(chunk.clone());
                out.extend(frame(&chunk));
                continue;
            }
            match self.process(&mut chunk) {
                Ok(true) => out.extend(self.emit(chunk)),
                Ok(false) => {}
                Err(e) => return self.block(out, e),
            }
        }
        Step::Send(out)
    }

    fn emit(&mut self, chunk: Value) -> Vec<u8> {
        let f = frame(&chunk);
        self.delivered.push(chunk);
        f
    }

    fn block(&mut self, mut out: Vec<u8>, e: Entity) -> Step {
        let err = serde_json::json!({"error": {
            "message": format!("the response was stopped by policy: it contained {e}"),
            "type": "policy_violation", "param": null, "code": "pii_blocked"}});
        out.extend(self.emit(err));
        self.delivered.push(Value::String("[DONE]".into()));
        out.extend_from_slice(b"data: [DONE]\n\n");
        Step::Blocked(out, e)
    }

    /// Notes a chunk's facts and filters its text; `Ok(false)`: do not forward it.
    fn process(&mut self, chunk: &mut Value) -> Result<bool, Entity> {
        if self.facts.id.is_none() {
            self.facts.id = chunk.get("id").and_then(Value::as_str).map(str::to_owned);
        }
        if let Some(m) = chunk.get("model").and_then(Value::as_str) {
            self.facts.model = Some(m.to_owned());
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.facts.input_tokens = u.get("prompt_tokens").and_then(Value::as_u64);
            self.facts.output_tokens = u.get("completion_tokens").and_then(Value::as_u64);
        }
        let choices = chunk.get_mut("choices").and_then(Value::as_array_mut);
        let Some(choices) = choices.filter(|c| !c.is_empty()) else {
            // The usage-only chunk: forwarded only if the caller asked for it.
            return Ok(self.include_usage || chunk.get("usage").is_none_or(Value::is_null));
        };
        for c in choices.iter_mut() {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let finish = c.get("finish_reason").and_then(Value::as_str).map(str::to_owned);
            if let Some(text) = chunk_text(c) {
                if !text.is_empty() {
                    self.facts.first_token_seen = true;
                }
                if let Some(g) = self.guard.as_mut() {
                    let pending = self.held.entry(index).or_default();
                    pending.push_str(text);
                    *text = g.release(pending, finish.is_some())?;
                }
            } else if let (Some(g), true) = (self.guard.as_mut(), finish.is_some()) {
                // A finishing chunk without text: release the rest into it.
                if let Some(mut pending) = self.held.remove(&index).filter(|p| !p.is_empty()) {
                    let rest = g.release(&mut pending, true)?;
                    put_text(c, rest);
                }
            }
            if let Some(f) = finish {
                self.facts.finish_reasons.insert(index, f);
            }
        }
        if let Some(u) = chunk.get_mut("usage").filter(|u| u.is_object() && !self.include_usage) {
            *u = Value::Null;
        }
        Ok(true)
    }

    /// Releases all held text, as one chunk per choice, before `[DONE]`.
    fn flush_held(&mut self) -> Result<Option<Value>, Entity> {
        let Some(g) = self.guard.as_mut() else { return Ok(None) };
        let mut choices = Vec::new();
        for (index, mut pending) in std::mem::take(&mut self.held) {
            if pending.is_empty() {
                continue;
            }
            let text = g.release(&mut pending, true)?;
            choices.push(serde_json::json!({"index": index, "delta": {"content": text}, "finish_reason": null}));
        }
        if choices.is_empty() {
            return Ok(None);
        }
        Ok(Some(serde_json::json!({"id": self.facts.id, "object": "chat.completion.chunk", "model": self.facts.model, "choices": choices})))
    }
}

fn put_text(choice: &mut Value, text: String) {
    if let Some(d) = choice.get_mut("delta").and_then(Value::as_object_mut) {
        d.insert("content".into(), Value::String(text));
    } else if let Some(o) = choice.as_object_mut() {
        o.insert("text".into(), Value::String(text));
    }
}

fn frame(v: &Value) -> Vec<u8> {
    let mut f = b"data: ".to_vec();
    f.extend(serde_json::to_vec(v).unwrap_or_default());
    f.extend_from_slice(b"\n\n");
    f
}

/// The end of the first complete event in `buf` (its length, and the
/// separator's: `\n\n` or `\r\n\r\n`).
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str, finish: Option<&str>) -> String {
        format!("data: {}\n\n", serde_json::json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}))
    }

    fn run(parts: &[&str], rules: PiiRules) -> (String, Option<Entity>) {
        let scanner = Scanner::new();
        let mut f = SseFilter::new(Some(Guard::new(&scanner, rules, "response")), false);
        let mut text = String::new();
        for (i, p) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let bytes = chunk(p, last.then_some("stop")) + if last { "data: [DONE]\n\n" } else { "" };
            // Split each frame in two to exercise reassembly.
            let (a, b) = bytes.as_bytes().split_at(bytes.len() / 2);
            for half in [a, b] {
                match f.feed(half) {
                    Step::Send(_) => {}
                    Step::Blocked(_, e) => return (text, Some(e)),
                    Step::Malformed(m) => panic!("{m}"),
                }
            }
        }
        for v in &f.delivered {
            if let Some(s) = v.pointer("/choices/0/delta/content").and_then(Value::as_str) {
                text.push_str(s);
            }
        }
        (text, None)
    }

    #[test]
    fn a_card_split_across_chunks_is_redacted_whole() {
        let rules = PiiRules { card_number: Action::Redact, ..PiiRules::default() };
        let (text, blocked) = run(&["my card is 4111 11", "11 1111 ", "1111 and that is all"], rules);
        assert_eq!(blocked, None);
        assert_eq!(text, "my card is [REDACTED:CARD_NUMBER] and that is all");
    }

    #[test]
    fn a_blocked_entity_ends_the_stream() {
        let (_, blocked) = run(&["the key is sk-proj-abcdefghij", "klmnopqrstuvwxyz0123 bye"], PiiRules::default());
        assert_eq!(blocked, Some(Entity::Secret));
    }

    #[test]
    fn long_text_is_released_before_the_end() {
        let scanner = Scanner::new();
        let mut g = Guard::new(&scanner, PiiRules::default(), "response");
        let mut pending = "word ".repeat(100);
        let out = g.release(&mut pending, false).unwrap();
        assert!(out.len() >= 500 - HOLD_BACK - 5 && out.ends_with(' '), "{}", out.len());
        assert_eq!(out.len() + pending.len(), 500);
    }
}
