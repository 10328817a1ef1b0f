//! `zkaudit plan …` and `zkaudit run`: plans, data and native execution.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use zkaudit_merkle::Sha2;
use zkaudit_plan::source::PlanFile;
use zkaudit_plan::value::hex;
use zkaudit_plan::{records, Bounds, Program};
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

/// A plan with its data loaded, encoded and committed.
pub struct Loaded {
    /// The plan file.
    pub file: PlanFile,
    /// The validated program.
    pub program: Program,
    /// Per input, in plan order: `(record count, record words)`.
    pub inputs: Vec<(usize, Vec<u32>)>,
    /// The data commitment.
    pub commitment: records::Commitment,
}

impl Loaded {
    /// The guest job for this plan and data.
    pub fn job(&self) -> Job {
        Job {
            plan_jcs: self.file.jcs.clone(),
            plan_hash: self.file.hash,
            data_root: self.commitment.data_root,
            inputs: self.inputs.clone(),
            max_cycles: self.program.limits.max_cycles,
        }
    }

    /// Total records over all inputs.
    pub fn records(&self) -> usize {
        self.inputs.iter().map(|(n, _)| n).sum()
    }

    /// Runs the plan natively (the hash-commitment tier).
    pub fn run_native(&self) -> Result<(zkaudit_plan::Journal, zkaudit_plan::Outcome)> {
        let words: Vec<Vec<u32>> = self.inputs.iter().map(|(_, w)| w.clone()).collect();
        zkaudit_plan::finish(&self.program, &self.file.hash, &self.commitment.data_root, &words, &Sha2)
            .map_err(|e| anyhow!("{e}"))
    }
}

/// Loads `plan` and the `--data` files it names, and commits to the data.
pub fn load(plan: &Path, data: &DataArgs) -> Result<Loaded> {
    let (file, program) = load_plan(plan)?;
    let mut given: Vec<(String, PathBuf)> = Vec::new();
    for d in &data.data {
        let (name, path) = d.split_once('=').ok_or_else(|| anyhow!("--data {d}: expected NAME=FILE"))?;
        if !program.inputs.iter().any(|i| i.id == name) {
            let names: Vec<&str> = program.inputs.iter().map(|i| i.id.as_str()).collect();
            bail!("--data {d}: the plan has no data-input `{name}` (its inputs: {})", names.join(", "));
        }
        if given.iter().any(|(n, _)| n == name) {
            bail!("--data {name} is given twice");
        }
        given.push((name.to_owned(), PathBuf::from(path)));
    }
    let mut inputs = Vec::new();
    for spec in &program.inputs {
        let path = &given
            .iter()
            .find(|(n, _)| *n == spec.id)
            .ok_or_else(|| anyhow!("no data for input `{0}`: pass --data {0}=FILE", spec.id))?
            .1;
        let table = zkaudit_plan::data::load(spec, path)?;
        inputs.push((table.rows, records::encode(spec, &table)));
    }
    let sized: Vec<(usize, &[u32])> =
        program.inputs.iter().zip(&inputs).map(|(s, (_, w))| (s.record_words(), w.as_slice())).collect();
    let commitment = records::commit(&Sha2, &sized);
    Ok(Loaded { file, program, inputs, commitment })
}

/// `zkaudit run`.
pub fn run_plan(plan: &Path, data: &DataArgs, zkvm: bool, json: bool) -> Result<ExitCode> {
    let l = load(plan, data).with_context(|| format!("run {}", plan.display()))?;
    let (journal, outcome) = l.run_native()?;
    let guest = if zkvm {
        let e = zkaudit_zkvm::execute(&l.job(), None)?;
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
