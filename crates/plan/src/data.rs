//! Data files for `data-input` steps: CSV with a header row, or JSON Lines.
//!
//! Cells are typed by the input's schema: decimals must fit the declared scale
//! exactly (no rounding), dates follow the column's strftime `format`
//! (`%b %d %Y` reads `Jan 1 2000`, `%Y/%m/%d` reads `2012/01/01`), enum cells
//! must be one of the declared labels. The first bad cell is reported with
//! file, line, column and field.

use std::fmt;
use std::path::Path;

use chrono::Datelike;

use crate::records;
use crate::table::{Col, Table};
use crate::validate::InputSpec;
use crate::value::{self, Type};

/// A data file that could not be read as the schema says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// The file as named by the user.
    pub file: String,
    /// 1-based line (0 when the file could not be read at all).
    pub line: u64,
    /// 1-based column: the CSV field number, or 1 for JSON Lines.
    pub column: u64,
    /// The schema column concerned, if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for DataError {}

/// How a data file is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row naming the schema's columns (any order).
    Csv,
    /// JSON Lines: one object per line, keyed by the schema's column names.
    JsonLines,
}

impl Format {
    /// The format a file name implies: `.csv` is CSV, `.jsonl`/`.ndjson` JSON
    /// Lines; any other name is sniffed from `text` (a leading `{` means JSON
    /// Lines).
    pub fn for_name(name: &str, text: &[u8]) -> Format {
        match name.rsplit_once('.').map(|(_, e)| e) {
            Some("csv") => Format::Csv,
            Some("jsonl" | "ndjson") => Format::JsonLines,
            _ if text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') => Format::JsonLines,
            _ => Format::Csv,
        }
    }
}

/// Reads `path` as the records of `spec`, in the [`Format`] its name implies.
///
/// # Errors
/// [`DataError`] for the first problem found (line 0 if the file cannot be read).
pub fn load(spec: &InputSpec, path: &Path) -> Result<Table, DataError> {
    let file = path.display().to_string();
    let text = std::fs::read(path).map_err(|e| DataError { file: file.clone(), line: 0, column: 0, field: None, message: format!("cannot read: {e}") })?;
    parse(spec, &file, &text, Format::for_name(&file, &text))
}

/// Parses `text` as the records of `spec`; `source` names it in errors (a
/// file path, or a request field such as `data.payments`).
///
/// # Errors
/// [`DataError`] for the first problem found, with line, column and field.
pub fn parse(spec: &InputSpec, source: &str, text: &[u8], format: Format) -> Result<Table, DataError> {
    let fail = |line, column, field: Option<&str>, message: String| DataError { file: source.to_owned(), line, column, field: field.map(Into::into), message };
    let jsonl = format == Format::JsonLines;
    let mut t = records::empty_table(spec, 0);
    if jsonl {
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            let n = i as u64 + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let obj: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(line).map_err(|e| fail(n, e.column() as u64, None, format!("not a JSON object: {e}")))?;
            for (c, (name, ty)) in spec.schema.iter().enumerate() {
                let v = obj.get(name).ok_or_else(|| fail(n, 1, Some(name), "missing".into()))?;
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(x) => x.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    other => return Err(fail(n, 1, Some(name), format!("expected a string, number or bool, got {other}"))),
                };
                cell(&mut t.cols[c], ty, spec.formats[c].as_deref(), &text).map_err(|m| fail(n, 1, Some(name), m))?;
            }
            t.rows += 1;
        }
    } else {
        let mut rd = csv::ReaderBuilder::new().has_headers(true).from_reader(text);
        let header = rd.headers().map_err(|e| fail(1, 1, None, format!("CSV header: {e}")))?.clone();
        let mut at = Vec::new();
        for (name, _) in &spec.schema {
            let p = header
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| fail(1, 1, Some(name), format!("no such column in the header ({})", header.iter().collect::<Vec<_>>().join(","))))?;
            at.push(p);
        }
        for rec in rd.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                fail(line, 1, None, format!("CSV: {e}"))
            })?;
            let line = rec.position().map_or(0, |p| p.line());
            for (c, (name, ty)) in spec.schema.iter().enumerate() {
                let text = rec.get(at[c]).unwrap_or("");
                cell(&mut t.cols[c], ty, spec.formats[c].as_deref(), text.trim()).map_err(|m| fail(line, at[c] as u64 + 1, Some(name), m))?;
            }
            t.rows += 1;
        }
    }
    Ok(t)
}

/// Parses one cell and appends it.
fn cell(col: &mut Col, ty: &Type, format: Option<&str>, text: &str) -> Result<(), String> {
    match (col, ty) {
        (Col::Digest(v), _) => {
            let hex = text.strip_prefix("sha256:").unwrap_or(text);
            v.push(value::parse_hex32(hex).ok_or_else(|| format!("`{text}` is not 64 lowercase hex digits"))?);
        }
        (Col::Num(v), _) => v.push(scalar(ty, format, text)?),
    }
    Ok(())
}

fn scalar(ty: &Type, format: Option<&str>, text: &str) -> Result<i64, String> {
    match ty {
        Type::Int => text.parse::<i64>().map_err(|_| format!("`{text}` is not a 64-bit integer")),
        Type::Decimal(s) => value::parse_decimal(text, *s).ok_or_else(|| format!("`{text}` is not a decimal with at most {s} places within the 64-bit range")),
        Type::Bool => match text {
            "true" => Ok(1),
            "false" => Ok(0),
            _ => Err(format!("`{text}` is not true or false")),
        },
        Type::Date => {
            let fmt = format.unwrap_or("%Y-%m-%d");
            let d = chrono::NaiveDate::parse_from_str(text, fmt).map_err(|e| format!("`{text}` is not a date in the format `{fmt}` ({e})"))?;
            value::days_from_civil(i64::from(d.year()), d.month(), d.day())
                .filter(|d| value::DATE_RANGE.contains(d))
                .ok_or_else(|| format!("`{text}` is outside years -9999 to 9999"))
        }
        Type::Enum(labels) => labels.iter().position(|l| l == text).map(|p| p as i64).ok_or_else(|| format!("`{text}` is not one of {}", labels.join(", "))),
        Type::Digest => unreachable!("digest cells live in digest columns"),
    }
}
