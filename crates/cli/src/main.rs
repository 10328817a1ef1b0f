//! `zkaudit`: the command-line front end of the zkaudit platform.
//!
//! This crate owns argument parsing, human and `--json` output, progress
//! bars and benchmarks. It holds no ledger, proof or index policy of its
//! own: every command is one call into a use case of `zkaudit-app` (or a
//! library crate), with its output printed.

// Doc comments on the clap types are the `--help` text, where `<name>` is
// the usual placeholder notation, not HTML.
#![allow(rustdoc::invalid_html_tags)]

mod attest_cmd;
mod audit_cmd;
mod bench;
mod bench_audit;
mod bench_host;
mod bench_log_append;
mod bench_pcap;
mod bench_record;
mod bench_registry;
mod bench_settle;
mod child_cmd;
mod collect_cmd;
mod detect_cmd;
mod dvm_cmd;
mod ingest_cmd;
mod llm_cmd;
mod log_cmd;
mod output;
mod plan_cmd;
mod provers_cmd;
mod record_cmd;
mod registry_cmd;
mod serve_cmd;
mod settle_cmd;
mod sink_args;
mod store_cmd;
mod zk_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// zkaudit: verifiable execution and audit. Don't trust, verify.
///
/// Records every operation as an event in a tamper-evident, append-only
/// ledger: an RFC 9162 Merkle log stored as C2SP tlog-tiles, with
/// Ed25519-signed checkpoints. Anyone with the log's verifier key can check
/// inclusion and consistency proofs without trusting whoever runs the log.
///
/// Computations that matter are declared as execution plans and proven in the
/// RISC Zero zkVM: the receipt shows that the plan (by its hash) ran over the
/// committed data (by its Merkle root) and produced the output, without
/// revealing the data.
#[derive(Parser)]
#[command(
    name = "zkaudit",
    version,
    propagate_version = true,
    after_help = "Quick start:\n  \
    zkaudit log init ./ledger --origin example.com/ledger   # prints the verifier key\n  \
    zkaudit log append ./ledger events.jsonl --json          # one event per line\n  \
    zkaudit log inclusion ./ledger --index 0 --json\n  \
    zkaudit log verify ./ledger --vkey 'example.com/ledger+…'\n  \
    zkaudit plan validate examples/stocks-summary/plan.yaml\n  \
    zkaudit run examples/stocks-summary/plan.yaml --data prices=stocks.csv\n  \
    zkaudit prove examples/stocks-summary/plan.yaml --data prices=stocks.csv --out s.receipt --ledger ./ledger\n  \
    zkaudit verify s.receipt --plan examples/stocks-summary/plan.yaml --data prices=stocks.csv"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, append to, read, prove and verify a ledger (a C2SP tlog-tiles directory).
    #[command(subcommand)]
    Log(log_cmd::LogCommand),
    /// Write the JSON Schema of plans, or validate a plan file.
    #[command(subcommand)]
    Plan(plan_cmd::PlanCommand),
    /// Execute a plan natively (hash-commitment tier, no proof); --zkvm also
    /// executes it in the zkVM without proving and reports cycles.
    Run {
        /// Plan file (.json, .yaml or .yml).
        plan: std::path::PathBuf,
        #[command(flatten)]
        data: plan_cmd::DataArgs,
        /// Also run the guest in the zkVM executor and compare journals;
        /// cycles are counted at risc0's default segment size, 2^20.
        #[arg(long)]
        zkvm: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Prove a plan over data in the RISC Zero zkVM and write the receipt.
    Prove(zk_cmd::ProveArgs),
    /// Verify a receipt against the program registry, and optionally the plan, data and output.
    Verify(zk_cmd::VerifyArgs),
    /// List, create and sign program registries.
    #[command(subcommand)]
    Registry(zk_cmd::RegistryCommand),
    /// Run a command and record what it and its descendants do (exec, files,
    /// network) into a ledger or a server; exits as the command did.
    Record(record_cmd::RecordArgs),
    /// System-wide collectors (the Linux audit netlink socket, host metrics).
    #[command(subcommand)]
    Collect(collect_cmd::CollectCommand),
    /// Turn recorded artifacts (packet captures, git history) into events in a ledger or a server.
    #[command(subcommand)]
    Ingest(ingest_cmd::IngestCommand),
    /// Ask a question of the ledger in Prolog; answers carry their evidence.
    Query(audit_cmd::QueryArgs),
    /// Evaluate a compliance pack over the ledger and report a verdict per rule.
    Compliance(audit_cmd::ComplianceArgs),
    /// Look for anomalies (rate spikes, first-seen executables, destinations
    /// and process pairs, threshold rules, host metric outliers) and record
    /// each as a finding event that names its evidence.
    Detect(detect_cmd::DetectArgs),
    /// An OpenAI-compatible gateway that enforces a policy (models, rate
    /// limits, PII) and records every LLM call with salted commitments.
    LlmGateway(llm_cmd::GatewayArgs),
    /// Disclose, check or shred the LLM calls a gateway recorded.
    #[command(subcommand)]
    Llm(llm_cmd::LlmCommand),
    /// A gateway in front of the npm, PyPI and crates.io registries that
    /// records every download with its digests, provenance and OSV
    /// matches, and quarantines what its policy refuses.
    RegistryGateway(registry_cmd::GatewayArgs),
    /// List, show, release or purge what the registry gateway quarantined.
    #[command(subcommand)]
    Quarantine(registry_cmd::QuarantineCommand),
    /// Put, fetch, pin and collect blobs (receipts) in content-addressed
    /// storage: Blossom servers and IPFS nodes, behind a local cache.
    #[command(subcommand)]
    Store(store_cmd::StoreCommand),
    /// The proof market over Nostr (NIP-90 jobs with ZK tags): serve jobs
    /// as a provider, request one, or verify a result.
    #[command(subcommand)]
    Dvm(dvm_cmd::DvmCommand),
    /// Settle proof-market jobs: money in, accept (escrow and collateral),
    /// verify-before-fulfil, challenge, missed deadline, balances; every
    /// step recorded in the ledger.
    #[command(subcommand)]
    Settle(settle_cmd::SettleCommand),
    /// TEE attestation: verify SGX and TDX DCAP quotes and SEV-SNP reports
    /// offline, measurements checked against the program registry.
    #[command(subcommand)]
    Attest(attest_cmd::AttestCommand),
    /// The proof market's prover registry: register with stake, list
    /// reputation and weight, select a prover for a job by a seeded draw,
    /// unbond and withdraw; every step recorded in the ledger.
    #[command(subcommand)]
    Provers(provers_cmd::ProversCommand),
    /// Run the proof server: jobs, receipts, verification, attestation and the ledger over HTTP.
    Serve(serve_cmd::ServeArgs),
    /// Claim and prove jobs from a server's shared PostgreSQL job store.
    Worker(serve_cmd::WorkerArgs),
    /// Create or revoke the proof server's API tokens.
    #[command(subcommand)]
    Token(serve_cmd::TokenCommand),
    /// Measure performance and print the figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run one job for a proof-server worker (zkaudit_jobs::protocol).
    #[command(name = zkaudit_jobs::protocol::CHILD_COMMAND, hide = true)]
    JobChild {
        /// The request, as JSON.
        request: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Log(c) => log_cmd::run(c),
        Command::Bench(c) => bench::run(c),
        Command::Plan(c) => plan_cmd::run(c),
        Command::Run { plan, data, zkvm, json } => plan_cmd::run_plan(&plan, &data, zkvm, json),
        Command::Prove(a) => zk_cmd::prove(a),
        Command::Verify(a) => zk_cmd::verify(a),
        Command::Registry(c) => zk_cmd::registry(c),
        Command::Record(a) => record_cmd::record(a),
        Command::Collect(c) => collect_cmd::run(c),
        Command::Ingest(c) => ingest_cmd::run(c),
        Command::Query(a) => audit_cmd::query(a),
        Command::Compliance(a) => audit_cmd::compliance(a),
        Command::Detect(a) => detect_cmd::detect(a),
        Command::Store(c) => store_cmd::store(c),
        Command::Dvm(c) => dvm_cmd::dvm(c),
        Command::Settle(c) => settle_cmd::settle(c),
        Command::Provers(c) => provers_cmd::provers(c),
        Command::Attest(c) => attest_cmd::attest(c),
        Command::LlmGateway(a) => llm_cmd::gateway(a),
        Command::Llm(c) => llm_cmd::run(c),
        Command::RegistryGateway(a) => registry_cmd::gateway(a),
        Command::Quarantine(c) => registry_cmd::quarantine(c),
        Command::Serve(a) => serve_cmd::serve(a),
        Command::Worker(a) => serve_cmd::worker(a),
        Command::Token(c) => serve_cmd::token(c),
        Command::JobChild { request } => child_cmd::run(&request),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes joined by ": ", each cause left out when the
/// message before it already says it (library errors often include their
/// source in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    msg
}
