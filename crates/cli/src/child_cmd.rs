//! `zkaudit job-child REQUEST`: runs one job for a proof-server worker,
//! speaking `zkaudit_jobs::protocol` (progress lines on stderr, the report
//! on stdout) and exiting when standard input closes.

use std::process::ExitCode;

use anyhow::{Context, Result};
use zkaudit_jobs::protocol::{ChildProgress, ChildRequest};
use zkaudit_jobs::Mode;
use zkaudit_zkvm::{Progress, ProveOptions, ReceiptCache};

use crate::output::print_json;

/// Exits (status 3) as soon as standard input reaches its end, which
/// happens when the worker closes it or dies, so a prover never outlives
/// its worker.
fn exit_with_stdin() {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin().lock();
        while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
        std::process::exit(3);
    });
}

fn report(p: ChildProgress) {
    match p.to_line() {
        Ok(line) => eprintln!("{line}"),
        Err(e) => eprintln!("error: encoding a progress report: {e}"),
    }
}

/// Runs the job `request` (a [`ChildRequest`] as JSON).
pub fn run(request: &str) -> Result<ExitCode> {
    exit_with_stdin();
    let req = ChildRequest::parse(request).context("the worker's request")?;
    report(ChildProgress::Executing);
    let l = zkaudit_app::plans::load_files(&req.plan, &req.data)?;
    match req.mode {
        Mode::ExecuteOnly => print_json(&zkaudit_app::proof::run(&l, true)?),
        Mode::Prove => {
            // The worker's environment may name a receipt cache.
            let opts = ProveOptions { segment_po2: req.segment_po2, timeout: None, succinct: false, cache: ReceiptCache::from_env() };
            let proven = zkaudit_app::proof::prove(&l, opts, |p| {
                report(match p {
                    Progress::Executing => ChildProgress::Executing,
                    Progress::Executed { total_cycles, segments } => ChildProgress::Proving { total_cycles, segments: segments as u64 },
                    Progress::Segment { done, of } => ChildProgress::Segment { done: done as u64, of: of as u64 },
                    Progress::Compressing => ChildProgress::Compressing,
                });
            })?;
            if let Some(w) = proven.proof.cache.warning() {
                eprintln!("warning: {w}");
            }
            std::fs::write(&req.receipt, &proven.receipt).with_context(|| format!("writing {}", req.receipt.display()))?;
            print_json(&proven.report(&l, Some(req.receipt.display().to_string()), None)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
