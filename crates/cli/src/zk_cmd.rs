//! `zkaudit prove`, `zkaudit verify` and `zkaudit registry …`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use zkaudit_app::ledger::Ledger;
use zkaudit_note::SigningKey;
use zkaudit_plan::value::hex;
use zkaudit_zkvm::registry::{self, Origin, ProgramEntry};
use zkaudit_zkvm::{Expectations, Progress, ProveOptions, ReceiptCache, Registry};

use crate::output::{out, outln, print_json};
use crate::plan_cmd::{self, DataArgs};

/// `zkaudit prove` arguments.
#[derive(Args)]
pub struct ProveArgs {
    /// Plan file (.json, .yaml or .yml).
    plan: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Where to write the receipt (bincode-encoded risc0 Receipt).
    #[arg(long)]
    out: PathBuf,
    /// Append a proof event to this ledger (a directory made by `zkaudit log init`).
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Give up after this many seconds of proving.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Segment size as a power of two (cycles); by default the one that pads the
    /// job to the fewest total cycles (tried from 2^16 to 2^20). Lower uses less memory.
    #[arg(long, value_parser = clap::value_parser!(u32).range(13..=22))]
    segment_po2: Option<u32>,
    /// Compress to a succinct receipt (only where risc0's recursion programs are built in).
    #[arg(long)]
    succinct: bool,
    /// Receipt cache: a job already proved there (same guest, plan, data,
    /// kind and segment size) is answered from it after verifying the
    /// receipt again, and a new receipt is kept there.
    #[arg(long, value_name = "DIR", env = zkaudit_zkvm::cache::RECEIPT_CACHE_ENV)]
    receipt_cache: Option<PathBuf>,
    // --store URL: also put the receipt in content-addressed storage
    // (Blossom, IPFS) and report where (`proofRef`).
    #[command(flatten)]
    store: crate::store_cmd::StoreOpts,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `zkaudit verify` arguments.
#[derive(Args)]
pub struct VerifyArgs {
    /// Receipt file written by `zkaudit prove`.
    receipt: PathBuf,
    /// Require the journal's plan hash to be this plan's.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Require the journal's data root to be this data's (needs --plan).
    #[command(flatten)]
    data: DataArgs,
    /// Require the public output to equal this JSON file (compared canonically).
    #[arg(long, value_name = "FILE")]
    expect_output: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Where the program registry comes from.
#[derive(Args, Clone, Default)]
pub struct RegistryArgs {
    /// A signed registry file, merged over the embedded default.
    #[arg(long, value_name = "FILE", requires = "registry_vkey")]
    registry: Option<PathBuf>,
    /// Verifier key of the registry file (the key itself or a file holding it).
    #[arg(long, value_name = "VKEY")]
    registry_vkey: Option<String>,
}

impl RegistryArgs {
    /// The embedded registry, merged with the signed file if one is given.
    pub fn load(&self) -> Result<Registry> {
        match (&self.registry, &self.registry_vkey) {
            (Some(f), Some(v)) => Ok(Registry::with_file(f, &crate::log_cmd::load_vkey(v)?)?),
            _ => Ok(Registry::embedded()),
        }
    }
}

/// Registry commands.
#[derive(Subcommand)]
pub enum RegistryCommand {
    /// List the programs verifiers accept or refuse.
    List {
        #[command(flatten)]
        registry: RegistryArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Create a signing key and an empty signed registry file; prints the verifier key.
    Init {
        /// The registry file to create.
        file: PathBuf,
        /// Key name (as in a C2SP signed-note key, e.g. example.com/registry).
        #[arg(long)]
        name: String,
        /// Where to write the private key (mode 0600).
        #[arg(long)]
        key: PathBuf,
    },
    /// Add or replace a program in a signed registry file.
    Add {
        /// The registry file.
        file: PathBuf,
        /// The private key file.
        #[arg(long)]
        key: PathBuf,
        /// Image ID (64 hex); default: this binary's guest.
        #[arg(long)]
        image_id: Option<String>,
        /// Program version (semver).
        #[arg(long, value_name = "VERSION")]
        program_version: String,
        /// Comma-separated features.
        #[arg(long, value_delimiter = ',')]
        features: Vec<String>,
        /// Release date, YYYY-MM-DD.
        #[arg(long)]
        release_date: String,
        /// A TEE measurement (hex) of a build approved to run as a prover
        /// (SGX MRENCLAVE, TDX MRTD, SEV-SNP MEASUREMENT); repeatable.
        #[arg(long = "tee-measurement", value_name = "HEX")]
        tee_measurements: Vec<String>,
    },
    /// Mark a program deprecated in a signed registry file, with a reason.
    Deprecate {
        /// The registry file.
        file: PathBuf,
        /// The private key file.
        #[arg(long)]
        key: PathBuf,
        /// Image ID (64 hex).
        #[arg(long)]
        image_id: String,
        /// Why receipts of this program must be refused.
        #[arg(long)]
        reason: String,
    },
}

fn spinner() -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    pb.enable_steady_tick(Duration::from_millis(250));
    pb
}

/// `zkaudit prove`.
pub fn prove(a: ProveArgs) -> Result<ExitCode> {
    let l = plan_cmd::load(&a.plan, &a.data).with_context(|| format!("prove {}", a.plan.display()))?;
    // Opened first, so a bad --ledger fails before the slow part.
    let ledger = a.ledger.as_deref().map(|dir| Ledger::open(dir, None)).transpose()?;
    let store = a.store.open_for_put()?;
    let pb = if a.json { ProgressBar::hidden() } else { spinner() };
    let opts = ProveOptions {
        segment_po2: a.segment_po2,
        timeout: a.timeout.map(Duration::from_secs),
        succinct: a.succinct,
        cache: a.receipt_cache.map(ReceiptCache::new),
    };
    let proven = zkaudit_app::proof::prove(&l, opts, |p| match p {
        Progress::Executing => pb.set_message("executing the guest"),
        Progress::Executed { total_cycles, segments } => {
            pb.set_message(format!("proving: 0/{segments} segments ({total_cycles} cycles)"));
        }
        Progress::Segment { done, of } => pb.set_message(format!("proving: {done}/{of} segments")),
        Progress::Compressing => pb.set_message("compressing to a succinct receipt"),
    });
    pb.finish_and_clear();
    let proven = proven?;
    if let Some(w) = proven.proof.cache.warning() {
        eprintln!("warning: {w}");
    }
    std::fs::write(&a.out, &proven.receipt).with_context(|| format!("writing {}", a.out.display()))?;
    let index = match &ledger {
        Some(ledger) => Some(zkaudit_app::proof::record(ledger, &proven.claim(&l), &proven.receipt)?),
        None => None,
    };
    let mut r = proven.report(&l, Some(a.out.display().to_string()), index)?;
    if let Some(store) = &store {
        r.proof_ref = Some(store.put(&proven.receipt, zkaudit_app::proof::RECEIPT_CONTENT_TYPE, false)?.blob.reference());
    }
    if a.json {
        print_json(&r);
    } else {
        let c = &r.cycles;
        outln!("receipt:     {} ({} bytes, {})", a.out.display(), r.receipt_bytes, r.kind);
        outln!("image ID:    {}", r.image_id);
        outln!("plan hash:   {}", r.plan_hash);
        outln!("data root:   {} ({} records)", r.data_root, r.records);
        outln!("output:      {}", String::from_utf8_lossy(&proven.proof.execution.journal.output));
        outln!("cycles:      {} total ({} user, {} paging) in {} segment(s)", c.total_cycles, c.user_cycles, c.paging_cycles, c.segments);
        if r.cached {
            outln!("prove time:  {:.1} s, earlier (from the receipt cache, verified again now)", r.prove_seconds);
        } else {
            outln!("prove time:  {:.1} s", r.prove_seconds);
        }
        if let Some(rss) = r.peak_rss_bytes {
            outln!("peak memory: {:.2} GiB", rss as f64 / f64::from(1u32 << 30));
        }
        if let (Some(dir), Some(index)) = (&a.ledger, index) {
            outln!("ledger:      proof event recorded at index {index} in {}", dir.display());
        }
        if let Some(p) = &r.proof_ref {
            outln!("stored:      {p}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `zkaudit verify`: exit 0 only if every check passes, 1 with the reason otherwise.
/// What a receipt must show: the plan's hash (with `plan`), its data's
/// root (with `data` too), and the public output in `expect_output`.
pub fn expectations(plan: Option<&Path>, data: &DataArgs, expect_output: Option<&Path>) -> Result<Expectations> {
    let mut expect = Expectations::default();
    match (plan, data.data.is_empty()) {
        (Some(plan), true) => expect.plan_hash = Some(plan_cmd::load_plan(plan)?.0.hash),
        (Some(plan), false) => {
            let l = plan_cmd::load(plan, data)?;
            expect.plan_hash = Some(l.file.hash);
            expect.data_root = Some(l.commitment.data_root);
        }
        (None, false) => bail!("--data needs --plan: the plan's schema says how to read the data"),
        (None, true) => {}
    }
    if let Some(f) = expect_output {
        let text = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let v: serde_json::Value = serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", f.display()))?;
        expect.output = Some(serde_json_canonicalizer::to_vec(&v).map_err(|e| anyhow!("{}: {e}", f.display()))?);
    }
    Ok(expect)
}

pub fn verify(a: VerifyArgs) -> Result<ExitCode> {
    let bytes = std::fs::read(&a.receipt).with_context(|| format!("reading {}", a.receipt.display()))?;
    let registry = a.registry.load()?;
    let expect = expectations(a.plan.as_deref(), &a.data, a.expect_output.as_deref())?;
    match zkaudit_zkvm::verify(&bytes, &registry, &expect) {
        Ok(v) => {
            if a.json {
                print_json(&json!({
                    "valid": true,
                    "kind": v.kind,
                    "segments": v.segments,
                    "imageId": v.program.image_id,
                    "programVersion": v.program.version,
                    "planHash": hex(&v.journal.plan_hash),
                    "dataRoot": hex(&v.journal.data_root),
                    "outputHash": hex(&v.journal.output_hash),
                    "publicOutput": serde_json::from_slice::<serde_json::Value>(&v.journal.output).ok(),
                    "receiptDigest": hex(&v.receipt_digest),
                    "verifyMillis": v.verify_time.as_secs_f64() * 1e3,
                    "checked": {"planHash": expect.plan_hash.is_some(), "dataRoot": expect.data_root.is_some(), "output": expect.output.is_some()},
                }));
            } else {
                outln!("OK: {} receipt from image ID {} (version {})", v.kind, v.program.image_id, v.program.version);
                outln!("plan hash:   {}{}", hex(&v.journal.plan_hash), if expect.plan_hash.is_some() { " (matches the plan)" } else { "" });
                outln!("data root:   {}{}", hex(&v.journal.data_root), if expect.data_root.is_some() { " (matches the data)" } else { "" });
                outln!("output:      {}{}", String::from_utf8_lossy(&v.journal.output), if expect.output.is_some() { " (as expected)" } else { "" });
                outln!("seal verified in {:.1} ms", v.verify_time.as_secs_f64() * 1e3);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if a.json {
                print_json(&json!({"valid": false, "reason": e.to_string()}));
            } else {
                outln!("FAIL: {e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

fn read_key(path: &Path) -> Result<SigningKey> {
    zkaudit_tlog::read_signing_key(path).with_context(|| format!("signing key {}", path.display()))
}

/// `zkaudit registry …`.
pub fn registry(cmd: RegistryCommand) -> Result<ExitCode> {
    match cmd {
        RegistryCommand::List { registry, json } => {
            let r = registry.load()?;
            if json {
                let list: Vec<_> = r
                    .entries()
                    .iter()
                    .map(|(e, o)| {
                        let mut v = serde_json::to_value(e).unwrap_or_default();
                        v["origin"] = json!(o);
                        v
                    })
                    .collect();
                print_json(&json!({"programs": list, "succinctAvailable": zkaudit_zkvm::succinct_available()}));
            } else {
                for (e, o) in r.entries() {
                    let state = if e.deprecated { format!("DEPRECATED: {}", e.reason.as_deref().unwrap_or("")) } else { "allowed".into() };
                    let origin = if *o == Origin::Embedded { "embedded" } else { "file" };
                    outln!("{}  v{}  {}  [{}]  ({origin}) {state}", e.image_id, e.version, e.release_date, e.features.join(","));
                }
            }
        }
        RegistryCommand::Init { file, name, key } => {
            if file.exists() || key.exists() {
                bail!("{} or {} already exists; refusing to overwrite", file.display(), key.display());
            }
            let sk = SigningKey::generate(&name).map_err(|e| anyhow!("{e}"))?;
            zkaudit_tlog::write_signing_key(&key, &sk)?;
            registry::write_file(&file, &[], &sk)?;
            outln!("{}", sk.verifier());
        }
        RegistryCommand::Add { file, key, image_id, program_version, features, release_date, tee_measurements } => {
            let entry = ProgramEntry {
                image_id: image_id.unwrap_or_else(|| zkaudit_zkvm::guest::GUEST_IMAGE_ID.into()),
                version: program_version,
                features,
                release_date,
                deprecated: false,
                reason: None,
                tee_measurements: tee_measurements.iter().map(|m| m.to_lowercase()).collect(),
            };
            registry::add(&file, &read_key(&key)?, entry)?;
        }
        RegistryCommand::Deprecate { file, key, image_id, reason } => {
            registry::deprecate(&file, &read_key(&key)?, &image_id, &reason)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
