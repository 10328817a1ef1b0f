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
}

/// A content digest written `sha256:<64 lowercase hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        let hexpart = s.strip_prefix("sha256:").ok_or_else(|| format!("digest {s:?} must start with \"sha256:\""))?;
        let bad = || format!("digest {s:?} must be \"sha256:\" followed by 64 lowercase hex digits");
        if hexpart.len() != 64 {
            return Err(bad());
        }
        // Lowercase only: uppercase would be a second spelling of one digest.
        let nibble = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(hexpart.as_bytes().chunks_exact(2)) {
            *o = (nibble(pair[0]).ok_or_else(bad)? << 4) | nibble(pair[1]).ok_or_else(bad)?;
        }
        Ok(Self(out))
    }
}

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
        Ok(Self { text: s.to_owned(), unix_nanos: dt.unix_timestamp_nanos(), fraction_digits: fraction_digits as u8 })
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
        use crate::jcs::{digest, object, string};
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"input\":");
        digest(&mut out, &self.input);
        out.extend_from_slice(b",\"layer\":");
        string(&mut out, self.layer.as_str());
        out.extend_from_slice(b",\"metadata\":");
        object(&mut out, &self.metadata)?;
        out.extend_from_slice(b",\"output\":");
        digest(&mut out, &self.output);
        if let Some(parents) = &self.parents {
            out.extend_from_slice(b",\"parents\":[");
            for (i, p) in parents.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                digest(&mut out, p);
            }
            out.push(b']');
        }
        if let Some(p) = &self.proof {
            out.extend_from_slice(b",\"proof\":{\"image_id\":");
            string(&mut out, &p.image_id);
            out.extend_from_slice(b",\"journal_digest\":");
            digest(&mut out, &p.journal_digest);
            out.extend_from_slice(b",\"kind\":");
            string(&mut out, &p.kind);
            out.extend_from_slice(b",\"receipt_digest\":");
            digest(&mut out, &p.receipt_digest);
            out.push(b'}');
        }
        out.extend_from_slice(b",\"timestamp\":");
        string(&mut out, self.timestamp.as_str());
        out.extend_from_slice(b",\"type\":");
        string(&mut out, &self.kind);
        out.extend_from_slice(b",\"version\":");
        string(&mut out, &self.version);
        out.push(b'}');
        Ok(out)
    }

    /// Parses entry bytes back into an event (used when reading the log).
    pub fn from_entry(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
