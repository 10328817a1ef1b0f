//! Plan files: JSON or YAML, with every diagnostic placed at a file, line
//! and column.
//!
//! Both formats are read through one YAML 1.2 event parser (JSON is a subset),
//! which gives each node's position and catches duplicate keys; JSON files are
//! first checked by `serde_json`, so JSON syntax errors are JSON's own. The
//! plan hash is SHA-256 over the RFC 8785 canonical JSON of the document.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::Yaml;

use zkaudit_merkle::{Hash, Hasher, Sha2};

use crate::ir::Plan;
use crate::validate::{compile, pointer_escape, Bounds, Diagnostic, Program};

/// A diagnostic placed in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file as named by the user.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// JSON pointer of the node (`/steps/2/predicate`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        if !self.path.is_empty() {
            write!(f, " (at {})", self.path)?;
        }
        Ok(())
    }
}

/// A plan read from a file.
#[derive(Debug, Clone)]
pub struct PlanFile {
    /// The file as named by the user.
    pub file: String,
    /// The typed plan.
    pub plan: Plan,
    /// RFC 8785 canonical JSON of the document: what the guest receives.
    pub jcs: Vec<u8>,
    /// SHA-256 of `jcs`: the plan hash.
    pub hash: Hash,
    positions: BTreeMap<String, (usize, usize)>,
    keys: BTreeMap<String, (usize, usize)>,
}

