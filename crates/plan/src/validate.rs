//! Plan validation: schema-level rules, references, cycles, types and limits,
//! producing an executable [`Program`].
//!
//! Every [`Diagnostic`] carries the RFC 6901 JSON pointer of the offending
//! node (`/steps/2/predicate/gt/0`); the std front end turns pointers into
//! file, line and column. Validation goes on after an error wherever the rest
//! of the plan can still be checked, so one run reports several errors.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Display;

use zkaudit_merkle::Hash;

use crate::expr::{self, CExpr, Schema};
use crate::ir::{AggFn, AggregateOp, Assign, ColumnDef, Expr, Limits, Plan, Step, TransformOp, TypeName, PLAN_VERSION};
use crate::pointer::Ptr;
use crate::value::{self, enum_type, pow10, Type, MAX_SCALE};

/// One validation error (or warning) at a JSON pointer into the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// RFC 6901 JSON pointer of the offending node; `""` is the whole plan.
    pub path: String,
    /// What is wrong, naming the expected and the found.
    pub message: String,
}

/// Configured upper bounds for a plan's `limits` and loop bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Upper bound for `limits.maxCycles` (cycles).
    pub max_cycles: u64,
    /// Upper bound for `limits.maxMemoryBytes` (bytes).
    pub max_memory_bytes: u64,
    /// Upper bound for `limits.maxOutputBytes` (bytes).
    pub max_output_bytes: u64,
    /// Upper bound for a loop's `maxIterations`.
    pub max_loop_iterations: u32,
}

impl Default for Bounds {
    /// 2^32 cycles (about 23 days of CPU proving at 2.2 kHz, so a plan
    /// asking for more is a mistake), 128 MiB of table data (the guest has
    /// 192 MiB of RAM), 1 MiB of output and 10^6 loop iterations.
    fn default() -> Self {
        Bounds { max_cycles: 1 << 32, max_memory_bytes: 128 << 20, max_output_bytes: 1 << 20, max_loop_iterations: 1_000_000 }
    }
}

/// How many rows a step yields, known statically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    /// Exactly one row (an ungrouped reduce, a loop, ...): output as an object.
    One,
    /// Any number of rows: output as an array of objects.
    Many,
}

/// The static shape of one step's result.
#[derive(Debug, Clone)]
pub struct StepInfo {
    /// The step ID.
    pub id: String,
    /// The step kind (`filter`, ...).
    pub kind: &'static str,
    /// Its columns.
    pub schema: Schema,
    /// Its cardinality.
    pub card: Card,
}

/// A data input the program reads, in plan order.
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// Step ID (the NAME of `--data NAME=FILE`).
    pub id: String,
    /// Index of the step in the plan.
    pub step: usize,
    /// Columns in record order.
    pub schema: Schema,
    /// Per column: the strftime format dates are written in, if declared.
    pub formats: Vec<Option<String>>,
    /// The declared data commitment, if any.
    pub commitment: Option<Hash>,
}

impl InputSpec {
    /// 32-bit words per encoded record.
    pub fn record_words(&self) -> usize {
        self.schema.iter().map(|(_, t)| t.words()).sum()
    }
}

/// One compiled aggregation.
#[derive(Debug, Clone)]
pub(crate) struct CAgg {
    pub func: AggFn,
    pub col: Option<usize>,
    pub filter: Option<CExpr>,
    /// For `mean`: scale change from the column to the result (may be < 0).
    pub rescale: i8,
}

/// A compiled column assignment: `(column index, expression, is digest)`.
pub(crate) type CAssign = (usize, CExpr, bool);

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Input(usize),
    Compute { input: usize, assigns: Vec<CAssign> },
    Select { input: usize, cols: Vec<usize> },
    Alias(usize),
    Filter { input: usize, pred: CExpr },
    Reduce { input: usize, keys: Vec<usize>, direct: Option<usize>, aggs: Vec<CAgg> },
    Concat(Vec<usize>),
    Merge { inputs: Vec<usize>, keys: Vec<Vec<usize>>, carry: Vec<Vec<usize>> },
    Branch { input: usize, cond: CExpr, then: usize, otherwise: usize },
    Loop { input: usize, max: u32, until: Option<CExpr>, update: Vec<CAssign> },
}

