//! The ZK tags of NIP-90 job requests and results: parsed from events and
//! written into them, one definition for the provider and the buyer.
//!
//! A request carries the plan and its data as NIP-90 `i` tags:
//! `["i", <plan text>, "text", "", "plan"]` and
//! `["i", <data>, "text"|"url", "", "data:<input name>:<csv|jsonl>"]` (a
//! `url` input that ends in a SHA-256, as a Blossom URL does, is checked
//! against it), and the requirements `["verification","zk"]`,
//! `["zkvm","risc-zero"]`, `["min-program-version","X.Y.Z"]`,
//! `["max-proving-time","<s>"]`.
//!
//! A result (request kind + 1000) carries `["verification","zk"]`,
//! `["zkvm","risc-zero"]`, `["program-id",<image ID>]`,
//! `["plan-hash","sha256:…"]`, `["data-merkle-root","sha256:…"]`,
//! `["output-hash","sha256:…"]`, `["proof-ref",<Blossom URL | ipfs://CID>]`
//! with `["x",<receipt SHA-256>]` (the NIP-94 name for a file's SHA-256),
//! or an inline `["proof","base64:…"]`, and `["proving-time-ms",…]`,
//! `["cycles-used",…]`.

use nostr_sdk::prelude::*;

use crate::Refusal;

/// The zkVM this provider proves with, as the `zkvm` tag names it.
pub const ZKVM: &str = "risc-zero";

/// One data input of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataInput {
    /// The plan's `data-input` step it is for.
    pub name: String,
    /// `csv` or `jsonl`.
    pub format: String,
    /// Inline text, or a URL to fetch.
    pub source: Source,
}

/// Where an input's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// In the tag.
    Text(String),
    /// At this URL (a Blossom URL's SHA-256 is checked).
    Url(String),
}

/// A ZK job request, as parsed from its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkRequest {
    /// `verification` (`zk` is the only level served).
    pub verification: String,
    /// `zkvm` (`risc-zero` or `any`; `any` when absent).
    pub zkvm: String,
    /// `min-program-version`, if any.
    pub min_program_version: Option<String>,
    /// `max-proving-time` in seconds (300 when absent, as in the seed).
    pub max_proving_time_s: u64,
    /// The plan (JSON or YAML text), or a URL to it.
    pub plan: Source,
    /// The data inputs.
    pub data: Vec<DataInput>,
    /// NIP-90's `bid`: the most the buyer will pay (msat), if it says.
    pub bid_msat: Option<u64>,
}

/// Default `max-proving-time` (s) when a request gives none.
pub const DEFAULT_MAX_PROVING_TIME_S: u64 = 300;

fn value(tags: &[Vec<String>], name: &str) -> Option<String> {
    tags.iter().find(|t| t.first().map(String::as_str) == Some(name)).and_then(|t| t.get(1).cloned())
}

/// The tags of `event` as string arrays.
pub fn tag_vecs(event: &Event) -> Vec<Vec<String>> {
    event.tags.iter().map(|t| t.as_slice().to_vec()).collect()
}

