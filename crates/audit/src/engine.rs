//! The query engine: a Scryer Prolog machine over the ledger, with facts
//! loaded on demand from the index (see `prelude.pl`).

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use scryer_prolog::{LeafAnswer, Machine, MachineBuilder, Term};
use sha2::{Digest as _, Sha256};
use zkaudit_index::{Backend, IndexedEvent, Query, Selector};
use zkaudit_note::VerifierKey;
use zkaudit_tlog::{LedgerDir, LogReader};

use crate::term::{self, as_i64, json_to_prolog, list_items, quote_atom, quote_chars};

const PRELUDE: &str = include_str!("prelude.pl");

/// SHA-256 (hex) of the prelude: with a pack's own hash, it identifies all
/// the Prolog a verdict was computed with (packs call prelude helpers such
/// as `availability_check/4`).
pub fn prelude_sha256() -> String {
    hex::encode(Sha256::digest(PRELUDE.as_bytes()))
}

/// Facts added per `'$zk_add'/1` call.
const ADD_BATCH: usize = 2_000;
/// Reruns of one query (each after loading one more part of the ledger).
const MAX_RERUNS: u32 = 10_000;

/// Limits and scope of a query run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Inferences allowed per answer (Scryer's `call_with_inference_limit/3`).
    pub inference_limit: u64,
    /// Wall-clock limit for a whole query, checked between answers and
    /// between loads; within one answer the inference limit bounds the work.
    pub timeout: Duration,
    /// Answers returned at most.
    pub max_answers: usize,
    /// Events the engine may hold in memory at once.
    pub max_events: u64,
    /// Only events with timestamp ≥ this (ns since the epoch) are loaded
    /// for set-wide lookups (by type, layer, digest, key).
    pub from_ns: Option<i64>,
    /// Only events with timestamp < this (ns since the epoch) are loaded.
    pub to_ns: Option<i64>,
}

impl Default for Options {
    fn default() -> Self {
        Self { inference_limit: 200_000_000, timeout: Duration::from_secs(30), max_answers: 100, max_events: 2_000_000, from_ns: None, to_ns: None }
    }
}

/// Checks a stored receipt for a proof event, for `zkaudit/2`.
pub trait ReceiptCheck {
    /// `Ok(())` if `receipt` is a valid proof of what event `e` claims
    /// (plan hash = input, output hash = output, data root in metadata),
    /// else the reason it is not.
    fn check(&self, e: &zkaudit_event::Event, receipt: &[u8]) -> Result<(), String>;
}

/// One answer: the query's named variables and the events it rests on.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// `(name, value)` for each named variable of the query, in query order
    /// (variables starting with `_`, and variables left unbound, are left out).
    pub bindings: Vec<(String, Term)>,
    /// Leaf indices of the events the answer rests on, ascending.
    pub events: Vec<u64>,
}

/// The answers to one query.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Answers, at most [`Options::max_answers`].
    pub answers: Vec<Answer>,
    /// True if the query has more answers than were returned.
    pub truncated: bool,
}

/// Why a query gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query text is not a Prolog term.
    #[error("syntax error in the query: {0}")]
    Syntax(String),
    /// The goal raised an error (unknown predicate, type error, ...).
    #[error("the query raised {0}")]
    Prolog(String),
    /// The wall-clock limit passed.
    #[error("the query ran past its time limit of {0:?}")]
    Timeout(Duration),
    /// One answer took more inferences than allowed.
    #[error("an answer needed more than {0} inferences (see --inference-limit)")]
    Inferences(u64),
    /// Answering needs more events in memory than allowed.
    #[error("the query needs {needed} events in memory ({what}) but the limit is {limit}; bind the event type, or narrow --from/--to")]
    TooManyEvents {
        /// Events it would hold.
        needed: u64,
        /// Which part of the ledger it asked for.
        what: String,
        /// [`Options::max_events`].
        limit: u64,
    },
    /// The index failed.
    #[error(transparent)]
    Index(#[from] zkaudit_index::Error),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] zkaudit_tlog::Error),
    /// The Prolog machine failed internally; it has been replaced by a
    /// fresh one, so the next query starts clean.
    #[error("the Prolog engine failed internally ({0}); it was restarted")]
    Engine(String),
}

/// How one run of a query ended.
enum Attempt {
    /// It stopped for a part of the ledger not loaded yet.
    Need(Term),
    /// It ran to the end (or the answer limit).
    Done(Outcome),
}

/// [`Attempt`], plus an exception that escaped `'$zk_answer'/5` (which
/// leaves the machine unusable).
enum Run {
    Attempt(Attempt),
    Escaped(Term),
}

