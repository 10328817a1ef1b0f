//! Opening one call for an auditor: the use case behind `zkaudit llm
//! disclose`. The call's salts and documents come from the private call
//! store; its event is found in the ledger by its request commitment (the
//! event's `input`), and comes with an RFC 9162 inclusion proof against
//! the ledger's latest signed checkpoint.

use std::path::Path;

use serde_json::Value;
use zkaudit_app::ledger::Ledger;
use zkaudit_index::{Query, Selector};

use crate::commit::{CallStore, Disclosure, StoreError, REQUEST_TAG};

/// Why a call could not be disclosed.
#[derive(Debug, thiserror::Error)]
pub enum DiscloseError {
    /// The call store has no openable record of the call.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] zkaudit_app::Error),
    /// The ledger's log could not give the entry or its proof.
    #[error("ledger: {0}")]
    Log(String),
    /// The call is in the store but its event is not in the ledger (yet).
    #[error("call {call_id}: no llm_call event with input {input} is in the ledger (was it recorded to another ledger, or not flushed yet?)")]
    NotLogged {
        /// The call.
        call_id: String,
        /// Its request commitment.
        input: String,
    },
}

/// Builds the [`Disclosure`] of `call_id` from the store at `store` and the
/// ledger in `ledger_dir` (with its index `index`, default `DIR/index.sqlite`).
///
/// # Errors
/// [`DiscloseError`]; [`StoreError::Shredded`] once the call's salts are deleted.
pub fn disclose(ledger_dir: &Path, index: Option<&str>, store: &Path, call_id: &str) -> Result<Disclosure, DiscloseError> {
    let stored = CallStore::open(store)?.get(call_id)?;
    let input = stored.request.commitment(REQUEST_TAG).to_string();
    let ledger = Ledger::open(ledger_dir, index)?;
    let found = ledger.select(&Query::new(Selector::Input(input.clone())))?;
    let event = found
        .into_iter()
        .find(|e| e.kind == "llm_call" && e.metadata.iter().any(|(k, v)| k == "event.id" && v.trim_matches('"') == call_id))
        .ok_or_else(|| DiscloseError::NotLogged { call_id: call_id.to_owned(), input })?;
    let reader = ledger.reader()?;
    let entry = reader.entry(event.leaf_index).map_err(|e| DiscloseError::Log(e.to_string()))?;
    let proof = reader.inclusion(event.leaf_index, None).map_err(|e| DiscloseError::Log(e.to_string()))?;
    let parse = |s: &str| {
        serde_json::from_str::<Value>(s).map_err(|e| StoreError::Corrupt { path: store.to_owned(), call_id: call_id.to_owned(), what: e.to_string() })
    };
    Ok(Disclosure {
        call_id: call_id.to_owned(),
        request: parse(&stored.request.canonical)?,
        request_salt: hex::encode(stored.request.salt.0),
        response: parse(&stored.response.canonical)?,
        response_salt: hex::encode(stored.response.salt.0),
        entry: String::from_utf8(entry).map_err(|e| DiscloseError::Log(format!("entry {} is not UTF-8: {e}", event.leaf_index)))?,
        inclusion: zkaudit_tlog::json::inclusion(&proof),
        checkpoint: String::from_utf8_lossy(reader.checkpoint_note()).into_owned(),
    })
}
