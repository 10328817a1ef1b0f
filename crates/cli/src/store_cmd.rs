//! `zkaudit store`: put, fetch, pin and collect blobs (receipts above all)
//! in content-addressed storage: Blossom servers and IPFS nodes, behind a
//! local cache.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use zkaudit_store::{BlobRef, ProofStore, Remote, StoreUrl};

use crate::output::{out, outln, print_json};

/// Where blobs go and come from: shared by `store`, `dvm` and the provider.
#[derive(Args, Debug, Clone)]
pub struct StoreOpts {
    /// A store: `blossom+http://HOST:PORT/blossom` (a Blossom server, e.g.
    /// `zkaudit serve`'s) or `ipfs+http://HOST:5001` (an IPFS node's Kubo
    /// RPC API). Repeat to give fallbacks, tried in order.
    #[arg(long = "store", value_name = "URL")]
    pub stores: Vec<String>,
    /// Nostr key file (`zkaudit store keygen`) that signs Blossom
    /// authorization events (uploads and deletes need one).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Local cache directory (default $ZKAUDIT_STORE_CACHE, else ~/.cache/zkaudit/store).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Most bytes of unpinned blobs the cache keeps.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub cache_max_bytes: u64,
    /// Timeout of each store call (s).
    #[arg(long, value_name = "S", default_value_t = zkaudit_store::DEFAULT_TIMEOUT.as_secs())]
    pub store_timeout: u64,
}

impl StoreOpts {
    /// The timeout of each store call.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.store_timeout.max(1))
    }

    /// Opens the cache and the clients for uploads, or `None` without
    /// `--store`: refuses at once (not after the work whose result would
    /// be uploaded) a Blossom store without `--key`, whose uploads would
    /// be refused for want of an authorization event.
    pub fn open_for_put(&self) -> Result<Option<ProofStore>> {
        if self.stores.is_empty() {
            return Ok(None);
        }
        if self.key.is_none() {
            if let Some(s) = self.stores.iter().find(|s| s.parse::<StoreUrl>().is_ok_and(|u| u.backend == zkaudit_store::Backend::Blossom)) {
                bail!("--store {s}: uploads to a Blossom server need --key FILE (a Nostr key; `zkaudit store keygen FILE` makes one)");
            }
        }
        self.open().map(Some)
    }

    /// Opens the cache and the clients.
    pub fn open(&self) -> Result<ProofStore> {
        let keys = self.key.as_deref().map(zkaudit_store::keys::load).transpose()?;
        let timeout = self.timeout();
        let mut remotes = Vec::new();
        for s in &self.stores {
            let url: StoreUrl = s.parse()?;
            remotes.push(Remote::new(&url, keys.clone(), timeout));
        }
        let dir = self.cache.clone().unwrap_or_else(zkaudit_store::cache::default_dir);
        Ok(ProofStore {
            remotes,
            cache: zkaudit_store::cache::Cache::open(&dir, self.cache_max_bytes)?,
            max_blob_bytes: zkaudit_store::DEFAULT_MAX_BLOB_BYTES,
            timeout,
        })
    }
}

