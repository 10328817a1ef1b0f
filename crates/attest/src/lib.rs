//! TEE attestation evidence, verified offline.
//!
//! * Intel SGX and TDX: DCAP ECDSA quotes (v3, v4, v5) with their
//!   verification collateral (PCK CRLs, TCB info, QE identity, as Intel's
//!   PCS or a PCCS serves them), verified by `dcap-qvl` against Intel's
//!   SGX root CA at a given time: the quote's signature chain, the
//!   collateral's signatures and validity, and the platform's TCB status.
//! * AMD SEV-SNP: an attestation report signed by the chip's VCEK, whose
//!   certificate is checked up to AMD's ARK through the ASK (the `sev`
//!   crate's built-in Milan, Genoa and Turin roots), valid at the given
//!   time, and issued for the report's chip and reported TCB (AMD's VCEK
//!   extensions `hwID` and the `blSPL`, `teeSPL`, `snpSPL`, `ucodeSPL`
//!   security patch levels, OIDs 1.3.6.1.4.1.3704.1.*).
//!
//! Evidence whose own signature fails while its collateral is in order
//! (it vouches for the key that should have signed) is
//! [`AttestError::Forged`]: altered or made up, which the proof market
//! punishes harder than collateral that is merely out of date.
//!
//! The measurement (SGX `MRENCLAVE`, TDX `MRTD`, SEV-SNP `MEASUREMENT`) is
//! then looked up among the approved ones the caller gives (the program
//! registry's); an unknown measurement is refused.
//!
//! It owns parsing and verifying evidence only: it must not fetch
//! collateral from the network, read the registry or write the ledger.

#![forbid(unsafe_code)]

use serde::Serialize;

/// Which trusted execution environment produced the evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tee {
    /// Intel SGX enclave (DCAP quote).
    Sgx,
    /// Intel TDX trust domain (DCAP quote).
    Tdx,
    /// AMD SEV-SNP guest (attestation report).
    SevSnp,
}

impl Tee {
    /// `sgx`, `tdx` or `sev-snp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tee::Sgx => "sgx",
            Tee::Tdx => "tdx",
            Tee::SevSnp => "sev-snp",
        }
    }
}

/// Evidence that verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attestation {
    /// The TEE.
    pub tee: Tee,
    /// The TCB status: DCAP's (`UpToDate`, `SWHardeningNeeded`,
    /// `ConfigurationNeeded`, `ConfigurationAndSWHardeningNeeded`,
    /// `OutOfDate`, `OutOfDateConfigurationNeeded`); for SEV-SNP, the
    /// reported TCB's SVNs (`bootloader=… tee=… snp=… microcode=…`), which
    /// the VCEK certifies.
    pub tcb_status: String,
    /// Intel security advisories that apply to the platform (DCAP).
    pub advisory_ids: Vec<String>,
    /// The code measurement, hex: SGX `MRENCLAVE` (32 bytes), TDX `MRTD`
    /// or SEV-SNP `MEASUREMENT` (48 bytes).
    pub measurement: String,
    /// SGX `MRSIGNER` (the enclave signer's key hash), hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The 64 bytes of report data the workload bound in, hex.
    pub report_data: String,
    /// When it was checked (s since the Unix epoch).
    pub verified_at: u64,
}

/// Why evidence was refused.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The evidence is neither a DCAP quote nor an SEV-SNP report.
    #[error("not a DCAP quote or an SEV-SNP attestation report: {0}")]
    Format(String),
    /// The collateral is missing or does not parse.
    #[error("collateral: {0}")]
    Collateral(String),
    /// The evidence does not verify (a signature, a certificate, expired
    /// or not yet valid collateral, a revoked platform): the verifier's
    /// reason.
    #[error("{tee} evidence does not verify: {reason}")]
    Invalid {
        /// `sgx`, `tdx` or `sev-snp`.
        tee: &'static str,
        /// The reason.
        reason: String,
    },
    /// The evidence's own signature does not verify, while its collateral
    /// is in order: DCAP's enclave report or QE report signature, or the
    /// QE report's binding of the attestation key; SEV-SNP's report
    /// signature under a VCEK that chains to AMD and names the report's
    /// chip and TCB.
    #[error("{tee} evidence is forged: {reason}")]
    Forged {
        /// `sgx`, `tdx` or `sev-snp`.
        tee: &'static str,
        /// The failed check.
        reason: String,
    },
    /// The evidence verifies, but its TCB status is not acceptable under
    /// [`Policy::require_up_to_date`].
    #[error("the platform's TCB status is {status}, not UpToDate")]
    TcbStatus {
        /// The status found.
        status: String,
    },
    /// The evidence verifies, but its measurement is not approved.
    #[error("measurement {measurement} ({tee}) is not approved by the registry")]
    NotApproved {
        /// `sgx`, `tdx` or `sev-snp`.
        tee: &'static str,
        /// The measurement, hex.
        measurement: String,
    },
}

