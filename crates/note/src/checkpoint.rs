//! Checkpoint bodies (c2sp.org/tlog-checkpoint).

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use zkaudit_merkle::Hash;

/// A malformed checkpoint body, naming the 1-based line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed checkpoint, line {line}: {reason}")]
pub struct CheckpointError {
    /// 1-based line of the checkpoint body.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// The signed statement of a log: origin, tree size and root hash, plus
/// optional extension lines.
///
/// Text form: `<origin>\n<decimal size>\n<base64 root hash>\n[<extension>\n]*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log origin: a unique, schema-less URL-like identifier, which is also the key name.
    pub origin: String,
    /// Number of entries in the tree.
    pub size: u64,
    /// RFC 9162 Merkle tree head of the first `size` entries.
    pub root: Hash,
    /// Extension lines, without newlines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root: Hash) -> Self {
        Self { origin: origin.to_owned(), size, root, extensions: Vec::new() }
    }

    /// Parses the body (the note text).
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let err = |line, reason| CheckpointError { line, reason };
        let body = text.strip_suffix('\n').ok_or(err(1, "body must end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or(err(1, "empty origin"))?;
        let size = lines.next().ok_or(err(2, "missing tree size"))?;
        let size_ok = !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) && (size == "0" || !size.starts_with('0'));
        let size = size.parse::<u64>().ok().filter(|_| size_ok).ok_or(err(2, "tree size must be a decimal number without leading zeros"))?;
        let root = lines.next().ok_or(err(3, "missing root hash"))?;
        let root: Hash = B64.decode(root).ok().and_then(|r| r.try_into().ok()).ok_or(err(3, "root hash must be base64 of 32 bytes"))?;
        let mut extensions = Vec::new();
        for (i, l) in lines.enumerate() {
            if l.is_empty() {
                return Err(err(4 + i, "empty extension line"));
            }
            extensions.push(l.to_owned());
        }
        Ok(Self { origin: origin.to_owned(), size, root, extensions })
    }

    /// The body text, ending with a newline.
    pub fn to_text(&self) -> String {
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root));
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_independent_parser() {
        let c = Checkpoint::new("example.com/log", 1234, [7u8; 32]);
        let t = c.to_text();
        assert_eq!(Checkpoint::parse(&t).unwrap(), c);
        let theirs = tlog_tiles::Checkpoint::from_bytes(t.as_bytes()).unwrap();
        assert_eq!(theirs.origin(), "example.com/log");
        assert_eq!(theirs.size(), 1234);
        assert_eq!(theirs.hash().0, [7u8; 32]);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Checkpoint::parse("o\n01\nAAAA\n").unwrap_err().line, 2);
        assert_eq!(Checkpoint::parse("o\n1\nAAAA\n").unwrap_err().line, 3);
        assert_eq!(Checkpoint::parse("\n1\nAAAA\n").unwrap_err().line, 1);
        assert_eq!(Checkpoint::parse("o\n1\n").unwrap_err().line, 3);
    }
}
