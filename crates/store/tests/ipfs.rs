//! The IPFS fallback against a real IPFS node: npm's js-ipfs 0.66 (its
//! HTTP API speaks the Kubo RPC), installed by scripts/setup.sh
//! ($ZKAUDIT_JSIPFS, with the Node 20 polyfill $ZKAUDIT_JSIPFS_POLYFILL)
//! and started `--offline` on loopback in a temporary repository.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zkaudit_store::blossom::Client as Blossom;
use zkaudit_store::cache::Cache;
use zkaudit_store::kubo::Client as Kubo;
use zkaudit_store::{sha256_hex, BlobRef, Error, ProofStore, Remote};

struct Node {
    child: Child,
    api: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn jsipfs(repo: &Path, args: &[&str]) -> Command {
    let bin = std::env::var("ZKAUDIT_JSIPFS").expect("ZKAUDIT_JSIPFS (scripts/setup.sh installs js-ipfs and sets it)");
    let polyfill = std::env::var("ZKAUDIT_JSIPFS_POLYFILL").expect("ZKAUDIT_JSIPFS_POLYFILL (set by scripts/setup.sh)");
    let mut c = Command::new(bin);
    c.args(args).env("IPFS_PATH", repo).env("NODE_OPTIONS", format!("--require {polyfill}"));
    c
}

fn start(repo: &Path) -> Node {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let run = |args: &[&str]| assert!(jsipfs(repo, args).stdout(Stdio::null()).status().unwrap().success(), "jsipfs {args:?}");
    run(&["init", "--empty-repo"]);
    run(&["config", "Addresses.API", &format!("/ip4/127.0.0.1/tcp/{port}")]);
    run(&["config", "--json", "Addresses.Swarm", "[]"]);
    run(&["config", "--json", "Addresses.Gateway", "\"\""]);
    run(&["config", "--json", "Addresses.RPC", "\"\""]);
    let child = jsipfs(repo, &["daemon", "--offline"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let node = Node { child, api: format!("http://127.0.0.1:{port}") };
    let started = Instant::now();
    let probe = Kubo::new(&node.api, Duration::from_secs(2));
    while probe.repo_gc().is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "the IPFS daemon did not start");
        std::thread::sleep(Duration::from_millis(250));
    }
    node
}

fn rpc(api: &str, call: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    agent.post(format!("{api}/api/v0/{call}")).send_empty().unwrap().body_mut().read_to_string().unwrap()
}

fn pinned(api: &str) -> String {
    rpc(api, "pin/ls?type=recursive&cid-base=base32")
}

/// Blocks in the node's repository.
fn local_blocks(api: &str) -> usize {
    rpc(api, "refs/local").lines().filter(|l| l.contains("\"Ref\"")).count()
}

#[test]
fn falls_back_to_ipfs_keeps_the_cid_pins_and_checks_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let node = start(&tmp.path().join("repo"));
    let store = |cache: &str| ProofStore {
        remotes: vec![
            // Blossom first, down: the put falls back to IPFS.
            Remote::Blossom(Blossom::new("http://127.0.0.1:9/blossom", Some(nostr::Keys::generate()), Duration::from_secs(2))),
            Remote::Ipfs(Kubo::new(&node.api, Duration::from_secs(30))),
        ],
        cache: Cache::open(&tmp.path().join(cache), 64 << 20).unwrap(),
        max_blob_bytes: 64 << 20,
        timeout: Duration::from_secs(30),
    };
    // 2 MB: larger than one chunk, so the CID names a DAG, not the bytes.
    let blob: Vec<u8> = (0..2_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let sha = sha256_hex(&blob);
    let put = store("cache-a").put(&blob, "application/octet-stream", true).unwrap();
    assert_eq!(put.store, format!("ipfs+{}", node.api));
    assert_eq!(put.failed.len(), 1, "the Blossom failure is reported: {:?}", put.failed);
    let cid = put.blob.cid.clone().unwrap();
    assert!(cid.starts_with("bafy"), "CIDv1, base32, dag-pb root over raw leaves: {cid}");
    assert_eq!(put.blob.url.as_deref(), Some(format!("ipfs://{cid}").as_str()));
    assert!(pinned(&node.api).contains(&cid), "pinned on the node");

    // A fresh cache fetches by CID and checks the SHA-256 given beside it.
    let fresh = store("cache-b");
    let r = BlobRef::parse(&format!("ipfs://{cid}"), Some(&sha)).unwrap();
    assert_eq!(fresh.get(&r).unwrap(), blob);
    let wrong = BlobRef::parse(&format!("ipfs://{cid}"), Some(&sha256_hex(b"something else"))).unwrap();
    assert!(matches!(store("cache-c").get(&wrong), Err(Error::Digest { .. })));
    // Without a CID, IPFS cannot be asked: a clear not-found, no guessing.
    let by_hash = BlobRef::parse(&sha, None).unwrap();
    let e = store("cache-d").get(&by_hash).unwrap_err().to_string();
    assert!(e.contains("never derived from a SHA-256"), "{e}");

    // Unpin, then the node's GC; the cache's own GC keeps pins only.
    fresh.unpin(&r).unwrap();
    assert!(!pinned(&node.api).contains(&cid));
    let before = local_blocks(&node.api);
    assert!(before >= 8, "2 MB in 256 KiB chunks is a DAG of several blocks ({before})");
    Kubo::new(&node.api, Duration::from_secs(30)).repo_gc().unwrap();
    let after = local_blocks(&node.api);
    assert!(after + 8 <= before, "the node collected the unpinned blocks ({before} → {after})");
    let a = store("cache-a");
    assert_eq!(a.cache.collect(Some(Duration::ZERO)).unwrap().kept, 1, "the put pinned it in the cache");
    // A malformed CID is the node's error, with its message.
    assert!(matches!(Kubo::new(&node.api, Duration::from_secs(10)).cat("bafkreiaaaa", 1024), Err(Error::Status { .. })));
}