/// What is acceptable beyond a valid signature chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Approved measurements (lowercase hex); `None` accepts any.
    pub approved: Option<Vec<String>>,
    /// Refuse DCAP evidence whose TCB status is not `UpToDate`.
    pub require_up_to_date: bool,
}

/// The outcome of checking evidence: what `zkaudit attest verify --json`
/// prints and a prover's registration records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Whether the evidence verified and the policy accepted it.
    pub valid: bool,
    /// Why not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the evidence showed, when its signatures verified (also when
    /// the policy then refused it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
}

/// Verifies `evidence` like [`verify`], keeping what it showed when only
/// the policy refused it.
pub fn judge(evidence: &[u8], collateral: &[u8], now_secs: u64, policy: &Policy) -> Verdict {
    match verify_evidence(evidence, collateral, now_secs) {
        Err(e) => Verdict { valid: false, reason: Some(e.to_string()), attestation: None },
        Ok(a) => match policy.check(&a) {
            Ok(()) => Verdict { valid: true, reason: None, attestation: Some(a) },
            Err(e) => Verdict { valid: false, reason: Some(e.to_string()), attestation: Some(a) },
        },
    }
}

/// Intel's QE vendor ID, at bytes 12..28 of every DCAP quote header.
const INTEL_QE_VENDOR_ID: [u8; 16] = [0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07];

/// The size of an SEV-SNP attestation report (bytes).
const SNP_REPORT_BYTES: usize = 1184;

/// Evidence bytes from a file's contents: hex text (optionally `0x`-prefixed,
/// whitespace ignored) is decoded, anything else taken as raw bytes.
pub fn evidence_bytes(file: &[u8]) -> Vec<u8> {
    let text: String = String::from_utf8_lossy(file).split_whitespace().collect();
    let digits = text.strip_prefix("0x").unwrap_or(&text);
    if !digits.is_empty() && digits.len().is_multiple_of(2) && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Ok(b) = hex::decode(digits) {
            return b;
        }
    }
    file.to_vec()
}

/// Which kind of evidence `bytes` is, from its header.
///
/// # Errors
/// [`AttestError::Format`] when it is neither.
pub fn detect(bytes: &[u8]) -> Result<Tee, AttestError> {
    if bytes.len() >= 48 && bytes[12..28] == INTEL_QE_VENDOR_ID {
        let tee_type = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        return match tee_type {
            0 => Ok(Tee::Sgx),
            0x81 => Ok(Tee::Tdx),
            other => Err(AttestError::Format(format!("DCAP quote with unknown TEE type {other:#x}"))),
        };
    }
    if bytes.len() == SNP_REPORT_BYTES {
        return Ok(Tee::SevSnp);
    }
    Err(AttestError::Format(format!("{} bytes, without Intel's QE vendor ID and not the {SNP_REPORT_BYTES} bytes of an SEV-SNP report", bytes.len())))
}

/// Verifies `evidence` (raw bytes; see [`evidence_bytes`]) with its
/// `collateral` at `now_secs` (s since the Unix epoch) under `policy`.
///
/// The collateral is DCAP's JSON (`QuoteCollateralV3`, as Intel's PCS or a
/// PCCS serves it) for a quote, and the VCEK certificate (DER or PEM) for
/// an SEV-SNP report.
///
/// # Errors
/// [`AttestError`], naming the first check that failed.
pub fn verify(evidence: &[u8], collateral: &[u8], now_secs: u64, policy: &Policy) -> Result<Attestation, AttestError> {
    let a = verify_evidence(evidence, collateral, now_secs)?;
    policy.check(&a)?;
    Ok(a)
}

/// The signature checks of [`verify`] alone, without a [`Policy`].
///
/// # Errors
/// [`AttestError::Format`], [`AttestError::Collateral`], [`AttestError::Invalid`] or [`AttestError::Forged`].
pub fn verify_evidence(evidence: &[u8], collateral: &[u8], now_secs: u64) -> Result<Attestation, AttestError> {
    match detect(evidence)? {
        tee @ (Tee::Sgx | Tee::Tdx) => verify_dcap(tee, evidence, collateral, now_secs),
        Tee::SevSnp => verify_snp(evidence, collateral, now_secs),
    }
}

