//! The deterministic interpreter.
//!
//! [`execute`] runs a [`Program`] over decoded input tables. It is the same
//! code natively (`zkaudit run`) and in the RISC Zero guest (`zkaudit prove`),
//! integer-only and with every arithmetic step checked, so both produce
//! byte-identical output.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use zkaudit_merkle::{Hash, Hasher};

use crate::expr::{CExpr, EvalError};
use crate::ir::AggFn;
use crate::output;
use crate::table::{Col, Table};
use crate::validate::{CAgg, CAssign, Op, Program};
use crate::value::pow10;

/// A run-time failure, naming the step (and row) where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// An expression failed on a row.
    #[error("step `{step}`, row {row}: {source}")]
    Eval {
        /// Step ID.
        step: String,
        /// Row index within the step's input (0-based).
        row: usize,
        /// What failed.
        source: EvalError,
    },
    /// An aggregate overflowed or had no rows to work on.
    #[error("step `{step}`, aggregation `{column}`: {message}")]
    Aggregate {
        /// Step ID.
        step: String,
        /// Output column of the aggregation.
        column: String,
        /// What failed.
        message: &'static str,
    },
    /// A merge input had two rows with the same key.
    #[error("step `{step}`: input `{input}` has more than one row for a key")]
    DuplicateKey {
        /// Step ID.
        step: String,
        /// The input with the duplicate.
        input: String,
    },
    /// Table data outgrew `limits.maxMemoryBytes`.
    #[error("step `{step}` brings table data to {used} bytes, over maxMemoryBytes {limit}")]
    Memory {
        /// Step ID.
        step: String,
        /// Bytes in use.
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// The output outgrew `limits.maxOutputBytes`.
    #[error("the output is {bytes} bytes, over maxOutputBytes {limit}")]
    OutputTooLarge {
        /// Canonical output size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// A step ran before a step it reads had a result: a scheduling bug,
    /// never a property of the data. Nothing is computed over a stand-in.
    #[error("internal error: step `{step}` ran before its input `{input}` had a result")]
    Unscheduled {
        /// The step that ran.
        step: String,
        /// The step (or data input) it reads.
        input: String,
    },
    /// The number of input tables does not match the plan.
    #[error("the plan has {expected} data inputs, {got} were given")]
    InputCount {
        /// Inputs in the plan.
        expected: usize,
        /// Tables given.
        got: usize,
    },
}

/// The result of an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The full output, canonical JSON (RFC 8785).
    pub output: Vec<u8>,
    /// The public columns of the output, canonical JSON; this is what the
    /// journal carries.
    pub public: Vec<u8>,
    /// `SHA-256(output)`.
    pub output_hash: Hash,
}

/// The result of step `i`, which step `s` reads.
fn result(p: &Program, results: &[Option<Rc<Table>>], s: usize, i: usize) -> Result<Rc<Table>, ExecError> {
    results[i].clone().ok_or_else(|| ExecError::Unscheduled { step: p.steps[s].id.clone(), input: p.steps[i].id.clone() })
}

/// Stands for the output in [`readers`]: it reads the output step's result
/// after every step has run.
const OUTPUT: usize = usize::MAX;

/// The steps of `p.run` that read each step's result, once per read (both
/// arms of a branch counted), and [`OUTPUT`] for the output step.
fn readers(p: &Program) -> Vec<Vec<usize>> {
    let mut by: Vec<Vec<usize>> = vec![Vec::new(); p.steps.len()];
    for &s in &p.run {
        let mut read = |i: usize| by[i].push(s);
        match &p.ops[s] {
            Op::Input(_) => {}
            Op::Alias(i)
            | Op::Compute { input: i, .. }
            | Op::Select { input: i, .. }
            | Op::Filter { input: i, .. }
            | Op::Reduce { input: i, .. }
            | Op::Loop { input: i, .. } => read(*i),
            Op::Concat(ins) | Op::Merge { inputs: ins, .. } => ins.iter().for_each(|&i| read(i)),
            Op::Branch { input, then, otherwise, .. } => [input, then, otherwise].into_iter().for_each(|&i| read(i)),
        }
    }
    by[p.output].push(OUTPUT);
    by
}