/// A Prolog machine over one ledger as of one checkpoint.
pub struct Engine {
    machine: Machine,
    dir: LedgerDir,
    reader: LogReader,
    index: Box<dyn Backend>,
    vkey: VerifierKey,
    receipts: Option<Box<dyn ReceiptCheck>>,
    opts: Options,
    loaded: HashSet<u64>,
    programs: Vec<(String, String)>,
    facts: Vec<String>,
}

fn new_machine() -> Machine {
    let mut m = MachineBuilder::default().build();
    m.consult_module_string("zkaudit_prelude", PRELUDE);
    m
}

impl Engine {
    /// An engine over the log in `dir` as read by `reader`, answering from
    /// `index` (already synced to `reader`'s checkpoint). `vkey` is the
    /// log's verifier key, for `zkaudit_integrity/1`; `receipts` checks
    /// stored receipts for `zkaudit/2` (without it, receipts are `unchecked`).
    pub fn new(dir: &LedgerDir, reader: LogReader, index: Box<dyn Backend>, vkey: VerifierKey, receipts: Option<Box<dyn ReceiptCheck>>, opts: Options) -> Self {
        let facts = match (opts.from_ns, opts.to_ns) {
            (None, None) => Vec::new(),
            (f, t) => vec![format!("'$window'({},{})", f.unwrap_or(0), t.unwrap_or(i64::MAX))],
        };
        let mut e = Self {
            machine: new_machine(),
            dir: dir.clone(),
            reader,
            index,
            vkey,
            receipts,
            opts,
            loaded: HashSet::new(),
            programs: Vec::new(),
            facts: Vec::new(),
        };
        // A fresh machine cannot fail on facts this simple; if it did, the
        // next query would report the engine failure.
        let _ = e.assert_facts(facts);
        e
    }

    /// The log as of the checkpoint the engine answers for.
    pub fn reader(&self) -> &LogReader {
        &self.reader
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Adds Prolog clauses (a compliance pack) to the engine; `name` names
    /// them as a file would.
    pub fn consult(&mut self, name: &str, program: &str) {
        self.programs.push((name.to_owned(), program.to_owned()));
        self.machine.consult_module_string(name, program.to_owned());
    }

    /// Asserts ground facts (Prolog text, no final `.`), kept across
    /// engine restarts; used for pack parameter overrides.
    pub fn assert_facts(&mut self, facts: Vec<String>) -> Result<(), QueryError> {
        self.add_facts(&facts)?;
        self.facts.extend(facts);
        Ok(())
    }

    /// Number of events held in memory.
    pub fn loaded_events(&self) -> usize {
        self.loaded.len()
    }

    /// Runs `goal` (Prolog text, the final `.` optional) and returns up to
    /// [`Options::max_answers`] answers. A syntax error, a runtime error, a
    /// limit or an engine failure is an error; the engine stays usable.
    pub fn query(&mut self, goal: &str) -> Result<Outcome, QueryError> {
        let deadline = Instant::now() + self.opts.timeout;
        let mut goal = goal.trim().to_owned();
        if !goal.ends_with('.') {
            goal.push('.');
        }
        goal.push(' ');
        let wrapper = format!("'$zk_answer'({}, {}, Vs, Used, Status).", quote_chars(&goal), self.opts.inference_limit);
        for _ in 0..MAX_RERUNS {
            match self.attempt(&wrapper, deadline)? {
                Attempt::Done(o) => return Ok(o),
                Attempt::Need(key) => self.load(&key)?,
            }
            if Instant::now() > deadline {
                return Err(QueryError::Timeout(self.opts.timeout));
            }
        }
        Err(QueryError::Engine(format!("the query asked for more than {MAX_RERUNS} parts of the ledger")))
    }

    fn attempt(&mut self, wrapper: &str, deadline: Instant) -> Result<Attempt, QueryError> {
        let (max, limit, timeout) = (self.opts.max_answers, self.opts.inference_limit, self.opts.timeout);
        let machine = &mut self.machine;
        let run = catch_unwind(AssertUnwindSafe(|| -> Result<Run, QueryError> {
            let mut answers = Vec::new();
            let mut truncated = false;
            for item in machine.run_query(wrapper.to_owned()) {
                match item {
                    Ok(LeafAnswer::LeafAnswer { bindings, .. }) => {
                        match bindings.get("Status") {
                            Some(Term::Compound(f, args)) if f == "exception" && args.len() == 1 => match &args[0] {
                                Term::Compound(n, k) if n == "$zk_need" && k.len() == 1 => return Ok(Run::Attempt(Attempt::Need(k[0].clone()))),
                                ball => return Err(classify(ball)),
                            },
                            Some(Term::Atom(s)) if s == "inference_limit_exceeded" => return Err(QueryError::Inferences(limit)),
                            _ => {}
                        }
                        if answers.len() == max {
                            truncated = true;
                            break;
                        }
                        answers.push(answer(&bindings));
                    }
                    Ok(LeafAnswer::True) => answers.push(Answer { bindings: Vec::new(), events: Vec::new() }),
                    Ok(LeafAnswer::False) => break,
                    Ok(LeafAnswer::Exception(t)) | Err(t) => return Ok(Run::Escaped(t)),
                }
                if Instant::now() > deadline {
                    return Err(QueryError::Timeout(timeout));
                }
            }
            Ok(Run::Attempt(Attempt::Done(Outcome { answers, truncated })))
        }));
        match run {
            Ok(Ok(Run::Attempt(a))) => Ok(a),
            Ok(Ok(Run::Escaped(t))) => {
                // An exception that escaped '$zk_answer'/5 (a resource error)
                // stays in the machine: replace it.
                self.restart();
                Err(classify(&t))
            }
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panic".to_owned());
                self.restart();
                Err(QueryError::Engine(msg))
            }
        }
    }

