//! `zkaudit record` on real processes, into a real ledger: a shell
//! pipeline, a Python client of a server on loopback, a gcc build, and
//! processes that fork and die by a signal. Digests are checked against
//! `sha256sum` of the files, argv against what Debian's `strace -f` saw.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use zkaudit_collect::Destination;
use zkaudit_event::Event;
use zkaudit_record::{run, CommandStatus, Recorded};

/// Records `argv` (run in `cwd`) into a fresh ledger; returns the outcome
/// and every event of the ledger.
fn record(cwd: &Path, argv: &[&str]) -> (Recorded, Vec<Event>) {
    let ledger = cwd.join(".ledger");
    let _ = std::fs::remove_dir_all(&ledger);
    zkaudit_tlog::init(&ledger, "test.example/record").unwrap();
    let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
    let r = run(&argv, Some(cwd), Destination::Ledger { dir: ledger.clone(), index: None }).unwrap();
    let reader = zkaudit_tlog::LogReader::open(&ledger).unwrap();
    let events: Vec<Event> = (0..reader.size()).map(|i| Event::from_entry(&reader.entry(i).unwrap()).unwrap()).collect();
    assert_eq!(events.len() as u64, r.sink.appended, "every event sent is in the ledger, once");
    assert_eq!(r.sink.events, r.sink.appended);
    (r, events)
}

fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    format!("sha256:{}", String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap())
}

fn meta<'a>(e: &'a Event, k: &str) -> Option<&'a str> {
    e.metadata.get(k).and_then(Value::as_str)
}

fn of_type<'a>(events: &'a [Event], kind: &str) -> Vec<&'a Event> {
    events.iter().filter(|e| e.kind == kind).collect()
}

fn written<'a>(events: &'a [Event], path: &Path) -> &'a Event {
    let p = path.to_str().unwrap();
    of_type(events, "file_write").into_iter().rfind(|e| meta(e, "file.path") == Some(p)).unwrap_or_else(|| panic!("no file_write of {p}"))
}

fn has_parent(e: &Event, d: &str) -> bool {
    e.parents.iter().flatten().any(|p| p.to_string() == d)
}

/// gcc's temporary files (`/tmp/ccAbC123.s`) differ from run to run.
fn normalise(arg: &str) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find("/tmp/cc") {
        out.push_str(&rest[..i + 7]);
        let tail = &rest[i + 7..];
        let n = tail.bytes().take(6).take_while(u8::is_ascii_alphanumeric).count();
        out.push_str(&"X".repeat(n));
        rest = &tail[n..];
    }
    out + rest
}

/// Every process_exec's argv as execve was given it (what strace prints;
/// `process.args` is the argv the image runs with, which differs for
/// scripts), as a sorted list (processes run concurrently).
fn exec_argvs(events: &[Event]) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = of_type(events, "process_exec")
        .iter()
        .map(|e| e.metadata.get("zkaudit.execve.args").unwrap_or(&e.metadata["process.args"]))
        .map(|a| a.as_array().unwrap().iter().map(|a| normalise(a.as_str().unwrap())).collect())
        .collect();
    v.sort();
    v
}

/// The argv of every successful execve that `strace -f` (Debian's) sees
/// for the same command, sorted.
fn strace_argvs(cwd: &Path, argv: &[&str]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("trace");
    let st = Command::new("strace")
        .args(["-f", "-ff", "-qq", "-v", "-s", "65536", "-e", "trace=execve", "-e", "signal=none", "-o"])
        .arg(&prefix)
        .args(argv)
        .current_dir(cwd)
        .status()
        .unwrap();
    assert!(st.success() || argv.contains(&"kill"));
    let mut out = Vec::new();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        for line in text.lines().filter(|l| l.starts_with("execve(") && l.ends_with("= 0")) {
            out.push(parse_strace_argv(line).iter().map(|a| normalise(a)).collect());
        }
    }
    out.sort();
    out
}

/// `["a", "b\n"]` from an strace execve line, C escapes decoded.
fn parse_strace_argv(line: &str) -> Vec<String> {
    let start = line.find(", [").unwrap() + 3;
    let b = line.as_bytes();
    let (mut i, mut args) = (start, Vec::new());
    while b[i] != b']' {
        assert_eq!(b[i], b'"', "in {line}");
        i += 1;
        let mut s = Vec::new();
        while b[i] != b'"' {
            if b[i] == b'\\' {
                i += 1;
                match b[i] {
                    b'n' => s.push(b'\n'),
                    b't' => s.push(b'\t'),
                    b'0'..=b'7' => {
                        let mut v = 0u8;
                        let mut k = 0;
                        while k < 3 && (b'0'..=b'7').contains(&b[i]) {
                            v = v * 8 + (b[i] - b'0');
                            i += 1;
                            k += 1;
                        }
                        s.push(v);
                        continue;
                    }
                    c => s.push(c),
                }
            } else {
                s.push(b[i]);
            }
            i += 1;
        }
        args.push(String::from_utf8(s).unwrap());
        i += 1;
        if b[i] == b',' {
            i += 2;
        }
    }
    args
}

