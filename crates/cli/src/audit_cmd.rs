//! `zkaudit query`, `zkaudit compliance` and `zkaudit log reindex`: the
//! auditor's commands, over the index and the Prolog engine.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use clap::Args;
use serde_json::{json, Value};
use zkaudit_audit::pack::Verdict;
use zkaudit_audit::{evidence, term, Engine, Options};
use zkaudit_tlog::LedgerDir;

use crate::output::{out, outln, print_json, progress};

/// Where the index lives, shared by the auditor's commands.
#[derive(Args, Clone, Debug)]
pub struct IndexArgs {
    /// Index database: a SQLite file or a postgres:// URL [default: DIR/index.sqlite].
    #[arg(long, value_name = "SPEC")]
    pub index: Option<String>,
}

impl IndexArgs {
    fn spec(&self, dir: &Path) -> String {
        zkaudit_app::ledger::index_spec(&LedgerDir::new(dir), self.index.as_deref())
    }
}

/// Limits and scope of queries.
#[derive(Args, Clone, Debug)]
pub struct QueryLimits {
    /// Wall-clock limit per query, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Inferences allowed per answer.
    #[arg(long, default_value_t = 200_000_000)]
    pub inference_limit: u64,
    /// Events held in memory at most.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_events: u64,
    /// Only events at or after this RFC 3339 time.
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// Only events before this RFC 3339 time.
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    /// The log's verifier key (inline or a file) for zkaudit_integrity/1 [default: DIR/log.vkey].
    #[arg(long)]
    pub vkey: Option<String>,
}

/// `zkaudit query` arguments.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// Log directory.
    pub dir: PathBuf,
    /// A Prolog goal, e.g. 'event(I, T, L, failover, In, Out).'; without it, an interactive prompt.
    pub goal: Option<String>,
    #[command(flatten)]
    pub index: IndexArgs,
    #[command(flatten)]
    pub limits: QueryLimits,
    /// Load a Prolog file first (a compliance pack or your own rules); repeatable.
    /// Built-in pack names (telecoms, trading, gmp, itil, llm) work too.
    #[arg(long, value_name = "FILE")]
    pub consult: Vec<String>,
    /// Answers printed at most.
    #[arg(long, default_value_t = 100)]
    pub max_answers: usize,
    /// Print one JSON object per query, with evidence.
    #[arg(long)]
    pub json: bool,
}

