//! A short-lived cache of API keys, so that authenticating a request costs no database read.
//!
//! An entry is trusted for [`KeyCache::TTL`]; a key revoked through this process is dropped
//! at once, one revoked by another process (the CLI, another node) stops working within the TTL.
//! Only keys that exist are cached, so guessing cannot fill the cache.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use profiled_store::ApiKeyRecord;

#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, (ApiKeyRecord, Instant)>>,
}

impl KeyCache {
    pub const TTL: Duration = Duration::from_secs(1);

    pub fn get(&self, id: &str) -> Option<ApiKeyRecord> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(id)
            .filter(|(_, at)| at.elapsed() < Self::TTL)
            .map(|(record, _)| record.clone())
    }

    pub fn put(&self, record: ApiKeyRecord) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Expired entries go when the map grows, so it never outlives the live keys by much.
        if entries.len() >= 1024 {
            entries.retain(|_, (_, at)| at.elapsed() < Self::TTL);
        }
        entries.insert(record.id.clone(), (record, Instant::now()));
    }

    pub fn forget(&self, id: &str) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}
