//! `zkaudit`: the command-line front end of the zkaudit platform.
//!
//! This crate owns argument parsing, human and `--json` output, progress
//! bars and benchmarks. It holds no ledger, hashing or format logic of its
//! own: it calls `zkaudit-tlog`, `zkaudit-event`, `zkaudit-note` and
//! `zkaudit-merkle`.

mod bench;
mod log_cmd;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// zkaudit: verifiable execution and audit. Don't trust, verify.
///
/// Records every operation as an event in a tamper-evident, append-only
/// ledger: an RFC 9162 Merkle log stored as C2SP tlog-tiles, with
/// Ed25519-signed checkpoints. Anyone with the log's verifier key can check
/// inclusion and consistency proofs without trusting whoever runs the log.
#[derive(Parser)]
#[command(
    name = "zkaudit",
    version,
    propagate_version = true,
    after_help = "Quick start:\n  \
    zkaudit log init ./ledger --origin example.com/ledger   # prints the verifier key\n  \
    zkaudit log append ./ledger events.jsonl --json          # one event per line\n  \
    zkaudit log inclusion ./ledger --index 0 --json\n  \
    zkaudit log verify ./ledger --vkey 'example.com/ledger+…'"
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
    /// Measure performance and print the figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Log(c) => log_cmd::run(c),
        Command::Bench(c) => bench::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
