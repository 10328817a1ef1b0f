//! Loading a plan with its data: validate the plan, match the data given
//! to its `data-input` steps, read each table by its schema, and commit to
//! the records. One path for files (the CLI) and request bytes (the server).

use std::fmt;
use std::path::Path;

use zkaudit_plan::data::{self, DataError, Format};
use zkaudit_plan::loaded::{match_inputs, InputMismatch, Loaded};
use zkaudit_plan::source::{Located, PlanFile};
use zkaudit_plan::{Bounds, Program};

/// Why a plan or its data could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The plan is unreadable or invalid: every error, located.
    Plan {
        /// The plan as named by the user.
        file: String,
        /// Each error at its file, line and column.
        errors: Vec<Located>,
    },
    /// A data argument is not `NAME=FILE`.
    Argument(String),
    /// The data given does not match the plan's inputs.
    Inputs(InputMismatch),
    /// One input's data is unreadable or does not fit its schema.
    Data {
        /// The input's name.
        input: String,
        /// Where and what.
        error: DataError,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Plan { file, errors } => {
                // The errors themselves are in the variant, for the front
                // end to show each at its line and column.
                write!(f, "{file}: {} error{}", errors.len(), if errors.len() == 1 { "" } else { "s" })
            }
            LoadError::Argument(a) => write!(f, "--data {a}: expected NAME=FILE"),
            LoadError::Inputs(e) => write!(f, "--data: {e}"),
            LoadError::Data { error, .. } => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Loads and validates the plan file at `path` (JSON or YAML by extension).
///
/// # Errors
/// [`LoadError::Plan`] with every error located.
pub fn load_plan(path: &Path) -> Result<(PlanFile, Program), LoadError> {
    let file = path.display().to_string();
    let plan = PlanFile::load(path).map_err(|errors| LoadError::Plan { file: file.clone(), errors })?;
    let program = plan.compile(&Bounds::default()).map_err(|errors| LoadError::Plan { file, errors })?;
    Ok((plan, program))
}

/// Splits `NAME=FILE` data arguments.
///
/// # Errors
/// [`LoadError::Argument`] for one without `=`.
pub fn data_args(args: &[String]) -> Result<Vec<(String, String)>, LoadError> {
    args.iter().map(|a| a.split_once('=').map(|(n, f)| (n.to_owned(), f.to_owned())).ok_or_else(|| LoadError::Argument(a.clone()))).collect()
}

/// Loads the plan at `plan` and the data files `data` (`(input name,
/// path)`; CSV, or JSON Lines for `.jsonl`/`.ndjson` or JSON content), and
/// commits to the records.
///
/// # Errors
/// [`LoadError`] naming the plan's errors, the mismatched input, or the
/// data file, line, column and field.
pub fn load_files<P: AsRef<Path>>(plan: &Path, data: &[(String, P)]) -> Result<Loaded, LoadError> {
    let (file, program) = load_plan(plan)?;
    let names: Vec<&str> = data.iter().map(|(n, _)| n.as_str()).collect();
    let order = match_inputs(&program, &names).map_err(LoadError::Inputs)?;
    let mut tables = Vec::with_capacity(order.len());
    for (spec, &at) in program.inputs.iter().zip(&order) {
        let (name, path) = &data[at];
        tables.push(data::load(spec, path.as_ref()).map_err(|error| LoadError::Data { input: name.clone(), error })?);
    }
    Ok(Loaded::new(file, program, &tables))
}

/// One input's data as bytes (a request body's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataBytes {
    /// The `data-input` step it is for.
    pub name: String,
    /// The data.
    pub bytes: Vec<u8>,
    /// How to read it.
    pub format: Format,
}

/// Validates `file` and reads `data` by the plan's schemas; returns the
/// loaded plan and the data in plan order. Data errors name their source
/// as `data.<name>`.
///
/// # Errors
/// [`LoadError`] as for [`load_files`].
pub fn load_bytes(file: PlanFile, data: Vec<DataBytes>) -> Result<(Loaded, Vec<DataBytes>), LoadError> {
    let name = file.file.clone();
    let program = file.compile(&Bounds::default()).map_err(|errors| LoadError::Plan { file: name, errors })?;
    let names: Vec<&str> = data.iter().map(|d| d.name.as_str()).collect();
    let order = match_inputs(&program, &names).map_err(LoadError::Inputs)?;
    let mut tables = Vec::with_capacity(order.len());
    let mut ordered = Vec::with_capacity(order.len());
    for (spec, &at) in program.inputs.iter().zip(&order) {
        let d = &data[at];
        let t = data::parse(spec, &format!("data.{}", d.name), &d.bytes, d.format).map_err(|error| LoadError::Data { input: d.name.clone(), error })?;
        tables.push(t);
        ordered.push(d.clone());
    }
    Ok((Loaded::new(file, program, &tables), ordered))
}