    /// Replaces the machine after an internal failure: programs and
    /// asserted facts come back, ledger facts are loaded again on demand.
    fn restart(&mut self) {
        self.machine = new_machine();
        self.loaded.clear();
        for (name, p) in &self.programs {
            self.machine.consult_module_string(name, p.clone());
        }
        // Facts that loaded once load again; a failure here surfaces on the next query.
        let _ = add_facts(&mut self.machine, &self.facts);
    }

    fn add_facts(&mut self, facts: &[String]) -> Result<(), QueryError> {
        add_facts(&mut self.machine, facts).map_err(|e| {
            self.restart();
            QueryError::Engine(e)
        })
    }

    fn load(&mut self, key: &Term) -> Result<(), QueryError> {
        let key_text = term::text(key);
        let mut facts = Vec::new();
        match key {
            Term::Compound(f, args) if f == "verify" && args.len() == 1 => {
                let i = as_i64(&args[0]).ok_or_else(|| QueryError::Engine(format!("bad demand {key_text}")))?;
                let status = self.verify_receipt(i as u64)?;
                facts.push(format!("'$verified'({i},{status})"));
            }
            Term::Compound(f, args) if f == "integrity" && args.len() == 1 => {
                let scope = term::text(&args[0]);
                let status = match self.integrity(&scope) {
                    Ok(()) => "ok".to_owned(),
                    Err(reason) => format!("failed({})", quote_atom(&reason)),
                };
                facts.push(format!("'$integrity'({scope},{status})"));
            }
            _ => {
                let (selector, windowed) = selector(key).ok_or_else(|| QueryError::Engine(format!("unknown demand {key_text}")))?;
                let mut q = Query::new(selector);
                if windowed {
                    q.from_ns = self.opts.from_ns;
                    q.to_ns = self.opts.to_ns;
                }
                let room = self.opts.max_events.saturating_sub(self.loaded.len() as u64);
                let n = zkaudit_index::count(self.index.as_mut(), &self.reader, &q)?;
                if n > room {
                    return Err(QueryError::TooManyEvents { needed: self.loaded.len() as u64 + n, what: key_text, limit: self.opts.max_events });
                }
                for e in zkaudit_index::select(self.index.as_mut(), &self.reader, &q)? {
                    if self.loaded.insert(e.leaf_index) {
                        event_facts(&e, &mut facts);
                    }
                }
            }
        }
        facts.push(format!("'$loaded'({key_text})"));
        self.add_facts(&facts)
    }

    /// `valid`, `missing`, `unchecked` or `invalid('reason')` for the
    /// receipt of the proof event at `index`, read from `DIR/receipts/`.
    fn verify_receipt(&mut self, index: u64) -> Result<String, QueryError> {
        let Some(e) = zkaudit_index::select(self.index.as_mut(), &self.reader, &Query::new(Selector::Index(index)))?.into_iter().next() else {
            return Ok(format!("invalid({})", quote_atom("no such event")));
        };
        let Some(p) = &e.proof else {
            return Ok(format!("invalid({})", quote_atom("the event carries no proof")));
        };
        let path = self.dir.receipt(&p.receipt_digest);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok("missing".into()),
            Err(err) => return Ok(format!("invalid({})", quote_atom(&format!("reading {}: {err}", path.display())))),
        };
        if format!("sha256:{}", hex::encode(Sha256::digest(&bytes))) != p.receipt_digest {
            return Ok(format!("invalid({})", quote_atom(&format!("{} does not hash to the event's receipt digest", path.display()))));
        }
        Ok(match &self.receipts {
            None => "unchecked".into(),
            Some(c) => match self
                .reader
                .entry(index)
                .map_err(|err| err.to_string())
                .and_then(|b| zkaudit_event::Event::from_entry(&b).map_err(|err| err.to_string()))
                .and_then(|ev| c.check(&ev, &bytes))
            {
                Ok(()) => "valid".into(),
                Err(reason) => format!("invalid({})", quote_atom(&reason)),
            },
        })
    }

    fn integrity(&self, scope: &str) -> Result<(), String> {
        self.reader.verify_signature(&self.vkey).map_err(|e| format!("checkpoint: {e}"))?;
        if scope == "log" {
            let report = zkaudit_tlog::fsck::verify(self.dir.root(), &self.vkey, |_| {}).map_err(|e| format!("fsck: {e}"))?;
            if report.size != self.reader.size() {
                return Err(format!("fsck checked tree size {} but the query reads {}", report.size, self.reader.size()));
            }
        }
        Ok(())
    }
}

