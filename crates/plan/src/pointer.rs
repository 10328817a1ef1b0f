//! JSON pointers (RFC 6901) for diagnostics, built as a chain of borrowed
//! segments on the stack and written out only when a diagnostic needs one.
//!
//! Validation walks every node of a plan, inside the guest too, where every
//! cycle is proven: formatting a pointer string per node used to cost 17% of
//! the income-threshold example's user cycles (docs/benchmarks.md).

use alloc::string::String;
use core::fmt::{self, Display};

/// A JSON pointer: the root (`""`), or a parent and one reference token.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ptr<'a> {
    /// The whole document.
    Root,
    /// An object member: `parent/key`, the key escaped on output.
    Key(&'a Ptr<'a>, &'a str),
    /// An array element: `parent/index`.
    Index(&'a Ptr<'a>, usize),
}

impl<'a> Ptr<'a> {
    /// The member `key` of this node.
    pub(crate) fn key(&'a self, key: &'a str) -> Ptr<'a> {
        Ptr::Key(self, key)
    }

    /// The element `index` of this node.
    pub(crate) fn index(&'a self, index: usize) -> Ptr<'a> {
        Ptr::Index(self, index)
    }
}

impl Display for Ptr<'_> {
    /// Writes the pointer, escaping `~` and `/` in keys (RFC 6901 §3).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ptr::Root => Ok(()),
            Ptr::Index(parent, i) => write!(f, "{parent}/{i}"),
            Ptr::Key(parent, key) => write!(f, "{parent}/{}", escape(key)),
        }
    }
}

/// Escapes one JSON pointer reference token (RFC 6901 §3).
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::Ptr;
    use alloc::string::ToString;

    #[test]
    fn writes_rfc_6901_pointers() {
        let root = Ptr::Root;
        assert_eq!(root.to_string(), "");
        let steps = root.key("steps");
        let step = steps.index(2);
        assert_eq!(step.key("predicate").key("gt").index(0).to_string(), "/steps/2/predicate/gt/0");
        assert_eq!(step.key("a/b~c").to_string(), "/steps/2/a~1b~0c");
    }
}
