//! A `zkaudit` server process in a CLI integration test: started, its
//! address read from its first line (`listening on URL`), stopped with
//! SIGTERM, and killed if the test ends first.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A `zkaudit` process that serves until dropped (killed) or stopped.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// The URL from its `listening on URL` line.
    pub url: String,
}

impl Daemon {
    /// Spawns `cmd` and waits for its `listening on URL` line.
    pub fn start(cmd: &mut Command) -> Daemon {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
        Daemon { child, url }
    }

    /// SIGTERM, and the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
