//! Event fields and their validation.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The only event format version this build writes and accepts.
pub const EVENT_VERSION: &str = "1.0";

/// Largest entry, in bytes, that a tlog-tiles entry bundle can hold
/// (its length prefix is a big-endian uint16).
pub const MAX_ENTRY_BYTES: usize = u16::MAX as usize;

/// The system layer an event was observed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Application-level operations (API calls, business actions).
    Application,
    /// Computations, including zkVM proofs.
    Computation,
    /// Network traffic and connectivity.
    Network,
    /// Physical-world sensors and devices.
    Physical,
}

impl Layer {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Application => "application",
            Layer::Computation => "computation",
            Layer::Network => "network",
            Layer::Physical => "physical",
        }
    }

    /// The layer whose wire name is `name` (exactly, lowercase).
    pub fn from_name(name: &str) -> Option<Layer> {
        [Layer::Application, Layer::Computation, Layer::Network, Layer::Physical].into_iter().find(|l| l.as_str() == name)
    }
}

/// A content digest written `sha256:<64 lowercase hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        let hexpart = s.strip_prefix("sha256:").ok_or_else(|| format!("digest {s:?} must start with \"sha256:\""))?;
        Self::from_lower_hex(hexpart.as_bytes()).ok_or_else(|| format!("digest {s:?} must be \"sha256:\" followed by 64 lowercase hex digits"))
    }

    /// The 32 bytes written as exactly 64 lowercase hex digits (checked by
    /// [`LowerHex::check`]); `None` for anything else (uppercase would be
    /// a second spelling of one digest).
    fn from_lower_hex(hex: &[u8]) -> Option<Self> {
        let LowerHex(hex) = LowerHex::check(hex)?;
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            *o = (NIBBLE[usize::from(pair[0])] << 4) | NIBBLE[usize::from(pair[1])];
        }
        Some(Self(out))
    }
}

/// A digest's 64 lowercase hex digits as read, checked but not decoded:
/// its canonical text is itself, so the fast path of the JSON Lines
/// reader copies it instead of decoding and encoding it again.
#[derive(Clone, Copy)]
pub(crate) struct LowerHex<'a>(&'a [u8]);

impl<'a> LowerHex<'a> {
    /// `hex` if it is exactly 64 lowercase hex digits: the one check of a
    /// digest's spelling, which [`Digest::from_lower_hex`] decodes after.
    pub(crate) fn check(hex: &'a [u8]) -> Option<Self> {
        let all = hex.iter().fold(0u8, |acc, &b| acc | NIBBLE[usize::from(b)]);
        (hex.len() == 64 && all & 0xf0 == 0).then_some(Self(hex))
    }
}

/// How [`EntryFields`] spells its digests and strings: from parsed values
/// ([`Digest`]; strings escaped as RFC 8785 §3.2.2.2 says), or as the fast
/// path of the JSON Lines reader read them ([`LowerHex`]; strings it
/// checked to hold nothing that needs escaping), which is already
/// canonical and only copied.
pub(crate) trait Spelling {
    /// Appends the digest as a JSON string, `"sha256:<hex>"`.
    fn digest(&self, out: &mut Vec<u8>);
    /// Appends `s` (the `layer`, `timestamp`, `type` or `version`) as a
    /// JSON string.
    fn string(out: &mut Vec<u8>, s: &str);
}

impl Spelling for Digest {
    fn digest(&self, out: &mut Vec<u8>) {
        crate::jcs::digest(out, self);
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        crate::jcs::string(out, s);
    }
}

impl Spelling for LowerHex<'_> {
    fn digest(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\"sha256:");
        out.extend_from_slice(self.0);
        out.push(b'"');
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Each byte's value as a lowercase hex digit, or 0xff if it is none.
const NIBBLE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 16 {
        t[b"0123456789abcdef"[i] as usize] = i as u8;
        i += 1;
    }
    t
};

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(de::Error::custom)
    }
}

/// An RFC 3339 timestamp with up to nanosecond precision, kept exactly as
/// written: its precision is itself evidence (trading rules audit it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Timestamp {
    text: String,
    #[serde(skip)]
    unix_nanos: i128,
    #[serde(skip)]
    fraction_digits: u8,
}

