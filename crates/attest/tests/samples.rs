//! The real sample evidence in `../shared/data/tee/` (dcap-qvl's SGX and
//! TDX quotes with their collateral, virtee/sev's Milan SEV-SNP report
//! with its VCEK): each verifies at a time inside its collateral's
//! validity, and a flipped byte, expired collateral and a measurement that
//! is not approved are each refused with the reason.

use std::path::PathBuf;

use zkaudit_attest::{evidence_bytes, verify, AttestError, Policy, Tee};

fn tee(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tee").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// 2025-07-01T00:00:00Z: inside the SGX and TDX samples' collateral windows
/// (TCB info issued 2025-06-19, next update 2025-07-19).
const JULY_2025: u64 = 1_751_328_000;
/// 2026-03-01T00:00:00Z: inside the outdated TDX sample's window.
const MARCH_2026: u64 = 1_772_323_200;
/// 2026-12-05: after every sample's collateral expired.
const DEC_2026: u64 = 1_796_428_800;

#[test]
fn the_sgx_quote_verifies_and_names_its_enclave() {
    let (quote, collateral) = (evidence_bytes(&tee("dcap-qvl/sgx_quote")), tee("dcap-qvl/sgx_quote_collateral.json"));
    let a = verify(&quote, &collateral, JULY_2025, &Policy::default()).unwrap();
    assert_eq!(a.tee, Tee::Sgx);
    assert_eq!(a.tcb_status, "ConfigurationAndSWHardeningNeeded");
    assert_eq!(a.advisory_ids, ["INTEL-SA-00289", "INTEL-SA-00615"]);
    // MRENCLAVE and MRSIGNER sit at bytes 112 and 176 of a v3 quote (48-byte header + report body offsets 64, 128).
    assert_eq!(a.measurement, hex::encode(&quote[112..144]));
    assert_eq!(a.signer.as_deref(), Some(hex::encode(&quote[176..208]).as_str()));

    // Approved: passes; another list: refused, naming the measurement.
    let approved = Policy { approved: Some(vec![a.measurement.to_uppercase()]), ..Policy::default() };
    assert!(verify(&quote, &collateral, JULY_2025, &approved).is_ok());
    let other = Policy { approved: Some(vec!["00".repeat(32)]), ..Policy::default() };
    let e = verify(&quote, &collateral, JULY_2025, &other).unwrap_err();
    assert!(matches!(&e, AttestError::NotApproved { measurement, .. } if *measurement == a.measurement), "{e}");
    // Only UpToDate, when asked.
    let strict = Policy { require_up_to_date: true, ..Policy::default() };
    assert!(matches!(verify(&quote, &collateral, JULY_2025, &strict), Err(AttestError::TcbStatus { .. })));

    // Expired collateral.
    let e = verify(&quote, &collateral, DEC_2026, &Policy::default()).unwrap_err().to_string();
    assert!(e.to_lowercase().contains("expired"), "{e}");
}

#[test]
fn tdx_quotes_verify_and_an_outdated_platform_says_so() {
    let quote = evidence_bytes(&tee("dcap-qvl/tdx_quote"));
    let a = verify(&quote, &tee("dcap-qvl/tdx_quote_collateral.json"), JULY_2025, &Policy::default()).unwrap();
    assert_eq!(a.tee, Tee::Tdx);
    assert_eq!(a.measurement.len(), 96, "MRTD is 48 bytes");
    // The hex copy of a TDX quote decodes to a quote too.
    assert_eq!(zkaudit_attest::detect(&evidence_bytes(&tee("dcap-qvl/tdx-quote.hex"))).unwrap(), Tee::Tdx);

    assert_eq!(a.tcb_status, "UpToDate");
    let strict = Policy { require_up_to_date: true, ..Policy::default() };
    assert_eq!(verify(&quote, &tee("dcap-qvl/tdx_quote_collateral.json"), JULY_2025, &strict).unwrap(), a);

    // The outdated sample: its platform is below every TCB level its own
    // (valid) collateral lists, so it is refused with Intel's reason.
    let outdated = evidence_bytes(&tee("dcap-qvl/tdx_quote_outdated"));
    let e = verify(&outdated, &tee("dcap-qvl/tdx_quote_outdated_collateral.json"), MARCH_2026, &Policy::default()).unwrap_err().to_string();
    assert!(e.contains("No matching TCB level"), "{e}");
    // Another platform's collateral does not verify it either.
    assert!(verify(&outdated, &tee("dcap-qvl/tdx_quote_collateral.json"), MARCH_2026, &Policy::default()).is_err());
}

#[test]
fn every_flipped_byte_of_a_quote_signature_or_body_is_refused() {
    let quote = evidence_bytes(&tee("dcap-qvl/sgx_quote"));
    let collateral = tee("dcap-qvl/sgx_quote_collateral.json");
    // The header's version and the body (report data included), and the signature.
    for i in [0usize, 60, 120, 200, 400, 420, 500, 600] {
        let mut bad = quote.clone();
        bad[i] ^= 0x01;
        let e = verify(&bad, &collateral, JULY_2025, &Policy::default()).expect_err(&format!("byte {i} flipped went unnoticed"));
        // Past the header (its version byte makes it no quote at all), a
        // flip breaks the quote's own signatures under valid collateral:
        // forged, not merely invalid.
        assert_eq!(i > 0, matches!(e, AttestError::Forged { tee: "sgx", .. }), "byte {i}: {e}");
    }
    let mut bad_collateral: serde_json::Value = serde_json::from_slice(&collateral).unwrap();
    let info = bad_collateral["tcb_info"].as_str().unwrap().replacen("\"version\":3", "\"version\":3 ", 1);
    bad_collateral["tcb_info"] = info.into();
    let e = verify(&quote, &serde_json::to_vec(&bad_collateral).unwrap(), JULY_2025, &Policy::default()).unwrap_err();
    assert!(matches!(e, AttestError::Invalid { .. }), "{e}");
    assert!(matches!(verify(&quote, b"{}", JULY_2025, &Policy::default()), Err(AttestError::Collateral(_))));
    assert!(matches!(verify(b"hello", &collateral, JULY_2025, &Policy::default()), Err(AttestError::Format(_))));
}

#[test]
fn the_sev_snp_report_verifies_up_to_amds_root() {
    let report = evidence_bytes(&tee("sev/report_milan.hex"));
    let vcek = tee("sev/vcek_milan.der");
    let a = verify(&report, &vcek, DEC_2026, &Policy::default()).unwrap();
    assert_eq!(a.tee, Tee::SevSnp);
    assert_eq!(a.measurement, hex::encode(&report[0x90..0xc0]), "MEASUREMENT at 0x90");
    assert!(a.tcb_status.starts_with("bootloader="), "{}", a.tcb_status);
    let mut bad = report.clone();
    bad[0x90] ^= 0x80;
    let e = verify(&bad, &vcek, DEC_2026, &Policy::default()).unwrap_err();
    assert!(matches!(e, AttestError::Forged { tee: "sev-snp", .. }) && e.to_string().contains("does not verify"), "{e}");
    // The Turin VCEK is another chip's: wrong collateral, not a forgery.
    let e = verify(&report, &tee("sev/vcek_turin.der"), DEC_2026, &Policy::default()).unwrap_err();
    assert!(matches!(&e, AttestError::Collateral(m) if m.contains("is for chip")), "{e}");
    // A report that claims another TCB than its VCEK was issued for.
    let mut newer = report.clone();
    newer[0x180] ^= 0x01; // REPORTED_TCB's bootloader SPL (byte 0 of the TCB at 0x180)
    let e = verify(&newer, &vcek, DEC_2026, &Policy::default()).unwrap_err();
    assert!(matches!(&e, AttestError::Collateral(m) if m.contains("bootloader patch level")), "{e}");
    // Outside the VCEK's validity (it was issued in 2023; 1 January 2000 is before it).
    let e = verify(&report, &vcek, 946_684_800, &Policy::default()).unwrap_err();
    assert!(matches!(&e, AttestError::Collateral(m) if m.contains("is valid from")), "{e}");
    let e = verify(&report, &vcek, DEC_2026, &Policy { approved: Some(vec![]), ..Policy::default() }).unwrap_err();
    assert!(matches!(e, AttestError::NotApproved { tee: "sev-snp", .. }), "{e}");
}