/// A validated plan, ready to execute.
#[derive(Debug, Clone)]
pub struct Program {
    /// Every step's static shape, in plan order.
    pub steps: Vec<StepInfo>,
    pub(crate) ops: Vec<Op>,
    /// Topological order of all steps (ties broken by plan order).
    pub order: Vec<usize>,
    /// The steps the output depends on, in execution order.
    pub(crate) run: Vec<usize>,
    /// The data inputs, in plan order.
    pub inputs: Vec<InputSpec>,
    /// Index of the output step.
    pub output: usize,
    /// Indices of the public output columns, in name order.
    pub public: Vec<usize>,
    /// The plan's limits.
    pub limits: Limits,
    /// Non-fatal findings, such as steps the output does not use.
    pub warnings: Vec<Diagnostic>,
}

impl Program {
    /// Step IDs in topological execution order.
    pub fn execution_order(&self) -> Vec<&str> {
        self.order.iter().map(|&i| self.steps[i].id.as_str()).collect()
    }
}

/// Validates `plan` against `bounds` and compiles it.
///
/// # Errors
/// Every problem found, each with the JSON pointer of its node.
pub fn compile(plan: &Plan, bounds: &Bounds) -> Result<Program, Vec<Diagnostic>> {
    let mut v = Validator { errors: Vec::new() };
    v.header(plan, bounds);

    // Step IDs.
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let id = s.id();
        if !is_step_id(id) {
            v.error(format!("/steps/{i}/id"), format!("step ID `{id}` must be 1 to 64 of A-Z a-z 0-9 _ . -"));
        }
        if let Some(first) = index.insert(id, i) {
            v.error(format!("/steps/{i}/id"), format!("duplicate step ID `{id}` (first used by step {first})"));
            index.insert(id, first);
        }
    }
    if plan.steps.is_empty() {
        v.error("/steps", "a plan needs at least one step");
    }

    // References and the dependency graph.
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); plan.steps.len()];
    let mut dangling = vec![false; plan.steps.len()];
    for (i, s) in plan.steps.iter().enumerate() {
        for (path, target) in references(s) {
            match index.get(target) {
                Some(&j) => deps[i].push(j),
                None => {
                    dangling[i] = true;
                    v.error(format!("/steps/{i}{path}"), format!("no step has the ID `{target}`"));
                }
            }
        }
    }
    let output = index.get(plan.output.step.as_str()).copied();
    if output.is_none() {
        v.error("/output/step", format!("the output step `{}` does not exist", plan.output.step));
    }

    let order = match topo_order(&deps) {
        Ok(o) => o,
        Err(cycle) => {
            let path: Vec<&str> = cycle.iter().map(|&i| plan.steps[i].id()).collect();
            v.error(format!("/steps/{}", cycle[0]), format!("dependency cycle: {}", path.join(" → ")));
            return Err(v.errors);
        }
    };

    // Types, in dependency order, so each step sees its inputs' shapes.
    let mut infos: Vec<Option<StepInfo>> = vec![None; plan.steps.len()];
    let mut ops: Vec<Option<Op>> = vec![None; plan.steps.len()];
    let mut inputs = Vec::new();
    let root = Ptr::Root;
    let steps_at = root.key("steps");
    for &i in &order {
        let s = &plan.steps[i];
        let at = steps_at.index(i);
        let ins: Option<Vec<&StepInfo>> = deps[i].iter().map(|&j| infos[j].as_ref()).collect();
        let Some(ins) = ins.filter(|_| !dangling[i]) else { continue }; // an input already failed
        if let Some((info, op)) = v.step(s, i, &at, &ins, &deps[i], bounds, &mut inputs) {
            infos[i] = Some(StepInfo { id: s.id().to_string(), kind: s.kind(), schema: info.0, card: info.1 });
            ops[i] = Some(op);
        }
    }
    if !v.errors.is_empty() {
        return Err(v.errors);
    }
    let (Some(output), Some(steps), Some(ops)) = (output, infos.into_iter().collect::<Option<Vec<_>>>(), ops.into_iter().collect::<Option<Vec<_>>>()) else {
        return Err(v.errors);
    };

    let out_schema = &steps[output].schema;
    let mut public = Vec::new();
    match &plan.output.public {
        None => public.extend(0..out_schema.len()),
        Some(cols) => {
            for (k, c) in cols.iter().enumerate() {
                match out_schema.iter().position(|(n, _)| n == c) {
                    Some(p) if public.contains(&p) => v.error(format!("/output/public/{k}"), format!("`{c}` is listed twice")),
                    Some(p) => public.push(p),
                    None => v.error(format!("/output/public/{k}"), format!("the output step has no column `{c}`")),
                }
            }
        }
    }
    public.sort_by(|a, b| out_schema[*a].0.cmp(&out_schema[*b].0));
    if !v.errors.is_empty() {
        return Err(v.errors);
    }

    // Only what the output depends on runs.
    let mut needed = vec![false; steps.len()];
    let mut stack = vec![output];
    while let Some(s) = stack.pop() {
        if !needed[s] {
            needed[s] = true;
            stack.extend(deps[s].iter().copied());
        }
    }
    let warnings = (0..steps.len())
        .filter(|&i| !needed[i])
        .map(|i| Diagnostic { path: format!("/steps/{i}"), message: format!("step `{}` does not contribute to the output and is not executed", steps[i].id) })
        .collect();
    let run = order.iter().copied().filter(|&i| needed[i]).collect();
    Ok(Program { steps, ops, order, run, inputs, output, public, limits: plan.limits, warnings })
}

