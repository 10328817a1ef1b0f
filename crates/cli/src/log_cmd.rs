//! `zkaudit log …`: the ledger commands.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use zkaudit_app::ledger::{JsonlBatches, Ledger};
use zkaudit_note::VerifierKey;
use zkaudit_tlog::{fsck, LogReader};

use crate::output::{out, outln, print_json, progress, progress_bytes};

#[derive(Subcommand)]
pub enum LogCommand {
    /// Create a new, empty log in DIR with a fresh Ed25519 key, and print its verifier key.
    ///
    /// The private key is written to DIR/private/log.key (mode 0600) and never printed.
    /// The verifier key (DIR/log.vkey) is printed in the signed-note form
    /// <name>+<hex key id>+<base64 key>; give it to auditors out of band.
    Init {
        /// Directory for the log (created if missing; must not already hold a log).
        dir: PathBuf,
        /// Log origin: a unique name such as example.com/audit-log. It names the
        /// key and is the first line of every checkpoint.
        #[arg(long)]
        origin: String,
    },
    /// Append events from JSON Lines (one event per line) and print where they landed.
    ///
    /// The input is streamed (parsed on every core while it is written) and appended
    /// as one atomic batch, acknowledged only once it is durable and covered by a
    /// signed checkpoint. If any line is malformed, the first 20 bad lines are
    /// reported with line, column and field, and nothing is appended. The index is
    /// not waited for: the next query brings it up to date.
    Append {
        /// Log directory.
        dir: PathBuf,
        /// JSON Lines file to read, or - for standard input.
        #[arg(default_value = "-")]
        file: String,
        /// Split the input into atomic commits of at most this many events
        /// (default: the whole input is one atomic commit). A malformed line then
        /// stops the input, and the batches before it stay committed.
        #[arg(long)]
        batch_size: Option<usize>,
        /// Parsing threads (default: one per core).
        #[arg(long, short = 'j')]
        threads: Option<usize>,
        /// Print {"first_index","count","tree_size","root_hash"} as JSON; with
        /// --batch-size, one such line per committed batch, as it is committed.
        #[arg(long)]
        json: bool,
    },
    /// Print the signed checkpoint exactly as stored.
    Checkpoint {
        /// Log directory.
        dir: PathBuf,
    },
    /// Print the entry (canonical event JSON) at a leaf index.
    Get {
        /// Log directory.
        dir: PathBuf,
        /// Leaf index, from 0.
        #[arg(long)]
        index: u64,
    },
    /// Print an RFC 9162 §2.1.3 inclusion proof for one entry.
    Inclusion {
        /// Log directory.
        dir: PathBuf,
        /// Leaf index of the entry.
        #[arg(long)]
        index: u64,
        /// Tree size to prove against (default: the checkpoint's size).
        #[arg(long)]
        tree_size: Option<u64>,
        /// Print {"leaf_index","tree_size","leaf_hash","hashes","root_hash"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print an RFC 9162 §2.1.4 consistency proof between two tree sizes.
    Consistency {
        /// Log directory.
        dir: PathBuf,
        /// The older tree size.
        #[arg(long)]
        old: u64,
        /// The newer tree size (default: the checkpoint's size).
        #[arg(long)]
        new: Option<u64>,
        /// Print {"old_size","new_size","hashes","old_root","new_root"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// fsck: recompute every leaf and tile hash from the entries, check the root
    /// against the checkpoint and the checkpoint's signature against the key.
    ///
    /// Prints `ok size=N root=<hex>`; otherwise exits 1 and names the first bad
    /// leaf index or file.
    Verify {
        /// Log directory.
        dir: PathBuf,
        /// Verifier key (the string, or a file holding it). Default: DIR/log.vkey,
        /// which only proves self-consistency; pass a key obtained independently.
        #[arg(long)]
        vkey: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the secondary index (DIR/index.sqlite, or --index) from the tiles alone.
    ///
    /// Queries and compliance reports read the index; the log stays the source of
    /// truth, and a rebuilt index answers exactly as the incremental one did.
    Reindex {
        /// Log directory.
        dir: PathBuf,
        #[command(flatten)]
        index: crate::audit_cmd::IndexArgs,
        /// Print {"index","tree_size","root_hash","seconds"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check an inclusion proof offline, with no access to the log: against a
    /// signed checkpoint, the log's verifier key and, optionally, the entry itself.
    CheckInclusion {
        /// Proof JSON, as printed by `zkaudit log inclusion --json`.
        #[arg(long)]
        proof: PathBuf,
        /// Signed checkpoint file, as printed by `zkaudit log checkpoint`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Verifier key (the string, or a file holding it).
        #[arg(long)]
        vkey: String,
        /// The entry bytes to check the leaf hash against (e.g. from `zkaudit log get`).
        #[arg(long)]
        entry: Option<PathBuf>,
    },
}

pub fn run(cmd: LogCommand) -> Result<ExitCode> {
    match cmd {
        LogCommand::Init { dir, origin } => {
            let vkey = zkaudit_tlog::init(&dir, &origin).with_context(|| format!("creating log in {}", dir.display()))?;
            outln!("{vkey}");
            eprintln!("created log {origin:?} in {}; private key in {} (mode 0600)", dir.display(), zkaudit_tlog::LedgerDir::new(&dir).log_key().display());
        }
        LogCommand::Append { dir, file, batch_size, threads, json } => append(&dir, &file, batch_size, threads, json)?,
        LogCommand::Checkpoint { dir } => {
            let r = LogReader::open(&dir)?;
            out!("{}", String::from_utf8_lossy(r.checkpoint_note()));
        }
        LogCommand::Get { dir, index } => {
            let r = LogReader::open(&dir)?;
            outln!("{}", String::from_utf8_lossy(&r.entry(index)?));
        }
        LogCommand::Inclusion { dir, index, tree_size, json } => {
            let p = LogReader::open(&dir)?.inclusion(index, tree_size)?;
            let v = zkaudit_tlog::json::inclusion(&p);
            print_proof(&v, &["leaf_index", "tree_size", "leaf_hash", "root_hash"], json);
        }
        LogCommand::Consistency { dir, old, new, json } => {
            let p = LogReader::open(&dir)?.consistency(old, new)?;
            let v = zkaudit_tlog::json::consistency(&p);
            print_proof(&v, &["old_size", "new_size", "old_root", "new_root"], json);
        }
        LogCommand::Verify { dir, vkey, json } => return verify(&dir, vkey.as_deref(), json),
        LogCommand::Reindex { dir, index, json } => crate::audit_cmd::reindex(&dir, &index, json)?,
        LogCommand::CheckInclusion { proof, checkpoint, vkey, entry } => {
            check_inclusion(&proof, &checkpoint, &vkey, entry.as_deref())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a proof object: as one JSON line, or as `field value` lines in
/// the order of `fields` followed by one `hash[i] <hex>` line per hash.
fn print_proof(v: &serde_json::Value, fields: &[&str], json: bool) {
    if json {
        print_json(v);
        return;
    }
    for f in fields {
        match &v[*f] {
            serde_json::Value::String(s) => outln!("{f} {s}"),
            other => outln!("{f} {other}"),
        }
    }
    for (i, h) in v["hashes"].as_array().into_iter().flatten().enumerate() {
        outln!("hash[{i}] {}", h.as_str().unwrap_or_default());
    }
}

/// Parses a verifier key given inline or as a file path.
pub(crate) fn load_vkey(arg: &str) -> Result<VerifierKey> {
    match VerifierKey::parse(arg) {
        Ok(k) => Ok(k),
        Err(inline_err) => {
            let text = std::fs::read_to_string(arg)
                .map_err(|e| anyhow::anyhow!("--vkey {arg:?} is neither a verifier key ({inline_err}) nor a readable file ({e})"))?;
            VerifierKey::parse(&text).with_context(|| format!("verifier key in {arg}"))
        }
    }
}

fn append(dir: &Path, file: &str, batch_size: Option<usize>, threads: Option<usize>, json: bool) -> Result<()> {
    let (input, len): (Box<dyn Read + Send>, u64) = if file == "-" {
        (Box::new(std::io::stdin()), 0)
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("opening {file}"))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(f), len)
    };
    let source = if file == "-" { "<stdin>" } else { file };
    let ledger = Ledger::open(dir, None)?;
    let whole = JsonlBatches::whole();
    let batch = JsonlBatches { size: batch_size.filter(|&b| b > 0), threads: threads.unwrap_or(whole.threads).max(1) };
    let pb = progress_bytes(len, "appending");
    // With --batch-size each commit is acknowledged (and, with --json,
    // printed as one JSON line) as soon as it is durable.
    let a = ledger.append_jsonl(
        input,
        source,
        batch,
        &mut |a| {
            if json && batch.size.is_some() {
                pb.suspend(|| print_json(a));
            }
        },
        &mut |bytes| pb.set_position(bytes),
    );
    pb.finish_and_clear();
    let a = a?;
    if json {
        if batch.size.is_none() {
            print_json(&a);
        }
    } else {
        outln!(
            "appended {} events at indices {}..{}; tree_size={} root={}",
            a.count,
            a.first_index,
            a.first_index + a.count,
            a.tree_size,
            hex::encode(a.root_hash)
        );
    }
    Ok(())
}

fn verify(dir: &Path, vkey: Option<&str>, json: bool) -> Result<ExitCode> {
    let key = match vkey {
        Some(v) => load_vkey(v)?,
        None => {
            eprintln!("note: checking against {}/log.vkey from the log itself; pass --vkey for an independent key", dir.display());
            zkaudit_tlog::read_vkey(dir)?
        }
    };
    let size = LogReader::open(dir).map(|r| r.size()).unwrap_or(0);
    let pb = progress(size, "verifying");
    let res = fsck::verify(dir, &key, |n| pb.set_position(n));
    pb.finish_and_clear();
    match res {
        Ok(r) => {
            if json {
                print_json(&json!({"ok": true, "size": r.size, "root": hex::encode(r.root), "files": r.files}));
            } else {
                outln!("ok size={} root={}", r.size, hex::encode(r.root));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                print_json(&json!({"ok": false, "error": e.to_string()}));
            } else {
                outln!("FAIL {e}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn check_inclusion(proof: &Path, checkpoint: &Path, vkey: &str, entry: Option<&Path>) -> Result<()> {
    let key = load_vkey(vkey)?;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let entry = entry.map(read).transpose()?;
    let ok = zkaudit_app::inclusion::check(&read(proof)?, &read(checkpoint)?, &key, entry.as_deref())
        .with_context(|| format!("proof {}, checkpoint {}", proof.display(), checkpoint.display()))?;
    outln!("ok leaf_index={} tree_size={} root={} origin={}", ok.leaf_index, ok.tree_size, hex::encode(ok.root), ok.origin);
    Ok(())
}
