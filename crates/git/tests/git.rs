//! `zkaudit-git` on a repository made by the real `git` command, into a
//! real local ledger, and on this project's own history.

use std::path::Path;
use std::process::Command;

use zkaudit_collect::Destination;
use zkaudit_event::Event;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.org")
        .env("GIT_COMMITTER_NAME", "Bob")
        .env("GIT_COMMITTER_EMAIL", "bob@example.org")
        .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05+02:00")
        .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05+02:00")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn ledger(tmp: &Path) -> Destination {
    let dir = tmp.join("ledger");
    zkaudit_tlog::init(&dir, "test.example/git").unwrap();
    Destination::Ledger { dir, index: None }
}

fn entries(dest: &Destination) -> Vec<Event> {
    let Destination::Ledger { dir, .. } = dest else { unreachable!() };
    let r = zkaudit_tlog::LogReader::open(dir).unwrap();
    (0..r.size()).map(|i| Event::from_entry(&r.entry(i).unwrap()).unwrap()).collect()
}

#[test]
fn commits_become_linked_events_and_a_rerun_records_only_new_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("a.txt"), "one\n").unwrap();
    git(&repo, &["add", "a.txt"]);
    git(&repo, &["commit", "-q", "-m", "first: add a"]);
    std::fs::write(repo.join("a.txt"), "two\n").unwrap();
    std::fs::write(repo.join("b.txt"), "bee\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "second: change a, add b"]);
    let dest = ledger(tmp.path());

    let o = zkaudit_git::ingest(&repo, None, dest.clone(), &mut |_, _| {}).unwrap();
    assert_eq!((o.commits, o.ingested, o.already, o.sink.appended), (2, 2, 0, 2));
    let ev = entries(&dest);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let first = git(&repo, &["rev-parse", "HEAD~1"]);
    assert_eq!(ev[0].metadata["vcs.ref.head.revision"], first.as_str());
    assert_eq!(ev[1].metadata["vcs.ref.head.revision"], head.as_str());
    assert_eq!(ev[1].metadata["git.parents"], serde_json::json!([first]));
    assert_eq!(ev[1].metadata["git.tree.id"], git(&repo, &["rev-parse", "HEAD^{tree}"]).as_str());
    assert_eq!(ev[1].metadata["git.author.name"], "Ada");
    assert_eq!(ev[1].metadata["git.committer.email"], "bob@example.org");
    assert_eq!(ev[1].metadata["git.author.time"], "2026-01-02T03:04:05+02:00");
    assert_eq!(ev[1].timestamp.as_str(), "2026-01-02T01:04:05Z");
    assert_eq!(ev[1].metadata["git.signature.status"], "none");
    assert_eq!(ev[1].metadata["git.changes.path"], serde_json::json!(["a.txt", "b.txt"]));
    assert_eq!(ev[1].metadata["git.changes.status"], serde_json::json!(["M", "A"]));
    assert_eq!(ev[1].metadata["git.changes.blob"], serde_json::json!([git(&repo, &["rev-parse", "HEAD:a.txt"]), git(&repo, &["rev-parse", "HEAD:b.txt"])]));
    // The parent link is the first event's digest (its entry's SHA-256).
    let d0 = zkaudit_collect::shape::digest_bytes(&ev[0].canonical_bytes().unwrap());
    assert_eq!(ev[1].parents.as_deref(), Some(&[d0][..]));
    // input: the commit object's SHA-256 as git would name it, checked
    // against `git hash-object` of the object's body.
    let body = Command::new("git").args(["cat-file", "commit", "HEAD"]).current_dir(&repo).output().unwrap().stdout;
    let obj = tmp.path().join("obj");
    std::fs::write(&obj, &body).unwrap();
    let sha256 =
        Command::new("git").args(["hash-object", "--literally", "-t", "commit", "--object-format=sha256"]).arg(&obj).current_dir(tmp.path()).output().unwrap();
    if sha256.status.success() {
        assert_eq!(ev[1].input.to_string(), format!("sha256:{}", String::from_utf8_lossy(&sha256.stdout).trim()));
    } else {
        let mut h = <sha2::Sha256 as sha2::Digest>::new();
        sha2::Digest::update(&mut h, format!("commit {}\0", body.len()));
        sha2::Digest::update(&mut h, &body);
        assert_eq!(ev[1].input.0, <[u8; 32]>::from(sha2::Digest::finalize(h)));
    }

    // A re-run records nothing; a new commit is recorded alone, linked to
    // the event the first run recorded.
    let o = zkaudit_git::ingest(&repo, None, dest.clone(), &mut |_, _| {}).unwrap();
    assert_eq!((o.ingested, o.already, o.sink.appended), (0, 2, 0));
    std::fs::remove_file(repo.join("b.txt")).unwrap();
    git(&repo, &["commit", "-q", "-am", "third: remove b"]);
    let o = zkaudit_git::ingest(&repo, None, dest.clone(), &mut |_, _| {}).unwrap();
    assert_eq!((o.ingested, o.already), (1, 2));
    let ev = entries(&dest);
    assert_eq!(ev.len(), 3);
    let d1 = zkaudit_collect::shape::digest_bytes(&ev[1].canonical_bytes().unwrap());
    assert_eq!(ev[2].parents.as_deref(), Some(&[d1][..]));
    assert_eq!(ev[2].metadata["git.changes.status"], serde_json::json!(["D"]));

    // --since: only what follows the revision; a bad one is named.
    let o = zkaudit_git::ingest(&repo, Some("HEAD~1"), ledger(&tmp.path().join("other")), &mut |_, _| {}).unwrap();
    assert_eq!((o.commits, o.ingested), (1, 1));
    let err = zkaudit_git::ingest(&repo, Some("no-such-rev"), dest, &mut |_, _| {}).unwrap_err().to_string();
    assert!(err.contains("--since no-such-rev"), "{err}");
}