fn is_step_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

/// `(pointer suffix, referenced ID)` for every step reference in `s`.
fn references(s: &Step) -> Vec<(String, &str)> {
    match s {
        Step::DataInput(_) => vec![],
        Step::Transform(t) => vec![("/input".into(), t.input.as_str())],
        Step::Filter(f) => vec![("/input".into(), f.input.as_str())],
        Step::Compute(c) => vec![("/input".into(), c.input.as_str())],
        Step::Loop(l) => vec![("/input".into(), l.input.as_str())],
        Step::Branch(b) => vec![("/input".into(), b.input.as_str()), ("/then".into(), b.then.as_str()), ("/else".into(), b.otherwise.as_str())],
        Step::Aggregate(a) => match &a.operation {
            AggregateOp::Reduce { input, .. } => vec![("/operation/input".into(), input.as_str())],
            AggregateOp::Concat { inputs } | AggregateOp::Merge { inputs, .. } => {
                inputs.iter().enumerate().map(|(k, s)| (format!("/operation/inputs/{k}"), s.as_str())).collect()
            }
        },
    }
}

/// Kahn's algorithm, ties broken by plan order; on a cycle, returns one cycle
/// as a closed path of step indices (`a, b, a`).
fn topo_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut pending: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &j in d {
            users[j].push(i);
        }
    }
    let mut ready: alloc::collections::BTreeSet<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &u in &users[i] {
            pending[u] -= 1;
            if pending[u] == 0 {
                ready.insert(u);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk dependencies from a stuck step until a step repeats.
    let mut at = (0..n).find(|&i| pending[i] > 0).unwrap_or(0);
    let mut seen = vec![usize::MAX; n];
    let mut path = Vec::new();
    while seen[at] == usize::MAX {
        seen[at] = path.len();
        path.push(at);
        at = deps[at].iter().copied().find(|&j| pending[j] > 0).unwrap_or(at);
    }
    let mut cycle: Vec<usize> = path[seen[at]..].to_vec();
    cycle.reverse(); // data-flow order: a feeds b feeds ... feeds a
    let first = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
    cycle.rotate_left(first); // start at the earliest step of the plan
    cycle.push(cycle[0]);
    Err(cycle)
}

struct Validator {
    errors: Vec<Diagnostic>,
}

type Shape = (Schema, Card);

impl Validator {
    fn error(&mut self, path: impl Display, message: impl Into<String>) {
        self.errors.push(Diagnostic { path: path.to_string(), message: message.into() });
    }

    fn header(&mut self, plan: &Plan, b: &Bounds) {
        if plan.version != PLAN_VERSION {
            self.error("/version", format!("unsupported plan version `{}` (this build reads {PLAN_VERSION})", plan.version));
        }
        if plan.id.is_empty() || plan.id.len() > 128 {
            self.error("/id", "the plan ID must be 1 to 128 bytes");
        }
        let ok = plan.job_request_hash.strip_prefix("sha256:").and_then(value::parse_hex32).is_some();
        if !ok {
            self.error("/jobRequestHash", "expected `sha256:` and 64 lowercase hex digits");
        }
        let l = &plan.limits;
        for (name, got, max) in [
            ("maxCycles", l.max_cycles, b.max_cycles),
            ("maxMemoryBytes", l.max_memory_bytes, b.max_memory_bytes),
            ("maxOutputBytes", l.max_output_bytes, b.max_output_bytes),
        ] {
            if got == 0 || got > max {
                self.error(format!("/limits/{name}"), format!("{name} is {got}; the configured bounds are 1 to {max}"));
            }
        }
    }

    fn expr(&mut self, e: &Expr, schema: &Schema, at: &Ptr<'_>) -> Option<(CExpr, Type)> {
        match expr::compile(e, schema) {
            Ok(r) => Some(r),
            Err(te) => {
                self.error(format!("{at}{}", te.at), te.message);
                None
            }
        }
    }

    fn predicate(&mut self, e: &Expr, schema: &Schema, at: &Ptr<'_>) -> Option<CExpr> {
        let (c, t) = self.expr(e, schema, at)?;
        if t != Type::Bool {
            self.error(at, format!("expected a bool predicate, got {}", t.describe()));
            return None;
        }
        Some(c)
    }

    fn column(&mut self, schema: &Schema, name: &str, at: &Ptr<'_>) -> Option<usize> {
        let p = schema.iter().position(|(n, _)| n == name);
        if p.is_none() {
            let names: Vec<&str> = schema.iter().map(|(n, _)| n.as_str()).collect();
            self.error(at, format!("unknown column `{name}` (columns here: {})", names.join(", ")));
        }
        p
    }

    /// Resolves `names` (the list at pointer `at`) to column indices, each at most once.
    fn distinct_columns(&mut self, schema: &Schema, names: &[String], at: &Ptr<'_>, verb: &str) -> Option<Vec<usize>> {
        let mut cols = Vec::with_capacity(names.len());
        for (k, name) in names.iter().enumerate() {
            let c = self.column(schema, name, &at.index(k))?;
            if cols.contains(&c) {
                self.error(format!("{at}/{k}"), format!("`{name}` is {verb} twice"));
                return None;
            }
            cols.push(c);
        }
        Some(cols)
    }

    fn new_name(&mut self, name: &str, at: &Ptr<'_>) -> bool {
        let ok = value::is_identifier(name);
        if !ok {
            self.error(at, format!("column name `{name}` must match [A-Za-z_][A-Za-z0-9_]* (at most 64 bytes)"));
        }
        ok
    }

    /// Compiles assignments in order, each seeing the ones before it.
    /// With `fixed`, names must be existing columns of unchanged type.
    fn assigns(&mut self, list: &[Assign], schema: &mut Schema, at: &Ptr<'_>, fixed: bool) -> Option<Vec<CAssign>> {
        let mut out = Vec::with_capacity(list.len());
        let mut ok = true;
        for (k, a) in list.iter().enumerate() {
            let here = at.index(k);
            if !self.new_name(&a.name, &here.key("name")) {
                ok = false;
                continue;
            }
            let Some((mut c, t)) = self.expr(&a.expression, schema, &here.key("expression")) else {
                ok = false;
                continue;
            };
            let slot = schema.iter().position(|(n, _)| *n == a.name);
            let t = match (fixed, slot) {
                (true, None) => {
                    self.error(format!("{here}/name"), format!("`{}` is not a column of the loop state", a.name));
                    ok = false;
                    continue;
                }
                (true, Some(p)) => {
                    let want = &schema[p].1;
                    match (want.scale(), t.scale()) {
                        (Some(w), Some(g)) if g <= w && (*want != Type::Int || t == Type::Int) => {
                            if g < w {
                                c = CExpr::Scale(alloc::boxed::Box::new(c), pow10(w - g));
                            }
                            want.clone()
                        }
                        _ if *want == t => t,
                        _ => {
                            self.error(
                                format!("{here}/expression"),
                                format!("state column `{}` is {}, the update gives {}", a.name, want.describe(), t.describe()),
                            );
                            ok = false;
                            continue;
                        }
                    }
                }
                (false, _) => t,
            };
            let digest = t == Type::Digest;
            let idx = set_column(schema, &a.name, t);
            out.push((idx, c, digest));
        }
        ok.then_some(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        s: &Step,
        i: usize,
        at: &Ptr<'_>,
        ins: &[&StepInfo],
        deps: &[usize],
        bounds: &Bounds,
        inputs: &mut Vec<InputSpec>,
    ) -> Option<(Shape, Op)> {
        match s {
            Step::DataInput(d) => {
                let mut schema = Schema::new();
                let mut formats = Vec::new();
                let schema_at = at.key("schema");
                for (k, c) in d.schema.iter().enumerate() {
                    let here = schema_at.index(k);
                    if self.new_name(&c.name, &here.key("name")) && schema.iter().any(|(n, _)| *n == c.name) {
                        self.error(format!("{here}/name"), format!("duplicate column `{}`", c.name));
                    }
                    if let Some(t) = self.column_type(c, &here) {
                        schema.push((c.name.clone(), t));
                        formats.push(c.format.clone());
                    }
                }
                if d.schema.is_empty() {
                    self.error(format!("{at}/schema"), "an input needs at least one column");
                }
                let commitment = match &d.data_commitment {
                    None => None,
                    Some(h) => {
                        let v = value::parse_hex32(h);
                        if v.is_none() {
                            self.error(format!("{at}/dataCommitment"), "expected 64 lowercase hex digits (an RFC 9162 Merkle root)");
                        }
                        v
                    }
                };
                if schema.len() != d.schema.len() {
                    return None;
                }
                let n = inputs.len();
                inputs.push(InputSpec { id: d.id.clone(), step: i, schema: schema.clone(), formats, commitment });
                Some(((schema, Card::Many), Op::Input(n)))
            }
            Step::Transform(t) => {
                let (input, info) = (deps[0], ins[0]);
                let mut schema = info.schema.clone();
                let at = at.key("operation");
                match &t.operation {
                    TransformOp::Map { column, expression } => {
                        let named = self.new_name(column, &at.key("column"));
                        let (c, t) = self.expr(expression, &schema, &at.key("expression"))?;
                        let digest = t == Type::Digest;
                        let idx = set_column(&mut schema, column, t);
                        named.then_some(((schema, info.card), Op::Compute { input, assigns: vec![(idx, c, digest)] }))
                    }
                    TransformOp::Select { fields } => {
                        let cols = self.distinct_columns(&info.schema, fields, &at.key("fields"), "selected")?;
                        let schema = cols.iter().map(|&c| info.schema[c].clone()).collect();
                        Some(((schema, info.card), Op::Select { input, cols }))
                    }
                    TransformOp::Rename { mapping } => {
                        let mut ok = true;
                        let mapping_at = at.key("mapping");
                        for (old, new) in mapping {
                            let here = mapping_at.key(old);
                            match self.column(&info.schema, old, &here) {
                                Some(c) if self.new_name(new, &here) => schema[c].0 = new.clone(),
                                _ => ok = false,
                            }
                        }
                        let mut names: Vec<&String> = schema.iter().map(|(n, _)| n).collect();
                        names.sort();
                        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                            self.error(format!("{at}/mapping"), format!("renaming leaves two columns named `{}`", w[0]));
                            ok = false;
                        }
                        ok.then_some(((schema, info.card), Op::Alias(input)))
                    }
                }
            }
            Step::Filter(f) => {
                let pred = self.predicate(&f.predicate, &ins[0].schema, &at.key("predicate"))?;
                Some(((ins[0].schema.clone(), Card::Many), Op::Filter { input: deps[0], pred }))
            }
            Step::Compute(c) => {
                let mut schema = ins[0].schema.clone();
                let assigns = self.assigns(&c.columns, &mut schema, &at.key("columns"), false)?;
                Some(((schema, ins[0].card), Op::Compute { input: deps[0], assigns }))
            }
            Step::Branch(b) => {
                let (input, then, other) = (ins[0], ins[1], ins[2]);
                if input.card != Card::One {
                    self.error(format!("{at}/input"), format!("`{}` may have many rows; a branch condition reads a one-row result", input.id));
                }
                let cond = self.predicate(&b.condition, &input.schema, &at.key("condition"))?;
                if then.schema != other.schema {
                    self.error(at, format!("`then` ({}) and `else` ({}) have different columns", describe(&then.schema), describe(&other.schema)));
                    return None;
                }
                let card = if then.card == Card::One && other.card == Card::One { Card::One } else { Card::Many };
                Some(((then.schema.clone(), card), Op::Branch { input: deps[0], cond, then: deps[1], otherwise: deps[2] }))
            }
            Step::Loop(l) => {
                if ins[0].card != Card::One {
                    self.error(format!("{at}/input"), format!("`{}` may have many rows; a loop state is a one-row result", ins[0].id));
                }
                if l.max_iterations == 0 || l.max_iterations > bounds.max_loop_iterations {
                    self.error(
                        format!("{at}/maxIterations"),
                        format!("maxIterations is {}; the configured bounds are 1 to {}", l.max_iterations, bounds.max_loop_iterations),
                    );
                }
                let mut schema = ins[0].schema.clone();
                let until = match &l.until {
                    Some(u) => Some(self.predicate(u, &schema, &at.key("until"))?),
                    None => None,
                };
                let update = self.assigns(&l.update, &mut schema, &at.key("update"), true)?;
                Some(((schema, Card::One), Op::Loop { input: deps[0], max: l.max_iterations, until, update }))
            }
            Step::Aggregate(a) => self.aggregate(&a.operation, &at.key("operation"), ins, deps),
        }
    }

    fn column_type(&mut self, c: &ColumnDef, at: &Ptr<'_>) -> Option<Type> {
        let mut ok = true;
        if c.scale.is_some() && c.ty != TypeName::Decimal {
            self.error(format!("{at}/scale"), "`scale` applies to decimal columns only");
            ok = false;
        }
        if c.values.is_some() && c.ty != TypeName::Enum {
            self.error(format!("{at}/values"), "`values` applies to enum columns only");
            ok = false;
        }
        if c.format.is_some() && c.ty != TypeName::Date {
            self.error(format!("{at}/format"), "`format` applies to date columns only");
            ok = false;
        }
        let t = match c.ty {
            TypeName::Int => Type::Int,
            TypeName::Bool => Type::Bool,
            TypeName::Date => Type::Date,
            TypeName::Digest => Type::Digest,
            TypeName::Decimal => match c.scale {
                Some(s) if s <= MAX_SCALE => Type::Decimal(s),
                Some(s) => {
                    self.error(format!("{at}/scale"), format!("scale {s} exceeds {MAX_SCALE}"));
                    return None;
                }
                None => {
                    self.error(at, "a decimal column needs a `scale` (digits after the point)");
                    return None;
                }
            },
            TypeName::Enum => {
                let Some(vals) = &c.values else {
                    self.error(at, "an enum column needs its `values`");
                    return None;
                };
                if vals.is_empty() || vals.len() > usize::from(u16::MAX) {
                    self.error(format!("{at}/values"), "an enum needs 1 to 65535 values");
                    return None;
                }
                for (k, v) in vals.iter().enumerate() {
                    if vals[..k].contains(v) {
                        self.error(format!("{at}/values/{k}"), format!("duplicate label `{v}`"));
                        ok = false;
                    }
                }
                enum_type(vals)
            }
        };
        ok.then_some(t)
    }

    fn aggregate(&mut self, op: &AggregateOp, at: &Ptr<'_>, ins: &[&StepInfo], deps: &[usize]) -> Option<(Shape, Op)> {
        match op {
            AggregateOp::Reduce { group_by, aggregations, .. } => {
                let info = ins[0];
                let keys = self.distinct_columns(&info.schema, group_by, &at.key("groupBy"), "grouped by")?;
                let mut schema: Schema = keys.iter().map(|&c| info.schema[c].clone()).collect();
                if aggregations.is_empty() {
                    self.error(format!("{at}/aggregations"), "a reduce needs at least one aggregation");
                }
                let mut aggs = Vec::new();
                let aggregations_at = at.key("aggregations");
                for (k, ag) in aggregations.iter().enumerate() {
                    let here = aggregations_at.index(k);
                    if self.new_name(&ag.name, &here.key("name")) && schema.iter().any(|(n, _)| *n == ag.name) {
                        self.error(format!("{here}/name"), format!("duplicate output column `{}`", ag.name));
                    }
                    if let Some((c, t)) = self.aggregation(ag, &info.schema, &here) {
                        schema.push((ag.name.clone(), t));
                        aggs.push(c);
                    }
                }
                if aggs.len() != aggregations.len() {
                    return None;
                }
                // One enum or bool key: groups index an array directly.
                let direct = match keys.as_slice() {
                    [k] => match &info.schema[*k].1 {
                        Type::Enum(l) => Some(l.len()),
                        Type::Bool => Some(2),
                        _ => None,
                    },
                    _ => None,
                };
                let card = if keys.is_empty() { Card::One } else { Card::Many };
                Some(((schema, card), Op::Reduce { input: deps[0], keys, direct, aggs }))
            }
            AggregateOp::Concat { inputs } => {
                if inputs.is_empty() {
                    self.error(format!("{at}/inputs"), "concat needs at least one input");
                    return None;
                }
                for (k, s) in ins.iter().enumerate().skip(1) {
                    if s.schema != ins[0].schema {
                        self.error(
                            format!("{at}/inputs/{k}"),
                            format!("`{}` has columns {}, but `{}` has {}", s.id, describe(&s.schema), ins[0].id, describe(&ins[0].schema)),
                        );
                        return None;
                    }
                }
                Some(((ins[0].schema.clone(), Card::Many), Op::Concat(deps.to_vec())))
            }
            AggregateOp::Merge { on, .. } => {
                if ins.len() < 2 {
                    self.error(format!("{at}/inputs"), "merge needs at least two inputs");
                    return None;
                }
                let mut keys = Vec::new();
                let mut carry = Vec::new();
                let mut schema = Schema::new();
                let on_at = at.key("on");
                for (k, s) in ins.iter().enumerate() {
                    if on.is_empty() && s.card != Card::One {
                        self.error(format!("{at}/inputs/{k}"), format!("`{}` may have many rows; merging without `on` needs one-row inputs", s.id));
                        return None;
                    }
                    let mut kk = Vec::new();
                    for (j, name) in on.iter().enumerate() {
                        let c = self.column(&s.schema, name, &on_at.index(j))?;
                        if k == 0 {
                            schema.push(s.schema[c].clone());
                        } else if s.schema[c].1 != schema[j].1 {
                            self.error(format!("{at}/on/{j}"), format!("key `{name}` has different types in `{}` and `{}`", ins[0].id, s.id));
                            return None;
                        }
                        kk.push(c);
                    }
                    let mut cc = Vec::new();
                    for (c, col) in s.schema.iter().enumerate() {
                        if kk.contains(&c) {
                            continue;
                        }
                        if schema.iter().any(|(n, _)| *n == col.0) {
                            self.error(format!("{at}/inputs/{k}"), format!("column `{}` of `{}` clashes with an earlier input", col.0, s.id));
                            return None;
                        }
                        schema.push(col.clone());
                        cc.push(c);
                    }
                    keys.push(kk);
                    carry.push(cc);
                }
                let card = if on.is_empty() { Card::One } else { Card::Many };
                Some(((schema, card), Op::Merge { inputs: deps.to_vec(), keys, carry }))
            }
        }
    }

    fn aggregation(&mut self, ag: &crate::ir::Aggregation, schema: &Schema, at: &Ptr<'_>) -> Option<(CAgg, Type)> {
        let filter = match &ag.filter {
            Some(f) => Some(self.predicate(f, schema, &at.key("filter"))?),
            None => None,
        };
        if ag.scale.is_some() && ag.func != AggFn::Mean {
            self.error(format!("{at}/scale"), "`scale` applies to mean only");
            return None;
        }
        let (col, ty) = match (ag.func, &ag.column) {
            (AggFn::Count, None) => (None, None),
            (AggFn::Count, Some(_)) => {
                self.error(format!("{at}/column"), "count counts rows and takes no column");
                return None;
            }
            (_, None) => {
                self.error(at, format!("{:?} needs a `column`", ag.func).to_lowercase());
                return None;
            }
            (_, Some(c)) => {
                let p = self.column(schema, c, &at.key("column"))?;
                (Some(p), Some(schema[p].1.clone()))
            }
        };
        let numeric = ty.as_ref().and_then(Type::scale);
        let (t, rescale) = match ag.func {
            AggFn::Count => (Type::Int, 0),
            AggFn::Sum if numeric.is_some() => (ty.clone()?, 0),
            AggFn::Min | AggFn::Max if numeric.is_some() || ty == Some(Type::Date) => (ty.clone()?, 0),
            AggFn::Mean if numeric.is_some() => {
                let from = numeric?;
                let to = ag.scale.unwrap_or(from);
                if to > MAX_SCALE {
                    self.error(format!("{at}/scale"), format!("scale {to} exceeds {MAX_SCALE}"));
                    return None;
                }
                (Type::Decimal(to), to as i8 - from as i8)
            }
            f => {
                let got = ty.map(|t| t.describe()).unwrap_or_default();
                self.error(format!("{at}/column"), format!("{} is not defined for {got}", format!("{f:?}").to_lowercase()));
                return None;
            }
        };
        Some((CAgg { func: ag.func, col, filter, rescale }, t))
    }
}

/// Sets the type of column `name`, appending it if new; returns its index.
fn set_column(schema: &mut Schema, name: &str, t: Type) -> usize {
    match schema.iter().position(|(n, _)| n == name) {
        Some(p) => {
            schema[p].1 = t;
            p
        }
        None => {
            schema.push((name.into(), t));
            schema.len() - 1
        }
    }
}

fn describe(schema: &Schema) -> String {
    let cols: Vec<String> = schema.iter().map(|(n, t)| format!("{n}: {}", t.describe())).collect();
    format!("[{}]", cols.join(", "))
}

pub use crate::pointer::escape as pointer_escape;
