//! Reading a batch of events from JSON Lines.

use std::fmt;
use std::io::BufRead;

use crate::event::{EventObject, MAX_ENTRY_BYTES};

/// How many malformed lines one [`BatchError`] reports at most.
pub const MAX_REPORTED_ERRORS: usize = 20;

/// One malformed line: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// Name of the input (a file path, or `-` for standard input).
    pub source: String,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column within the line, when the JSON parser knows it.
    pub column: Option<usize>,
    /// Dotted path of the offending field (`metadata.x`, `parents[2]`), if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)?;
        if let Some(c) = self.column {
            write!(f, ":{c}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A batch that was rejected as a whole.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// One or more lines are malformed; at most [`MAX_REPORTED_ERRORS`] are
    /// listed, and `total` counts them all.
    #[error("{} malformed event line(s); nothing was appended:\n{}", .total, .errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Malformed {
        /// The first malformed lines, in input order.
        errors: Vec<LineError>,
        /// Number of malformed lines in the batch.
        total: usize,
    },
    /// The input could not be read.
    #[error("reading {source_name}: {error}")]
    Io {
        /// Name of the input.
        source_name: String,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
}

/// Parses one line into its entry bytes.
fn parse_line(source: &str, line_no: usize, line: &str) -> Result<Vec<u8>, LineError> {
    let err = |column, field: Option<String>, message: String| LineError { source: source.to_owned(), line: line_no, column, field, message };
    let mut de = serde_json::Deserializer::from_str(line);
    let EventObject(event) = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // `.` is the top level and `?` a position serde_path_to_error lost
        // track of (a syntax error between members): neither names a field.
        let field = (path != "." && path != "?").then_some(path);
        // serde_json appends " at line L column C"; keep only the message, the
        // column is reported separately.
        let msg = inner.to_string();
        let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_owned();
        let column = (inner.column() > 0).then_some(inner.column());
        err(column, missing_field(&msg, field.as_deref()).or(field), msg)
    })?;
    de.end().map_err(|e| err(Some(e.column()), None, "trailing characters after the event".into()))?;
    let bytes = event.canonical_bytes().map_err(|e| err(None, None, e.to_string()))?;
    if bytes.len() > MAX_ENTRY_BYTES {
        return Err(err(None, None, format!("canonical entry is {} bytes; the tlog-tiles limit is {MAX_ENTRY_BYTES}", bytes.len())));
    }
    Ok(bytes)
}

/// serde reports a missing field as "missing field `x`" at the parent path;
/// name the field itself (`proof.image_id` when the parent is `proof`).
fn missing_field(msg: &str, parent: Option<&str>) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    let name = rest.split('`').next()?;
    Some(parent.map_or_else(|| name.to_owned(), |p| format!("{p}.{name}")))
}

/// Reads JSON Lines (one event per line; blank lines are skipped) and returns
/// each event's entry bytes (RFC 8785 canonical JSON), in input order.
///
/// The batch is all or nothing: if any line is malformed, the error lists
/// the first [`MAX_REPORTED_ERRORS`] bad lines with line, column and field.
/// `source` names the input in errors.
pub fn parse_jsonl<R: BufRead>(reader: R, source: &str) -> Result<Vec<Vec<u8>>, BatchError> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut total = 0;
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|error| BatchError::Io { source_name: source.to_owned(), error })?;
        // Invalid UTF-8 is a bad line like any other, not a failed read.
        let parsed = match std::str::from_utf8(&line) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => parse_line(source, i + 1, text),
            Err(e) => {
                Err(LineError { source: source.to_owned(), line: i + 1, column: Some(e.valid_up_to() + 1), field: None, message: "invalid UTF-8".to_owned() })
            }
        };
        match parsed {
            Ok(b) if errors.is_empty() => entries.push(b),
            Ok(_) => {}
            Err(e) => {
                total += 1;
                if errors.len() < MAX_REPORTED_ERRORS {
                    errors.push(e);
                }
            }
        }
    }
    if total > 0 {
        return Err(BatchError::Malformed { errors, total });
    }
    Ok(entries)
}
