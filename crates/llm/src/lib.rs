//! LLM calls audited: `zkaudit llm-gateway`, an OpenAI-compatible gateway
//! that authenticates callers with zkaudit tokens, enforces a [`policy`]
//! (model allowlist, per-token GCRA rate limits, PII rules on prompts and
//! responses, streamed ones as they pass), and records every call, whatever
//! its outcome, as one `llm_call` event with OpenTelemetry GenAI and ECS
//! field names, through the collector SDK's sink.
//!
//! Events hold salted [`commit`]ments to the request and the response,
//! never their text; the salts and contents go to a private call store, from
//! which a call can be disclosed to an auditor ([`disclose`]) with its
//! inclusion proof, or shredded for good.
//!
//! It owns the gateway's HTTP front ([`gateway`]), the OpenAI request
//! shapes and error form ([`api`]), PII detection ([`pii`]), the stream
//! filter ([`stream`]), and a local stand-in upstream for tests and
//! benchmarks ([`standin`]). It must not define the event format, the
//! ledger or the sink (`zkaudit-event`, `zkaudit-tlog`, `zkaudit-collect`),
//! nor store tokens (`zkaudit-jobs`).

#![forbid(unsafe_code)]

pub mod api;
pub mod commit;
pub mod disclose;
pub mod gateway;
pub mod pii;
pub mod policy;
pub mod standin;
pub mod stream;

pub use gateway::{start, Config, GatewayError, Report, Running};
pub use policy::Policy;
