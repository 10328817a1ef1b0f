//! `zkaudit dvm`: the proof market's jobs over Nostr (NIP-90 with ZK tags):
//! a provider that proves through a proof server, and the buyer's request
//! and verification.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use zkaudit_collect::{Sink, SinkOptions};
use zkaudit_dvm::tags::{DataInput, Source, ZkRequest, DEFAULT_MAX_PROVING_TIME_S, ZKVM};
use zkaudit_dvm::DEFAULT_JOB_KIND;
use zkaudit_event::Layer;

use crate::output::{out, outln, print_json};
use crate::sink_args::{until_signal, SinkArgs};
use crate::store_cmd::StoreOpts;
use crate::zk_cmd::RegistryArgs;

/// `zkaudit dvm` subcommands.
#[derive(Subcommand)]
pub enum DvmCommand {
    /// Serve ZK job requests: refuse what cannot be met (with the reason),
    /// prove the rest through a proof server, put receipts in a store,
    /// publish results; every request, refusal and result is recorded.
    Serve(ServeArgs),
    /// Publish a ZK job request for a plan and its data, and wait for the
    /// result (or the provider's refusal, or the timeout).
    Request(RequestArgs),
    /// Verify a result event (its ID, fetched from --relay; a file holding
    /// its JSON; or - for standard input): receipt fetched by proof-ref and
    /// checked by digest, program registry, seal, plan hash, data root and
    /// output hash. Exit 0 when valid, 1 when not.
    Verify(VerifyArgs),
}

/// Relays and the job kind.
#[derive(Args, Clone)]
pub struct NostrOpts {
    /// A relay (ws:// or wss://); repeat for several.
    #[arg(long = "relay", value_name = "URL", required = true)]
    relays: Vec<String>,
    /// The NIP-90 job request kind (results are kind + 1000).
    #[arg(long, default_value_t = DEFAULT_JOB_KIND, value_parser = clap::value_parser!(u16).range(5000..=5999))]
    kind: u16,
}

/// `zkaudit dvm serve` arguments.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    nostr: NostrOpts,
    /// The proof server that proves the jobs (`zkaudit serve`).
    #[arg(long, value_name = "URL")]
    prover: String,
    /// A token of the proof server with the submit scope.
    #[arg(long, env = "ZKAUDIT_PROVER_TOKEN", hide_env_values = true)]
    prover_token: String,
    /// Assumed proving rate (cycles per second) for the estimate checked
    /// against max-proving-time; about 1,100 to 2,200 on 2 CPU cores.
    #[arg(long, value_name = "HZ", default_value_t = 1000)]
    prove_rate: u64,
    /// Largest event the relays accept (bytes); a receipt goes inline only
    /// without --store, and only if the result fits.
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    max_event_bytes: usize,
    #[command(flatten)]
    store: StoreOpts,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    sink: SinkArgs,
}

