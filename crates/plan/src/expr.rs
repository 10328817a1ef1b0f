//! Expression type checking and evaluation.
//!
//! [`compile`] turns an [`Expr`] into a [`CExpr`] with column references
//! resolved to indices and decimal scales aligned by explicit rescale nodes,
//! so evaluation is a small, branch-light walk over `i64`s.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Display;

use zkaudit_merkle::{Hash, Hasher};

use crate::ir::Expr;
use crate::pointer::Ptr;
use crate::table::{Col, Table};
use crate::value::{self, pow10, Type, MAX_SCALE};

/// Largest integer literal magnitude accepted in a plan (I-JSON safe range,
/// so RFC 8785 serialization of the plan is exact).
pub const MAX_SAFE_INT: i64 = (1 << 53) - 1;

/// A named, typed column list: the static shape of a step's result.
pub type Schema = Vec<(String, Type)>;

/// A type error, at a JSON pointer below the expression's own path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    /// JSON pointer suffix from the expression root, e.g. `/gt/1`.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

/// A run-time failure inside an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A checked arithmetic step left the `i64` range.
    #[error("arithmetic overflow in `{0}`")]
    Overflow(&'static str),
    /// `div` by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A date left the supported range (years -9999 to 9999).
    #[error("date out of range (years -9999 to 9999)")]
    DateOutOfRange,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `≠`
    Ne,
    /// `<`
    Lt,
    /// `≤`
    Le,
    /// `>`
    Gt,
    /// `≥`
    Ge,
}

impl CmpOp {
    /// `x op y`.
    #[inline]
    pub fn test(self, x: i64, y: i64) -> bool {
        match self {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            CmpOp::Lt => x < y,
            CmpOp::Le => x <= y,
            CmpOp::Gt => x > y,
            CmpOp::Ge => x >= y,
        }
    }

    /// `xs[i] op k` (as 0 or 1 for `i64`) for each `i`, appended to `out`, with the
    /// operator matched once rather than per value (in the zkVM a match
    /// inside the loop is a jump-table dispatch on every row).
    fn extend_const<T: From<bool>>(self, xs: &[i64], k: i64, out: &mut Vec<T>) {
        fn each<T: From<bool>>(xs: &[i64], out: &mut Vec<T>, f: impl Fn(i64) -> bool) {
            out.extend(xs.iter().map(|&x| T::from(f(x))));
        }
        match self {
            CmpOp::Eq => each(xs, out, |x| x == k),
            CmpOp::Ne => each(xs, out, |x| x != k),
            CmpOp::Lt => each(xs, out, |x| x < k),
            CmpOp::Le => each(xs, out, |x| x <= k),
            CmpOp::Gt => each(xs, out, |x| x > k),
            CmpOp::Ge => each(xs, out, |x| x >= k),
        }
    }

    /// [`extend_const`](Self::extend_const) in place: each `x` becomes
    /// `x op k` as 0 or 1.
    fn apply_const(self, xs: &mut [i64], k: i64) {
        fn each(xs: &mut [i64], f: impl Fn(i64) -> bool) {
            xs.iter_mut().for_each(|x| *x = i64::from(f(*x)));
        }
        match self {
            CmpOp::Eq => each(xs, |x| x == k),
            CmpOp::Ne => each(xs, |x| x != k),
            CmpOp::Lt => each(xs, |x| x < k),
            CmpOp::Le => each(xs, |x| x <= k),
            CmpOp::Gt => each(xs, |x| x > k),
            CmpOp::Ge => each(xs, |x| x >= k),
        }
    }
}