/// `zkaudit compliance` arguments.
#[derive(Args, Debug)]
pub struct ComplianceArgs {
    /// Log directory.
    pub dir: PathBuf,
    /// A built-in pack (telecoms, trading, gmp, itil, llm) or a pack file.
    #[arg(long)]
    pub pack: String,
    /// Override a pack parameter, NAME=VALUE (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    #[command(flatten)]
    pub index: IndexArgs,
    #[command(flatten)]
    pub limits: QueryLimits,
    /// Print the report as JSON, with evidence.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as a printable HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

fn parse_time(flag: &str, t: &str) -> Result<i64> {
    let ts = zkaudit_event::Timestamp::parse(t).map_err(|e| anyhow!("--{flag}: {e}"))?;
    i64::try_from(ts.unix_nanos()).map_err(|_| anyhow!("--{flag} {t} is outside the supported range"))
}

/// `zkaudit log reindex`: rebuild the index from the tiles alone.
pub fn reindex(dir: &Path, index: &IndexArgs, json: bool) -> Result<()> {
    let spec = index.spec(dir);
    let pb = if json { indicatif::ProgressBar::hidden() } else { progress(0, "reindexing") };
    let start = std::time::Instant::now();
    let s = zkaudit_app::ledger::reindex(dir, &spec, &mut |n, of| {
        pb.set_length(of);
        pb.set_position(n);
    })?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    if json {
        print_json(&json!({ "index": spec, "tree_size": s.position.tree_size, "root_hash": hex::encode(s.position.root_hash), "seconds": secs }));
    } else {
        outln!("indexed {} events into {spec} in {secs:.2} s (tree size {}, root {})", s.added, s.position.tree_size, hex::encode(s.position.root_hash));
    }
    Ok(())
}

fn engine(dir: &Path, index: &IndexArgs, limits: &QueryLimits, max_answers: usize, quiet: bool) -> Result<Engine> {
    let vkey = limits.vkey.as_deref().map(crate::log_cmd::load_vkey).transpose()?;
    let opts = Options {
        inference_limit: limits.inference_limit,
        timeout: Duration::from_secs(limits.timeout),
        max_answers,
        max_events: limits.max_events,
        from_ns: limits.from.as_deref().map(|t| parse_time("from", t)).transpose()?,
        to_ns: limits.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
    };
    // A progress bar only when there is much to index.
    let mut pb: Option<indicatif::ProgressBar> = None;
    let src = zkaudit_app::audit::Source { dir, index: index.index.as_deref(), vkey };
    let e = zkaudit_app::audit::engine(&src, opts, &mut |n, lag| {
        if !quiet && lag >= 50_000 {
            pb.get_or_insert_with(|| progress(lag, "indexing")).set_position(n);
        }
    })?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(e)
}

/// `zkaudit query`: one goal, or a prompt reading goals from stdin.
pub fn query(a: QueryArgs) -> Result<ExitCode> {
    let mut e = engine(&a.dir, &a.index, &a.limits, a.max_answers, a.json)?;
    for c in &a.consult {
        let (pack, file) = zkaudit_app::audit::load_pack(c)?;
        e.consult(&file, &pack.source);
    }
    if let Some(goal) = &a.goal {
        // Inside one answer the engine can only bound inferences; for a
        // single goal the process itself is the hard wall-clock limit.
        let limit = Duration::from_secs(a.limits.timeout);
        std::thread::spawn(move || {
            std::thread::sleep(limit + Duration::from_secs(1));
            eprintln!("error: the query ran past its time limit of {limit:?}");
            std::process::exit(1);
        });
        return Ok(if run_one(&mut e, goal, a.json)? { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!("zkaudit query: log {} at tree size {}. End each goal with '.'; Ctrl-D quits.", e.reader().checkpoint().origin, e.reader().size());
    }
    let mut pending = String::new();
    let stdin = std::io::stdin();
    loop {
        if interactive {
            eprint!("{}", if pending.is_empty() { "?- " } else { "|  " });
            let _ = std::io::stderr().flush();
        }
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        pending.push_str(&line);
        if pending.trim().is_empty() {
            pending.clear();
            continue;
        }
        if pending.trim_end().ends_with('.') {
            let goal = std::mem::take(&mut pending);
            if let Err(err) = run_one(&mut e, &goal, a.json) {
                eprintln!("error: {err:#}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one goal and prints its answers; false if it has none. Query errors
/// are printed and count as no answer; the engine stays usable.
fn run_one(e: &mut Engine, goal: &str, json: bool) -> Result<bool> {
    let outcome = match e.query(goal) {
        Ok(o) => o,
        Err(err) => {
            if json {
                print_json(&json!({ "query": goal.trim(), "error": err.to_string() }));
            } else {
                eprintln!("error: {err}");
            }
            return Ok(false);
        }
    };
    if json {
        let mut answers = Vec::new();
        for a in &outcome.answers {
            answers.push(json!({
                "bindings": a.bindings.iter().map(|(k, v)| (k.clone(), term::to_json(v))).collect::<serde_json::Map<_, _>>(),
                "text": a.bindings.iter().map(|(k, v)| (k.clone(), Value::String(term::text(v)))).collect::<serde_json::Map<_, _>>(),
                "events": evidence::events_json(e.reader(), &a.events)?,
            }));
        }
        print_json(&json!({
            "query": goal.trim(),
            "checkpoint": evidence::checkpoint_json(e.reader()),
            "answers": answers,
            "truncated": outcome.truncated,
        }));
    } else {
        for a in &outcome.answers {
            if a.bindings.is_empty() {
                out!("true.");
            } else {
                let parts: Vec<String> = a.bindings.iter().map(|(k, v)| format!("{k} = {}", term::text(v))).collect();
                out!("{}.", parts.join(", "));
            }
            if !a.events.is_empty() {
                let shown: Vec<String> = a.events.iter().take(20).map(u64::to_string).collect();
                let more = if a.events.len() > 20 { format!(", … {} in all", a.events.len()) } else { String::new() };
                out!("    % events: {}{more}", shown.join(", "));
            }
            out!("\n");
        }
        if outcome.answers.is_empty() {
            outln!("false.");
        } else if outcome.truncated {
            outln!("% stopped after {} answers (--max-answers)", outcome.answers.len());
        }
    }
    Ok(!outcome.answers.is_empty())
}

/// `zkaudit compliance`: evaluate a pack; exit 1 if any rule fails.
pub fn compliance(a: ComplianceArgs) -> Result<ExitCode> {
    let (pack, file) = zkaudit_app::audit::load_pack(&a.pack)?;
    let overrides = a
        .params
        .iter()
        .map(|p| p.split_once('=').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).ok_or_else(|| anyhow!("--param {p:?}: expected NAME=VALUE")))
        .collect::<Result<Vec<_>>>()?;
    let mut e = engine(&a.dir, &a.index, &a.limits, 10_000, a.json)?;
    let report = zkaudit_app::audit::run_pack(&mut e, &pack, &overrides)?;
    let window = match (&a.limits.from, &a.limits.to) {
        (None, None) => None,
        (f, t) => Some((f.as_deref().unwrap_or("the start"), t.as_deref().unwrap_or("the end"))),
    };
    let v = zkaudit_audit::report::to_json(&report, &file, e.reader(), window)?;
    if let Some(path) = &a.html {
        std::fs::write(path, zkaudit_audit::report::to_html(&v)).with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        print_json(&v);
    } else {
        outln!("{} {} ({}), pack SHA-256 {}", report.name, report.version, report.title, report.sha256);
        outln!("checkpoint: tree size {}, root {}", e.reader().size(), hex::encode(e.reader().checkpoint().root));
        for r in &report.rules {
            outln!("{:<12} {:<12} {} ({} events)", r.verdict.as_str().to_uppercase(), r.id, r.description, r.events.len());
            for v in &r.violations {
                outln!("             leaf {}: {}", v.leaf_index, v.reason);
            }
        }
    }
    let failed = report.rules.iter().any(|r| r.verdict == Verdict::Fail);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