/// `zkaudit dvm request` arguments.
#[derive(Args)]
pub struct RequestArgs {
    /// The plan (JSON or YAML), sent inline.
    plan: PathBuf,
    /// Input data as NAME=FILE (inline; .jsonl/.ndjson are JSON Lines, else
    /// CSV) or NAME=http(s)://URL (fetched by the provider; a Blossom URL's
    /// SHA-256 is checked). Repeat per input.
    #[arg(long = "data", value_name = "NAME=FILE|URL")]
    data: Vec<String>,
    #[command(flatten)]
    nostr: NostrOpts,
    /// Address one provider (npub or hex); only its answers count.
    #[arg(long, value_name = "PUBKEY")]
    provider: Option<String>,
    /// Encrypt the plan, data and requirements to --provider (NIP-90's
    /// encrypted parameters) with nip44 (the default) or nip04; the output
    /// comes back encrypted the same way.
    #[arg(long, requires = "provider", value_name = "SCHEME", num_args = 0..=1, default_missing_value = "nip44")]
    encrypt: Option<zkaudit_dvm::encryption::Encryption>,
    /// The zkVM required (`risc-zero`, or `any`).
    #[arg(long, default_value = ZKVM)]
    zkvm: String,
    /// Oldest program version accepted.
    #[arg(long, value_name = "VERSION")]
    min_program_version: Option<String>,
    /// Longest proving time accepted (s).
    #[arg(long, value_name = "S", default_value_t = DEFAULT_MAX_PROVING_TIME_S)]
    max_proving_time: u64,
    /// The most this buyer pays for the result (NIP-90 `bid`, msat); the
    /// provider asks it back as the result's `amount`.
    #[arg(long, value_name = "MSAT")]
    bid: Option<u64>,
    /// How long to wait for the outcome (s).
    #[arg(long, value_name = "S", default_value_t = 900)]
    wait: u64,
    /// Write the result event's JSON here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Verify the result at once (needs the store the receipt is in, or a
    /// Blossom proof-ref, which is fetched directly).
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    store: StoreOpts,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print one JSON object (the outcome, and the verdict with --verify).
    #[arg(long)]
    json: bool,
}

/// `zkaudit dvm verify` arguments.
#[derive(Args)]
pub struct VerifyArgs {
    /// The result event: its ID (64 hex digits, note1… or nevent1…),
    /// fetched from --relay and an nevent's relay hints; or a file holding
    /// its JSON; or - for standard input.
    event: String,
    /// A relay to fetch the event from, when EVENT is an ID; repeat for several.
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    #[command(flatten)]
    store: StoreOpts,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    settle: DvmSettleArgs,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

/// Settling a result on the market's accounts (`zkaudit settle`'s).
#[derive(Args)]
pub struct DvmSettleArgs {
    /// Settle the job on this settlement database (SQLite file or
    /// `postgres://` URL): accepted at the result's `amount` (at most the
    /// request's `bid`) from the buyer to the provider, then paid with the
    /// split on a valid receipt, or refunded and the provider slashed on
    /// an invalid one. Results that fail before their receipt is fetched
    /// (a bad signature, no request) are not settled.
    #[arg(long, value_name = "PATH|URL", requires = "settle_ledger")]
    settle_db: Option<String>,
    /// The event ledger the settlement steps are recorded in.
    #[arg(long, value_name = "DIR", requires = "settle_db")]
    settle_ledger: Option<PathBuf>,
    /// The ledger number of the settlement unit (1: msat, NIP-90's unit).
    #[arg(long, default_value_t = 1)]
    settle_unit: u32,
    #[command(flatten)]
    policy: crate::settle_cmd::SettlePolicyArgs,
}

/// Runs a `dvm` subcommand.
pub fn dvm(cmd: DvmCommand) -> Result<ExitCode> {
    match cmd {
        DvmCommand::Serve(a) => serve(a),
        DvmCommand::Request(a) => request(a),
        DvmCommand::Verify(a) => verify(a),
    }
}

fn serve(a: ServeArgs) -> Result<ExitCode> {
    let key = a.store.key.as_deref().ok_or_else(|| anyhow!("--key FILE: the provider's Nostr key (`zkaudit store keygen FILE` makes one)"))?;
    let keys = zkaudit_store::keys::load(key)?;
    let store = a.store.open_for_put()?.map(Arc::new);
    let config = zkaudit_dvm::provider::Config {
        keys: keys.clone(),
        relays: a.nostr.relays,
        job_kind: a.nostr.kind,
        prover: zkaudit_dvm::provider::Prover { url: a.prover, token: a.prover_token },
        store,
        registry: a.registry.load()?,
        prove_rate: a.prove_rate,
        max_event_bytes: a.max_event_bytes,
        timeout: a.store.timeout(),
    };
    let sink = Sink::open(a.sink.destination()?, SinkOptions::new(zkaudit_dvm::provider::COLLECTOR, Layer::Application))?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        // Scripts and tests wait for the `serving` line: the provider is subscribed.
        let stop = async {
            if let Err(e) = until_signal().await {
                eprintln!("error: {e}");
            }
        };
        let kind = config.job_kind;
        let npub = zkaudit_store::keys::npub(&keys);
        let ready = || outln!("serving kind {kind} as {npub}");
        zkaudit_dvm::provider::run(config, sink, ready, stop).await.map_err(|e| anyhow!(e))
    })?;
    Ok(ExitCode::SUCCESS)
}