/// A compiled expression. Numeric nodes evaluate to `i64`; digest nodes
/// (`DigestCol`, `Sha256`, `IfDigest`) to 32 bytes.
#[derive(Debug, Clone)]
pub enum CExpr {
    /// A numeric, bool, date or enum column.
    Col(usize),
    /// A constant.
    Const(i64),
    /// `value * factor`, checked (scale alignment).
    Scale(Box<CExpr>, i64),
    /// Checked addition.
    Add(Box<CExpr>, Box<CExpr>),
    /// Checked addition of days that must stay a valid date.
    AddDays(Box<CExpr>, Box<CExpr>),
    /// Checked subtraction.
    Sub(Box<CExpr>, Box<CExpr>),
    /// Checked subtraction of days that must stay a valid date.
    SubDays(Box<CExpr>, Box<CExpr>),
    /// Checked multiplication.
    Mul(Box<CExpr>, Box<CExpr>),
    /// Checked division of `a * factor` by `b`, truncating.
    Div(Box<CExpr>, Box<CExpr>, i64),
    /// Checked negation.
    Neg(Box<CExpr>),
    /// Checked absolute value.
    Abs(Box<CExpr>),
    /// Numeric comparison.
    Cmp(CmpOp, Box<CExpr>, Box<CExpr>),
    /// Digest equality (`true`) or inequality (`false`).
    DigestEq(bool, Box<CExpr>, Box<CExpr>),
    /// Conjunction, short-circuiting.
    And(Vec<CExpr>),
    /// Disjunction, short-circuiting.
    Or(Vec<CExpr>),
    /// Negation.
    Not(Box<CExpr>),
    /// Numeric conditional.
    If(Box<CExpr>, Box<CExpr>, Box<CExpr>),
    /// Date parts: 0 year, 1 month, 2 day.
    DatePart(u8, Box<CExpr>),
    /// A digest column.
    DigestCol(usize),
    /// Digest conditional.
    IfDigest(Box<CExpr>, Box<CExpr>, Box<CExpr>),
    /// SHA-256 over the encodings of the arguments (bytes per argument).
    Sha256(Vec<(CExpr, u8)>),
}

fn err(at: impl Display, message: impl Into<String>) -> TypeError {
    TypeError { at: at.to_string(), message: message.into() }
}

fn op_name(e: &Expr) -> &'static str {
    match e {
        Expr::Col(_) => "col",
        Expr::Int(_) => "int",
        Expr::Decimal(_) => "decimal",
        Expr::Bool(_) => "bool",
        Expr::Date(_) => "date",
        Expr::Str(_) => "str",
        Expr::Add(_) => "add",
        Expr::Sub(_) => "sub",
        Expr::Mul(_) => "mul",
        Expr::Div(_) => "div",
        Expr::Neg(_) => "neg",
        Expr::Abs(_) => "abs",
        Expr::Eq(_) => "eq",
        Expr::Ne(_) => "ne",
        Expr::Lt(_) => "lt",
        Expr::Le(_) => "le",
        Expr::Gt(_) => "gt",
        Expr::Ge(_) => "ge",
        Expr::And(_) => "and",
        Expr::Or(_) => "or",
        Expr::Not(_) => "not",
        Expr::If(_) => "if",
        Expr::Sha256(_) => "sha256",
        Expr::Year(_) => "year",
        Expr::Month(_) => "month",
        Expr::Day(_) => "day",
    }
}

/// Type-checks `e` against `schema` and compiles it.
pub fn compile(e: &Expr, schema: &Schema) -> Result<(CExpr, Type), TypeError> {
    Compiler { schema }.expr(e, &Ptr::Root)
}

struct Compiler<'a> {
    schema: &'a Schema,
}