/// This project's own history (CI runs on a clone); skipped, and said so,
/// where the checkout has no .git.
#[test]
fn this_projects_history_ingests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if !root.join(".git").exists() {
        eprintln!("no .git at {}: skipped", root.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dest = ledger(tmp.path());
    let o = zkaudit_git::ingest(&root, None, dest.clone(), &mut |_, _| {}).unwrap();
    assert!(o.commits > 50, "{} commits", o.commits);
    assert_eq!(o.ingested, o.commits);
    let ev = entries(&dest);
    assert_eq!(ev.last().unwrap().metadata["vcs.ref.head.revision"], git(&root, &["rev-parse", "HEAD"]).as_str());
    // Every parent digest names an earlier event.
    let mut seen = std::collections::HashSet::new();
    for e in &ev {
        for p in e.parents.iter().flatten() {
            assert!(seen.contains(p), "parent {p} not recorded before");
        }
        seen.insert(zkaudit_collect::shape::digest_bytes(&e.canonical_bytes().unwrap()));
    }
}

/// Signed commits (git's SSH signing): the verdict of `git` with the
/// repository's allowed-signers file is recorded, and a re-run keeps the
/// recorded events as they are.
#[test]
fn signature_status_is_gits_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    for k in ["trusted", "stranger"] {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(tmp.path().join(k))
            .status()
            .expect("ssh-keygen (Debian's openssh-client)");
        assert!(st.success());
    }
    let trusted_pub = std::fs::read_to_string(tmp.path().join("trusted.pub")).unwrap();
    std::fs::write(tmp.path().join("allowed"), format!("bob@example.org {trusted_pub}")).unwrap();
    git(&repo, &["config", "gpg.format", "ssh"]);
    git(&repo, &["config", "gpg.ssh.allowedSignersFile", tmp.path().join("allowed").to_str().unwrap()]);
    for (i, key) in [Some("trusted"), Some("stranger"), None].into_iter().enumerate() {
        std::fs::write(repo.join("f"), format!("{i}\n")).unwrap();
        git(&repo, &["add", "f"]);
        match key {
            Some(k) => git(&repo, &["-c", &format!("user.signingkey={}", tmp.path().join(k).display()), "commit", "-q", "-S", "-m", k]),
            None => git(&repo, &["commit", "-q", "--no-gpg-sign", "-m", "unsigned"]),
        };
    }
    let dest = ledger(tmp.path());
    zkaudit_git::ingest(&repo, None, dest.clone(), &mut |_, _| {}).unwrap();
    let ev = entries(&dest);
    let status: Vec<&str> = ev.iter().map(|e| e.metadata["git.signature.status"].as_str().unwrap()).collect();
    assert_eq!(status, ["good", "good_unknown_validity", "none"]);
    assert_eq!(ev[0].metadata["git.signature.format"], "ssh");
    assert!(ev[0].metadata["git.signature.key"].as_str().unwrap().starts_with("SHA256:"));
    // Trust changes (the allowed-signers file is emptied); a re-run records
    // nothing new, and a new commit links to the event as recorded.
    std::fs::write(tmp.path().join("allowed"), "").unwrap();
    git(&repo, &["commit", "-q", "--allow-empty", "--no-gpg-sign", "-m", "later"]);
    let o = zkaudit_git::ingest(&repo, None, dest.clone(), &mut |_, _| {}).unwrap();
    assert_eq!((o.ingested, o.already), (1, 3));
    let ev = entries(&dest);
    let d2 = zkaudit_collect::shape::digest_bytes(&ev[2].canonical_bytes().unwrap());
    assert_eq!(ev[3].parents.as_deref(), Some(&[d2][..]));
}