impl Policy {
    /// Whether verified evidence `a` is acceptable.
    ///
    /// # Errors
    /// [`AttestError::TcbStatus`] or [`AttestError::NotApproved`].
    pub fn check(&self, a: &Attestation) -> Result<(), AttestError> {
        if self.require_up_to_date && a.tee != Tee::SevSnp && a.tcb_status != "UpToDate" {
            return Err(AttestError::TcbStatus { status: a.tcb_status.clone() });
        }
        if let Some(approved) = &self.approved {
            if !approved.iter().any(|m| m.eq_ignore_ascii_case(&a.measurement)) {
                return Err(AttestError::NotApproved { tee: a.tee.as_str(), measurement: a.measurement.clone() });
            }
        }
        Ok(())
    }
}

/// dcap-qvl 0.7's reasons for a quote whose own signatures fail (its
/// enclave or TD report, its QE report, or the QE report's hash of the
/// attestation key): every other failure is about the collateral, the
/// platform's TCB or the format. Pinned by the tests on flipped bytes.
const DCAP_FORGERY: [&str; 3] = ["ISV enclave report signature is invalid", "Signature is invalid for qe_report in quote", "QE report hash mismatch"];

fn verify_dcap(tee: Tee, quote: &[u8], collateral: &[u8], now_secs: u64) -> Result<Attestation, AttestError> {
    let collateral: dcap_qvl::QuoteCollateralV3 =
        serde_json::from_slice(collateral).map_err(|e| AttestError::Collateral(format!("not DCAP quote collateral (QuoteCollateralV3 JSON): {e}")))?;
    let invalid = |reason: String| AttestError::Invalid { tee: tee.as_str(), reason };
    let report = dcap_qvl::verify::verify(quote, &collateral, now_secs).map_err(|e| {
        let reason = format!("{e:#}");
        if DCAP_FORGERY.iter().any(|sign| reason.contains(sign)) {
            AttestError::Forged { tee: tee.as_str(), reason }
        } else {
            invalid(reason)
        }
    })?;
    let (measurement, signer, report_data) = match &report.report {
        dcap_qvl::quote::Report::SgxEnclave(r) => (hex::encode(r.mr_enclave), Some(hex::encode(r.mr_signer)), hex::encode(r.report_data)),
        dcap_qvl::quote::Report::TD10(r) => (hex::encode(r.mr_td), None, hex::encode(r.report_data)),
        dcap_qvl::quote::Report::TD15(r) => (hex::encode(r.base.mr_td), None, hex::encode(r.base.report_data)),
        dcap_qvl::quote::Report::TD15Ex(r) => (hex::encode(r.base.base.mr_td), None, hex::encode(r.base.base.report_data)),
    };
    let found = if report.report.is_sgx() { Tee::Sgx } else { Tee::Tdx };
    if found != tee {
        return Err(invalid(format!("the header says {} but the body is {}", tee.as_str(), found.as_str())));
    }
    Ok(Attestation { tee, tcb_status: report.status, advisory_ids: report.advisory_ids, measurement, signer, report_data, verified_at: now_secs })
}

