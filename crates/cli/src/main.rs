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

/// Verifiable execution and audit: a tamper-evident event ledger with
/// signed checkpoints and RFC 9162 proofs.
#[derive(Parser)]
#[command(name = "zkaudit", version, about, long_about = None, propagate_version = true)]
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