fn data_input(arg: &str) -> Result<DataInput> {
    let (name, what) = arg.split_once('=').ok_or_else(|| anyhow!("--data {arg}: expected NAME=FILE or NAME=URL"))?;
    let jsonl = [".jsonl", ".ndjson"].iter().any(|x| what.ends_with(x));
    let format = if jsonl { "jsonl" } else { "csv" }.to_owned();
    let source = if what.starts_with("http://") || what.starts_with("https://") {
        Source::Url(what.to_owned())
    } else {
        Source::Text(std::fs::read_to_string(what).with_context(|| format!("--data {name}: reading {what}"))?)
    };
    Ok(DataInput { name: name.to_owned(), format, source })
}

fn request(a: RequestArgs) -> Result<ExitCode> {
    let key = a.store.key.as_deref().ok_or_else(|| anyhow!("--key FILE: the Nostr key that signs the request (`zkaudit store keygen FILE` makes one)"))?;
    let keys = zkaudit_store::keys::load(key)?;
    let plan = std::fs::read_to_string(&a.plan).with_context(|| format!("reading {}", a.plan.display()))?;
    let job = ZkRequest {
        verification: "zk".into(),
        zkvm: a.zkvm,
        min_program_version: a.min_program_version,
        max_proving_time_s: a.max_proving_time,
        plan: Source::Text(plan),
        data: a.data.iter().map(|d| data_input(d)).collect::<Result<_>>()?,
        bid_msat: a.bid,
    };
    let provider = a.provider.as_deref().map(|p| zkaudit_dvm::nostr_sdk::PublicKey::parse(p).map_err(|e| anyhow!("--provider {p}: {e}"))).transpose()?;
    let r = zkaudit_dvm::buyer::Request { job, job_kind: a.nostr.kind, provider, encrypt: a.encrypt, wait: Duration::from_secs(a.wait) };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let outcome = rt.block_on(zkaudit_dvm::buyer::request(&keys, &a.nostr.relays, r)).map_err(|e| anyhow!(e))?;
    if let (Some(p), Some(ev)) = (&a.out, &outcome.result) {
        std::fs::write(p, ev.to_string()).with_context(|| format!("writing {}", p.display()))?;
    }
    let verdict = match (&outcome.result, a.verify) {
        (Some(ev), true) => {
            let event =
                <zkaudit_dvm::nostr_sdk::Event as zkaudit_dvm::nostr_sdk::JsonUtil>::from_json(ev.to_string()).map_err(|e| anyhow!("the result event: {e}"))?;
            Some(verify_event(&event, &a.store, &a.registry)?)
        }
        _ => None,
    };
    if a.json {
        print_json(&serde_json::json!({"outcome": outcome, "verdict": verdict}));
    } else {
        for f in &outcome.feedback {
            outln!("feedback {f}");
        }
        match outcome.status.as_str() {
            "result" => outln!("result for request {} after {} ms", outcome.request_id, outcome.elapsed_ms),
            "error" => outln!("refused: {}", outcome.reason.as_deref().unwrap_or("no reason given")),
            _ => outln!("no result for request {} within {} s", outcome.request_id, a.wait),
        }
        if let Some(v) = &verdict {
            print_verdict(v);
        }
    }
    Ok(match (outcome.status.as_str(), &verdict) {
        ("result", None) => ExitCode::SUCCESS,
        ("result", Some(v)) if v.valid => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// Verifies `event`; `--key` (the buyer's) reads an encrypted request.
fn verify_event(event: &zkaudit_dvm::nostr_sdk::Event, store: &StoreOpts, registry: &RegistryArgs) -> Result<zkaudit_dvm::buyer::Verdict> {
    let buyer = store.key.as_deref().map(zkaudit_store::keys::load).transpose()?;
    Ok(zkaudit_dvm::buyer::verify(event, buyer.as_ref(), &store.open()?, &registry.load()?, store.timeout()))
}

fn print_verdict(v: &zkaudit_dvm::buyer::Verdict) {
    if v.valid {
        outln!(
            "VALID: image ID {} (version {}), plan hash {}, data root {}, output hash {}",
            v.image_id,
            v.program_version,
            v.plan_hash,
            v.data_root,
            v.output_hash
        );
        if let Some(o) = &v.public_output {
            outln!("public output: {o}");
        }
    } else {
        outln!("INVALID: {}", v.reason.as_deref().unwrap_or("no reason"));
    }
}

/// The event `dvm verify` was given: read from standard input or a file,
/// or, for an ID that names no file, fetched from the relays.
fn load_event(a: &VerifyArgs) -> Result<zkaudit_dvm::nostr_sdk::Event> {
    let text = if a.event == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else if std::path::Path::new(&a.event).exists() {
        std::fs::read_to_string(&a.event).with_context(|| format!("reading {}", a.event))?
    } else {
        let (id, hints) = zkaudit_dvm::buyer::parse_event_ref(&a.event).map_err(|e| anyhow!("{e}; and no file is named so"))?;
        if a.relays.is_empty() && hints.is_empty() {
            bail!("{}: an event ID needs --relay URL to fetch it from", a.event);
        }
        let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        return rt.block_on(zkaudit_dvm::buyer::fetch_event(&a.relays, id, &hints, a.store.timeout())).map_err(|e| anyhow!(e));
    };
    <zkaudit_dvm::nostr_sdk::Event as zkaudit_dvm::nostr_sdk::JsonUtil>::from_json(text.trim()).map_err(|e| anyhow!("{}: not a Nostr event: {e}", a.event))
}

fn verify(a: VerifyArgs) -> Result<ExitCode> {
    let event = load_event(&a)?;
    let v = verify_event(&event, &a.store, &a.registry)?;
    let settlement = match (&a.settle.settle_db, &a.settle.settle_ledger) {
        (Some(db), Some(ledger)) => Some(settle(&v, db, ledger, &a)?),
        _ => None,
    };
    if a.json {
        let mut out = serde_json::to_value(&v)?;
        if let (Some(s), Some(o)) = (&settlement, out.as_object_mut()) {
            o.insert("settlement".into(), serde_json::to_value(s)?);
        }
        print_json(&out);
    } else {
        print_verdict(&v);
        if let Some(s) = &settlement {
            outln!("settled: {} ({})", s.action, s.reason);
        }
    }
    Ok(if v.valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Settles the job `v` judged (`--settle-db`) on the market's accounts.
fn settle(v: &zkaudit_dvm::buyer::Verdict, db: &str, ledger: &std::path::Path, a: &VerifyArgs) -> Result<zkaudit_app::settle::SettlementRecord> {
    let settlement =
        crate::settle_cmd::open_accounts(db, a.settle.policy.policy(), a.settle.settle_unit, zkaudit_settle::settlement::DEFAULT_CHALLENGE_WINDOW_S)?;
    let (events, registry) = (zkaudit_app::ledger::Ledger::open(ledger, None)?, a.registry.load()?);
    let market = zkaudit_app::settle::Market { settlement: &settlement, ledger: &events, registry: &registry };
    zkaudit_dvm::buyer::settle(v, &market).map_err(|e| anyhow!(e))
}
