//! `zkaudit plan …` and `zkaudit run`: plans, data and native execution.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use zkaudit_plan::source::PlanFile;
use zkaudit_plan::value::hex;
use zkaudit_plan::{Bounds, Program};
use zkaudit_zkvm::Job;

use crate::output::{out, outln, print_json};

/// Plan commands.
#[derive(Subcommand)]
pub enum PlanCommand {
    /// Print the JSON Schema of plan documents (generated from the Rust types).
    Schema,
    /// Check a plan: schema, references, cycles, types, limits and output.
    ///
    /// Prints every error as FILE:LINE:COLUMN and exits 1; on success prints
    /// the topological execution order and the plan hash.
    Validate {
        /// Plan file (.json, .yaml or .yml).
        plan: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `--data NAME=FILE` arguments, shared by run, prove and verify.
#[derive(Args, Clone, Default)]
pub struct DataArgs {
    /// Data for the data-input step NAME: CSV with a header row, or JSON Lines.
    #[arg(long = "data", value_name = "NAME=FILE")]
    pub data: Vec<String>,
}

/// Runs a plan subcommand.
pub fn run(cmd: PlanCommand) -> Result<ExitCode> {
    match cmd {
        PlanCommand::Schema => {
            let schema = schemars::schema_for!(zkaudit_plan::Plan);
            outln!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        PlanCommand::Validate { plan, json } => validate(&plan, json),
    }
}

/// Loads and validates a plan; prints located errors and fails on any.
pub fn load_plan(path: &Path) -> Result<(PlanFile, Program)> {
    let report = |errs: Vec<zkaudit_plan::source::Located>| {
        for e in &errs {
            eprintln!("{e}");
        }
        anyhow!("{}: {} error{}", path.display(), errs.len(), if errs.len() == 1 { "" } else { "s" })
    };
    let file = PlanFile::load(path).map_err(report)?;
    let program = file.compile(&Bounds::default()).map_err(report)?;
    Ok((file, program))
}

fn validate(path: &Path, json: bool) -> Result<ExitCode> {
    let file = match PlanFile::load(path) {
        Ok(f) => f,
        Err(errs) => return Ok(report_invalid(&errs, json)),
    };
    match file.compile(&Bounds::default()) {
        Err(errs) => Ok(report_invalid(&errs, json)),
        Ok(p) => {
            let warnings: Vec<String> = p.warnings.iter().map(|w| file.locate(w).to_string()).collect();
            if json {
                print_json(&json!({
                    "valid": true,
                    "planHash": hex(&file.hash),
                    "executionOrder": p.execution_order(),
                    "warnings": warnings,
                }));
            } else {
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                outln!("ok: {} is valid", path.display());
                outln!("plan hash:       {}", hex(&file.hash));
                outln!("execution order: {}", p.execution_order().join(" → "));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn report_invalid(errs: &[zkaudit_plan::source::Located], json: bool) -> ExitCode {
    if json {
        let list: Vec<_> = errs
            .iter()
            .map(|e| json!({"file": e.file, "line": e.line, "column": e.column, "path": e.path, "message": e.message}))
            .collect();
        print_json(&json!({"valid": false, "errors": list}));
    } else {
        for e in errs {
            outln!("{e}");
        }
        eprintln!("{} error{}", errs.len(), if errs.len() == 1 { "" } else { "s" });
    }
    ExitCode::from(1)
}

pub use zkaudit_plan::loaded::Loaded;

/// Loads `plan` and the `--data` files it names, and commits to the data.
pub fn load(plan: &Path, data: &DataArgs) -> Result<Loaded> {
    let (file, program) = load_plan(plan)?;
    let mut given: Vec<(&str, &str)> = Vec::new();
    for d in &data.data {
        given.push(d.split_once('=').ok_or_else(|| anyhow!("--data {d}: expected NAME=FILE"))?);
    }
    let names: Vec<&str> = given.iter().map(|(n, _)| *n).collect();
    let order = zkaudit_plan::loaded::match_inputs(&program, &names).map_err(|e| anyhow!("--data: {e}"))?;
    let mut tables = Vec::new();
    for (spec, &at) in program.inputs.iter().zip(&order) {
        tables.push(zkaudit_plan::data::load(spec, Path::new(given[at].1))?);
    }
    Ok(Loaded::new(file, program, &tables))
}

/// `zkaudit run`.
pub fn run_plan(plan: &Path, data: &DataArgs, zkvm: bool, json: bool) -> Result<ExitCode> {
    let l = load(plan, data).with_context(|| format!("run {}", plan.display()))?;
    let (journal, outcome) = l.run_native()?;
    let guest = if zkvm {
        let e = zkaudit_zkvm::execute(&Job::for_plan(&l), None)?;
        if e.journal != journal {
            bail!(
                "the guest's journal differs from native execution (guest output {}, native {})",
                String::from_utf8_lossy(&e.journal.output),
                String::from_utf8_lossy(&journal.output)
            );
        }
        Some(e)
    } else {
        None
    };
    let output: serde_json::Value = serde_json::from_slice(&outcome.output)?;
    let public: serde_json::Value = serde_json::from_slice(&outcome.public)?;
    let records = l.records();
    if json {
        let mut v = json!({
            "planHash": hex(&l.file.hash),
            "dataRoot": hex(&l.commitment.data_root),
            "records": records,
            "outputHash": hex(&outcome.output_hash),
            "output": output,
            "publicOutput": public,
        });
        if let Some(e) = &guest {
            v["zkvm"] = cycles_json(e, records);
        }
        print_json(&v);
    } else {
        outln!("{}", serde_json::to_string_pretty(&output)?);
        outln!("plan hash:   {}", hex(&l.file.hash));
        outln!("data root:   {} ({records} records)", hex(&l.commitment.data_root));
        outln!("output hash: {}", hex(&outcome.output_hash));
        if outcome.public != outcome.output {
            outln!("public part: {}", String::from_utf8_lossy(&outcome.public));
        }
        if let Some(e) = &guest {
            outln!(
                "zkVM execute: identical journal; {} user + {} paging cycles = {} total in {} segment(s); {:.0} user cycles/record",
                e.user_cycles,
                e.paging_cycles,
                e.total_cycles,
                e.segments,
                e.user_cycles as f64 / records.max(1) as f64
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Cycle figures of an execute-only run as JSON.
pub fn cycles_json(e: &zkaudit_zkvm::Execution, records: usize) -> serde_json::Value {
    json!({
        "userCycles": e.user_cycles,
        "pagingCycles": e.paging_cycles,
        "reservedCycles": e.reserved_cycles,
        "totalCycles": e.total_cycles,
        "segments": e.segments,
        "userCyclesPerRecord": e.user_cycles as f64 / records.max(1) as f64,
    })
}