impl Timestamp {
    /// The UTC time `ns` nanoseconds after the Unix epoch, written with nine
    /// fraction digits (`2026-12-02T16:24:28.123456789Z`); `None` outside
    /// the years 0000 to 9999.
    pub fn from_unix_nanos(ns: i128) -> Option<Self> {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns).ok()?;
        if !(0..=9999).contains(&t.year()) {
            return None;
        }
        let text =
            format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second(), t.nanosecond());
        Some(Self { text, unix_nanos: ns, fraction_digits: 9 })
    }

    /// The current time, as [`Timestamp::from_unix_nanos`] writes it (the
    /// epoch if the system clock is set before it).
    pub fn now() -> Self {
        let ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        i128::try_from(ns).ok().and_then(Self::from_unix_nanos).unwrap_or_else(|| Self {
            text: "1970-01-01T00:00:00.000000000Z".to_owned(),
            unix_nanos: 0,
            fraction_digits: 9,
        })
    }

    /// Parses an RFC 3339 date-time (`2026-01-29T12:20:23.925000001-05:00`)
    /// with 0 to 9 fractional-second digits.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (unix_nanos, fraction_digits) = Self::check(s)?;
        Ok(Self { text: s.to_owned(), unix_nanos, fraction_digits })
    }

    /// Checks `s` as [`Timestamp::parse`] does, returning its nanoseconds
    /// since the epoch and its number of fraction digits.
    pub(crate) fn check(s: &str) -> Result<(i128, u8), String> {
        let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|e| format!("timestamp {s:?} is not RFC 3339: {e}"))?;
        // The time crate takes any byte between date and time; RFC 3339 has
        // `T` (or `t`, §5.6) and lets applications use a space. Anything else
        // would also throw off the fraction count below (`2026-01-29.12:00:00Z`).
        if !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
            return Err(format!("timestamp {s:?} is not RFC 3339: date and time must be separated by \"T\""));
        }
        // Count the fraction digits of the seconds field ourselves: more than
        // nine would be silently truncated to nanoseconds.
        let fraction_digits = match s.find('.') {
            Some(dot) => s[dot + 1..].bytes().take_while(u8::is_ascii_digit).count(),
            None => 0,
        };
        if fraction_digits > 9 {
            return Err(format!("timestamp {s:?} has {fraction_digits} fractional digits; at most 9 (nanoseconds) are allowed"));
        }
        Ok((dt.unix_timestamp_nanos(), fraction_digits as u8))
    }

    /// Whether `s` has the common form `YYYY-MM-DDTHH:MM:SS[.f]Z`, with one
    /// to nine fraction digits, a real calendar date and a second of 0 to
    /// 59: a quick yes to what [`Timestamp::check`] accepts, for the fast
    /// path of the JSON Lines reader. `false` says nothing; such a string
    /// goes to `check`.
    pub(crate) fn is_plain_utc(s: &str) -> bool {
        let b = s.as_bytes();
        let Some((b'Z', b)) = b.split_last() else { return false };
        let (Some(head), fraction) = (b.first_chunk::<19>(), b.get(19..).unwrap_or_default()) else { return false };
        let digits = |r: std::ops::Range<usize>| head[r].iter().try_fold(0u32, |v, &d| d.is_ascii_digit().then(|| v * 10 + u32::from(d - b'0')));
        let shape = head[4] == b'-' && head[7] == b'-' && head[10] == b'T' && head[13] == b':' && head[16] == b':';
        let fraction_ok = match fraction.split_first() {
            None => true,
            Some((b'.', f)) => (1..=9).contains(&f.len()) && f.iter().all(u8::is_ascii_digit),
            Some(_) => false,
        };
        let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) =
            (digits(0..4), digits(5..7), digits(8..10), digits(11..13), digits(14..16), digits(17..19))
        else {
            return false;
        };
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            2 => 28 + u32::from(leap),
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        shape && fraction_ok && (1..=12).contains(&month) && (1..=days).contains(&day) && hour < 24 && minute < 60 && second < 60
    }

    /// The timestamp as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Nanoseconds since the Unix epoch (UTC).
    pub fn unix_nanos(&self) -> i128 {
        self.unix_nanos
    }

    /// Precision of the timestamp as written, in nanoseconds: 1 for nine
    /// fractional digits, 10^9 for none.
    pub fn precision_ns(&self) -> u64 {
        10u64.pow(9 - u32::from(self.fraction_digits))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&s).map_err(de::Error::custom)
    }
}

/// A reference to the proof that backs a computation event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofRef {
    /// Proof system and receipt kind, e.g. `risc0-composite`.
    pub kind: String,
    /// SHA-256 of the receipt bytes.
    pub receipt_digest: Digest,
    /// RISC Zero image ID of the guest program, 64 lowercase hex digits.
    #[serde(deserialize_with = "hex32")]
    pub image_id: String,
    /// SHA-256 of the journal bytes.
    pub journal_digest: Digest,
}

fn hex32<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(de::Error::custom(format_args!("image ID {s:?} must be 64 lowercase hex digits")));
    }
    Ok(s)
}

fn version<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s != EVENT_VERSION {
        return Err(de::Error::custom(format_args!("unsupported version {s:?}; this build accepts {EVENT_VERSION:?}")));
    }
    Ok(s)
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Err(de::Error::custom("must not be empty"));
    }
    Ok(s)
}