impl PlanFile {
    /// Reads and parses a plan file (`.json`, `.yaml`/`.yml`, or sniffed).
    ///
    /// # Errors
    /// Unreadable files and syntax or shape errors, each located.
    pub fn load(path: &Path) -> Result<PlanFile, Vec<Located>> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![Located { file: name.clone(), line: 0, column: 0, path: String::new(), message: format!("cannot read: {e}") }])?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let json = match ext {
            "json" => true,
            "yaml" | "yml" => false,
            _ => text.trim_start().starts_with('{'),
        };
        PlanFile::parse(&name, &text, json)
    }

    /// Parses plan text; `json` selects strict JSON syntax checking.
    ///
    /// # Errors
    /// Syntax errors, duplicate keys and serde shape errors, each located.
    pub fn parse(file: &str, text: &str, json: bool) -> Result<PlanFile, Vec<Located>> {
        let at = |line: usize, column: usize, path: &str, message: String| vec![Located { file: file.into(), line, column, path: path.into(), message }];
        if json {
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                return Err(at(e.line(), e.column(), "", format!("JSON syntax: {e}")));
            }
        }
        let mut b = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if let Err(e) = parser.load(&mut b, false) {
            let m = e.marker();
            return Err(at(m.line(), m.col() + 1, "", format!("{} syntax: {}", if json { "JSON" } else { "YAML" }, e.info())));
        }
        if let Some((m, p, msg)) = b.error.take() {
            return Err(at(m.line(), m.col() + 1, &p, msg));
        }
        let value = b.root.take().unwrap_or(Value::Null);
        let mut pf = PlanFile {
            file: file.into(),
            plan: Plan {
                version: String::new(),
                id: String::new(),
                job_request_hash: String::new(),
                steps: Vec::new(),
                output: crate::ir::Output { step: String::new(), public: None },
                limits: crate::ir::Limits { max_cycles: 0, max_memory_bytes: 0, max_output_bytes: 0 },
            },
            jcs: Vec::new(),
            hash: [0; 32],
            positions: b.positions,
            keys: b.keys,
        };
        let plan: Plan = match serde_path_to_error::deserialize(&value) {
            Ok(p) => p,
            Err(e) => {
                let path = pointer_of(e.path());
                let msg = e.inner().to_string();
                // Point at an unknown field's key rather than its object.
                let key_at = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()).map(|k| format!("{path}/{}", pointer_escape(k)));
                let (line, column) = key_at.and_then(|k| pf.keys.get(&k).copied()).unwrap_or_else(|| pf.position(&path));
                return Err(vec![Located { file: file.into(), line, column, path, message: msg }]);
            }
        };
        pf.jcs = serde_json_canonicalizer::to_vec(&value).map_err(|e| at(1, 1, "", format!("cannot canonicalize: {e}")))?;
        pf.hash = Sha2.sha256(&pf.jcs);
        pf.plan = plan;
        Ok(pf)
    }

    /// Validates the plan, placing each diagnostic in the file.
    ///
    /// # Errors
    /// Every validation error found.
    pub fn compile(&self, bounds: &Bounds) -> Result<Program, Vec<Located>> {
        compile(&self.plan, bounds).map_err(|ds| ds.iter().map(|d| self.locate(d)).collect())
    }

    /// Places a diagnostic at the nearest node the file has a position for.
    pub fn locate(&self, d: &Diagnostic) -> Located {
        let (line, column) = self.position(&d.path);
        Located { file: self.file.clone(), line, column, path: d.path.clone(), message: d.message.clone() }
    }

    fn position(&self, pointer: &str) -> (usize, usize) {
        let mut p = pointer;
        loop {
            if let Some(&pos) = self.positions.get(p) {
                return pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut s = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => s.push_str(&format!("/{index}")),
            Segment::Map { key } => s.push_str(&format!("/{}", pointer_escape(key))),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    s
}

enum Frame {
    Seq(Vec<Value>),
    Map(Map<String, Value>, Option<String>),
}

/// Builds a `serde_json::Value` from YAML events, remembering positions.
#[derive(Default)]
struct Builder {
    stack: Vec<(Frame, String)>,
    root: Option<Value>,
    positions: BTreeMap<String, (usize, usize)>,
    keys: BTreeMap<String, (usize, usize)>,
    error: Option<(Marker, String, String)>,
}

impl Builder {
    /// The pointer of the next value, or `None` when the next scalar is a key.
    fn next_pointer(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some((Frame::Seq(v), p)) => Some(format!("{p}/{}", v.len())),
            Some((Frame::Map(_, Some(k)), p)) => Some(format!("{p}/{}", pointer_escape(k))),
            Some((Frame::Map(_, None), _)) => None,
        }
    }

    fn put(&mut self, v: Value) {
        match self.stack.last_mut() {
            None => self.root = Some(v),
            Some((Frame::Seq(items), _)) => items.push(v),
            Some((Frame::Map(m, key), _)) => {
                if let Some(k) = key.take() {
                    m.insert(k, v);
                }
            }
        }
    }
}

fn pos(m: &Marker) -> (usize, usize) {
    (m.line(), m.col() + 1)
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, _, tag) => match self.next_pointer() {
                None => {
                    let Some((Frame::Map(m, key), p)) = self.stack.last_mut() else { return };
                    let kp = format!("{p}/{}", pointer_escape(&text));
                    if m.contains_key(&text) {
                        self.error = Some((mark, kp, format!("duplicate key `{text}`")));
                        return;
                    }
                    *key = Some(text);
                    self.keys.insert(kp, pos(&mark));
                }
                Some(p) => {
                    self.positions.insert(p, pos(&mark));
                    let plain = style == TScalarStyle::Plain && tag.is_none();
                    let v = if plain { scalar(&text) } else { Value::String(text) };
                    self.put(v);
                }
            },
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let Some(p) = self.next_pointer() else {
                    self.error = Some((mark, String::new(), "only strings can be mapping keys".into()));
                    return;
                };
                self.positions.insert(p.clone(), pos(&mark));
                let frame = if matches!(ev, Event::SequenceStart(..)) { Frame::Seq(Vec::new()) } else { Frame::Map(Map::new(), None) };
                self.stack.push((frame, p));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((frame, _)) = self.stack.pop() {
                    let v = match frame {
                        Frame::Seq(items) => Value::Array(items),
                        Frame::Map(m, _) => Value::Object(m),
                    };
                    self.put(v);
                }
            }
            Event::Alias(_) => {
                self.error = Some((mark, self.next_pointer().unwrap_or_default(), "YAML aliases are not supported in plans".into()));
            }
            _ => {}
        }
    }
}

/// YAML 1.2 core-schema resolution of a plain scalar.
fn scalar(text: &str) -> Value {
    match Yaml::from_str(text) {
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::Real(r) => r.parse::<f64>().ok().and_then(Number::from_f64).map_or(Value::String(r), Value::Number),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Null => Value::Null,
        _ => Value::String(text.into()),
    }
}