impl Compiler<'_> {
    fn expr(&self, e: &Expr, at: &Ptr<'_>) -> Result<(CExpr, Type), TypeError> {
        let name = op_name(e);
        let here = at.key(name);
        match e {
            Expr::Col(c) => {
                let (i, ty) = self.schema.iter().enumerate().find(|(_, (n, _))| n == c).map(|(i, (_, t))| (i, t.clone())).ok_or_else(|| {
                    let names: Vec<&str> = self.schema.iter().map(|(n, _)| n.as_str()).collect();
                    err(here, format!("unknown column `{c}` (columns here: {})", names.join(", ")))
                })?;
                let node = if ty == Type::Digest { CExpr::DigestCol(i) } else { CExpr::Col(i) };
                Ok((node, ty))
            }
            Expr::Int(v) => {
                if v.unsigned_abs() > MAX_SAFE_INT as u64 {
                    return Err(err(here, "integer literal beyond ±(2^53 − 1); I-JSON cannot carry it exactly"));
                }
                Ok((CExpr::Const(*v), Type::Int))
            }
            Expr::Decimal(s) => {
                let scale = value::literal_scale(s);
                if scale > MAX_SCALE {
                    return Err(err(here, format!("decimal literal `{s}` has more than {MAX_SCALE} places")));
                }
                let v = value::parse_decimal(s, scale).ok_or_else(|| err(here, format!("`{s}` is not a decimal literal like `-12.50`")))?;
                Ok((CExpr::Const(v), Type::Decimal(scale)))
            }
            Expr::Bool(b) => Ok((CExpr::Const(i64::from(*b)), Type::Bool)),
            Expr::Date(s) => {
                let d = value::parse_iso_date(s)
                    .filter(|d| value::DATE_RANGE.contains(d))
                    .ok_or_else(|| err(here, format!("`{s}` is not a date like `2000-01-31`")))?;
                Ok((CExpr::Const(d), Type::Date))
            }
            Expr::Str(s) => Err(err(here, format!("the label `{s}` can only be compared with an enum column (eq or ne)"))),
            Expr::Add(a) | Expr::Sub(a) => {
                let [x, y] = self.args::<2>(a, &here)?;
                let (cx, tx) = self.expr(x, &here.index(0))?;
                let (cy, ty) = self.expr(y, &here.index(1))?;
                let add = matches!(e, Expr::Add(_));
                match (&tx, &ty) {
                    (Type::Date, Type::Int) => Ok((if add { CExpr::AddDays(bx(cx), bx(cy)) } else { CExpr::SubDays(bx(cx), bx(cy)) }, Type::Date)),
                    (Type::Date, Type::Date) if !add => Ok((CExpr::Sub(bx(cx), bx(cy)), Type::Int)),
                    _ => {
                        let (cx, cy, t) = self.align(cx, &tx, cy, &ty, &here)?;
                        Ok((if add { CExpr::Add(bx(cx), bx(cy)) } else { CExpr::Sub(bx(cx), bx(cy)) }, t))
                    }
                }
            }
            Expr::Mul(a) => {
                let [x, y] = self.args::<2>(a, &here)?;
                let (cx, tx) = self.numeric(x, &here.index(0))?;
                let (cy, ty) = self.numeric(y, &here.index(1))?;
                let scale = tx.scale().unwrap_or(0) + ty.scale().unwrap_or(0);
                if scale > MAX_SCALE {
                    return Err(err(here, format!("product scale {scale} exceeds {MAX_SCALE}")));
                }
                let t = if tx == Type::Int && ty == Type::Int { Type::Int } else { Type::Decimal(scale) };
                Ok((CExpr::Mul(bx(cx), bx(cy)), t))
            }
            Expr::Div(a) => {
                let [x, y] = self.args::<2>(a, &here)?;
                let (cx, tx) = self.numeric(x, &here.index(0))?;
                let (cy, ty) = self.numeric(y, &here.index(1))?;
                // (a·10^sa / b·10^sb) at scale sa needs a·10^sb / b.
                let factor = pow10(ty.scale().unwrap_or(0));
                Ok((CExpr::Div(bx(cx), bx(cy), factor), tx))
            }
            Expr::Neg(a) | Expr::Abs(a) => {
                let [x] = self.args::<1>(a, &here)?;
                let (cx, tx) = self.numeric(x, &here.index(0))?;
                Ok((if matches!(e, Expr::Neg(_)) { CExpr::Neg(bx(cx)) } else { CExpr::Abs(bx(cx)) }, tx))
            }
            Expr::Eq(a) | Expr::Ne(a) | Expr::Lt(a) | Expr::Le(a) | Expr::Gt(a) | Expr::Ge(a) => {
                let op = match e {
                    Expr::Eq(_) => CmpOp::Eq,
                    Expr::Ne(_) => CmpOp::Ne,
                    Expr::Lt(_) => CmpOp::Lt,
                    Expr::Le(_) => CmpOp::Le,
                    Expr::Gt(_) => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                let [x, y] = self.args::<2>(a, &here)?;
                self.comparison(op, x, y, &here)
            }
            Expr::And(a) | Expr::Or(a) => {
                if a.len() < 2 {
                    return Err(err(here, format!("`{name}` takes two or more arguments, got {}", a.len())));
                }
                let parts = a.iter().enumerate().map(|(i, x)| self.boolean(x, &here.index(i))).collect::<Result<Vec<_>, _>>()?;
                Ok((if matches!(e, Expr::And(_)) { CExpr::And(parts) } else { CExpr::Or(parts) }, Type::Bool))
            }
            Expr::Not(a) => {
                let [x] = self.args::<1>(a, &here)?;
                Ok((CExpr::Not(bx(self.boolean(x, &here.index(0))?)), Type::Bool))
            }
            Expr::If(a) => {
                let [c, x, y] = self.args::<3>(a, &here)?;
                let cc = self.boolean(c, &here.index(0))?;
                let (cx, tx) = self.expr(x, &here.index(1))?;
                let (cy, ty) = self.expr(y, &here.index(2))?;
                if tx == Type::Digest && ty == Type::Digest {
                    return Ok((CExpr::IfDigest(bx(cc), bx(cx), bx(cy)), Type::Digest));
                }
                if tx.scale().is_some() && ty.scale().is_some() {
                    let (cx, cy, t) = self.align(cx, &tx, cy, &ty, &here)?;
                    return Ok((CExpr::If(bx(cc), bx(cx), bx(cy)), t));
                }
                if tx != ty || tx == Type::Digest || ty == Type::Digest {
                    return Err(err(here, format!("`if` branches differ: {} and {}", tx.describe(), ty.describe())));
                }
                Ok((CExpr::If(bx(cc), bx(cx), bx(cy)), tx))
            }
            Expr::Sha256(a) => {
                if a.is_empty() {
                    return Err(err(here, "`sha256` takes one or more arguments"));
                }
                let mut parts = Vec::with_capacity(a.len());
                for (i, x) in a.iter().enumerate() {
                    let (c, t) = self.expr(x, &here.index(i))?;
                    parts.push((c, (t.words() * 4) as u8));
                }
                Ok((CExpr::Sha256(parts), Type::Digest))
            }
            Expr::Year(a) | Expr::Month(a) | Expr::Day(a) => {
                let [x] = self.args::<1>(a, &here)?;
                let (cx, tx) = self.expr(x, &here.index(0))?;
                if tx != Type::Date {
                    return Err(err(here.index(0), format!("`{name}` needs a date, got {}", tx.describe())));
                }
                let part = match e {
                    Expr::Year(_) => 0,
                    Expr::Month(_) => 1,
                    _ => 2,
                };
                Ok((CExpr::DatePart(part, bx(cx)), Type::Int))
            }
        }
    }

    fn args<'e, const N: usize>(&self, a: &'e [Expr], here: &Ptr<'_>) -> Result<[&'e Expr; N], TypeError> {
        let v: Vec<&Expr> = a.iter().collect();
        v.try_into().map_err(|v: Vec<&Expr>| err(here, format!("takes {N} argument{}, got {}", if N == 1 { "" } else { "s" }, v.len())))
    }

    fn numeric(&self, e: &Expr, at: &Ptr<'_>) -> Result<(CExpr, Type), TypeError> {
        let (c, t) = self.expr(e, at)?;
        if t.scale().is_none() {
            return Err(err(at, format!("expected a number (int or decimal), got {}", t.describe())));
        }
        Ok((c, t))
    }

    fn boolean(&self, e: &Expr, at: &Ptr<'_>) -> Result<CExpr, TypeError> {
        let (c, t) = self.expr(e, at)?;
        if t != Type::Bool {
            return Err(err(at, format!("expected a bool, got {}", t.describe())));
        }
        Ok(c)
    }

    /// Brings two numbers to a common scale.
    fn align(&self, cx: CExpr, tx: &Type, cy: CExpr, ty: &Type, here: &Ptr<'_>) -> Result<(CExpr, CExpr, Type), TypeError> {
        let (Some(sx), Some(sy)) = (tx.scale(), ty.scale()) else {
            return Err(err(here, format!("expected numbers, got {} and {}", tx.describe(), ty.describe())));
        };
        let t = if *tx == Type::Int && *ty == Type::Int { Type::Int } else { Type::Decimal(sx.max(sy)) };
        let up = |c: CExpr, from: u8| if from < sx.max(sy) { CExpr::Scale(bx(c), pow10(sx.max(sy) - from)) } else { c };
        Ok((up(cx, sx), up(cy, sy), t))
    }

    fn comparison(&self, op: CmpOp, x: &Expr, y: &Expr, here: &Ptr<'_>) -> Result<(CExpr, Type), TypeError> {
        let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
        // An enum label literal takes its meaning from the other side.
        let label = |lit: &str, other: &Expr, lit_at: &Ptr<'_>, other_at: &Ptr<'_>| -> Result<(CExpr, Type), TypeError> {
            let (co, to) = self.expr(other, other_at)?;
            let Type::Enum(labels) = &to else {
                return Err(err(lit_at, format!("the label `{lit}` is compared with {}, not an enum", to.describe())));
            };
            if !equality {
                return Err(err(here, "enum labels can only be compared with eq or ne"));
            }
            let pos = labels.iter().position(|l| l == lit).ok_or_else(|| err(lit_at, format!("`{lit}` is not one of the labels {}", labels.join(", "))))?;
            Ok((CExpr::Cmp(op, bx(co), bx(CExpr::Const(pos as i64))), Type::Bool))
        };
        match (x, y) {
            (Expr::Str(s), other) => return label(s, other, &here.index(0), &here.index(1)),
            (other, Expr::Str(s)) => return label(s, other, &here.index(1), &here.index(0)),
            _ => {}
        }
        let (cx, tx) = self.expr(x, &here.index(0))?;
        let (cy, ty) = self.expr(y, &here.index(1))?;
        if tx.scale().is_some() && ty.scale().is_some() {
            let (cx, cy, _) = self.align(cx, &tx, cy, &ty, here)?;
            return Ok((CExpr::Cmp(op, bx(cx), bx(cy)), Type::Bool));
        }
        if tx != ty {
            return Err(err(here, format!("cannot compare {} with {}", tx.describe(), ty.describe())));
        }
        match tx {
            Type::Digest if equality => Ok((CExpr::DigestEq(op == CmpOp::Eq, bx(cx), bx(cy)), Type::Bool)),
            Type::Bool | Type::Enum(_) | Type::Digest if !equality => Err(err(here, format!("{} values can only be compared with eq or ne", tx.describe()))),
            _ => Ok((CExpr::Cmp(op, bx(cx), bx(cy)), Type::Bool)),
        }
    }
}