/// Whether filter step `s` can leave its rows in place for the one step
/// that reads it: a reduce whose aggregation filters cannot fail (so that
/// evaluating them on the rows the filter drops changes nothing).
fn feeds_a_reduce_alone(p: &Program, readers: &[Vec<usize>], s: usize) -> bool {
    match readers[s].as_slice() {
        &[r] if r != OUTPUT => matches!(&p.ops[r], Op::Reduce { aggs, .. } if aggs.iter().all(|a| a.filter.as_ref().is_none_or(CExpr::infallible))),
        _ => false,
    }
}

/// Adds `bytes` of table data to `used`, within `limits.maxMemoryBytes`.
fn charge(p: &Program, step: &str, used: &mut u64, bytes: u64) -> Result<(), ExecError> {
    *used += bytes;
    if *used > p.limits.max_memory_bytes {
        return Err(ExecError::Memory { step: step.into(), used: *used, limit: p.limits.max_memory_bytes });
    }
    Ok(())
}

/// Executes `p` over `inputs` (one table per data input, in plan order).
///
/// # Errors
/// [`ExecError`] on overflow, division by zero, limits, empty aggregates and
/// duplicate merge keys. Nothing is partially returned.
pub fn execute(p: &Program, inputs: Vec<Table>, h: &dyn Hasher) -> Result<Outcome, ExecError> {
    if inputs.len() != p.inputs.len() {
        return Err(ExecError::InputCount { expected: p.inputs.len(), got: inputs.len() });
    }
    let mut inputs: Vec<Option<Table>> = inputs.into_iter().map(Some).collect();
    let mut results: Vec<Option<Rc<Table>>> = vec![None; p.steps.len()];
    let readers = readers(p);
    // Filters that feed one reduce: their input and row mask, instead of a
    // gathered copy of the rows they keep.
    let mut in_place: Vec<Option<(Rc<Table>, Vec<bool>)>> = vec![None; p.steps.len()];
    let mut used: u64 = 0;
    for &s in &p.run {
        let step = &p.steps[s].id;
        // A compute step that is the only reader of its input takes the
        // table instead of copying every column.
        let owned = match &p.ops[s] {
            Op::Compute { input, .. } if readers[*input].len() == 1 => results[*input].take(),
            _ => None,
        };
        let get = |i: usize| -> Result<Rc<Table>, ExecError> { result(p, &results, s, i) };
        let eval = |row: usize| move |source| ExecError::Eval { step: step.clone(), row, source };
        let table: Rc<Table> = match &p.ops[s] {
            Op::Input(n) => Rc::new(inputs[*n].take().ok_or_else(|| ExecError::Unscheduled { step: step.clone(), input: format!("data input {n}") })?),
            Op::Alias(i) => {
                results[s] = Some(get(*i)?);
                continue;
            }
            Op::Compute { input, assigns } => {
                let t = match owned {
                    Some(t) => Rc::try_unwrap(t).unwrap_or_else(|shared| (*shared).clone()),
                    None => (*get(*input)?).clone(),
                };
                Rc::new(compute(t, assigns, h).map_err(|(r, e)| eval(r)(e))?)
            }
            Op::Select { input, cols } => {
                let t = get(*input)?;
                Rc::new(Table { rows: t.rows, cols: cols.iter().map(|&c| t.cols[c].clone()).collect() })
            }
            Op::Filter { input, pred } => {
                let t = get(*input)?;
                let mask = pred.mask_rows(&t, h).map_err(|(r, e)| eval(r)(e))?;
                if feeds_a_reduce_alone(p, &readers, s) {
                    // Charged as the gathered table would be.
                    let kept = mask.iter().filter(|m| **m).count() as u64;
                    charge(p, step, &mut used, t.cols.iter().map(|c| kept * c.cell_bytes()).sum())?;
                    in_place[s] = Some((t, mask));
                    continue;
                }
                Rc::new(gather(&t, &mask))
            }
            Op::Reduce { input, keys, direct, aggs } => Rc::new(match in_place[*input].take() {
                Some((t, keep)) => reduce(p, s, &t, Some(&keep), keys, *direct, aggs, h)?,
                None => reduce(p, s, &*get(*input)?, None, keys, *direct, aggs, h)?,
            }),
            Op::Concat(ins) => {
                let parts: Vec<Rc<Table>> = ins.iter().map(|&i| get(i)).collect::<Result<_, _>>()?;
                let mut t = Table { rows: 0, cols: parts[0].cols.iter().map(|c| empty_like(c, 0)).collect() };
                for part in &parts {
                    for (dst, src) in t.cols.iter_mut().zip(&part.cols) {
                        append(dst, src);
                    }
                    t.rows += part.rows;
                }
                Rc::new(t)
            }
            Op::Merge { inputs: ins, keys, carry } => Rc::new(merge(p, s, ins, keys, carry, &results)?),
            Op::Branch { input, cond, then, otherwise } => {
                let c = cond.num(&*get(*input)?, 0, h).map_err(eval(0))?;
                results[s] = Some(get(if c != 0 { *then } else { *otherwise })?);
                continue;
            }
            Op::Loop { input, max, until, update } => {
                let mut state = (*get(*input)?).clone();
                for _ in 0..*max {
                    if let Some(u) = until {
                        if u.num(&state, 0, h).map_err(eval(0))? != 0 {
                            break;
                        }
                    }
                    state = compute(state, update, h).map_err(|(r, e)| eval(r)(e))?;
                }
                Rc::new(state)
            }
        };
        charge(p, step, &mut used, table.bytes())?;
        results[s] = Some(table);
    }

    let t = result(p, &results, p.output, p.output)?;
    let info = &p.steps[p.output];
    let mut all: Vec<usize> = (0..info.schema.len()).collect();
    all.sort_by(|a, b| info.schema[*a].0.cmp(&info.schema[*b].0));
    let full = output::render(&t, &info.schema, info.card, &all);
    let public = if all == p.public { full.clone() } else { output::render(&t, &info.schema, info.card, &p.public) };
    let limit = p.limits.max_output_bytes;
    if full.len() as u64 > limit {
        return Err(ExecError::OutputTooLarge { bytes: full.len() as u64, limit });
    }
    let output_hash = h.sha256(&full);
    Ok(Outcome { output: full, public, output_hash })
}

