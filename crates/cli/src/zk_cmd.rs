//! `zkaudit prove`, `zkaudit verify` and `zkaudit registry …`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use zkaudit_note::SigningKey;
use zkaudit_plan::value::hex;
use zkaudit_zkvm::registry::{self, Origin, ProgramEntry};
use zkaudit_zkvm::{Expectations, Job, ProveOptions, Progress, Registry};

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
    /// Segment size as a power of two (cycles): lower uses less memory, not less time.
    #[arg(long, value_parser = clap::value_parser!(u32).range(13..=22))]
    segment_po2: Option<u32>,
    /// Compress to a succinct receipt (only where risc0's recursion programs are built in).
    #[arg(long)]
    succinct: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Run under a proof-server worker: report progress as JSON lines on
    /// stderr, and exit as soon as standard input closes.
    #[arg(long, hide = true)]
    supervised: bool,
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
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(Duration::from_millis(250));
    pb
}

/// `zkaudit prove`.
pub fn prove(a: ProveArgs) -> Result<ExitCode> {
    let l = plan_cmd::load(&a.plan, &a.data).with_context(|| format!("prove {}", a.plan.display()))?;
    // The native run catches run-time errors before the slow part.
    let (native, _) = l.run_native()?;
    let pb = if a.json { ProgressBar::hidden() } else { spinner() };
    if a.supervised {
        crate::output::supervised();
    }
    let opts = ProveOptions { segment_po2: a.segment_po2, timeout: a.timeout.map(Duration::from_secs), succinct: a.succinct };
    let proof = zkaudit_zkvm::prove(Job::for_plan(&l), opts, |p| {
        if a.supervised {
            crate::output::report_progress(&p);
        }
        match p {
        Progress::Executing => pb.set_message("executing the guest"),
        Progress::Executed { total_cycles, segments } => {
            pb.set_message(format!("proving: 0/{segments} segments ({total_cycles} cycles)"));
        }
        Progress::Segment { done, of } => pb.set_message(format!("proving: {done}/{of} segments")),
        Progress::Compressing => pb.set_message("compressing to a succinct receipt"),
        }
    });
    pb.finish_and_clear();
    let proof = proof?;
    if proof.execution.journal != native {
        bail!("the guest's journal differs from native execution; refusing to write the receipt");
    }
    let bytes = zkaudit_zkvm::verify::encode_receipt(&proof.receipt)?;
    let verified = zkaudit_zkvm::verify(&bytes, &Registry::embedded(), &Expectations::default())
        .context("the fresh receipt does not verify")?;
    std::fs::write(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;

    let ledger = match &a.ledger {
        Some(dir) => Some(record(dir, &l, &verified, &proof, &bytes)?),
        None => None,
    };
    let e = &proof.execution;
    if a.json {
        let mut v = json!({
            "receipt": a.out.display().to_string(),
            "receiptBytes": bytes.len(),
            "receiptDigest": hex(&verified.receipt_digest),
            "kind": verified.kind,
            "imageId": verified.program.image_id,
            "planHash": hex(&l.file.hash),
            "dataRoot": hex(&l.commitment.data_root),
            "outputHash": hex(&e.journal.output_hash),
            "publicOutput": serde_json::from_slice::<serde_json::Value>(&e.journal.output)?,
            "records": l.records(),
            "cycles": plan_cmd::cycles_json(e, l.records()),
            "proveSeconds": proof.prove_time.as_secs_f64(),
            "peakRssBytes": proof.peak_rss_bytes,
        });
        if let Some(index) = ledger {
            v["ledgerIndex"] = json!(index);
        }
        print_json(&v);
    } else {
        outln!("receipt:     {} ({} bytes, {})", a.out.display(), bytes.len(), verified.kind);
        outln!("image ID:    {}", verified.program.image_id);
        outln!("plan hash:   {}", hex(&l.file.hash));
        outln!("data root:   {} ({} records)", hex(&l.commitment.data_root), l.records());
        outln!("output:      {}", String::from_utf8_lossy(&e.journal.output));
        outln!(
            "cycles:      {} total ({} user, {} paging) in {} segment(s)",
            e.total_cycles,
            e.user_cycles,
            e.paging_cycles,
            e.segments
        );
        outln!("prove time:  {:.1} s", proof.prove_time.as_secs_f64());
        if let Some(rss) = proof.peak_rss_bytes {
            outln!("peak memory: {:.2} GiB", rss as f64 / f64::from(1u32 << 30));
        }
        if let (Some(dir), Some(index)) = (&a.ledger, ledger) {
            outln!("ledger:      proof event recorded at index {index} in {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Appends a `zk_proof` event for a verified receipt; returns its leaf index.
/// The receipt is kept in DIR/receipts/<receipt digest>.bin so that auditors'
/// queries (`zkaudit/2`) can verify it again later.
fn record(dir: &Path, l: &plan_cmd::Loaded, v: &zkaudit_zkvm::Verified, p: &zkaudit_zkvm::Proof, receipt: &[u8]) -> Result<u64> {
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
    let e = &p.execution;
    let event = json!({
        "version": "1.0",
        "timestamp": now,
        "layer": "computation",
        "type": "zk_proof",
        "input": format!("sha256:{}", hex(&l.file.hash)),
        "output": format!("sha256:{}", hex(&e.journal.output_hash)),
        "metadata": {
            "planId": l.file.plan.id,
            "jobRequestHash": l.file.plan.job_request_hash,
            "dataRoot": hex(&l.commitment.data_root),
            "records": l.records(),
            "totalCycles": e.total_cycles,
            "userCycles": e.user_cycles,
            "segments": e.segments,
            "proveMillis": p.prove_time.as_millis() as u64,
            "programVersion": v.program.version,
        },
        "proof": {
            "kind": v.kind,
            "receipt_digest": format!("sha256:{}", hex(&v.receipt_digest)),
            "image_id": v.program.image_id,
            "journal_digest": format!("sha256:{}", hex(&v.journal_digest)),
        },
    });
    let parsed = zkaudit_event::Event::from_entry(event.to_string().as_bytes()).context("building the proof event")?;
    let stored = zkaudit_audit::receipt_path(dir, &format!("sha256:{}", hex(&v.receipt_digest)));
    if let Some(parent) = stored.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&stored, receipt).with_context(|| format!("writing {}", stored.display()))?;
    let log = zkaudit_tlog::Log::open(dir).with_context(|| format!("opening ledger {}", dir.display()))?;
    let acked = log.append(vec![parsed.canonical_bytes()?])?;
    drop(log);
    crate::audit_cmd::index_after_append(dir).context("the proof event is recorded, but updating the index failed")?;
    Ok(acked.first_index)
}

/// `zkaudit verify`: exit 0 only if every check passes, 1 with the reason otherwise.
pub fn verify(a: VerifyArgs) -> Result<ExitCode> {
    let bytes = std::fs::read(&a.receipt).with_context(|| format!("reading {}", a.receipt.display()))?;
    let registry = a.registry.load()?;
    let mut expect = Expectations::default();
    match (&a.plan, a.data.data.is_empty()) {
        (Some(plan), true) => expect.plan_hash = Some(plan_cmd::load_plan(plan)?.0.hash),
        (Some(plan), false) => {
            let l = plan_cmd::load(plan, &a.data)?;
            expect.plan_hash = Some(l.file.hash);
            expect.data_root = Some(l.commitment.data_root);
        }
        (None, false) => bail!("--data needs --plan: the plan's schema says how to read the data"),
        (None, true) => {}
    }
    if let Some(f) = &a.expect_output {
        let text = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let v: serde_json::Value = serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", f.display()))?;
        expect.output = Some(serde_json_canonicalizer::to_vec(&v).map_err(|e| anyhow!("{}: {e}", f.display()))?);
    }
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
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    SigningKey::parse(text.trim()).map_err(|e| anyhow!("{}: {e}", path.display()))
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
            write_secret(&key, sk.to_secret_string().as_bytes())?;
            registry::write_file(&file, &[], &sk)?;
            outln!("{}", sk.verifier());
        }
        RegistryCommand::Add { file, key, image_id, program_version, features, release_date } => {
            let entry = ProgramEntry {
                image_id: image_id.unwrap_or_else(|| zkaudit_zkvm::guest::GUEST_IMAGE_ID.into()),
                version: program_version,
                features,
                release_date,
                deprecated: false,
                reason: None,
            };
            registry::add(&file, &read_key(&key)?, entry)?;
        }
        RegistryCommand::Deprecate { file, key, image_id, reason } => {
            registry::deprecate(&file, &read_key(&key)?, &image_id, &reason)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.write_all(b"\n")?;
    Ok(())
}
