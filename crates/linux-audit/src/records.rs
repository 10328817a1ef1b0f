//! Audit records (the text the kernel sends, `type=SYSCALL msg=audit(…)`)
//! and the joining of one event's records by their serial number.

use std::collections::BTreeMap;

/// `AUDIT_SYSCALL`.
pub const SYSCALL: u16 = 1300;
/// `AUDIT_PATH`.
pub const PATH: u16 = 1302;
/// `AUDIT_SOCKADDR`.
pub const SOCKADDR: u16 = 1306;
/// `AUDIT_CWD`.
pub const CWD: u16 = 1307;
/// `AUDIT_EXECVE`.
pub const EXECVE: u16 = 1309;
/// `AUDIT_EOE`: end of a multi-record event.
pub const EOE: u16 = 1320;
/// `AUDIT_PROCTITLE`.
pub const PROCTITLE: u16 = 1327;

/// One record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record type (`AUDIT_*`).
    pub kind: u16,
    /// The event's time, ns since the epoch (the kernel gives ms).
    pub time_ns: i128,
    /// The event's serial number (shared by all its records).
    pub serial: u64,
    /// `key=value` fields in order, values as written (quotes kept).
    pub fields: Vec<(String, String)>,
}

impl Record {
    /// The raw value of field `k`.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }

    /// Field `k` as a string: a quoted value without its quotes, an
    /// unquoted one hex-decoded (how the kernel writes values with spaces
    /// or control characters); `None` for `(null)`.
    pub fn text(&self, k: &str) -> Option<String> {
        decode(self.get(k)?)
    }

    /// Field `k` as a number (decimal, or hex for `a0`…`a3`).
    pub fn num(&self, k: &str) -> Option<u64> {
        let v = self.get(k)?;
        if k.len() == 2 && k.starts_with('a') {
            u64::from_str_radix(v, 16).ok()
        } else {
            v.parse().ok()
        }
    }
}

/// A value as written by the kernel's `audit_log_untrustedstring`.
pub fn decode(v: &str) -> Option<String> {
    if let Some(q) = v.strip_prefix('"') {
        return Some(q.strip_suffix('"').unwrap_or(q).to_owned());
    }
    if v == "(null)" || v == "?" {
        return None;
    }
    match hex::decode(v) {
        Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        _ => Some(v.to_owned()),
    }
}

/// Parses `audit(SECONDS.MILLIS:SERIAL): k=v k="v" …`; `None` if the text
/// does not start with the `audit(…)` stamp.
pub fn parse(kind: u16, payload: &[u8]) -> Option<Record> {
    let text = String::from_utf8_lossy(payload);
    let text = text.trim_end_matches(['\0', '\n']);
    let rest = text.strip_prefix("audit(")?;
    let (stamp, rest) = rest.split_once("):")?;
    let (time, serial) = stamp.split_once(':')?;
    let (secs, millis) = time.split_once('.')?;
    let time_ns = i128::from(secs.parse::<i64>().ok()?) * 1_000_000_000 + i128::from(millis.parse::<i64>().ok()?) * 1_000_000;
    let serial = serial.parse().ok()?;
    let mut fields = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let k0 = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        let key = rest[k0..i].to_owned();
        i += 1;
        let v0 = i;
        if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
            let q = b[i];
            i += 1;
            while i < b.len() && b[i] != q {
                i += 1;
            }
            i = (i + 1).min(b.len());
        } else {
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
        }
        fields.push((key, rest[v0..i].to_owned()));
    }
    Some(Record { kind, time_ns, serial, fields })
}

/// Records waiting for their event's end (`AUDIT_EOE`), by serial.
#[derive(Default, Debug)]
pub struct Joiner {
    open: BTreeMap<u64, Vec<Record>>,
}

impl Joiner {
    /// Adds a record; returns the event's records once it is complete.
    pub fn push(&mut self, r: Record) -> Option<Vec<Record>> {
        if r.kind == EOE {
            return self.open.remove(&r.serial);
        }
        self.open.entry(r.serial).or_default().push(r);
        None
    }

    /// Events still open whose time is before `before_ns` (their end
    /// record never came): returned as they are.
    pub fn stale(&mut self, before_ns: i128) -> Vec<Vec<Record>> {
        let old: Vec<u64> = self.open.iter().filter(|(_, rs)| rs.first().is_some_and(|r| r.time_ns < before_ns)).map(|(s, _)| *s).collect();
        old.into_iter().filter_map(|s| self.open.remove(&s)).collect()
    }
}

/// The argv of an `EXECVE` record (`argc=2 a0="ls" a1=2D6C`), and whether
/// it was cut (an argument split into `aN[i]` pieces or missing).
pub fn argv(r: &Record) -> (Vec<String>, bool) {
    let argc = r.num("argc").unwrap_or(0);
    let mut out = Vec::new();
    let mut cut = false;
    for i in 0..argc {
        match r.text(&format!("a{i}")) {
            Some(a) => out.push(a),
            None => {
                // Long arguments come as a{i}_len=N a{i}[0]=… a{i}[1]=…
                let mut parts = String::new();
                let mut k = 0;
                while let Some(p) = r.text(&format!("a{i}[{k}]")) {
                    parts += &p;
                    k += 1;
                }
                cut |= k == 0;
                out.push(parts);
            }
        }
    }
    (out, cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_join_by_serial() {
        let s = parse(
            SYSCALL,
            b"audit(1733222222.123:4567): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 ppid=10 pid=11 comm=\"ls\" exe=\"/usr/bin/ls\" key=\"zk\"",
        )
        .unwrap();
        assert_eq!((s.time_ns, s.serial), (1_733_222_222_123_000_000, 4567));
        assert_eq!(s.num("syscall"), Some(59));
        assert_eq!(s.num("a0"), Some(0x55d0));
        assert_eq!(s.text("exe").as_deref(), Some("/usr/bin/ls"));
        let e = parse(EXECVE, b"audit(1733222222.123:4567): argc=3 a0=\"ls\" a1=2D6C2061 a2=\"/tmp\"").unwrap();
        assert_eq!(argv(&e), (vec!["ls".to_owned(), "-l a".to_owned(), "/tmp".to_owned()], false));
        let mut j = Joiner::default();
        assert!(j.push(s.clone()).is_none());
        assert!(j.push(e).is_none());
        let eoe = parse(EOE, b"audit(1733222222.123:4567): ").unwrap();
        let done = j.push(eoe).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(done[0], s);
        assert!(parse(SYSCALL, b"not a record").is_none());
    }
}