/// Asserts `facts` (Prolog text, no final `.`) through `'$zk_add'/1`.
fn add_facts(machine: &mut Machine, facts: &[String]) -> Result<(), String> {
    for chunk in facts.chunks(ADD_BATCH) {
        let q = format!("'$zk_add'([{}]).", chunk.join(","));
        match catch_unwind(AssertUnwindSafe(|| machine.run_query(q).next())) {
            Ok(Some(Ok(LeafAnswer::True))) => {}
            Ok(other) => return Err(format!("loading facts: {other:?}")),
            Err(_) => return Err("loading facts panicked".into()),
        }
    }
    Ok(())
}

/// The index selector for a demand key, and whether the time window applies.
fn selector(key: &Term) -> Option<(Selector, bool)> {
    let atom = |t: &Term| match t {
        Term::Atom(a) => Some(a.clone()),
        _ => None,
    };
    Some(match key {
        Term::Atom(a) if a == "all" => (Selector::All, true),
        Term::Atom(a) if a == "proofs" => (Selector::WithProof, true),
        Term::Compound(f, args) if args.len() == 1 => {
            let a = &args[0];
            match f.as_str() {
                "index" => (Selector::Index(u64::try_from(as_i64(a)?).ok()?), false),
                "type" => (Selector::Type(atom(a)?), true),
                "layer" => (Selector::Layer(atom(a)?), true),
                "input" => (Selector::Input(atom(a)?), true),
                "output" => (Selector::Output(atom(a)?), true),
                "parent" => (Selector::Parent(atom(a)?), true),
                "meta_key" => (Selector::MetaKey(atom(a)?), true),
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// The facts for one event (see `prelude.pl`).
fn event_facts(e: &IndexedEvent, out: &mut Vec<String>) {
    let i = e.leaf_index;
    out.push(format!("'$ev'({i},{},{},{},{},{})", e.timestamp_ns, quote_atom(&e.layer), quote_atom(&e.kind), quote_atom(&e.input), quote_atom(&e.output)));
    out.push(format!("'$stamp'({i},{},{})", quote_atom(&e.timestamp), e.precision_ns));
    for (k, v) in &e.metadata {
        out.push(format!("'$meta'({i},{},{})", quote_atom(k), json_to_prolog(v)));
    }
    for p in &e.parents {
        out.push(format!("'$parent'({i},{})", quote_atom(p)));
    }
    if let Some(p) = &e.proof {
        out.push(format!(
            "'$proof'({i},{},{},{},{})",
            quote_atom(&p.kind),
            quote_atom(&p.receipt_digest),
            quote_atom(&p.image_id),
            quote_atom(&p.journal_digest)
        ));
    }
}

fn answer(bindings: &std::collections::BTreeMap<String, Term>) -> Answer {
    let mut out = Answer { bindings: Vec::new(), events: Vec::new() };
    for b in bindings.get("Vs").and_then(list_items).unwrap_or_default() {
        if let Term::Compound(eq, kv) = b {
            if let (true, [Term::Atom(name), value]) = (eq == "=", kv.as_slice()) {
                // Like a Prolog top level: `_X` and variables left unbound are not shown.
                if !name.starts_with('_') && !matches!(value, Term::Var(_)) {
                    out.bindings.push((name.clone(), value.clone()));
                }
            }
        }
    }
    let mut events: Vec<u64> =
        bindings.get("Used").and_then(list_items).unwrap_or_default().iter().filter_map(as_i64).filter_map(|i| u64::try_from(i).ok()).collect();
    events.sort_unstable();
    events.dedup();
    out.events = events;
    out
}

fn classify(t: &Term) -> QueryError {
    if let Term::Compound(f, args) = t {
        if f == "error" {
            if let Some(Term::Compound(kind, _)) = args.first() {
                if kind == "syntax_error" {
                    return QueryError::Syntax(term::text(&args[0]));
                }
            }
            if let Some(first) = args.first() {
                return QueryError::Prolog(term::text(first));
            }
        }
    }
    QueryError::Prolog(term::text(t))
}