#[test]
fn a_shell_pipeline_that_reads_and_writes_files() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("in.txt"), "hello, ledger\nsecond line\n").unwrap();
    let script = d.path().join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\n: \"$@\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cmd = [
        "sh",
        "-c",
        "cat in.txt | tr a-z A-Z > out.txt && cp out.txt copy.txt && mv copy.txt moved.txt && chmod +x moved.txt && rm out.txt && ./hello.sh a 'b c'",
    ];
    let (r, events) = record(d.path(), &cmd);
    assert_eq!(r.status, CommandStatus::Exited(0));
    assert_eq!(r.stats.gaps, 0);

    let input = sha256sum(&d.path().join("in.txt"));
    let moved = d.path().join("moved.txt");
    let output = sha256sum(&moved);
    assert_eq!(std::fs::read_to_string(&moved).unwrap(), "HELLO, LEDGER\nSECOND LINE\n");
    // cat's read of in.txt carries the digest sha256sum computes.
    let read = of_type(&events, "file_read").into_iter().find(|e| meta(e, "file.path").is_some_and(|p| p.ends_with("/in.txt"))).unwrap();
    assert_eq!(read.input.to_string(), input);
    assert_eq!(meta(read, "process.name"), Some("cat"));
    assert_eq!(read.metadata["ocsf.class_uid"], 1001);
    assert_eq!(read.metadata["ocsf.activity_id"], 2);
    // tr wrote out.txt from what came through the pipe from cat.
    let out = written(&events, &d.path().join("out.txt"));
    assert_eq!(meta(out, "process.name"), Some("tr"));
    assert_eq!(out.output.to_string(), output, "out.txt held the same bytes as moved.txt");
    assert!(has_parent(out, &input), "the pipe carries cat's read of in.txt into tr's write");
    // cp read out.txt and wrote copy.txt, whose lineage names out.txt.
    let copy = written(&events, &d.path().join("copy.txt"));
    assert_eq!(meta(copy, "process.name"), Some("cp"));
    assert!(has_parent(copy, &output));
    let exe = of_type(&events, "process_exec").into_iter().find(|e| meta(e, "process.name") == Some("cp")).unwrap();
    assert!(has_parent(copy, &exe.input.to_string()), "a written file names the executable that wrote it");
    // mv, chmod +x and rm.
    let rename = of_type(&events, "file_rename")[0];
    assert_eq!(meta(rename, "file.path"), moved.to_str());
    assert_eq!(rename.output.to_string(), output);
    let chmod = of_type(&events, "file_chmod")[0];
    assert_eq!(meta(chmod, "file.path"), moved.to_str());
    assert_eq!(meta(chmod, "file.mode").map(|m| u32::from_str_radix(m, 8).unwrap() & 0o111), Some(0o111));
    let del = of_type(&events, "file_delete")[0];
    assert!(meta(del, "file.path").unwrap().ends_with("/out.txt"));
    assert_eq!(del.input.to_string(), output, "the digest of what was deleted");
    // Every process exits, each exit names its process's event.
    let execs = of_type(&events, "process_exec");
    let exits = of_type(&events, "process_exit");
    assert!(exits.len() >= execs.len());
    for e in &exits {
        assert!(e.parents.as_ref().is_some_and(|p| p.len() == 1));
        assert_eq!(e.metadata["ocsf.activity_id"], 2);
    }
    // Entity IDs are unique; children name their parent's.
    let ids: std::collections::HashSet<&str> = execs.iter().map(|e| meta(e, "process.entity_id").unwrap()).collect();
    assert_eq!(ids.len(), execs.len());
    for e in execs.iter().filter(|e| meta(e, "process.name") != Some("dash") && meta(e, "process.name") != Some("sh")) {
        assert!(e.metadata.contains_key("process.parent.entity_id"), "{e:?}");
        assert_eq!(e.parents.as_ref().map(Vec::len), Some(1));
    }
    assert_eq!(exec_argvs(&events), strace_argvs(d.path(), &cmd));
    // A script runs as its interpreter: process.args as the image runs,
    // zkaudit.execve.args as execve was given them.
    let run = execs.iter().find(|e| e.metadata.contains_key("zkaudit.execve.args")).expect("the script's exec");
    assert_eq!(run.metadata["zkaudit.execve.args"], serde_json::json!(["./hello.sh", "a", "b c"]));
    assert_eq!(run.metadata["process.args"], serde_json::json!(["/bin/sh", "./hello.sh", "a", "b c"]));
}

