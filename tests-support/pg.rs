//! Test support shared by several crates' integration tests.

use std::path::PathBuf;
use std::process::Command;

/// A PostgreSQL server of its own in a temporary directory, on a loopback
/// port, stopped when dropped. Uses Debian's server binaries; as root, the
/// server runs as the `postgres` user (initdb refuses root).
pub struct PgServer {
    data: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// `postgres://zkaudit@127.0.0.1:PORT/postgres`.
    pub url: String,
}

impl PgServer {
    /// Initialises and starts the server; panics if it cannot.
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries in /usr/lib/postgresql (Debian package postgresql); scripts/setup.sh installs them")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|p| p.join("initdb").exists())
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let data = tempfile::tempdir().unwrap();
        let as_postgres = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
        if as_postgres {
            Command::new("chown").args(["-R", "postgres:postgres"]).arg(data.path()).status().unwrap();
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let pgdata = data.path().join("pgdata");
        let run = |args: &[&str]| {
            let mut c = if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(args[0]));
                c
            } else {
                Command::new(bin.join(args[0]))
            };
            let out = c.args(&args[1..]).output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let pgdata_s = pgdata.display().to_string();
        run(&["initdb", "-D", &pgdata_s, "-A", "trust", "-U", "zkaudit", "--no-sync"]);
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", data.path().display());
        let log = data.path().join("server.log").display().to_string();
        run(&["pg_ctl", "-D", &pgdata_s, "-o", &opts, "-l", &log, "-w", "start"]);
        let url = format!("postgres://zkaudit@127.0.0.1:{port}/postgres");
        Self { data, bin, as_postgres, url }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let pgdata = self.data.path().join("pgdata");
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = c.arg("-D").arg(pgdata).args(["-m", "immediate", "stop"]).output();
    }
}