fn empty_like(c: &Col, cap: usize) -> Col {
    match c {
        Col::Num(_) => Col::Num(Vec::with_capacity(cap)),
        Col::Digest(_) => Col::Digest(Vec::with_capacity(cap)),
    }
}

fn append(dst: &mut Col, src: &Col) {
    match (dst, src) {
        (Col::Num(a), Col::Num(b)) => a.extend_from_slice(b),
        (Col::Digest(a), Col::Digest(b)) => a.extend_from_slice(b),
        _ => unreachable!("concat inputs have equal schemas"),
    }
}

/// The rows of `t` whose `mask` value is true, in order.
fn gather(t: &Table, mask: &[bool]) -> Table {
    fn keep<T: Copy>(v: &[T], mask: &[bool], rows: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(rows);
        out.extend(v.iter().zip(mask).filter(|(_, m)| **m).map(|(x, _)| *x));
        out
    }
    let rows = mask.iter().filter(|m| **m).count();
    let cols = t
        .cols
        .iter()
        .map(|c| match c {
            Col::Num(v) => Col::Num(keep(v, mask, rows)),
            Col::Digest(v) => Col::Digest(keep(v, mask, rows)),
        })
        .collect();
    Table { rows, cols }
}

/// Applies assignments in order to `w`; on failure returns the row and the
/// error.
fn compute(mut w: Table, assigns: &[CAssign], h: &dyn Hasher) -> Result<Table, (usize, EvalError)> {
    for (idx, e, digest) in assigns {
        let col = if *digest {
            let mut col = Col::Digest(Vec::with_capacity(w.rows));
            for r in 0..w.rows {
                e.eval_into(true, &w, r, h, &mut col).map_err(|err| (r, err))?;
            }
            col
        } else {
            Col::Num(e.num_rows(&w, h)?)
        };
        if *idx == w.cols.len() {
            w.cols.push(col);
        } else {
            w.cols[*idx] = col;
        }
    }
    Ok(w)
}

