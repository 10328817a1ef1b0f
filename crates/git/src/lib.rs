//! `zkaudit ingest git`: a repository's history as ledger events.
//!
//! This crate owns turning each commit into one application-layer
//! `git_commit` event (read with libgit2 through the `git2` crate):
//!
//! * `timestamp`: the committer time;
//! * `input`: the SHA-256 of the commit object as git hashes objects
//!   (`commit <len>\0<body>`), i.e. the commit's name in a SHA-256
//!   repository; `output`: the same for its tree object;
//! * `metadata`: `vcs.ref.head.revision` (the commit ID), `vcs.repository.url.full`
//!   (the path given), `git.tree.id`, `git.parents`, author and committer
//!   (`git.author.name`, `.email`, `.time`, and the same for
//!   `git.committer`), `git.message.summary`, the signature's
//!   `git.signature.format` and `git.signature.status` as the `git`
//!   command judges it with the repository's gpg / ssh configuration at
//!   ingest time (`good`, `good_unknown_validity`, `bad`, `expired_*`,
//!   `revoked_key`, `unverifiable`; `none` if unsigned; `unverified` if git
//!   could not be asked) with `git.signature.key`, and the paths changed
//!   against the first parent with their status (`A`, `M`, `D`, `R`, `T`)
//!   and new blob IDs;
//! * `parents`: the digests of the parent commits' events: as recorded, for
//!   commits already in the ledger; as built now, otherwise.
//!
//! Commits come parents first. A commit whose event is already in a local
//! ledger (found by its `input` in the index) is skipped, so a re-run
//! ingests only new commits.
//!
//! It must not own the sink or the event shape (`zkaudit-collect`).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use git2::{Commit, Oid, Repository, Sort};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use zkaudit_collect::shape::digest_bytes;
use zkaudit_collect::{Destination, Report, Sink, SinkError, SinkOptions};
use zkaudit_event::{Digest, Event, Layer, Timestamp, EVENT_VERSION};

/// The collector's name (`observer.type`).
pub const COLLECTOR: &str = "zkaudit-git";

/// Why ingesting failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository could not be opened or read.
    #[error("{repo}: {source}")]
    Git {
        /// The repository path.
        repo: PathBuf,
        /// libgit2's error.
        source: git2::Error,
    },
    /// `--since` names no commit.
    #[error("{repo}: --since {rev}: {source}")]
    BadRevision {
        /// The repository path.
        repo: PathBuf,
        /// The revision given.
        rev: String,
        /// libgit2's error.
        source: git2::Error,
    },
    /// The local ledger's index could not be read.
    #[error(transparent)]
    Ledger(#[from] zkaudit_app::Error),
    /// A recorded commit event could not be read back from the ledger.
    #[error("ledger entry {index}: {source}")]
    Entry {
        /// Leaf index.
        index: u64,
        /// The log's error.
        source: zkaudit_tlog::Error,
    },
    /// The sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Commits walked (reachable from HEAD, after `--since`).
    pub commits: u64,
    /// Commits recorded now.
    pub ingested: u64,
    /// Commits already in the ledger, skipped.
    pub already: u64,
    /// The sink's figures.
    pub sink: Report,
}

/// Builds commit events, remembering each one's digest.
struct Events<'r> {
    repo: &'r Repository,
    url: String,
    digests: HashMap<Oid, Digest>,
    /// `git log`'s verdict on each signed commit (`%G?` and `%GK`).
    verdicts: HashMap<Oid, (char, String)>,
}