fn verify_snp(report: &[u8], vcek: &[u8], now_secs: u64) -> Result<Attestation, AttestError> {
    use sev::certs::snp::{builtin, ca, Certificate, Chain, Verifiable};
    use sev::firmware::guest::AttestationReport;
    use sev::parser::ByteParser;

    let invalid = |reason: String| AttestError::Invalid { tee: Tee::SevSnp.as_str(), reason };
    let vek = if vcek.starts_with(b"-----BEGIN") { Certificate::from_pem(vcek) } else { Certificate::from_der(vcek) }
        .map_err(|e| AttestError::Collateral(format!("not a VCEK certificate (DER or PEM): {e}")))?;
    let parsed = AttestationReport::from_bytes(report).map_err(|e| AttestError::Format(format!("SEV-SNP report: {e}")))?;
    let der = vek.to_der().map_err(|e| AttestError::Collateral(format!("VCEK: {e}")))?;
    vcek_matches(&der, &parsed, now_secs)?;
    // AMD's roots for each processor family; the VCEK names its own.
    type Root = fn() -> std::io::Result<Certificate>;
    let roots: [(&str, Root, Root); 3] = [
        ("Milan", builtin::milan::ark, builtin::milan::ask),
        ("Genoa", builtin::genoa::ark, builtin::genoa::ask),
        ("Turin", builtin::turin::ark, builtin::turin::ask),
    ];
    let mut reasons = Vec::new();
    for (family, ark, ask) in roots {
        let (ark, ask) = (ark().map_err(|e| invalid(format!("AMD {family} ARK: {e}")))?, ask().map_err(|e| invalid(format!("AMD {family} ASK: {e}")))?);
        let chain = Chain { ca: ca::Chain { ark, ask }, vek: vek.clone() };
        if let Err(e) = chain.verify() {
            reasons.push(format!("{family}: {e}"));
            continue;
        }
        // The VCEK is AMD's, valid now, for this chip and TCB: a signature
        // that fails under it is the report's own.
        (&chain, &parsed).verify().map_err(|e| AttestError::Forged {
            tee: Tee::SevSnp.as_str(),
            reason: format!("the report's signature does not verify with its chip's VCEK (AMD {family} chain): {e}"),
        })?;
        let t = &parsed.reported_tcb;
        return Ok(Attestation {
            tee: Tee::SevSnp,
            tcb_status: format!("bootloader={} tee={} snp={} microcode={}", t.bootloader, t.tee, t.snp, t.microcode),
            advisory_ids: Vec::new(),
            measurement: hex::encode(parsed.measurement),
            signer: None,
            report_data: hex::encode(parsed.report_data),
            verified_at: now_secs,
        });
    }
    Err(invalid(format!("the VCEK does not chain to AMD's roots ({})", reasons.join("; "))))
}

/// AMD's VCEK extensions (AMD SEV-SNP firmware ABI, "VCEK certificate
/// extensions"): the chip ID and the TCB's security patch levels.
const OID_HW_ID: x509_cert::der::asn1::ObjectIdentifier = x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
const OID_SPL: [(&str, x509_cert::der::asn1::ObjectIdentifier); 4] = [
    ("bootloader", x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1")),
    ("tee", x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2")),
    ("snp", x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3")),
    ("microcode", x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8")),
];

/// Whether the VCEK (DER) is valid at `now_secs` and was issued for the
/// report's chip (unless the report masks its chip ID with zeros) and
/// reported TCB.
///
/// # Errors
/// [`AttestError::Collateral`] naming the date, chip or level that differs.
fn vcek_matches(der: &[u8], report: &sev::firmware::guest::AttestationReport, now_secs: u64) -> Result<(), AttestError> {
    use x509_cert::der::Decode as _;
    let bad = |m: String| AttestError::Collateral(format!("the VCEK {m}"));
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| bad(format!("does not parse: {e}")))?;
    let validity = &cert.tbs_certificate.validity;
    let (from, until) = (validity.not_before.to_unix_duration().as_secs(), validity.not_after.to_unix_duration().as_secs());
    if now_secs < from || now_secs > until {
        return Err(bad(format!("is valid from {from} to {until} (s since the epoch), not at {now_secs}")));
    }
    let extensions = cert.tbs_certificate.extensions.as_deref().unwrap_or_default();
    let ext = |oid| extensions.iter().find(|e| e.extn_id == oid).map(|e| e.extn_value.as_bytes());
    if report.chip_id.iter().any(|b| *b != 0) {
        // The raw ID, or wrapped in an OCTET STRING; Turin's VCEKs hold its first 8 bytes.
        let id = ext(OID_HW_ID).map(|v| if v.len() > 2 && v[0] == 0x04 && usize::from(v[1]) == v.len() - 2 { &v[2..] } else { v });
        if !id.is_some_and(|id| !id.is_empty() && report.chip_id.starts_with(id)) {
            return Err(bad(format!(
                "is for chip {}, not the report's {}",
                id.map_or_else(|| "(none named)".into(), hex::encode),
                hex::encode(report.chip_id)
            )));
        }
    }
    let t = &report.reported_tcb;
    for ((name, oid), level) in OID_SPL.iter().zip([t.bootloader, t.tee, t.snp, t.microcode]) {
        // A DER INTEGER: 02, its length, then big-endian bytes.
        let found = ext(*oid).and_then(|v| match v {
            [0x02, n, rest @ ..] if usize::from(*n) == rest.len() && rest.len() <= 2 => Some(rest.iter().fold(0u16, |a, b| a << 8 | u16::from(*b))),
            _ => None,
        });
        if found != Some(u16::from(level)) {
            return Err(bad(format!("names {name} patch level {found:?}, the report's TCB has {level}")));
        }
    }
    Ok(())
}