impl ZkRequest {
    /// Parses a request's tags (already decrypted, when it came encrypted).
    ///
    /// # Errors
    /// [`Refusal::Malformed`] naming the tag that is missing or wrong.
    pub fn parse(tags: &[Vec<String>]) -> Result<ZkRequest, Refusal> {
        let bad = |m: String| Refusal::Malformed(m);
        let verification =
            value(tags, "verification").ok_or_else(|| bad("missing [\"verification\",\"zk\"]: this provider serves ZK-verified jobs only".into()))?;
        let zkvm = value(tags, "zkvm").unwrap_or_else(|| "any".into());
        let min_program_version = value(tags, "min-program-version");
        let max_proving_time_s = match value(tags, "max-proving-time") {
            Some(v) => v.trim().parse::<u64>().map_err(|_| bad(format!("max-proving-time `{v}` is not a whole number of seconds")))?,
            None => DEFAULT_MAX_PROVING_TIME_S,
        };
        let mut plan = None;
        let mut data = Vec::new();
        for t in tags.iter().filter(|t| t.first().map(String::as_str) == Some("i")) {
            let (Some(v), Some(kind)) = (t.get(1), t.get(2)) else {
                return Err(bad("an `i` tag needs a value and an input type".into()));
            };
            let source = match kind.as_str() {
                "text" => Source::Text(v.clone()),
                "url" => Source::Url(v.clone()),
                other => return Err(bad(format!("input type `{other}` is not served (text or url)"))),
            };
            let marker = t.get(4).map(String::as_str).unwrap_or_default();
            if marker == "plan" {
                if plan.replace(source).is_some() {
                    return Err(bad("more than one plan input".into()));
                }
            } else if let Some(rest) = marker.strip_prefix("data:") {
                let (name, format) = rest.rsplit_once(':').unwrap_or((rest, "csv"));
                if name.is_empty() || !matches!(format, "csv" | "jsonl") {
                    return Err(bad(format!("data marker `{marker}`: expected data:<input name>:<csv|jsonl>")));
                }
                data.push(DataInput { name: name.to_owned(), format: format.to_owned(), source });
            } else {
                return Err(bad(format!("input marker `{marker}`: expected `plan` or `data:<input name>:<csv|jsonl>`")));
            }
        }
        let plan = plan.ok_or_else(|| bad("no plan: give [\"i\", <plan>, \"text\", \"\", \"plan\"]".into()))?;
        let bid_msat = match value(tags, "bid") {
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| bad(format!("bid `{v}` is not a whole number of millisats")))?),
            None => None,
        };
        Ok(ZkRequest { verification, zkvm, min_program_version, max_proving_time_s, plan, data, bid_msat })
    }

    /// The request's tags (for the buyer to publish).
    pub fn to_tags(&self) -> Vec<Vec<String>> {
        let src = |s: &Source| match s {
            Source::Text(t) => (t.clone(), "text".to_owned()),
            Source::Url(u) => (u.clone(), "url".to_owned()),
        };
        let (p, pk) = src(&self.plan);
        let mut tags = vec![vec!["i".into(), p, pk, String::new(), "plan".into()]];
        for d in &self.data {
            let (v, k) = src(&d.source);
            tags.push(vec!["i".into(), v, k, String::new(), format!("data:{}:{}", d.name, d.format)]);
        }
        tags.push(vec!["output".into(), "application/json".into()]);
        tags.push(vec!["verification".into(), self.verification.clone()]);
        tags.push(vec!["zkvm".into(), self.zkvm.clone()]);
        if let Some(v) = &self.min_program_version {
            tags.push(vec!["min-program-version".into(), v.clone()]);
        }
        tags.push(vec!["max-proving-time".into(), self.max_proving_time_s.to_string()]);
        if let Some(b) = self.bid_msat {
            tags.push(vec!["bid".into(), b.to_string()]);
        }
        tags
    }
}

/// Where the receipt of a result is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofLocation {
    /// `proof-ref` (a Blossom URL or `ipfs://CID`) with the receipt's SHA-256 (`x`).
    Ref {
        /// The reference.
        reference: String,
        /// SHA-256 of the receipt file.
        sha256: String,
    },
    /// Inline `proof` (base64 of the receipt file).
    Inline(Vec<u8>),
}

/// The ZK tags of a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkResult {
    /// `program-id`: the RISC Zero image ID, 64 hex digits.
    pub program_id: String,
    /// `plan-hash`, 64 hex digits (written `sha256:…`).
    pub plan_hash: String,
    /// `data-merkle-root`, 64 hex digits (written `sha256:…`).
    pub data_root: String,
    /// `output-hash`, 64 hex digits (written `sha256:…`).
    pub output_hash: String,
    /// The receipt.
    pub proof: ProofLocation,
    /// `proving-time-ms`.
    pub proving_time_ms: u64,
    /// `cycles-used` (total cycles, all segments).
    pub cycles_used: u64,
    /// NIP-90's `amount`: what the provider asks for the result (msat).
    /// Read by [`ZkResult::parse`]; not written by [`ZkResult::to_tags`]
    /// (NIP-90's result builder writes it).
    pub amount_msat: Option<u64>,
}

fn hex64(tags: &[Vec<String>], name: &str) -> Result<String, String> {
    let v = value(tags, name).ok_or_else(|| format!("missing `{name}` tag"))?;
    let h = v.strip_prefix("sha256:").unwrap_or(&v);
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("`{name}` is not 64 lowercase hex digits: {v}"));
    }
    Ok(h.to_owned())
}