impl Events<'_> {
    /// The event of `c` (its parents' events' digests computed as needed).
    fn event(&mut self, c: &Commit<'_>) -> Result<Event, git2::Error> {
        let mut parents = Vec::new();
        for p in c.parent_ids() {
            parents.push(self.digest(p)?);
        }
        let odb = self.repo.odb()?;
        let object_digest = |oid: Oid| -> Result<Digest, git2::Error> {
            let o = odb.read(oid)?;
            let mut h = Sha256::new();
            h.update(format!("{} {}\0", o.kind().str(), o.data().len()).as_bytes());
            h.update(o.data());
            Ok(Digest(h.finalize().into()))
        };
        let mut m = serde_json::Map::new();
        let mut set = |k: &str, v: serde_json::Value| {
            m.insert(k.to_owned(), v);
        };
        set("event.kind", "event".into());
        set("event.category", "configuration".into());
        set("event.action", "git_commit".into());
        set("observer.type", COLLECTOR.into());
        set("vcs.ref.head.revision", c.id().to_string().into());
        set("vcs.repository.url.full", self.url.clone().into());
        set("git.tree.id", c.tree_id().to_string().into());
        set("git.parents", c.parent_ids().map(|p| p.to_string()).collect::<Vec<_>>().into());
        for (who, s) in [("author", c.author()), ("committer", c.committer())] {
            set(&format!("git.{who}.name"), String::from_utf8_lossy(s.name_bytes()).into_owned().into());
            set(&format!("git.{who}.email"), String::from_utf8_lossy(s.email_bytes()).into_owned().into());
            let time = rfc3339(s.when().seconds(), s.when().offset_minutes()).ok_or_else(|| bad_time(c.id(), who))?;
            set(&format!("git.{who}.time"), time.into());
        }
        set("git.message.summary", String::from_utf8_lossy(c.summary_bytes().unwrap_or_default()).into_owned().into());
        match self.repo.extract_signature(&c.id(), None) {
            Ok((sig, _)) => {
                let sig = String::from_utf8_lossy(&sig);
                let format = if sig.contains("BEGIN PGP SIGNATURE") {
                    "openpgp"
                } else if sig.contains("BEGIN SSH SIGNATURE") {
                    "ssh"
                } else {
                    "x509"
                };
                set("git.signature.format", format.into());
                match self.verdicts.get(&c.id()) {
                    Some((v, key)) => {
                        set("git.signature.status", verdict_name(*v).into());
                        if !key.is_empty() {
                            set("git.signature.key", key.clone().into());
                        }
                    }
                    None => set("git.signature.status", "unverified".into()),
                }
            }
            Err(e) if e.code() == git2::ErrorCode::NotFound => set("git.signature.status", "none".into()),
            Err(e) => return Err(e),
        }
        let tree = c.tree()?;
        let base = match c.parents().next() {
            Some(p) => Some(p.tree()?),
            None => None,
        };
        let mut diff = self.repo.diff_tree_to_tree(base.as_ref(), Some(&tree), None)?;
        diff.find_similar(None)?;
        let (mut paths, mut status, mut blobs) = (Vec::new(), Vec::new(), Vec::new());
        for d in diff.deltas() {
            let file = if d.status() == git2::Delta::Deleted { d.old_file() } else { d.new_file() };
            paths.push(file.path().map(|p| p.display().to_string()).unwrap_or_default());
            status.push(match d.status() {
                git2::Delta::Added => "A",
                git2::Delta::Deleted => "D",
                git2::Delta::Renamed => "R",
                git2::Delta::Copied => "C",
                git2::Delta::Typechange => "T",
                _ => "M",
            });
            blobs.push(if d.status() == git2::Delta::Deleted { Oid::ZERO_SHA1.to_string() } else { d.new_file().id().to_string() });
        }
        set("git.changes.path", paths.into());
        set("git.changes.status", status.into());
        set("git.changes.blob", blobs.into());
        let when = c.committer().when();
        // Whole seconds, as git keeps them (the timestamp's precision says so).
        let utc = rfc3339(when.seconds(), 0).ok_or_else(|| bad_time(c.id(), "committer"))?;
        let timestamp = Timestamp::parse(&utc).map_err(|e| git2::Error::from_str(&format!("commit {}: committer time: {e}", c.id())))?;
        Ok(Event {
            version: EVENT_VERSION.to_owned(),
            timestamp,
            layer: Layer::Application,
            kind: "git_commit".into(),
            input: object_digest(c.id())?,
            output: object_digest(c.tree_id())?,
            metadata: m,
            proof: None,
            parents: (!parents.is_empty()).then_some(parents),
        })
    }

    /// The digest of commit `oid`'s event.
    fn digest(&mut self, oid: Oid) -> Result<Digest, git2::Error> {
        if let Some(d) = self.digests.get(&oid) {
            return Ok(*d);
        }
        // Parents first, without recursion (histories are deep).
        let mut stack = vec![oid];
        while let Some(&top) = stack.last() {
            let c = self.repo.find_commit(top)?;
            let missing: Vec<Oid> = c.parent_ids().filter(|p| !self.digests.contains_key(p)).collect();
            if missing.is_empty() {
                stack.pop();
                let e = self.event(&c)?;
                let d = digest_bytes(&e.canonical_bytes().map_err(|e| git2::Error::from_str(&e.to_string()))?);
                self.digests.insert(top, d);
            } else {
                stack.extend(missing);
            }
        }
        self.digests.get(&oid).copied().ok_or_else(|| git2::Error::from_str("commit event not built"))
    }
}

/// Git's verdict letters (`%G?` of git-log(1)) as words.
fn verdict_name(v: char) -> &'static str {
    match v {
        'G' => "good",
        'U' => "good_unknown_validity",
        'B' => "bad",
        'X' => "expired_signature",
        'Y' => "expired_key",
        'R' => "revoked_key",
        'E' => "unverifiable",
        'N' => "none",
        _ => "unverified",
    }
}