/// Pushes the grouping key of row `r` into `key` (digests as 4 order-keeping words).
fn key_of(t: &Table, cols: &[usize], r: usize, key: &mut Vec<i64>) {
    key.clear();
    for &c in cols {
        match &t.cols[c] {
            Col::Num(v) => key.push(v[r]),
            Col::Digest(v) => {
                for chunk in v[r].chunks_exact(8) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(chunk);
                    key.push((u64::from_be_bytes(b) ^ (1 << 63)) as i64);
                }
            }
        }
    }
}

/// Whether rows `a` and `b` of `t` have equal values in every column of
/// `cols` (so equal grouping keys).
fn same_key(t: &Table, cols: &[usize], a: usize, b: usize) -> bool {
    cols.iter().all(|&c| match &t.cols[c] {
        Col::Num(v) => v[a] == v[b],
        Col::Digest(v) => v[a] == v[b],
    })
}

/// One aggregation's running state for one group: 16 bytes, so that a
/// group's state is found with one shift.
///
/// The count is a `usize` (no group has more rows than memory holds) and a
/// sum an `i64` that spills into a separate `i128` only when it would
/// overflow: in the zkVM, a 32-bit machine, a 64-bit count costs twice the
/// instructions of a word and a 128-bit add four times.
#[derive(Clone, Copy)]
struct Acc {
    /// The sum so far less what has spilled (sum, mean), or the minimum or
    /// maximum (min, max); unused by count.
    value: i64,
    count: usize,
}

impl Acc {
    const fn new(func: AggFn) -> Acc {
        let value = match func {
            AggFn::Min => i64::MAX,
            AggFn::Max => i64::MIN,
            AggFn::Count | AggFn::Sum | AggFn::Mean => 0,
        };
        Acc { value, count: 0 }
    }
}

/// Calls `f(group, row)` for each row of `group` that is not [`DROPPED`]
/// and, given a `mask`, whose mask value is true; with the mask's presence
/// matched once, not per row.
#[inline(always)]
fn each_row(group: &[u32], mask: Option<&[bool]>, mut f: impl FnMut(usize, usize)) {
    match mask {
        None => group.iter().enumerate().for_each(|(r, &g)| {
            if g != DROPPED {
                f(g as usize, r);
            }
        }),
        Some(m) => group.iter().zip(m).enumerate().for_each(|(r, (&g, &k))| {
            if g != DROPPED && k {
                f(g as usize, r);
            }
        }),
    }
}

/// Group of a row that `keep` drops.
const DROPPED: u32 = u32::MAX;

