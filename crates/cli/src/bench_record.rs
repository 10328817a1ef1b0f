//! `zkaudit bench record`: the recorder's overhead on real workloads, and
//! the event rate it sustains into a local ledger.
//!
//! Each workload runs plain, under `zkaudit record --ledger` (a fresh
//! ledger each time, created outside the timing) and, for comparison,
//! when strace is installed, under `strace -f -o /dev/null` (every call
//! stopped twice) and under `strace -f --seccomp-bpf` limited to the calls
//! the recorder stops on (the cost of the ptrace stops alone, with nothing
//! read, hashed or recorded), interleaved rep by rep so that the machine's
//! noise falls on all modes alike. The
//! figures are medians and ratios against the plain run of the same
//! benchmark.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use serde_json::json;

use crate::bench::median;
use crate::output::{out, outln, print_json};

/// `zkaudit bench record` arguments.
#[derive(Args)]
pub struct RecordArgs {
    /// Scratch directory for the workloads and ledgers (removed afterwards).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Repetitions of each workload and mode.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// C files in the build workload.
    #[arg(long, default_value_t = 40)]
    c_files: usize,
    /// Print results as JSON lines.
    #[arg(long)]
    json: bool,
}

/// The calls the recorder's seccomp filter stops on, by strace's names
/// (fchmodat2 left out: Debian 12's strace does not know it).
const STOPPED_CALLS: &str = "trace=execve,execveat,open,openat,openat2,creat,close,close_range,dup,dup2,dup3,rename,renameat,renameat2,unlink,unlinkat,\
                             chmod,fchmod,fchmodat,pipe,pipe2,connect,bind,accept,accept4,fcntl";

/// A workload: a name and a shell script run in its own directory.
struct Workload {
    name: &'static str,
    what: &'static str,
    script: String,
}

fn workloads(c_files: usize) -> Vec<Workload> {
    vec![
        Workload {
            name: "c-build",
            what: "gcc -O1 -c of each C file (with 2 project headers), then link",
            script: format!(
                "rm -f src/*.o app; for f in src/*.c; do gcc -O1 -Iinclude -c \"$f\" -o \"${{f%.c}}.o\" || exit 1; done; gcc src/*.o -o app && ./app >/dev/null # {c_files} files"
            ),
        },
        Workload {
            name: "file-script",
            what: "sh writes 400 files, then cat, sort, find -exec sha256sum, tar, gzip, rm",
            script: "rm -rf t all sorted sums t.tar.gz; mkdir t; i=0; while [ $i -lt 400 ]; do printf 'line %s\\n' $i > t/f$i; i=$((i+1)); done; \
                     cat t/* > all; sort all > sorted; find t -type f -exec sha256sum {} + > sums; tar cf t.tar t; gzip -f t.tar; rm -r t"
                .into(),
        },
        Workload {
            name: "open-loop",
            what: "one sh process opening a file for reading 20,000 times (event rate)",
            script: "i=0; while [ $i -lt 20000 ]; do : < /etc/hostname; i=$((i+1)); done".into(),
        },
    ]
}

fn write_c_project(dir: &Path, n: usize) -> Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::create_dir_all(dir.join("include"))?;
    std::fs::write(dir.join("include/util.h"), "#pragma once\n#include <stdint.h>\nuint64_t mix(uint64_t x);\n")?;
    let mut decls = String::from("#pragma once\n#include <stdint.h>\n");
    let mut main = String::from("#include <stdio.h>\n#include \"funcs.h\"\n#include \"util.h\"\nint main(void) {\n    uint64_t s = 0;\n");
    for i in 0..n {
        decls += &format!("uint64_t f{i}(uint64_t x);\n");
        main += &format!("    s += f{i}({i});\n");
        let body = format!(
            "#include <string.h>\n#include \"funcs.h\"\n#include \"util.h\"\n\
             static uint64_t table{i}[64];\n\
             uint64_t f{i}(uint64_t x) {{\n    for (int k = 0; k < 64; k++) table{i}[k] = mix(x + k);\n    uint64_t s = 0;\n    \
             for (int k = 0; k < 64; k++) s ^= table{i}[k] << (k % 7);\n    return s;\n}}\n"
        );
        std::fs::write(dir.join(format!("src/f{i}.c")), body)?;
    }
    main += "    printf(\"%llu\\n\", (unsigned long long)s);\n    return 0;\n}\n";
    std::fs::write(dir.join("include/funcs.h"), decls)?;
    std::fs::write(dir.join("src/main.c"), main)?;
    std::fs::write(
        dir.join("src/util.c"),
        "#include \"util.h\"\nuint64_t mix(uint64_t x) { x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; return x ^ (x >> 33); }\n",
    )?;
    Ok(())
}

