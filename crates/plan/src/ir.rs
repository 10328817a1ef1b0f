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
///
/// Deserialized member by member and checked against its `type` afterwards,
/// not through serde's internally tagged enum (which buffers each step
/// first); the derived `Serialize` writes the same shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

/// A transform operation, tagged by `op`; deserialized member by member,
/// as [`Step`] is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

/// An aggregate operation, tagged by `op`; deserialized member by member,
/// as [`Step`] is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

// Tagged objects without serde's buffering.
//
// serde's internally tagged enums (`#[serde(tag = "type")]`) read each object
// into a tree of buffered `Content` first, because the tag may come after the
// other members (it does in canonical JSON, whose keys are sorted). Inside
// the zkVM that buffering was most of the cost of reading a plan. A step or
// an operation is therefore read into one flat struct holding every member
// any kind may have, then checked against its kind: a member that belongs
// to another kind is refused as an unknown field, one the kind needs and
// lacks as a missing field, with serde's own messages.

/// The `type` of a step.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum StepKind {
    DataInput,
    Transform,
    Filter,
    Aggregate,
    Compute,
    Branch,
    Loop,
}

/// The `op` of a transform or aggregate operation.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum OpKind {
    Map,
    Select,
    Rename,
    Reduce,
    Concat,
    Merge,
}

/// A member name, borrowed from the input where the deserializer can.
struct Key<'de>(alloc::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(alloc::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(alloc::borrow::Cow::Owned(v.into())))
            }
        }
        d.deserialize_identifier(V)
    }
}