fn bx(c: CExpr) -> Box<CExpr> {
    Box::new(c)
}

impl CExpr {
    /// Evaluates a numeric (or bool, date, enum) expression on row `r`.
    #[inline]
    pub fn num(&self, t: &Table, r: usize, h: &dyn Hasher) -> Result<i64, EvalError> {
        use EvalError::Overflow;
        Ok(match self {
            CExpr::Col(c) => t.num(*c, r),
            CExpr::Const(v) => *v,
            CExpr::Scale(a, f) => a.num(t, r, h)?.checked_mul(*f).ok_or(Overflow("rescale"))?,
            CExpr::Add(a, b) => a.num(t, r, h)?.checked_add(b.num(t, r, h)?).ok_or(Overflow("add"))?,
            CExpr::Sub(a, b) => a.num(t, r, h)?.checked_sub(b.num(t, r, h)?).ok_or(Overflow("sub"))?,
            CExpr::AddDays(a, b) => date(a.num(t, r, h)?.checked_add(b.num(t, r, h)?))?,
            CExpr::SubDays(a, b) => date(a.num(t, r, h)?.checked_sub(b.num(t, r, h)?))?,
            CExpr::Mul(a, b) => a.num(t, r, h)?.checked_mul(b.num(t, r, h)?).ok_or(Overflow("mul"))?,
            CExpr::Div(a, b, f) => {
                let d = b.num(t, r, h)?;
                if d == 0 {
                    return Err(EvalError::DivisionByZero);
                }
                let n = i128::from(a.num(t, r, h)?) * i128::from(*f);
                i64::try_from(n / i128::from(d)).map_err(|_| Overflow("div"))?
            }
            CExpr::Neg(a) => a.num(t, r, h)?.checked_neg().ok_or(Overflow("neg"))?,
            CExpr::Abs(a) => a.num(t, r, h)?.checked_abs().ok_or(Overflow("abs"))?,
            CExpr::Cmp(op, a, b) => {
                let (x, y) = (a.num(t, r, h)?, b.num(t, r, h)?);
                i64::from(op.test(x, y))
            }
            CExpr::DigestEq(eq, a, b) => i64::from((a.digest(t, r, h)? == b.digest(t, r, h)?) == *eq),
            CExpr::And(v) => {
                for x in v {
                    if x.num(t, r, h)? == 0 {
                        return Ok(0);
                    }
                }
                1
            }
            CExpr::Or(v) => {
                for x in v {
                    if x.num(t, r, h)? != 0 {
                        return Ok(1);
                    }
                }
                0
            }
            CExpr::Not(a) => i64::from(a.num(t, r, h)? == 0),
            CExpr::If(c, a, b) => {
                if c.num(t, r, h)? != 0 {
                    a.num(t, r, h)?
                } else {
                    b.num(t, r, h)?
                }
            }
            CExpr::DatePart(p, a) => {
                let (y, m, d) = value::civil_from_days(a.num(t, r, h)?);
                match p {
                    0 => y,
                    1 => i64::from(m),
                    _ => i64::from(d),
                }
            }
            CExpr::DigestCol(_) | CExpr::IfDigest(..) | CExpr::Sha256(_) => {
                unreachable!("digest expression evaluated as a number; the type checker forbids this")
            }
        })
    }

