//! The plan IR: the serde types a plan document deserializes into.
//!
//! Field names are camelCase and step kinds are kebab-case, as in the plan
//! files. Unknown fields are rejected everywhere, so a typo is an error and
//! never a silently ignored option. Semantic checks (references, cycles,
//! types, limits) live in [`crate::validate`].

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// The only plan format version this crate understands.
pub const PLAN_VERSION: &str = "1.0";

/// An execution plan: a DAG of steps over typed, committed data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    /// Plan format version; must be [`PLAN_VERSION`].
    pub version: String,
    /// Free-form identifier chosen by the author (1 to 128 bytes).
    pub id: String,
    /// Digest of the job request this plan answers, `sha256:<64 lowercase hex>`.
    pub job_request_hash: String,
    /// The steps. Each names its inputs by step ID, so the plan is a DAG.
    pub steps: Vec<Step>,
    /// Which step's result is the output, and which of its columns are public.
    pub output: Output,
    /// Resource limits, checked against the configured bounds.
    pub limits: Limits,
}

/// Resource limits of one execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Most zkVM cycles the execution may use (user cycles, RISC Zero).
    pub max_cycles: u64,
    /// Most bytes of table data the interpreter may hold at once (8 bytes per
    /// numeric cell, 32 per digest cell).
    pub max_memory_bytes: u64,
    /// Most bytes of canonical output JSON.
    pub max_output_bytes: u64,
}

/// The output of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Output {
    /// The step whose result is the output.
    pub step: String,
    /// Columns committed in clear in the journal. When absent, all columns are
    /// public. The hash of the full output is always committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<Vec<String>>,
}

/// One step of a plan, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Step {
    /// A named input: typed columns and an optional data commitment.
    DataInput(DataInput),
    /// Per-row transformation: `map`, `select` or `rename`.
    Transform(Transform),
    /// Keeps the rows for which a predicate holds.
    Filter(Filter),
    /// `reduce` (count/sum/min/max/mean, optionally grouped), `concat`, `merge`.
    Aggregate(Aggregate),
    /// Adds derived columns, evaluated in order.
    Compute(Compute),
    /// Chooses between two steps on a predicate over a one-row input.
    Branch(Branch),
    /// Updates a one-row state a bounded number of times.
    Loop(Loop),
}

impl Step {
    /// The step's ID.
    pub fn id(&self) -> &str {
        match self {
            Step::DataInput(s) => &s.id,
            Step::Transform(s) => &s.id,
            Step::Filter(s) => &s.id,
            Step::Aggregate(s) => &s.id,
            Step::Compute(s) => &s.id,
            Step::Branch(s) => &s.id,
            Step::Loop(s) => &s.id,
        }
    }

    /// The step kind as written in plans (`data-input`, `filter`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::DataInput(_) => "data-input",
            Step::Transform(_) => "transform",
            Step::Filter(_) => "filter",
            Step::Aggregate(_) => "aggregate",
            Step::Compute(_) => "compute",
            Step::Branch(_) => "branch",
            Step::Loop(_) => "loop",
        }
    }
}

/// `data-input`: a named, typed input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataInput {
    /// Step ID; also the NAME in `--data NAME=FILE`.
    pub id: String,
    /// The columns, in record order.
    pub schema: Vec<ColumnDef>,
    /// RFC 9162 Merkle root over this input's record encodings, 64 lowercase
    /// hex. When present, data that does not match is rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_commitment: Option<String>,
}

/// A column type name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum TypeName {
    /// Signed 64-bit integer.
    Int,
    /// Fixed-point decimal: a signed 64-bit integer with a declared `scale`.
    Decimal,
    /// `true` or `false`.
    Bool,
    /// A calendar date (proleptic Gregorian), stored as days since 1970-01-01.
    Date,
    /// One of the declared `values`, stored as its position in that list.
    Enum,
    /// A 32-byte SHA-256 digest, written as 64 hex digits.
    Digest,
}

/// One column of a `data-input` schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ColumnDef {
    /// Column name: `[A-Za-z_][A-Za-z0-9_]*`, at most 64 bytes. It is also the
    /// CSV header or JSON Lines key read for this column.
    pub name: String,
    /// The column type.
    #[serde(rename = "type")]
    pub ty: TypeName,
    /// Decimal places, 0 to 18; `decimal` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u8>,
    /// The allowed labels, in order; `enum` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// How dates are written in data files, in strftime notation (for
    /// example `%b %d %Y` for `Jan 1 2000`); `date` only. Default `%Y-%m-%d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// `transform`: one per-row operation on `input`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transform {
    /// Step ID.
    pub id: String,
    /// The step whose rows are transformed.
    pub input: String,
    /// The operation.
    pub operation: TransformOp,
}

/// A transform operation, tagged by `op`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TransformOp {
    /// Sets `column` (new or existing) to `expression` on every row.
    Map {
        /// The column written.
        column: String,
        /// Its value, evaluated per row.
        expression: Expr,
    },
    /// Keeps only `fields`, in that order.
    Select {
        /// Column names.
        fields: Vec<String>,
    },
    /// Renames columns, old name to new name.
    Rename {
        /// Old name to new name.
        mapping: BTreeMap<String, String>,
    },
}

/// `filter`: keeps the rows of `input` where `predicate` is true.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    /// Step ID.
    pub id: String,
    /// The step filtered.
    pub input: String,
    /// A `bool` expression over the input's columns.
    pub predicate: Expr,
}