impl ZkResult {
    /// Parses a result's ZK tags.
    ///
    /// # Errors
    /// A message naming the missing or malformed tag.
    pub fn parse(tags: &[Vec<String>]) -> Result<ZkResult, String> {
        match value(tags, "verification").as_deref() {
            Some("zk") => {}
            other => return Err(format!("the result is not ZK-verified (verification = {other:?})")),
        }
        match value(tags, "zkvm").as_deref() {
            Some(ZKVM) => {}
            other => return Err(format!("the result is from zkVM {other:?}, not {ZKVM}")),
        }
        let num = |name: &str| -> Result<u64, String> {
            let v = value(tags, name).ok_or_else(|| format!("missing `{name}` tag"))?;
            v.parse().map_err(|_| format!("`{name}` is not a whole number: {v}"))
        };
        let proof = if let Some(r) = value(tags, "proof-ref") {
            ProofLocation::Ref { reference: r, sha256: hex64(tags, "x")? }
        } else if let Some(p) = value(tags, "proof") {
            use base64::Engine as _;
            let b = p.strip_prefix("base64:").ok_or("`proof` is not base64:…")?;
            ProofLocation::Inline(base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| format!("`proof` is not base64: {e}"))?)
        } else {
            return Err("no `proof-ref` or `proof` tag".into());
        };
        Ok(ZkResult {
            program_id: hex64(tags, "program-id")?,
            plan_hash: hex64(tags, "plan-hash")?,
            data_root: hex64(tags, "data-merkle-root")?,
            output_hash: hex64(tags, "output-hash")?,
            proof,
            proving_time_ms: num("proving-time-ms")?,
            cycles_used: num("cycles-used")?,
            amount_msat: if value(tags, "amount").is_some() { Some(num("amount")?) } else { None },
        })
    }

    /// The result's ZK tags.
    pub fn to_tags(&self) -> Vec<Vec<String>> {
        let mut tags = vec![
            vec!["verification".into(), "zk".into()],
            vec!["zkvm".into(), ZKVM.into()],
            vec!["program-id".into(), self.program_id.clone()],
            vec!["plan-hash".into(), format!("sha256:{}", self.plan_hash)],
            vec!["data-merkle-root".into(), format!("sha256:{}", self.data_root)],
            vec!["output-hash".into(), format!("sha256:{}", self.output_hash)],
        ];
        match &self.proof {
            ProofLocation::Ref { reference, sha256 } => {
                tags.push(vec!["proof-ref".into(), reference.clone()]);
                tags.push(vec!["x".into(), sha256.clone()]);
            }
            ProofLocation::Inline(b) => {
                use base64::Engine as _;
                tags.push(vec!["proof".into(), format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(b))]);
            }
        }
        tags.push(vec!["proving-time-ms".into(), self.proving_time_ms.to_string()]);
        tags.push(vec!["cycles-used".into(), self.cycles_used.to_string()]);
        tags
    }
}

/// Turns string arrays into event tags.
///
/// # Errors
/// [`Refusal::Malformed`] for an empty tag.
pub fn to_nostr_tags(tags: Vec<Vec<String>>) -> Result<Vec<Tag>, Refusal> {
    tags.into_iter().map(|t| Tag::parse(t).map_err(|e| Refusal::Malformed(format!("tag: {e}")))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_result_tags_round_trip() {
        let r = ZkRequest {
            verification: "zk".into(),
            zkvm: ZKVM.into(),
            min_program_version: Some("0.1.0".into()),
            max_proving_time_s: 120,
            plan: Source::Text("version: \"1.0\"".into()),
            data: vec![DataInput { name: "payments".into(), format: "csv".into(), source: Source::Url("http://h/x".into()) }],
            bid_msat: Some(21_000),
        };
        assert_eq!(ZkRequest::parse(&r.to_tags()).unwrap(), r);
        let h = "ab".repeat(32);
        let z = ZkResult {
            program_id: h.clone(),
            plan_hash: h.clone(),
            data_root: h.clone(),
            output_hash: h.clone(),
            proof: ProofLocation::Ref { reference: format!("http://h/blossom/{h}"), sha256: h.clone() },
            proving_time_ms: 5,
            cycles_used: 7,
            amount_msat: Some(21_000),
        };
        let mut tags = z.to_tags();
        tags.push(vec!["amount".into(), "21000".into()]);
        assert_eq!(ZkResult::parse(&tags).unwrap(), z);
        let inline = ZkResult { proof: ProofLocation::Inline(vec![1, 2, 3]), amount_msat: None, ..z };
        assert_eq!(ZkResult::parse(&inline.to_tags()).unwrap(), inline);
    }

    #[test]
    fn malformed_requests_name_the_tag() {
        let t = |v: &[&[&str]]| v.iter().map(|t| t.iter().map(|s| s.to_string()).collect()).collect::<Vec<Vec<String>>>();
        let cases: Vec<(Vec<Vec<String>>, &str)> = vec![
            (t(&[&["i", "p", "text", "", "plan"]]), "verification"),
            (t(&[&["verification", "zk"]]), "no plan"),
            (t(&[&["verification", "zk"], &["max-proving-time", "soon"], &["i", "p", "text", "", "plan"]]), "max-proving-time"),
            (t(&[&["verification", "zk"], &["i", "p", "event", "", "plan"]]), "input type"),
            (t(&[&["verification", "zk"], &["i", "p", "text", "", "plan"], &["i", "d", "text", "", "data:x:xml"]]), "data marker"),
            (t(&[&["verification", "zk"], &["i", "p", "text", "", "plan"], &["i", "p", "text", "", "plan"]]), "more than one plan"),
            (t(&[&["verification", "zk"], &["i"]]), "needs a value"),
            (t(&[&["verification", "zk"], &["i", "p", "text", "", "plan"], &["bid", "lots"]]), "bid"),
        ];
        for (tags, want) in cases {
            let e = ZkRequest::parse(&tags).unwrap_err().to_string();
            assert!(e.contains(want), "{e} should mention {want}");
        }
    }
}