    /// Evaluates a numeric expression on every row of `t`, in row order:
    /// the same values and the same first error (with its row) as
    /// [`num`](Self::num) row by row. An expression that cannot fail
    /// (columns, constants, comparisons, logic, conditionals and date
    /// parts over them) is evaluated a whole column at a time, node by node,
    /// which costs a few cycles per row in the zkVM instead of a tree walk
    /// per row; anything else goes row by row, keeping the short-circuits
    /// that decide which rows' errors count.
    ///
    /// # Errors
    /// The first row whose evaluation fails, and why.
    pub fn num_rows(&self, t: &Table, h: &dyn Hasher) -> Result<Vec<i64>, (usize, EvalError)> {
        if self.infallible() {
            let mut out = Vec::with_capacity(t.rows);
            self.batch(t, &mut out);
            Ok(out)
        } else {
            (0..t.rows).map(|r| self.num(t, r, h).map_err(|e| (r, e))).collect()
        }
    }

    /// [`num_rows`](Self::num_rows) of a predicate as whether each row's
    /// value is not 0: one byte a row instead of eight, for the masks of
    /// filters (in the zkVM every byte written is paged in and out again).
    /// A column compared with a constant is written straight as bytes.
    ///
    /// # Errors
    /// As [`num_rows`](Self::num_rows).
    pub fn mask_rows(&self, t: &Table, h: &dyn Hasher) -> Result<Vec<bool>, (usize, EvalError)> {
        if let CExpr::Cmp(op, a, b) = self {
            if let (Some(v), CExpr::Const(k)) = (a.column(t), &**b) {
                let mut out = Vec::with_capacity(t.rows);
                op.extend_const(v, *k, &mut out);
                return Ok(out);
            }
        }
        Ok(self.num_rows(t, h)?.into_iter().map(|x| x != 0).collect())
    }

