//! `zkaudit detect` as one use case: read the ledger's events (a local
//! ledger through its index, or a server's log by tlog-tiles, checked
//! against its signed checkpoint), detect, and record the findings it does
//! not hold yet through the collector sink.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use zkaudit_collect::{Destination, Sink, SinkError, SinkOptions};
use zkaudit_event::Layer;
use zkaudit_index::{IndexedEvent, Query, Selector};
use zkaudit_note::VerifierKey;
use zkaudit_tlog::{LedgerDir, LogReader, RemoteLog};

use crate::{detect, Finding, Params, Rules, FINDING_TYPE};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The ledger or its index failed.
    #[error(transparent)]
    App(#[from] zkaudit_app::Error),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] zkaudit_index::Error),
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] zkaudit_tlog::Error),
    /// A finding could not be recorded.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A server's log is read only against the log's verifier key.
    #[error("reading a server's log needs the log's verifier key (--vkey), to check its signed checkpoint")]
    KeyNeeded,
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Tree size the events were read at.
    pub tree_size: u64,
    /// Events read (findings excluded).
    pub events_read: u64,
    /// Every finding, in time order.
    pub findings: Vec<Finding>,
    /// Findings recorded by this run.
    pub recorded: usize,
    /// Findings the ledger already held (from an earlier run); with
    /// `dry_run`, the rest were not recorded.
    pub already_recorded: usize,
    /// The parameters used.
    pub params: Params,
}

/// The collector name of `zkaudit detect` (`observer.type` of its gaps).
pub const COLLECTOR: &str = "detect";

/// Reads the events of `ledger` with timestamps in `[from_ns, to_ns)`,
/// runs [`detect`], and records the findings whose ID the ledger does not
/// hold yet in that same ledger, through the collector sink (nothing with
/// `dry_run`). Returns once they are durable (for a server: acknowledged,
/// or spooled to be sent).
///
/// A local ledger is read through its index (synced first); with
/// `log_key`, its checkpoint's signature is checked too. A server's log is
/// read in full by tlog-tiles ([`RemoteLog`]): its checkpoint must be
/// signed by `log_key`, and the entries must hash to its root before
/// anything is detected or recorded.
///
/// # Errors
/// [`RunError`]; [`RunError::KeyNeeded`] for a server without `log_key`.
pub fn run(
    ledger: &Destination,
    log_key: Option<&VerifierKey>,
    from_ns: Option<i64>,
    to_ns: Option<i64>,
    params: &Params,
    rules: &Rules,
    dry_run: bool,
) -> Result<RunReport, RunError> {
    let window = Query { from_ns, to_ns, ..Query::new(Selector::All) };
    let (tree_size, events, held) = match ledger {
        Destination::Ledger { dir, index } => read_local(dir, index.as_deref(), log_key, &window)?,
        Destination::Server { url, token, .. } => read_served(url, token, log_key.ok_or(RunError::KeyNeeded)?, &window)?,
    };
    let findings = detect(&events, params, rules);
    let already_recorded = findings.iter().filter(|f| held.contains(&f.id)).count();
    let mut recorded = 0;
    if !dry_run && findings.len() > already_recorded {
        let mut sink = Sink::open(ledger.clone(), SinkOptions::new(COLLECTOR, Layer::Application))?;
        for f in findings.iter().filter(|f| !held.contains(&f.id)) {
            sink.send(&f.to_event())?;
            recorded += 1;
        }
        sink.finish()?;
    }
    Ok(RunReport {
        tree_size,
        events_read: events.iter().filter(|e| e.kind != FINDING_TYPE).count() as u64,
        findings,
        recorded,
        already_recorded,
        params: params.clone(),
    })
}

/// What detection reads: the tree size, the events in the window, and the
/// IDs of the findings the ledger holds (whenever they were recorded).
type Read = (u64, Vec<IndexedEvent>, BTreeSet<String>);

fn finding_id(e: &IndexedEvent) -> Option<String> {
    (e.kind == FINDING_TYPE).then(|| e.meta_text("zkaudit.finding.id")).flatten()
}

fn read_local(dir: &Path, index: Option<&str>, log_key: Option<&VerifierKey>, window: &Query) -> Result<Read, RunError> {
    let reader = LogReader::open(dir)?;
    if let Some(key) = log_key {
        reader.verify_signature(key)?;
    }
    let spec = zkaudit_app::ledger::index_spec(&LedgerDir::new(dir), index);
    let mut idx = zkaudit_app::ledger::synced_index(&reader, &spec, &mut |_| {})?;
    let events = zkaudit_index::select(idx.as_mut(), &reader, window)?;
    let held = zkaudit_index::select(idx.as_mut(), &reader, &Query::new(Selector::Type(FINDING_TYPE.into())))?.iter().filter_map(finding_id).collect();
    Ok((reader.size(), events, held))
}

fn read_served(url: &str, token: &str, key: &VerifierKey, window: &Query) -> Result<Read, RunError> {
    let log = RemoteLog::open(url, Some(token), key)?;
    let (mut events, mut held, mut bad) = (Vec::new(), BTreeSet::new(), None);
    log.for_each_entry(|i, bytes| {
        match IndexedEvent::from_entry(i, bytes) {
            Ok(e) => {
                held.extend(finding_id(&e));
                if window.matches(&e) {
                    events.push(e);
                }
            }
            Err(e) => bad = bad.take().or(Some(e)),
        }
        Ok(())
    })?;
    if let Some(e) = bad {
        return Err(e.into());
    }
    Ok((log.size(), events, held))
}