/// Sets a member once; a second occurrence is serde's duplicate-field error.
fn put<'de, T: Deserialize<'de>, A: serde::de::MapAccess<'de>>(slot: &mut Option<T>, map: &mut A, name: &'static str) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(serde::de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// Defines a flat struct of optional members, one per `name: Type = "key"`,
/// and reads it from a map: each known key into its member, the first
/// unknown one kept (its value skipped) for the kind's own error message.
macro_rules! members {
    ($(#[$doc:meta])* $name:ident, $expecting:literal { $($field:ident: $ty:ty = $key:literal,)* }) => {
        $(#[$doc])*
        #[derive(Default)]
        struct $name {
            $($field: Option<$ty>,)*
            /// The first member no kind has.
            unknown: Option<String>,
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        let mut m = $name::default();
                        while let Some(Key(key)) = map.next_key()? {
                            match &*key {
                                $($key => put(&mut m.$field, &mut map, $key)?,)*
                                other => {
                                    if m.unknown.is_none() {
                                        m.unknown = Some(other.into());
                                    }
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(m)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

members! {
    /// Every member a step object may have, whatever its `type`.
    StepMembers, "a plan step (an object with a `type`)" {
        kind: StepKind = "type",
        id: String = "id",
        input: String = "input",
        schema: Vec<ColumnDef> = "schema",
        data_commitment: Option<String> = "dataCommitment",
        operation: OpMembers = "operation",
        predicate: Expr = "predicate",
        columns: Vec<Assign> = "columns",
        condition: Expr = "condition",
        then: String = "then",
        otherwise: String = "else",
        max_iterations: u32 = "maxIterations",
        until: Option<Expr> = "until",
        update: Vec<Assign> = "update",
    }
}

members! {
    /// Every member an `operation` object may have, whatever its `op`.
    OpMembers, "an operation (an object with an `op`)" {
        op: OpKind = "op",
        column: String = "column",
        expression: Expr = "expression",
        fields: Vec<String> = "fields",
        mapping: BTreeMap<String, String> = "mapping",
        input: String = "input",
        group_by: Vec<String> = "groupBy",
        aggregations: Vec<Aggregation> = "aggregations",
        inputs: Vec<String> = "inputs",
        on: Vec<String> = "on",
    }
}

/// Refuses a member no kind has, then the first member present that
/// `allowed` (the kind's members) does not list.
fn only<E: serde::de::Error>(unknown: Option<&str>, present: &[(&'static str, bool)], allowed: &'static [&'static str]) -> Result<(), E> {
    if let Some(name) = unknown {
        return Err(E::unknown_field(name, allowed));
    }
    match present.iter().find(|(name, here)| *here && !allowed.contains(name)) {
        Some((name, _)) => Err(E::unknown_field(name, allowed)),
        None => Ok(()),
    }
}

/// A required member.
fn need<T, E: serde::de::Error>(value: Option<T>, name: &'static str) -> Result<T, E> {
    value.ok_or_else(|| E::missing_field(name))
}

impl StepMembers {
    fn into_step<E: serde::de::Error>(self) -> Result<Step, E> {
        let present = [
            ("input", self.input.is_some()),
            ("schema", self.schema.is_some()),
            ("dataCommitment", self.data_commitment.is_some()),
            ("operation", self.operation.is_some()),
            ("predicate", self.predicate.is_some()),
            ("columns", self.columns.is_some()),
            ("condition", self.condition.is_some()),
            ("then", self.then.is_some()),
            ("else", self.otherwise.is_some()),
            ("maxIterations", self.max_iterations.is_some()),
            ("until", self.until.is_some()),
            ("update", self.update.is_some()),
        ];
        let kind = need(self.kind, "type")?;
        let id = need(self.id, "id")?;
        Ok(match kind {
            StepKind::DataInput => {
                only(self.unknown.as_deref(), &present, &["id", "schema", "dataCommitment"])?;
                Step::DataInput(DataInput { id, schema: need(self.schema, "schema")?, data_commitment: self.data_commitment.flatten() })
            }
            StepKind::Transform => {
                only(self.unknown.as_deref(), &present, &["id", "input", "operation"])?;
                let operation = need(self.operation, "operation")?.into_transform()?;
                Step::Transform(Transform { id, input: need(self.input, "input")?, operation })
            }
            StepKind::Filter => {
                only(self.unknown.as_deref(), &present, &["id", "input", "predicate"])?;
                Step::Filter(Filter { id, input: need(self.input, "input")?, predicate: need(self.predicate, "predicate")? })
            }
            StepKind::Aggregate => {
                only(self.unknown.as_deref(), &present, &["id", "operation"])?;
                Step::Aggregate(Aggregate { id, operation: need(self.operation, "operation")?.into_aggregate()? })
            }
            StepKind::Compute => {
                only(self.unknown.as_deref(), &present, &["id", "input", "columns"])?;
                Step::Compute(Compute { id, input: need(self.input, "input")?, columns: need(self.columns, "columns")? })
            }
            StepKind::Branch => {
                only(self.unknown.as_deref(), &present, &["id", "input", "condition", "then", "else"])?;
                Step::Branch(Branch {
                    id,
                    input: need(self.input, "input")?,
                    condition: need(self.condition, "condition")?,
                    then: need(self.then, "then")?,
                    otherwise: need(self.otherwise, "else")?,
                })
            }
            StepKind::Loop => {
                only(self.unknown.as_deref(), &present, &["id", "input", "maxIterations", "until", "update"])?;
                Step::Loop(Loop {
                    id,
                    input: need(self.input, "input")?,
                    max_iterations: need(self.max_iterations, "maxIterations")?,
                    until: self.until.flatten(),
                    update: need(self.update, "update")?,
                })
            }
        })
    }
}

impl OpMembers {
    fn present(&self) -> [(&'static str, bool); 9] {
        [
            ("column", self.column.is_some()),
            ("expression", self.expression.is_some()),
            ("fields", self.fields.is_some()),
            ("mapping", self.mapping.is_some()),
            ("input", self.input.is_some()),
            ("groupBy", self.group_by.is_some()),
            ("aggregations", self.aggregations.is_some()),
            ("inputs", self.inputs.is_some()),
            ("on", self.on.is_some()),
        ]
    }

    fn into_transform<E: serde::de::Error>(self) -> Result<TransformOp, E> {
        const OPS: &[&str] = &["map", "select", "rename"];
        let present = self.present();
        Ok(match need(self.op, "op")? {
            OpKind::Map => {
                only(self.unknown.as_deref(), &present, &["column", "expression"])?;
                TransformOp::Map { column: need(self.column, "column")?, expression: need(self.expression, "expression")? }
            }
            OpKind::Select => {
                only(self.unknown.as_deref(), &present, &["fields"])?;
                TransformOp::Select { fields: need(self.fields, "fields")? }
            }
            OpKind::Rename => {
                only(self.unknown.as_deref(), &present, &["mapping"])?;
                TransformOp::Rename { mapping: need(self.mapping, "mapping")? }
            }
            OpKind::Reduce => return Err(E::unknown_variant("reduce", OPS)),
            OpKind::Concat => return Err(E::unknown_variant("concat", OPS)),
            OpKind::Merge => return Err(E::unknown_variant("merge", OPS)),
        })
    }

    fn into_aggregate<E: serde::de::Error>(self) -> Result<AggregateOp, E> {
        const OPS: &[&str] = &["reduce", "concat", "merge"];
        let present = self.present();
        Ok(match need(self.op, "op")? {
            OpKind::Reduce => {
                only(self.unknown.as_deref(), &present, &["input", "groupBy", "aggregations"])?;
                AggregateOp::Reduce {
                    input: need(self.input, "input")?,
                    group_by: self.group_by.unwrap_or_default(),
                    aggregations: need(self.aggregations, "aggregations")?,
                }
            }
            OpKind::Concat => {
                only(self.unknown.as_deref(), &present, &["inputs"])?;
                AggregateOp::Concat { inputs: need(self.inputs, "inputs")? }
            }
            OpKind::Merge => {
                only(self.unknown.as_deref(), &present, &["inputs", "on"])?;
                AggregateOp::Merge { inputs: need(self.inputs, "inputs")?, on: self.on.unwrap_or_default() }
            }
            OpKind::Map => return Err(E::unknown_variant("map", OPS)),
            OpKind::Select => return Err(E::unknown_variant("select", OPS)),
            OpKind::Rename => return Err(E::unknown_variant("rename", OPS)),
        })
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StepMembers::deserialize(d)?.into_step()
    }
}

impl<'de> Deserialize<'de> for TransformOp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        OpMembers::deserialize(d)?.into_transform()
    }
}

impl<'de> Deserialize<'de> for AggregateOp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        OpMembers::deserialize(d)?.into_aggregate()
    }
}
