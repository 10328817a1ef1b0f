//! `zkaudit llm-gateway` and `zkaudit llm …`: the audited LLM gateway, and
//! disclosing, checking and shredding the calls it recorded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use zkaudit_collect::Destination;
use zkaudit_llm::commit::{CallStore, Disclosure};

use crate::output::{out, outln, print_json};
use crate::sink_args::{until_signal, SinkArgs};

/// `zkaudit llm-gateway` arguments.
#[derive(Args)]
pub struct GatewayArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:4000")]
    listen: SocketAddr,
    /// The upstream's OpenAI base URL, e.g. http://127.0.0.1:9000/v1. Its
    /// API key is read from $ZKAUDIT_UPSTREAM_KEY or --upstream-key-file,
    /// never from the command line, and never recorded.
    #[arg(long, value_name = "URL")]
    upstream: String,
    /// File holding the upstream's API key (one line).
    #[arg(long, value_name = "FILE")]
    upstream_key_file: Option<PathBuf>,
    /// Policy file (TOML: tables models, rate_limits, pii and limits);
    /// without one, the safe defaults, which allow no model. Changes to the
    /// file are picked up and recorded.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    sink: SinkArgs,
    /// The private call store of salts and contents (default:
    /// DIR/private/llm-calls.sqlite with --ledger; needed with --server).
    #[arg(long, value_name = "FILE")]
    call_store: Option<PathBuf>,
    /// Where callers' tokens are (`zkaudit token create` makes them): a
    /// job store, SQLite path or postgres:// URL (default DIR/jobs.sqlite
    /// with --ledger; needed with --server).
    #[arg(long, value_name = "SPEC")]
    tokens: Option<String>,
    /// Print the run's report as one JSON object when it stops.
    #[arg(long)]
    json: bool,
}

/// `zkaudit llm` subcommands.
#[derive(Subcommand)]
pub enum LlmCommand {
    /// Print a recorded call's request and response with their salts, its
    /// event and the event's inclusion proof: a disclosure for an auditor.
    Disclose {
        /// The ledger the gateway recorded to.
        #[arg(long, value_name = "DIR")]
        ledger: PathBuf,
        /// The ledger's index (default DIR/index.sqlite).
        #[arg(long, value_name = "SPEC")]
        index: Option<String>,
        /// The call store (default DIR/private/llm-calls.sqlite).
        #[arg(long, value_name = "FILE")]
        call_store: Option<PathBuf>,
        /// The call's ID (`event.id`, the `x-zkaudit-call-id` header).
        call: String,
    },
    /// Check a disclosure with only the log's verifier key: the event is in
    /// the log, and the request and response open its commitments.
    CheckDisclosure {
        /// The disclosure file (`-` for standard input).
        file: PathBuf,
        /// The log's verifier key (`<origin>+<id>+<key>`).
        #[arg(long)]
        vkey: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a call's salts and contents for good ("crypto-shredding"):
    /// the log stays intact, the call can never be disclosed again.
    Shred {
        /// The ledger whose default call store to use.
        #[arg(long, value_name = "DIR", required_unless_present = "call_store")]
        ledger: Option<PathBuf>,
        /// The call store.
        #[arg(long, value_name = "FILE")]
        call_store: Option<PathBuf>,
        /// The call's ID.
        call: String,
    },
    /// Run a local OpenAI-compatible stand-in upstream (no model: it echoes
    /// the prompt), to try the gateway without a provider; tests use it.
    StandIn {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
    },
}

fn call_store(ledger: Option<&Path>, given: Option<PathBuf>) -> Result<PathBuf> {
    match (given, ledger) {
        (Some(p), _) => Ok(p),
        (None, Some(dir)) => Ok(zkaudit_tlog::LedgerDir::new(dir).llm_calls_sqlite()),
        (None, None) => bail!("give --call-store FILE (the gateway's salts and contents)"),
    }
}

/// `zkaudit llm-gateway`: serves until SIGTERM or SIGINT.
pub fn gateway(a: GatewayArgs) -> Result<ExitCode> {
    let destination = a.sink.destination()?;
    let ledger = match &destination {
        Destination::Ledger { dir, .. } => Some(dir.clone()),
        Destination::Server { .. } => None,
    };
    let tokens = match (a.tokens, &ledger) {
        (Some(t), _) => t,
        (None, Some(dir)) => zkaudit_tlog::LedgerDir::new(dir).jobs_sqlite().display().to_string(),
        (None, None) => bail!("with --server, give --tokens SPEC: the job store holding the callers' tokens"),
    };
    let upstream_key = match (std::env::var("ZKAUDIT_UPSTREAM_KEY").ok(), &a.upstream_key_file) {
        (_, Some(f)) => Some(std::fs::read_to_string(f).with_context(|| format!("--upstream-key-file {}", f.display()))?.trim().to_owned()),
        (Some(k), None) => Some(k),
        (None, None) => None,
    };
    let config = zkaudit_llm::Config {
        listen: a.listen,
        upstream: a.upstream,
        upstream_key,
        policy_file: a.policy,
        destination,
        call_store: call_store(ledger.as_deref(), a.call_store)?,
        tokens,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = rt.block_on(async {
        let running = zkaudit_llm::start(config).await?;
        // Scripts and tests read the address from this line.
        outln!("listening on http://{}", running.addr);
        until_signal().await?;
        eprintln!("llm-gateway: stopping; recording the calls in flight");
        anyhow::Ok(running.stop().await?)
    })?;
    if a.json {
        print_json(&report);
    } else {
        eprintln!(
            "llm-gateway: {} calls recorded, {} events appended, {} batches left in the spool, {} calls' salts not stored",
            report.calls, report.sink.appended, report.sink.left_in_spool, report.store_errors
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `zkaudit llm …`.
pub fn run(c: LlmCommand) -> Result<ExitCode> {
    match c {
        LlmCommand::Disclose { ledger, index, call_store: store, call } => {
            let store = call_store(Some(&ledger), store)?;
            let d = zkaudit_llm::disclose::disclose(&ledger, index.as_deref(), &store, &call)?;
            print_json(&d);
        }
        LlmCommand::CheckDisclosure { file, vkey, json } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let d: Disclosure = serde_json::from_str(&text).with_context(|| format!("{} is not a disclosure", file.display()))?;
            let vkey = zkaudit_note::VerifierKey::parse(&vkey).map_err(|e| anyhow::anyhow!("--vkey: {e}"))?;
            match d.check(&vkey) {
                Ok(ok) if json => print_json(&ok),
                Ok(ok) => outln!(
                    "ok: call {} is leaf {} of {} (tree size {}); the request opens input {} and the response opens output {}",
                    ok.call_id,
                    ok.leaf_index,
                    ok.origin,
                    ok.tree_size,
                    ok.input,
                    ok.output
                ),
                Err(e) => {
                    eprintln!("disclosure rejected: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        LlmCommand::Shred { ledger, call_store: store, call } => {
            let path = call_store(ledger.as_deref(), store)?;
            let mut s = CallStore::open(&path)?;
            if s.shred(&call)? {
                outln!("shredded call {call}: its salts and contents are deleted from {}", path.display());
            } else {
                outln!("call {call} was already shredded");
            }
        }
        LlmCommand::StandIn { listen } => {
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(async {
                let addr = zkaudit_llm::standin::start(listen).await?;
                outln!("listening on http://{addr}");
                until_signal().await
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
