//! `zkaudit detect` as one use case: read the ledger's events, detect,
//! and record the findings it does not hold yet through the collector
//! sink.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use zkaudit_collect::{Destination, Sink, SinkError, SinkOptions};
use zkaudit_event::Layer;
use zkaudit_index::{Query, Selector};
use zkaudit_tlog::{LedgerDir, LogReader};

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

/// Reads the events of the ledger in `dir` (index `index`, default
/// `DIR/index.sqlite`) with timestamps in `[from_ns, to_ns)`, runs
/// [`detect`], and records the findings whose ID the ledger does not hold
/// yet in that ledger, through the collector sink (nothing with
/// `dry_run`). Returns once they are durable.
///
/// # Errors
/// [`RunError`].
pub fn run(
    dir: &Path,
    index: Option<&str>,
    from_ns: Option<i64>,
    to_ns: Option<i64>,
    params: &Params,
    rules: &Rules,
    dry_run: bool,
) -> Result<RunReport, RunError> {
    let reader = LogReader::open(dir)?;
    let spec = zkaudit_app::ledger::index_spec(&LedgerDir::new(dir), index);
    let mut idx = zkaudit_app::ledger::synced_index(&reader, &spec, &mut |_| {})?;
    let events = zkaudit_index::select(idx.as_mut(), &reader, &Query { from_ns, to_ns, ..Query::new(Selector::All) })?;
    let held: BTreeSet<String> = zkaudit_index::select(idx.as_mut(), &reader, &Query::new(Selector::Type(FINDING_TYPE.into())))?
        .iter()
        .filter_map(|e| e.meta_text("zkaudit.finding.id"))
        .collect();
    let findings = detect(&events, params, rules);
    let already_recorded = findings.iter().filter(|f| held.contains(&f.id)).count();
    let mut recorded = 0;
    if !dry_run && findings.len() > already_recorded {
        let dest = Destination::Ledger { dir: dir.to_owned(), index: index.map(str::to_owned) };
        let mut sink = Sink::open(dest, SinkOptions::new(COLLECTOR, Layer::Application))?;
        for f in findings.iter().filter(|f| !held.contains(&f.id)) {
            sink.send(&f.to_event())?;
            recorded += 1;
        }
        sink.finish()?;
    }
    Ok(RunReport {
        tree_size: reader.size(),
        events_read: events.iter().filter(|e| e.kind != FINDING_TYPE).count() as u64,
        findings,
        recorded,
        already_recorded,
        params: params.clone(),
    })
}