/// `zkaudit store` subcommands.
#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Upload a file to the first store that takes it; prints its SHA-256
    /// (`--json`: the full reference, with the URL and any CID).
    Put {
        /// The file.
        file: PathBuf,
        /// Its MIME type.
        #[arg(long = "type", value_name = "MIME", default_value = "application/octet-stream")]
        content_type: String,
        /// Also pin it (cache, and IPFS nodes).
        #[arg(long)]
        pin: bool,
        #[command(flatten)]
        store: StoreOpts,
        /// Print the reference as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a blob by SHA-256, Blossom URL or `ipfs://CID` (with
    /// --sha256), check its digest, and write it out.
    Get {
        /// SHA-256, Blossom URL, or ipfs://CID.
        reference: String,
        /// The blob's SHA-256 (needed beside an ipfs:// reference).
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Write here instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        store: StoreOpts,
    },
    /// Pin a blob: kept by the cache's GC (fetched first if needed), and
    /// pinned on IPFS nodes when its CID is known.
    Pin {
        /// SHA-256, Blossom URL, or ipfs://CID.
        reference: String,
        /// The blob's SHA-256 (needed beside an ipfs:// reference).
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        #[command(flatten)]
        store: StoreOpts,
    },
    /// Unpin a blob (cache and IPFS nodes).
    Unpin {
        /// SHA-256, Blossom URL, or ipfs://CID.
        reference: String,
        /// The blob's SHA-256 (needed beside an ipfs:// reference).
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        #[command(flatten)]
        store: StoreOpts,
    },
    /// Remove unpinned cached blobs unused for longer than --ttl, then the
    /// least recently used down to the cap; --remote also runs each IPFS
    /// node's repo GC.
    Gc {
        /// Age (s since last use) past which unpinned blobs go.
        #[arg(long, value_name = "S")]
        ttl: Option<u64>,
        /// Also collect on the IPFS stores given.
        #[arg(long)]
        remote: bool,
        #[command(flatten)]
        store: StoreOpts,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the cached blobs, most recently used first.
    List {
        #[command(flatten)]
        store: StoreOpts,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a Nostr secret key file (mode 0600) for Blossom uploads and the
    /// proof market; prints its public key (npub).
    Keygen {
        /// Where to write it (never overwritten).
        file: PathBuf,
    },
}

/// Runs a `store` subcommand.
pub fn store(cmd: StoreCommand) -> Result<ExitCode> {
    match cmd {
        StoreCommand::Put { file, content_type, pin, store, json } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let put = store.open_for_put()?.ok_or_else(|| anyhow!("--store URL: where to put it"))?.put(&bytes, &content_type, pin)?;
            if json {
                print_json(&put);
            } else {
                outln!("{}", put.blob.sha256);
            }
        }
        StoreCommand::Get { reference, sha256, out, store } => {
            let blob = BlobRef::parse(&reference, sha256.as_deref())?;
            let bytes = store.open()?.get(&blob)?;
            match out {
                Some(p) => std::fs::write(&p, &bytes).with_context(|| format!("writing {}", p.display()))?,
                None => {
                    use std::io::Write as _;
                    std::io::stdout().lock().write_all(&bytes).context("writing standard output")?;
                }
            }
        }
        StoreCommand::Pin { reference, sha256, store } => {
            store.open()?.pin(&BlobRef::parse(&reference, sha256.as_deref())?)?;
        }
        StoreCommand::Unpin { reference, sha256, store } => {
            store.open()?.unpin(&BlobRef::parse(&reference, sha256.as_deref())?)?;
        }
        StoreCommand::Gc { ttl, remote, store, json } => {
            let s = store.open()?;
            let r = s.cache.collect(ttl.map(Duration::from_secs))?;
            if remote {
                for r in &s.remotes {
                    if let Remote::Ipfs(c) = r {
                        c.repo_gc()?;
                    }
                }
            }
            if json {
                print_json(&r);
            } else {
                outln!("removed {} blobs ({} bytes); kept {} ({} bytes)", r.removed, r.freed_bytes, r.kept, r.kept_bytes);
            }
        }
        StoreCommand::List { store, json } => {
            let entries = store.open()?.cache.list()?;
            if json {
                print_json(&entries);
            } else {
                for e in entries {
                    outln!("{} {:>10} {} {}", e.blob.sha256, e.blob.size, if e.pinned { "pinned" } else { "-" }, e.blob.url.as_deref().unwrap_or("-"));
                }
            }
        }
        StoreCommand::Keygen { file } => {
            let keys = zkaudit_store::keys::generate(&file)?;
            outln!("{}", zkaudit_store::keys::npub(&keys));
        }
    }
    Ok(ExitCode::SUCCESS)
}