#[test]
fn a_python_client_of_a_server_on_loopback() {
    let d = tempfile::tempdir().unwrap();
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut c, _) = server.accept().unwrap();
        let mut buf = [0u8; 11];
        c.read_exact(&mut buf).unwrap();
        c.write_all(b"pong, 17 bytes!!\n").unwrap();
        buf
    });
    let script = format!(
        "import socket\nc = socket.create_connection(('127.0.0.1', {port}))\nc.sendall(b'ping 11 b!\\n')\nd = b''\nwhile len(d) < 17:\n    b = c.recv(64)\n    if not b:\n        break\n    d += b\nc.close()\nprint(d)\n"
    );
    std::fs::write(d.path().join("client.py"), script).unwrap();
    let (r, events) = record(d.path(), &["python3", "client.py"]);
    assert_eq!(r.status, CommandStatus::Exited(0));
    assert_eq!(&t.join().unwrap(), b"ping 11 b!\n");
    let connect = of_type(&events, "network_connect");
    let connect = connect.iter().find(|e| e.metadata["destination.port"] == port).expect("the connect to our port");
    assert_eq!(meta(connect, "destination.ip"), Some("127.0.0.1"));
    assert_eq!(meta(connect, "network.transport"), Some("tcp"));
    assert_eq!(meta(connect, "event.outcome"), Some("success"));
    assert_eq!(connect.metadata["ocsf.class_uid"], 4001);
    assert!(meta(connect, "process.name").unwrap().starts_with("python3"));
    let close = of_type(&events, "network_close").into_iter().find(|e| e.metadata["destination.port"] == port).unwrap();
    assert_eq!(close.metadata["source.bytes"], 11, "bytes sent");
    assert_eq!(close.metadata["destination.bytes"], 17, "bytes received");
    assert_eq!(close.metadata["source.port"], connect.metadata["source.port"]);
}

#[test]
fn a_multi_process_gcc_build() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("hello.c"), "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n").unwrap();
    let cmd = ["gcc", "hello.c", "-o", "hello"];
    let (r, events) = record(d.path(), &cmd);
    assert_eq!(r.status, CommandStatus::Exited(0));
    let source = sha256sum(&d.path().join("hello.c"));
    let binary = written(&events, &d.path().join("hello"));
    assert_eq!(binary.output.to_string(), sha256sum(&d.path().join("hello")));
    assert!(meta(binary, "process.name").unwrap().contains("ld"), "{:?}", meta(binary, "process.name"));
    // cc1 read hello.c; its assembly went to as, its object to ld.
    let cc1_write = of_type(&events, "file_write").into_iter().find(|e| has_parent(e, &source)).unwrap();
    assert_eq!(meta(cc1_write, "process.name"), Some("cc1"));
    let obj = of_type(&events, "file_write").into_iter().find(|e| has_parent(e, &cc1_write.output.to_string())).unwrap();
    assert!(meta(obj, "process.name").unwrap().ends_with("as"));
    assert!(has_parent(binary, &obj.output.to_string()));
    assert_eq!(exec_argvs(&events), strace_argvs(d.path(), &cmd));
}

#[test]
fn processes_that_fork_and_die_by_a_signal() {
    let d = tempfile::tempdir().unwrap();
    // A fork that never execs and kills itself, then an exec'd shell that
    // dies by SIGSEGV; the command's own status is 7.
    let cmd = ["sh", "-c", "(kill -KILL $(sh -c 'echo $PPID')); sh -c 'kill -SEGV $$'; exit 7"];
    let (r, events) = record(d.path(), &cmd);
    assert_eq!(r.status, CommandStatus::Exited(7));
    let exits: BTreeMap<String, &Event> = of_type(&events, "process_exit")
        .into_iter()
        .filter_map(|e| e.metadata.get("zkaudit.process.signal").and_then(Value::as_str).map(|s| (s.to_owned(), e)))
        .collect();
    assert!(exits.contains_key("SIGKILL") && exits.contains_key("SIGSEGV"), "{:?}", exits.keys());
    // The subshell never exec'd: its fork is recorded so its exit has a process.
    let killed = exits["SIGKILL"];
    let fork = of_type(&events, "process_fork").into_iter().find(|f| meta(f, "process.entity_id") == meta(killed, "process.entity_id")).unwrap();
    assert_eq!(meta(fork, "event.action"), Some("fork"));
    assert_eq!(meta(killed, "event.outcome"), Some("failure"));
    let root = of_type(&events, "process_exit").into_iter().find(|e| e.metadata.get("process.exit_code") == Some(&Value::from(7))).unwrap();
    assert_eq!(meta(root, "event.outcome"), Some("failure"));
}
