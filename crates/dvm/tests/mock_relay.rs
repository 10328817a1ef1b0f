//! The provider and the buyer in process, over nostr-relay-builder's
//! `MockRelay` (a real NIP-01 relay on loopback, in memory): requests the
//! provider must refuse, each answered by an `error` feedback with the
//! reason and recorded in the ledger, while the provider keeps serving; a
//! buyer whose request nobody serves times out cleanly. No proof is made
//! here (every case is refused before proving); the proving flow is
//! `crates/cli/tests/dvm.rs`.

use std::time::Duration;

use nostr_relay_builder::MockRelay;
use nostr_sdk::prelude::*;
use zkaudit_collect::{Destination, Sink, SinkOptions};
use zkaudit_dvm::buyer::{request, Request};
use zkaudit_dvm::encryption::Encryption;
use zkaudit_dvm::provider::{run, Config, Prover};
use zkaudit_dvm::tags::{DataInput, Source, ZkRequest, ZKVM};
use zkaudit_event::Layer;

fn example(f: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/income-threshold").join(f)).unwrap()
}

fn job() -> ZkRequest {
    ZkRequest {
        verification: "zk".into(),
        zkvm: ZKVM.into(),
        min_program_version: None,
        max_proving_time_s: 300,
        plan: Source::Text(example("plan.yaml")),
        data: vec![DataInput { name: "payments".into(), format: "csv".into(), source: Source::Text(example("payments.csv")) }],
        bid_msat: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_with_reasons_and_a_clean_timeout() {
    let relay = MockRelay::run().await.unwrap();
    let url = relay.url().await.to_string();
    let tmp = tempfile::tempdir().unwrap();
    let ledger = tmp.path().join("ledger");
    zkaudit_tlog::init(&ledger, "test.example/dvm").unwrap();
    let sink = Sink::open(Destination::Ledger { dir: ledger.clone(), index: None }, SinkOptions::new("dvm", Layer::Application)).unwrap();
    let provider_keys = Keys::generate();
    let config = Config {
        keys: provider_keys.clone(),
        relays: vec![url.clone()],
        job_kind: 5750,
        // Nothing listens here: every case below is refused before proving,
        // and the last one shows a prover that is down is a clear error.
        prover: Prover { url: "http://127.0.0.1:9".into(), token: "unused".into() },
        store: None,
        registry: zkaudit_zkvm::Registry::embedded(),
        prove_rate: 1000,
        max_event_bytes: 65536,
        timeout: Duration::from_secs(5),
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let provider = tokio::spawn(run(
        config,
        sink,
        move || {
            let _ = ready_tx.send(());
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    ready_rx.await.unwrap();

    let buyer = Keys::generate();
    let ask = |job: ZkRequest, kind: u16, wait: u64, encrypt: Option<Encryption>| {
        let (buyer, url) = (buyer.clone(), url.clone());
        let provider = Some(provider_keys.public_key());
        async move { request(&buyer, &[url], Request { job, job_kind: kind, provider, encrypt, wait: Duration::from_secs(wait) }).await.unwrap() }
    };
    let mut slow = job();
    slow.max_proving_time_s = 1;
    let mut sp1 = job();
    sp1.zkvm = "sp1".into();
    let mut old = job();
    old.min_program_version = Some("99.0".into());
    let mut hash_only = job();
    hash_only.verification = "hash".into();
    let mut bad_plan = job();
    bad_plan.plan = Source::Text("version: \"1.0\"\nid: x\nsteps: []\n".into());
    let mut bad_data = job();
    bad_data.data[0].source = Source::Text("date,amount,kind\n2026-13-01,1.00,salary\n".into());
    let mut blossom_mismatch = job();
    blossom_mismatch.data[0].source = Source::Url(format!("http://127.0.0.1:9/blossom/{}", "0".repeat(64)));
    let cases = [
        (slow, "over the max-proving-time of 1 s"),
        (sp1, "zkVM `sp1`"),
        (old, "older than the requested min-program-version 99.0"),
        (hash_only, "verification level `hash`"),
        (bad_plan, "plan or data:"),
        (bad_data, "data.payments"),
        (blossom_mismatch, "input: http://127.0.0.1:9/blossom/"),
        (job(), "proof server http://127.0.0.1:9"),
    ];
    let n = cases.len();
    for (i, (j, want)) in cases.into_iter().enumerate() {
        // The encrypted paths (NIP-44 and NIP-04 to the provider) on every
        // other case: refusals naming what is inside show it was read.
        let o = ask(j, 5750, 60, [None, Some(Encryption::Nip44), None, Some(Encryption::Nip04)][i % 4]).await;
        assert_eq!(o.status, "error", "case {i}: {o:?}");
        assert!(o.reason.as_deref().unwrap_or_default().contains(want), "case {i}: {:?} should contain {want}", o.reason);
    }

    // Nobody serves kind 5751: a clean timeout.
    let started = std::time::Instant::now();
    let o = ask(job(), 5751, 2, None).await;
    assert_eq!(o.status, "timeout");
    assert!(started.elapsed() < Duration::from_secs(20));

    stop_tx.send(()).unwrap();
    provider.await.unwrap().unwrap();
    // One request event and one refusal per case, in the ledger.
    let reader = zkaudit_tlog::LogReader::open(&ledger).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..reader.checkpoint().size {
        let e: serde_json::Value = serde_json::from_slice(&reader.entry(i).unwrap()).unwrap();
        *counts.entry(e["type"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    assert_eq!(counts.get("dvm_request"), Some(&n));
    assert_eq!(counts.get("dvm_refusal"), Some(&n));
}