fn timed(cmd: &mut Command) -> Result<Duration> {
    let t = Instant::now();
    let out = cmd.output().context("running the workload")?;
    let d = t.elapsed();
    if !out.status.success() {
        bail!("workload failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(d)
}

/// `zkaudit bench record`.
pub fn bench_record(a: &RecordArgs) -> Result<()> {
    let me = std::env::current_exe()?;
    let scratch = tempfile::Builder::new().prefix("zkaudit-bench-record-").tempdir_in(&a.dir)?;
    let have_strace = Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success());
    for w in workloads(a.c_files) {
        let dir = scratch.path().join(w.name);
        std::fs::create_dir_all(&dir)?;
        if w.name == "c-build" {
            write_c_project(&dir, a.c_files)?;
        }
        let sh = |c: &mut Command| {
            c.arg("sh").arg("-c").arg(&w.script).current_dir(&dir);
        };
        let (mut plain, mut recorded, mut straced, mut floor, mut events) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for rep in 0..a.reps {
            let mut c = Command::new("env");
            sh(&mut c);
            plain.push(timed(&mut c)?);

            let ledger = scratch.path().join(format!("ledger-{}-{rep}", w.name));
            let report = scratch.path().join(format!("report-{}-{rep}.json", w.name));
            let init = Command::new(&me).args(["log", "init"]).arg(&ledger).args(["--origin", "bench.example/record"]).output()?;
            if !init.status.success() {
                bail!("log init: {}", String::from_utf8_lossy(&init.stderr));
            }
            let mut c = Command::new(&me);
            c.args(["record", "-q", "--ledger"]).arg(&ledger).arg("--report").arg(&report).arg("--");
            sh(&mut c);
            recorded.push(timed(&mut c)?);
            let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)?;
            events.push(r["sink"]["appended"].as_u64().unwrap_or(0));
            std::fs::remove_dir_all(&ledger)?;

            if have_strace {
                let mut c = Command::new("strace");
                c.args(["-f", "-o", "/dev/null"]);
                sh(&mut c);
                straced.push(timed(&mut c)?);
                let mut c = Command::new("strace");
                c.args(["-f", "--seccomp-bpf", "-o", "/dev/null", "-e", STOPPED_CALLS]);
                sh(&mut c);
                floor.push(timed(&mut c)?);
            }
        }
        let (p, r) = (median(plain), median(recorded));
        let s = (!straced.is_empty()).then(|| median(straced));
        let f = (!floor.is_empty()).then(|| median(floor));
        events.sort_unstable();
        let ev = events.get(events.len() / 2).copied().unwrap_or(0);
        let ratio = r.as_secs_f64() / p.as_secs_f64();
        let rate = ev as f64 / r.as_secs_f64();
        if a.json {
            print_json(&json!({
                "bench": "record", "workload": w.name, "what": w.what, "reps": a.reps,
                "plain_ms": p.as_secs_f64() * 1e3, "recorded_ms": r.as_secs_f64() * 1e3, "overhead_ratio": ratio,
                "strace_ms": s.map(|s| s.as_secs_f64() * 1e3), "strace_ratio": s.map(|s| s.as_secs_f64() / p.as_secs_f64()),
                "stops_only_ms": f.map(|f| f.as_secs_f64() * 1e3), "stops_only_ratio": f.map(|f| f.as_secs_f64() / p.as_secs_f64()),
                "events": ev, "events_per_s": rate,
            }));
        } else {
            let ms = |d: Duration| format!("{:.1} ms ({:.2}x)", d.as_secs_f64() * 1e3, d.as_secs_f64() / p.as_secs_f64());
            let st = match (s, f) {
                (Some(s), Some(f)) => format!("strace -f {}  stops only {}", ms(s), ms(f)),
                _ => "strace not installed".to_owned(),
            };
            outln!(
                "record {:<12} plain {:>8.1} ms  recorded {:>8.1} ms ({:.2}x)  {st}  {ev} events, {:.0} events/s  [{}; median of {}]",
                w.name,
                p.as_secs_f64() * 1e3,
                r.as_secs_f64() * 1e3,
                ratio,
                rate,
                w.what,
                a.reps
            );
        }
    }
    Ok(())
}