/// Asks the `git` command (with the repository's own gpg / ssh signer
/// configuration) to check the signatures of `signed`, in one run of
/// `git log --no-walk --stdin --format='%H %G? %GK'`. Empty when git
/// cannot be run: those commits stay `unverified`.
fn verify(repo: &Path, signed: &[Oid]) -> HashMap<Oid, (char, String)> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    if signed.is_empty() {
        return HashMap::new();
    }
    let child = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["log", "--no-walk=unsorted", "--stdin", "--format=%H %G? %GK"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return HashMap::new() };
    if let Some(mut stdin) = child.stdin.take() {
        let ids: String = signed.iter().map(|o| format!("{o}\n")).collect();
        if stdin.write_all(ids.as_bytes()).is_err() {
            return HashMap::new();
        }
    }
    let Ok(out) = child.wait_with_output() else { return HashMap::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            let id = Oid::from_str(it.next()?).ok()?;
            let v = it.next()?.chars().next()?;
            Some((id, (v, it.next().unwrap_or_default().trim().to_owned())))
        })
        .collect()
}

/// `seconds` since the epoch at UTC offset `offset_min`, as RFC 3339;
/// `None` when either is out of range (a malformed commit).
fn rfc3339(seconds: i64, offset_min: i32) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    let off = time::UtcOffset::from_whole_seconds(offset_min.checked_mul(60)?).ok()?;
    t.to_offset(off).format(&time::format_description::well_known::Rfc3339).ok()
}

/// The error for a commit whose `who` (author, committer) time cannot be
/// written as a date.
fn bad_time(id: Oid, who: &str) -> git2::Error {
    git2::Error::from_str(&format!("commit {id}: {who} time out of range"))
}

/// Ingests the commits reachable from HEAD of the repository at `repo`
/// (after `since`, if given) into `dest`, parents first, skipping commits
/// already recorded in a local ledger.
///
/// # Errors
/// [`Error`]: the repository, the revision, the ledger's index or the sink.
pub fn ingest(repo_path: &Path, since: Option<&str>, dest: Destination, progress: &mut dyn FnMut(u64, u64)) -> Result<Outcome, Error> {
    let git = |source| Error::Git { repo: repo_path.to_owned(), source };
    let repo = Repository::open(repo_path).map_err(git)?;
    let mut walk = repo.revwalk().map_err(git)?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE).map_err(git)?;
    walk.push_head().map_err(git)?;
    if let Some(rev) = since {
        let o = repo.revparse_single(rev).map_err(|source| Error::BadRevision { repo: repo_path.to_owned(), rev: rev.to_owned(), source })?;
        walk.hide(o.id()).map_err(git)?;
    }
    let oids: Vec<Oid> = walk.collect::<Result<_, _>>().map_err(git)?;
    // Commits already in a local ledger: input digest -> the recorded
    // event's digest (a signature verdict may differ today, so the event is
    // not recomputed).
    let recorded: HashMap<String, Digest> = match &dest {
        Destination::Ledger { dir, index } => {
            let ledger = zkaudit_app::ledger::Ledger::open(dir, index.as_deref())?;
            let q = zkaudit_index::Query::new(zkaudit_index::Selector::Type("git_commit".into()));
            let reader = ledger.reader()?;
            let mut m = HashMap::new();
            for e in ledger.select(&q)? {
                let bytes = reader.entry(e.leaf_index).map_err(|source| Error::Entry { index: e.leaf_index, source })?;
                m.insert(e.input, digest_bytes(&bytes));
            }
            m
        }
        Destination::Server { .. } => HashMap::new(),
    };
    let signed: Vec<Oid> = oids.iter().copied().filter(|o| repo.extract_signature(o, None).is_ok()).collect();
    let verdicts = verify(repo_path, &signed);
    let url = std::fs::canonicalize(repo_path).unwrap_or_else(|_| repo_path.to_owned()).display().to_string();
    let mut events = Events { repo: &repo, url, digests: HashMap::new(), verdicts };
    let mut sink = Sink::open(dest, SinkOptions::new(COLLECTOR, Layer::Application))?;
    let (mut ingested, mut already) = (0u64, 0u64);
    let total = oids.len() as u64;
    for (i, oid) in oids.iter().enumerate() {
        let c = repo.find_commit(*oid).map_err(git)?;
        let e = events.event(&c).map_err(git)?;
        let d = if let Some(d) = recorded.get(&e.input.to_string()) {
            already += 1;
            *d
        } else {
            ingested += 1;
            sink.send(&e)?
        };
        events.digests.insert(*oid, d);
        progress(i as u64 + 1, total);
    }
    let sink = sink.finish()?;
    Ok(Outcome { commits: total, ingested, already, sink })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_times_out_of_range_are_none_not_the_epoch() {
        assert_eq!(rfc3339(0, 120).as_deref(), Some("1970-01-01T02:00:00+02:00"));
        assert_eq!(rfc3339(i64::MAX, 0), None);
        assert_eq!(rfc3339(0, i32::MAX), None);
    }
}
