//! Token lookups by secret, cached for a few seconds, so that the front
//! ends that authenticate every request (`zkaudit serve`, the LLM gateway)
//! do not query the database each time. The one cache both use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Error, Store, Token};

/// How long a lookup (found or not) is trusted: a revoked token may be
/// accepted for at most this long after its revocation.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
/// Entries at most; the cache is cleared when it holds this many.
const MAX_ENTRIES: usize = 10_000;

/// [`Store::token`] behind a cache keyed by the presented secret.
pub struct TokenCache {
    store: Arc<Store>,
    entries: Mutex<HashMap<String, (Option<Token>, Instant)>>,
}

impl TokenCache {
    /// A cache in front of `store`'s tokens.
    pub fn new(store: Arc<Store>) -> Self {
        TokenCache { store, entries: Mutex::new(HashMap::new()) }
    }

    /// The answer for `secret` if one was looked up less than
    /// [`TOKEN_CACHE_TTL`] ago: `Some(None)` for a secret known to match
    /// no live token, `None` when the store must be asked
    /// ([`TokenCache::lookup`]). Never blocks on the database.
    pub fn cached(&self, secret: &str) -> Option<Option<Token>> {
        let entries = self.entries.lock().ok()?;
        entries.get(secret).filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL).map(|(t, _)| t.clone())
    }

    /// The live token whose secret is `secret`, from the cache or else from
    /// the store (a blocking database query; run it off async workers),
    /// whose answer is then cached.
    ///
    /// # Errors
    /// [`Store::token`]'s.
    pub fn lookup(&self, secret: &str) -> Result<Option<Token>, Error> {
        if let Some(t) = self.cached(secret) {
            return Ok(t);
        }
        let token = self.store.token(secret)?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(secret.to_owned(), (token.clone(), Instant::now()));
        }
        Ok(token)
    }
}
