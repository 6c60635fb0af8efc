//! Tenants, their API keys and the Meta accounts they own.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A new random id with a prefix that tells what it names (`t_`, `ep_`, `hk_`).
pub fn new_id(prefix: &str, bytes: usize) -> String {
    use rand::RngCore;
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    format!("{prefix}{}", hex::encode(raw))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: u64,
}

/// A tenant's API key as stored: the key itself is shown once and kept only as a SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiKey {
    /// Public handle of the key (for revocation), a prefix of its hash.
    pub id: String,
    pub tenant_id: String,
    pub created_at: u64,
}

/// Which tenant owns which Meta account (phone number id, WABA id, page id, Instagram id).
/// An account has one owner at most; an account nobody owns reaches admin-owned endpoints only.
pub type AccountOwners = HashMap<String, String>;