/// Aggregates the rows of `t` (those whose `keep` value is true, when
/// given) by `keys`.
#[allow(clippy::too_many_arguments)]
fn reduce(
    p: &Program,
    s: usize,
    t: &Table,
    keep: Option<&[bool]>,
    keys: &[usize],
    direct: Option<usize>,
    aggs: &[CAgg],
    h: &dyn Hasher,
) -> Result<Table, ExecError> {
    let kept = |r: usize| keep.is_none_or(|k| k[r]);
    let step = &p.steps[s];
    let n = aggs.len();
    // Per group: the first row (for key values) and one accumulator per aggregation.
    let mut first: Vec<usize> = Vec::new();
    let mut order: Vec<usize> = Vec::new();
    let mut slots: Vec<u32> = vec![u32::MAX; direct.unwrap_or(0)];
    let mut map: BTreeMap<Vec<i64>, usize> = BTreeMap::new();
    let mut key = Vec::new();
    // Each aggregation's filter over all rows; of several failing filters,
    // the error a row-by-row run meets first (lowest row, then aggregation).
    let mut masks: Vec<Option<Vec<bool>>> = Vec::with_capacity(n);
    let mut failed: Option<(usize, crate::expr::EvalError)> = None;
    for ag in aggs {
        let mask = ag.filter.as_ref().map(|f| f.mask_rows(t, h)).transpose().unwrap_or_else(|(r, e)| {
            if failed.is_none_or(|(r0, _)| r < r0) {
                failed = Some((r, e));
            }
            None
        });
        masks.push(mask);
    }
    if let Some((row, source)) = failed {
        return Err(ExecError::Eval { step: step.id.clone(), row, source });
    }
    // The group of every row, groups numbered in order of first appearance.
    let mut group: Vec<u32> = Vec::with_capacity(t.rows);
    if keys.is_empty() {
        first.push(0);
        order.push(0);
        group.extend((0..t.rows).map(|r| if kept(r) { 0 } else { DROPPED }));
    } else if direct.is_some() {
        let Col::Num(k) = &t.cols[keys[0]] else { unreachable!("direct keys are enum columns") };
        let mut assign = |r: usize, k: i64| {
            let slot = &mut slots[k as usize];
            if *slot == u32::MAX {
                *slot = first.len() as u32;
                first.push(r);
            }
            *slot
        };
        // `keep`'s presence matched once, and the groups written by one
        // `extend`, not a checked push per row.
        match keep {
            None => group.extend(k.iter().enumerate().map(|(r, &k)| assign(r, k))),
            Some(keep) => group.extend(k.iter().zip(keep).enumerate().map(|(r, (&k, &kept))| if kept { assign(r, k) } else { DROPPED })),
        }
    } else {
        // The last row kept and its group.
        let mut prev: Option<(usize, u32)> = None;
        for r in 0..t.rows {
            if !kept(r) {
                group.push(DROPPED);
                continue;
            }
            // A row with the key of the row kept before it (sorted or
            // clustered data, the common case) is in its group: no key
            // built, no lookup.
            let g = match prev {
                Some((q, g)) if same_key(t, keys, q, r) => g,
                _ => {
                    key_of(t, keys, r, &mut key);
                    let g = match map.get(key.as_slice()) {
                        Some(&g) => g,
                        None => {
                            map.insert(key.clone(), first.len());
                            first.push(r);
                            first.len() - 1
                        }
                    };
                    g as u32
                }
            };
            prev = Some((r, g));
            group.push(g);
        }
    }
    // One aggregation at a time over its column: `accs[j * groups + g]`.
    let groups = first.len();
    let mut accs: Vec<Acc> = Vec::with_capacity(groups * n);
    for ag in aggs {
        accs.extend(core::iter::repeat_n(Acc::new(ag.func), groups));
    }
    // What each sum has spilled out of its 64-bit value.
    let mut spilled: Vec<i128> = vec![0; groups * n];
    for (j, (ag, mask)) in aggs.iter().zip(&masks).enumerate() {
        let acc = &mut accs[j * groups..(j + 1) * groups];
        let spill = &mut spilled[j * groups..(j + 1) * groups];
        let col = ag.col.map(|c| match &t.cols[c] {
            Col::Num(v) => &v[..group.len()],
            Col::Digest(_) => unreachable!("type checker resolved a numeric column"),
        });
        // Only what the function reads is kept up to date (the count
        // always: min, max and mean of no rows are errors).
        let mask = mask.as_deref();
        match (ag.func, col) {
            (AggFn::Count, _) => each_row(&group, mask, |g, _| acc[g].count += 1),
            (_, None) => unreachable!("the type checker gives every aggregation but count a column"),
            (AggFn::Sum | AggFn::Mean, Some(v)) => each_row(&group, mask, |g, r| {
                let a = &mut acc[g];
                a.count += 1;
                match a.value.checked_add(v[r]) {
                    Some(sum) => a.value = sum,
                    None => {
                        spill[g] += i128::from(a.value) + i128::from(v[r]);
                        a.value = 0;
                    }
                }
            }),
            (AggFn::Min, Some(v)) => each_row(&group, mask, |g, r| {
                let a = &mut acc[g];
                a.count += 1;
                a.value = a.value.min(v[r]);
            }),
            (AggFn::Max, Some(v)) => each_row(&group, mask, |g, r| {
                let a = &mut acc[g];
                a.count += 1;
                a.value = a.value.max(v[r]);
            }),
        }
    }
    if !keys.is_empty() {
        order = if direct.is_some() { slots.iter().filter(|&&g| g != u32::MAX).map(|&g| g as usize).collect() } else { map.values().copied().collect() };
    }

    let mut out = Table { rows: order.len(), cols: Vec::with_capacity(keys.len() + n) };
    for &k in keys {
        let mut col = empty_like(&t.cols[k], order.len());
        for &g in &order {
            col.push_from(&t.cols[k], first[g]);
        }
        out.cols.push(col);
    }
    for (j, ag) in aggs.iter().enumerate() {
        let name = &step.schema[keys.len() + j].0;
        let fail = |message| ExecError::Aggregate { step: step.id.clone(), column: name.clone(), message };
        let mut col = Vec::with_capacity(order.len());
        for &g in &order {
            let a = accs[j * groups + g];
            let total = spilled[j * groups + g] + i128::from(a.value);
            let count = i64::try_from(a.count).map_err(|_| fail("count overflows a 64-bit value"))?;
            col.push(match ag.func {
                AggFn::Count => count,
                AggFn::Sum => i64::try_from(total).map_err(|_| fail("sum overflows a 64-bit value"))?,
                _ if a.count == 0 => return Err(fail("no rows to aggregate")),
                AggFn::Min | AggFn::Max => a.value,
                AggFn::Mean => mean(total, count, ag.rescale).ok_or_else(|| fail("mean overflows a 64-bit value"))?,
            });
        }
        out.cols.push(Col::Num(col));
    }
    Ok(out)
}

