//! `zkaudit plan …` and `zkaudit run`: plans, data and native execution.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use zkaudit_app::plans::{self, LoadError};
use zkaudit_plan::source::PlanFile;
use zkaudit_plan::value::hex;
use zkaudit_plan::{Bounds, Program};

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

/// Prints the located errors of a plan that failed to load (one per line
/// on stderr, as FILE:LINE:COL), and passes the error on.
fn shown(e: LoadError) -> anyhow::Error {
    if let LoadError::Plan { errors, .. } = &e {
        for err in errors {
            eprintln!("{err}");
        }
    }
    e.into()
}

/// Loads and validates a plan; prints located errors and fails on any.
pub fn load_plan(path: &Path) -> Result<(PlanFile, Program)> {
    plans::load_plan(path).map_err(shown)
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
        let list: Vec<_> = errs.iter().map(|e| json!({"file": e.file, "line": e.line, "column": e.column, "path": e.path, "message": e.message})).collect();
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
    let given = plans::data_args(&data.data)?;
    plans::load_files(plan, &given).map_err(shown)
}

/// `zkaudit run`.
pub fn run_plan(plan: &Path, data: &DataArgs, zkvm: bool, json: bool) -> Result<ExitCode> {
    let l = load(plan, data).with_context(|| format!("run {}", plan.display()))?;
    let r = zkaudit_app::proof::run(&l, zkvm)?;
    if json {
        print_json(&r);
    } else {
        let output = r.output.as_ref().unwrap_or(&r.public_output);
        outln!("{}", serde_json::to_string_pretty(output)?);
        outln!("plan hash:   {}", r.plan_hash);
        outln!("data root:   {} ({} records)", r.data_root, r.records);
        outln!("output hash: {}", r.output_hash);
        if r.output.as_ref() != Some(&r.public_output) {
            outln!("public part: {}", r.public_output);
        }
        if let Some(c) = &r.zkvm {
            outln!(
                "zkVM execute: identical journal; {} user + {} paging cycles = {} total in {} segment(s) of 2^20 cycles at most; {:.0} user cycles/record\n  (`zkaudit prove` splits the run at the segment size that pads least, so its total can be lower)",
                c.user_cycles,
                c.paging_cycles,
                c.total_cycles,
                c.segments,
                c.user_cycles_per_record
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