/// `aggregate`: combines rows or inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Aggregate {
    /// Step ID.
    pub id: String,
    /// The operation.
    pub operation: AggregateOp,
}

/// An aggregate operation, tagged by `op`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AggregateOp {
    /// Folds the rows of `input` into one row, or one row per group.
    #[serde(rename_all = "camelCase")]
    Reduce {
        /// The step reduced.
        input: String,
        /// Grouping columns. Groups come out sorted by key. Empty: one row.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        group_by: Vec<String>,
        /// The aggregate columns computed per group.
        aggregations: Vec<Aggregation>,
    },
    /// All rows of `inputs`, in order; the inputs must have equal schemas.
    Concat {
        /// Step IDs.
        inputs: Vec<String>,
    },
    /// Joins `inputs` on equal `on` columns (an inner join; every input but
    /// the first must have at most one row per key). With `on` empty, every
    /// input must be a one-row result and their columns are put side by side.
    Merge {
        /// Step IDs.
        inputs: Vec<String>,
        /// Key columns present in every input.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        on: Vec<String>,
    },
}

/// An aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AggFn {
    /// Number of rows (`int`).
    Count,
    /// Sum of a numeric column (same type; overflow is an error).
    Sum,
    /// Least value of a numeric or date column.
    Min,
    /// Greatest value of a numeric or date column.
    Max,
    /// Arithmetic mean of a numeric column, a `decimal` rounded half away
    /// from zero to `scale` places (default: the column's scale).
    Mean,
}

/// One aggregate column of a `reduce`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Aggregation {
    /// Name of the result column.
    pub name: String,
    /// The function.
    #[serde(rename = "fn")]
    pub func: AggFn,
    /// The column aggregated; required except for `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Only rows where this `bool` expression holds are aggregated (SQL's
    /// `FILTER (WHERE …)`). `min`, `max` and `mean` of no rows are errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Expr>,
    /// Decimal places of a `mean`, 0 to 18.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u8>,
}

/// A named expression: one derived column or one loop-state update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assign {
    /// The column written.
    pub name: String,
    /// Its value.
    pub expression: Expr,
}

/// `compute`: adds or replaces columns of `input`, in order; each expression
/// sees the columns assigned before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Compute {
    /// Step ID.
    pub id: String,
    /// The step extended.
    pub input: String,
    /// The derived columns.
    pub columns: Vec<Assign>,
}

/// `branch`: the result of `then` if `condition` holds on the one row of
/// `input`, else the result of `else`. Both must have the same columns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Branch {
    /// Step ID.
    pub id: String,
    /// A one-row step the condition reads.
    pub input: String,
    /// A `bool` expression over `input`'s columns.
    pub condition: Expr,
    /// Step taken when the condition holds.
    pub then: String,
    /// Step taken otherwise.
    #[serde(rename = "else")]
    pub otherwise: String,
}

/// `loop`: starting from the one row of `input`, applies `update` at most
/// `maxIterations` times, stopping early once `until` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Loop {
    /// Step ID.
    pub id: String,
    /// A one-row step: the initial state.
    pub input: String,
    /// The static bound on iterations.
    pub max_iterations: u32,
    /// Checked before each iteration; the loop stops when it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Expr>,
    /// State updates, applied in order within an iteration.
    pub update: Vec<Assign>,
}

/// An expression: a typed AST written as a one-key object, the key naming the
/// literal, the column reference or the operator. Operators take a list of
/// arguments: `{"gt": [{"col": "price"}, {"decimal": "100.00"}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "std", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Expr {
    /// The value of a column of the current row.
    Col(String),
    /// An integer literal (I-JSON safe: |n| ≤ 2^53 − 1).
    Int(i64),
    /// A decimal literal as a string, `-12.50`; its scale is its digit count.
    Decimal(String),
    /// A boolean literal.
    Bool(bool),
    /// A date literal, `YYYY-MM-DD`.
    Date(String),
    /// An enum label, compared with an enum column.
    Str(String),
    /// `a + b`; numbers, or a date plus an int of days.
    Add(Vec<Expr>),
    /// `a - b`; numbers, a date minus days, or date minus date (days).
    Sub(Vec<Expr>),
    /// `a * b`; the result scale is the sum of the scales.
    Mul(Vec<Expr>),
    /// `a / b` at the scale of `a`, truncated toward zero; `b = 0` is an error.
    Div(Vec<Expr>),
    /// `-a`.
    Neg(Vec<Expr>),
    /// `|a|`.
    Abs(Vec<Expr>),
    /// `a = b`.
    Eq(Vec<Expr>),
    /// `a ≠ b`.
    Ne(Vec<Expr>),
    /// `a < b`.
    Lt(Vec<Expr>),
    /// `a ≤ b`.
    Le(Vec<Expr>),
    /// `a > b`.
    Gt(Vec<Expr>),
    /// `a ≥ b`.
    Ge(Vec<Expr>),
    /// Conjunction of two or more `bool`s.
    And(Vec<Expr>),
    /// Disjunction of two or more `bool`s.
    Or(Vec<Expr>),
    /// Negation of a `bool`.
    Not(Vec<Expr>),
    /// `[condition, then, else]`.
    If(Vec<Expr>),
    /// SHA-256 over the record encodings of one or more values: a `digest`.
    Sha256(Vec<Expr>),
    /// Year of a date (`int`).
    Year(Vec<Expr>),
    /// Month of a date, 1 to 12 (`int`).
    Month(Vec<Expr>),
    /// Day of the month of a date, 1 to 31 (`int`).
    Day(Vec<Expr>),
}