/// `sum / count` moved by `rescale` decimal places, rounded half away from zero.
fn mean(sum: i128, count: i64, rescale: i8) -> Option<i64> {
    let (num, den) = if rescale >= 0 {
        (sum.checked_mul(i128::from(pow10(rescale as u8)))?, i128::from(count))
    } else {
        (sum, i128::from(count).checked_mul(i128::from(pow10(rescale.unsigned_abs())))?)
    };
    let (q, r) = (num / den, num % den);
    let q = if 2 * r.abs() >= den { q + num.signum() } else { q };
    i64::try_from(q).ok()
}

fn merge(p: &Program, s: usize, ins: &[usize], keys: &[Vec<usize>], carry: &[Vec<usize>], results: &[Option<Rc<Table>>]) -> Result<Table, ExecError> {
    let tables: Vec<Rc<Table>> = ins.iter().map(|&i| result(p, results, s, i)).collect::<Result<_, _>>()?;
    // Key → row for every input but the first.
    let mut index: Vec<BTreeMap<Vec<i64>, usize>> = Vec::new();
    let mut key = Vec::new();
    for (k, t) in tables.iter().enumerate().skip(1) {
        let mut m = BTreeMap::new();
        for r in 0..t.rows {
            key_of(t, &keys[k], r, &mut key);
            if m.insert(key.clone(), r).is_some() {
                return Err(ExecError::DuplicateKey { step: p.steps[s].id.clone(), input: p.steps[ins[k]].id.clone() });
            }
        }
        index.push(m);
    }
    let base = &tables[0];
    let mut matched: Vec<Vec<usize>> = Vec::new(); // per output row: the row of each input
    for r in 0..base.rows {
        key_of(base, &keys[0], r, &mut key);
        let mut rows = vec![r];
        for m in &index {
            match m.get(key.as_slice()) {
                Some(&x) => rows.push(x),
                None => break,
            }
        }
        if rows.len() == tables.len() {
            matched.push(rows);
        }
    }
    let mut out = Table { rows: matched.len(), cols: Vec::new() };
    for &c in &keys[0] {
        let mut col = empty_like(&base.cols[c], matched.len());
        for m in &matched {
            col.push_from(&base.cols[c], m[0]);
        }
        out.cols.push(col);
    }
    for (k, t) in tables.iter().enumerate() {
        for &c in &carry[k] {
            let mut col = empty_like(&t.cols[c], matched.len());
            for m in &matched {
                col.push_from(&t.cols[c], m[k]);
            }
            out.cols.push(col);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::mean;

    #[test]
    fn mean_rounds_half_away_from_zero() {
        assert_eq!(mean(5, 2, 0), Some(3));
        assert_eq!(mean(-5, 2, 0), Some(-3));
        assert_eq!(mean(4, 3, 0), Some(1));
        assert_eq!(mean(4, 3, 2), Some(133));
        assert_eq!(mean(12345, 1, -2), Some(123));
        assert_eq!(mean(12350, 1, -2), Some(124));
        assert_eq!(mean(i128::from(i64::MAX) * 4, 2, 0), None);
    }
}