/// One recorded operation: the universal event format.
///
/// Wire shape (JSON):
/// `{"version","timestamp","layer","type","input","output","metadata"[,"proof"][,"parents"]}`.
/// Unknown top-level fields are rejected. The ledger, not the writer,
/// assigns the leaf index and integration time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Format version; must be [`EVENT_VERSION`].
    #[serde(deserialize_with = "version")]
    pub version: String,
    /// When the operation happened (RFC 3339, up to nanoseconds).
    pub timestamp: Timestamp,
    /// The layer it was observed at.
    pub layer: Layer,
    /// Operation type, e.g. `failover` or `plan_proof`; non-empty.
    #[serde(rename = "type", deserialize_with = "non_empty")]
    pub kind: String,
    /// Digest of the operation's input.
    pub input: Digest,
    /// Digest of the operation's output.
    pub output: Digest,
    /// Free-form details; I-JSON only (no duplicate names, safe integers).
    #[serde(deserialize_with = "crate::strict::object")]
    pub metadata: Map<String, Value>,
    /// Proof backing this event, if any.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::strict::optional_object")]
    pub proof: Option<ProofRef>,
    /// Digests of the events or artifacts this one derives from (lineage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parents: Option<Vec<Digest>>,
}

/// An [`Event`] that must arrive as a JSON object (see `strict::object_only`).
pub(crate) struct EventObject(pub Event);

impl<'de> Deserialize<'de> for EventObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::strict::object_only(d).map(EventObject)
    }
}

impl Event {
    /// The entry bytes: RFC 8785 canonical JSON of this event (members in
    /// the order `input`, `layer`, `metadata`, `output`, `parents`,
    /// `proof`, `timestamp`, `type`, `version`, which is RFC 8785's).
    ///
    /// Errors only if a number in `metadata` cannot be written, which the
    /// strict parser already excludes.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(256);
        let fields = EntryFields {
            input: &self.input,
            layer: self.layer,
            output: &self.output,
            parents: self.parents.as_deref(),
            proof: self.proof.as_ref(),
            timestamp: self.timestamp.as_str(),
            kind: &self.kind,
            version: &self.version,
        };
        fields.write(&mut out, |out| crate::jcs::object(out, &self.metadata))?;
        Ok(out)
    }

    /// Parses entry bytes back into an event (used when reading the log).
    pub fn from_entry(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// An event's members other than `metadata`, borrowed, in the form its
/// entry bytes are written from: the one place that knows their RFC 8785
/// order, for [`Event::canonical_bytes`] and the fast path of the JSON
/// Lines reader, which gives the digests and strings as it read them (`D`).
pub(crate) struct EntryFields<'a, D: Spelling = Digest> {
    pub input: &'a D,
    pub layer: Layer,
    pub output: &'a D,
    pub parents: Option<&'a [D]>,
    pub proof: Option<&'a ProofRef>,
    pub timestamp: &'a str,
    pub kind: &'a str,
    pub version: &'a str,
}

impl<D: Spelling> EntryFields<'_, D> {
    /// Appends the entry bytes to `out`, with `metadata` writing the
    /// canonical metadata object (members in the order `input`, `layer`,
    /// `metadata`, `output`, `parents`, `proof`, `timestamp`, `type`,
    /// `version`, which is RFC 8785's).
    pub fn write<E>(&self, out: &mut Vec<u8>, metadata: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        use crate::jcs::{digest, string};
        out.extend_from_slice(b"{\"input\":");
        self.input.digest(out);
        out.extend_from_slice(b",\"layer\":");
        D::string(out, self.layer.as_str());
        out.extend_from_slice(b",\"metadata\":");
        metadata(out)?;
        out.extend_from_slice(b",\"output\":");
        self.output.digest(out);
        if let Some(parents) = self.parents {
            out.extend_from_slice(b",\"parents\":[");
            for (i, p) in parents.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                p.digest(out);
            }
            out.push(b']');
        }
        if let Some(p) = self.proof {
            out.extend_from_slice(b",\"proof\":{\"image_id\":");
            string(out, &p.image_id);
            out.extend_from_slice(b",\"journal_digest\":");
            digest(out, &p.journal_digest);
            out.extend_from_slice(b",\"kind\":");
            string(out, &p.kind);
            out.extend_from_slice(b",\"receipt_digest\":");
            digest(out, &p.receipt_digest);
            out.push(b'}');
        }
        out.extend_from_slice(b",\"timestamp\":");
        D::string(out, self.timestamp);
        out.extend_from_slice(b",\"type\":");
        D::string(out, self.kind);
        out.extend_from_slice(b",\"version\":");
        D::string(out, self.version);
        out.push(b'}');
        Ok(())
    }
}
