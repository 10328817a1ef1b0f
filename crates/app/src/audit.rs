//! The auditor's use cases: open the Prolog engine over a ledger (index
//! synced, receipts checked with the zkVM verifier), and evaluate a
//! compliance pack.

use std::path::Path;

use zkaudit_audit::pack::{PackFile, Report};
use zkaudit_audit::{Engine, Options};
use zkaudit_note::VerifierKey;
use zkaudit_tlog::{LedgerDir, LogReader};
use zkaudit_zkvm::Registry;

use crate::ledger::{index_spec, synced_index};
use crate::proof::ZkvmCheck;
use crate::Error;

/// A compliance pack built into this binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinPack {
    /// Its name (`--pack NAME`).
    pub name: &'static str,
    /// The file it was built from, as named in reports.
    pub file: &'static str,
    /// Its Prolog text.
    pub source: &'static str,
}

/// The compliance packs built into this binary.
pub const PACKS: &[BuiltinPack] = &[
    BuiltinPack { name: "telecoms", file: "packs/telecoms.pl", source: include_str!("../../../packs/telecoms.pl") },
    BuiltinPack { name: "trading", file: "packs/trading.pl", source: include_str!("../../../packs/trading.pl") },
    BuiltinPack { name: "gmp", file: "packs/gmp.pl", source: include_str!("../../../packs/gmp.pl") },
    BuiltinPack { name: "itil", file: "packs/itil.pl", source: include_str!("../../../packs/itil.pl") },
    BuiltinPack { name: "llm", file: "packs/llm.pl", source: include_str!("../../../packs/llm.pl") },
    BuiltinPack { name: "settlement", file: "packs/settlement.pl", source: include_str!("../../../packs/settlement.pl") },
];

/// Loads a built-in pack by name, or a pack file by path; returns it and
/// how reports name it.
///
/// # Errors
/// [`Error::UnknownPack`] for a name that is neither, [`Error::Pack`] for
/// an unreadable file.
pub fn load_pack(name: &str) -> Result<(PackFile, String), Error> {
    if let Some(p) = PACKS.iter().find(|p| p.name == name) {
        return Ok((PackFile::from_source(Path::new(p.file), p.source.to_owned()), p.file.to_owned()));
    }
    let path = Path::new(name);
    if !path.exists() {
        let known: Vec<&str> = PACKS.iter().map(|p| p.name).collect();
        return Err(Error::UnknownPack { name: name.to_owned(), known: known.join(", ") });
    }
    Ok((PackFile::load(path)?, path.display().to_string()))
}

/// Where the auditor reads from.
pub struct Source<'a> {
    /// The ledger directory.
    pub dir: &'a Path,
    /// The index (default `DIR/index.sqlite`).
    pub index: Option<&'a str>,
    /// The log's verifier key (default: `DIR/log.vkey`).
    pub vkey: Option<VerifierKey>,
}

/// Opens the engine over the ledger as of its latest checkpoint: the index
/// is brought up to it first (`progress` hears the entries indexed, out of
/// the lag it is first given), and receipts are checked against the
/// embedded program registry.
///
/// # Errors
/// [`Error::Ledger`] or [`Error::Index`].
pub fn engine(src: &Source<'_>, opts: Options, progress: &mut dyn FnMut(u64, u64)) -> Result<Engine, Error> {
    let layout = LedgerDir::new(src.dir);
    let reader = LogReader::open(src.dir).map_err(Error::ledger(src.dir))?;
    let spec = index_spec(&layout, src.index);
    let lag = crate::ledger::index_lag(&reader, &spec);
    let backend = synced_index(&reader, &spec, &mut |n| progress(n, lag))?;
    let vkey = match &src.vkey {
        Some(k) => k.clone(),
        None => zkaudit_tlog::read_vkey(src.dir).map_err(Error::ledger(src.dir))?,
    };
    Ok(Engine::new(&layout, reader, backend, vkey, Some(Box::new(ZkvmCheck { registry: Registry::embedded() })), opts))
}

/// Evaluates `pack` with parameter `overrides` (`NAME`, `VALUE`).
///
/// # Errors
/// [`Error::Pack`].
pub fn run_pack(engine: &mut Engine, pack: &PackFile, overrides: &[(String, String)]) -> Result<Report, Error> {
    Ok(zkaudit_audit::pack::evaluate(engine, pack, overrides)?)
}