    /// Whether evaluating this numeric expression can never fail.
    pub(crate) fn infallible(&self) -> bool {
        match self {
            CExpr::Col(_) | CExpr::Const(_) => true,
            CExpr::Cmp(_, a, b) => a.infallible() && b.infallible(),
            CExpr::And(v) | CExpr::Or(v) => v.iter().all(CExpr::infallible),
            CExpr::Not(a) | CExpr::DatePart(_, a) => a.infallible(),
            CExpr::If(c, a, b) => c.infallible() && a.infallible() && b.infallible(),
            _ => false,
        }
    }

    /// The numeric column this expression reads as it stands, if it is one.
    fn column<'t>(&self, t: &'t Table) -> Option<&'t [i64]> {
        match self {
            CExpr::Col(c) => match &t.cols[*c] {
                Col::Num(v) => Some(v),
                Col::Digest(_) => None,
            },
            _ => None,
        }
    }

    /// Column-at-a-time evaluation of an [`infallible`](Self::infallible)
    /// expression into `out` (empty on entry, `t.rows` values on return).
    /// With no errors possible, evaluating every operand of `and`, `or` and
    /// `if` on every row gives what the short-circuits would.
    fn batch(&self, t: &Table, out: &mut Vec<i64>) {
        let other = |e: &CExpr| {
            let mut v = Vec::with_capacity(t.rows);
            e.batch(t, &mut v);
            v
        };
        match self {
            CExpr::Col(c) => match &t.cols[*c] {
                Col::Num(v) => out.extend_from_slice(v),
                Col::Digest(_) => unreachable!("type checker resolved a numeric column"),
            },
            CExpr::Const(k) => out.resize(t.rows, *k),
            // A column compared with a constant, the usual predicate, is
            // read in place rather than copied first.
            CExpr::Cmp(op, a, b) => match (a.column(t), &**b) {
                (Some(v), CExpr::Const(k)) => op.extend_const(v, *k, out),
                (None, CExpr::Const(k)) => {
                    a.batch(t, out);
                    op.apply_const(out, *k);
                }
                _ => {
                    a.batch(t, out);
                    out.iter_mut().zip(other(b)).for_each(|(x, y)| *x = i64::from(op.test(*x, y)));
                }
            },
            CExpr::And(v) | CExpr::Or(v) => {
                let and = matches!(self, CExpr::And(_));
                out.resize(t.rows, i64::from(and));
                // One buffer for every operand's values.
                let mut operand = Vec::with_capacity(t.rows);
                for e in v {
                    operand.clear();
                    e.batch(t, &mut operand);
                    for (x, &y) in out.iter_mut().zip(&operand) {
                        *x = i64::from(if and { *x != 0 && y != 0 } else { *x != 0 || y != 0 });
                    }
                }
            }
            CExpr::Not(a) => {
                a.batch(t, out);
                out.iter_mut().for_each(|x| *x = i64::from(*x == 0));
            }
            CExpr::If(c, a, b) => {
                c.batch(t, out);
                for ((x, y), z) in out.iter_mut().zip(other(a)).zip(other(b)) {
                    *x = if *x != 0 { y } else { z };
                }
            }
            CExpr::DatePart(p, a) => {
                let part = |days: i64| {
                    let (y, m, d) = value::civil_from_days(days);
                    match p {
                        0 => y,
                        1 => i64::from(m),
                        _ => i64::from(d),
                    }
                };
                match a.column(t) {
                    Some(v) => out.extend(v.iter().map(|&x| part(x))),
                    None => {
                        a.batch(t, out);
                        out.iter_mut().for_each(|x| *x = part(*x));
                    }
                }
            }
            _ => unreachable!("batch evaluation of a fallible or digest expression"),
        }
    }

    /// Evaluates a digest expression on row `r`.
    pub fn digest(&self, t: &Table, r: usize, h: &dyn Hasher) -> Result<Hash, EvalError> {
        Ok(match self {
            CExpr::DigestCol(c) => t.digest(*c, r),
            CExpr::IfDigest(c, a, b) => {
                if c.num(t, r, h)? != 0 {
                    a.digest(t, r, h)?
                } else {
                    b.digest(t, r, h)?
                }
            }
            CExpr::Sha256(parts) => {
                let mut buf = Vec::with_capacity(parts.iter().map(|(_, n)| usize::from(*n)).sum());
                for (p, n) in parts {
                    match n {
                        32 => buf.extend_from_slice(&p.digest(t, r, h)?),
                        8 => buf.extend_from_slice(&p.num(t, r, h)?.to_le_bytes()),
                        _ => buf.extend_from_slice(&(p.num(t, r, h)? as u32).to_le_bytes()),
                    }
                }
                h.sha256(&buf)
            }
            _ => unreachable!("numeric expression evaluated as a digest; the type checker forbids this"),
        })
    }

    /// Evaluates into column `out` of a table being built.
    pub fn eval_into(&self, is_digest: bool, t: &Table, r: usize, h: &dyn Hasher, out: &mut Col) -> Result<(), EvalError> {
        match out {
            Col::Num(v) if !is_digest => v.push(self.num(t, r, h)?),
            Col::Digest(v) if is_digest => v.push(self.digest(t, r, h)?),
            _ => unreachable!("column kind matches the expression type"),
        }
        Ok(())
    }
}

fn date(v: Option<i64>) -> Result<i64, EvalError> {
    v.filter(|d| value::DATE_RANGE.contains(d)).ok_or(EvalError::DateOutOfRange)
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::CmpOp;

    /// The operator matched once per column gives what [`CmpOp::test`]
    /// gives per value.
    #[test]
    fn comparing_a_column_with_a_constant_is_the_per_value_test() {
        let xs = [i64::MIN, -1, 0, 1, 7, 1 << 40, i64::MAX];
        for op in [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge] {
            for &k in &xs {
                let want: Vec<i64> = xs.iter().map(|&x| i64::from(op.test(x, k))).collect();
                let mut out = vec![9];
                op.extend_const(&xs, k, &mut out);
                assert_eq!(out[1..], want[..], "{op:?} {k}");
                let mut mask: Vec<bool> = Vec::new();
                op.extend_const(&xs, k, &mut mask);
                assert_eq!(mask, want.iter().map(|&x| x == 1).collect::<Vec<_>>(), "{op:?} {k}");
                let mut in_place = xs.to_vec();
                op.apply_const(&mut in_place, k);
                assert_eq!(in_place, want, "{op:?} {k}");
            }
        }
    }
}
