//! Endpoint secrets encrypted at rest with XChaCha20-Poly1305, so that a copy of Redis or of
//! the data directory alone reveals no secret. The key comes from `security.encryption_key`,
//! or from `security.key_file`, which hookd writes with a new random key on its first start.
//! A sealed secret names the key that sealed it (`enc:v1:{key id}:{base64 of nonce and
//! ciphertext}`): the current key seals, `security.previous_keys` still open, and
//! `hookd reencrypt` seals everything under the current key. A secret stored before
//! encryption (no `enc:` prefix) is read as it is and sealed when next written.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::config::{SecuritySettings, Settings, StorageBackend};
use crate::model::Endpoint;

const SEALED: &str = "enc:v1:";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("{setting}: {problem}")]
    BadKey {
        setting: &'static str,
        problem: String,
    },
    #[error("key file {path}: {cause}")]
    KeyFile {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "security.key_file {0} is inside storage.path: a copy of the data directory would carry \
         the key to its secrets; keep it elsewhere"
    )]
    KeyInsideStorage(PathBuf),
    #[error(
        "a stored secret was sealed with key {0}, which is neither security.encryption_key (or \
         the key file) nor one of security.previous_keys"
    )]
    UnknownKey(String),
    #[error("a stored secret does not open with key {0}: the data is damaged")]
    Damaged(String),
    #[error("a secret could not be sealed")]
    Seal,
}

struct Key {
    /// The first 8 hex digits of the key's SHA-256: names the key, reveals nothing of it.
    id: String,
    cipher: XChaCha20Poly1305,
}

impl Key {
    fn new(bytes: &[u8; 32]) -> Key {
        Key {
            id: hex::encode(&Sha256::digest(bytes)[..4]),
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }
}

/// Seals and opens endpoint secrets.
pub struct SecretBox {
    current: Key,
    previous: Vec<Key>,
}

/// Where the key came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Setting,
    File(PathBuf),
    Generated(PathBuf),
}

impl SecretBox {
    pub fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> SecretBox {
        SecretBox {
            current: Key::new(current),
            previous: previous.iter().map(Key::new).collect(),
        }
    }

    /// The box `settings` describe; generates the key file when there is neither a key nor a
    /// file yet.
    pub fn load(settings: &Settings) -> Result<(SecretBox, KeySource), SecretBoxError> {
        let s = &settings.security;
        let previous = s
            .previous_keys
            .iter()
            .map(|k| decode_key("security.previous_keys", k))
            .collect::<Result<Vec<_>, _>>()?;
        if !s.encryption_key.is_empty() {
            let key = decode_key("security.encryption_key", &s.encryption_key)?;
            return Ok((SecretBox::new(&key, &previous), KeySource::Setting));
        }
        let path = key_file(settings);
        if settings.storage.backend == StorageBackend::Embedded
            && inside(&path, &settings.storage.path)
        {
            return Err(SecretBoxError::KeyInsideStorage(path));
        }
        let file_error = |cause| SecretBoxError::KeyFile {
            path: path.clone(),
            cause,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = decode_key("security.key_file", text.trim())?;
                Ok((SecretBox::new(&key, &previous), KeySource::File(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                write_new_key_file(&path, &B64.encode(key)).map_err(file_error)?;
                Ok((SecretBox::new(&key, &previous), KeySource::Generated(path)))
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// `plain` sealed under the current key.
    pub fn seal(&self, plain: &str) -> Result<String, SecretBoxError> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .current
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|_| SecretBoxError::Seal)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{SEALED}{}:{}", self.current.id, B64.encode(bytes)))
    }

    /// The secret `stored` holds: opened with the key it names, or as it is when it was
    /// stored before encryption.
    pub fn open(&self, stored: &str) -> Result<String, SecretBoxError> {
        let Some(rest) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_string());
        };
        let (id, data) = rest.split_once(':').unwrap_or((rest, ""));
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SecretBoxError::UnknownKey(id.to_string()))?;
        let damaged = || SecretBoxError::Damaged(id.to_string());
        let bytes = B64.decode(data).map_err(|_| damaged())?;
        if bytes.len() < NONCE_LEN {
            return Err(damaged());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| damaged())?;
        String::from_utf8(plain).map_err(|_| damaged())
    }

    /// Whether `stored` is sealed under the current key (nothing for `reencrypt` to do).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(SEALED)
            .is_some_and(|rest| rest.starts_with(&format!("{}:", self.current.id)))
    }

    /// `endpoint` as stored: its secrets, current and rotated out, sealed.
    pub fn seal_endpoint(&self, endpoint: &Endpoint) -> Result<Endpoint, SecretBoxError> {
        let mut e = endpoint.clone();
        e.secret = self.seal(&e.secret)?;
        for p in &mut e.previous_secrets {
            p.secret = self.seal(&p.secret)?;
        }
        Ok(e)
    }

    /// `endpoint` as read back: its secrets opened.
    pub fn open_endpoint(&self, mut e: Endpoint) -> Result<Endpoint, SecretBoxError> {
        e.secret = self.open(&e.secret)?;
        for p in &mut e.previous_secrets {
            p.secret = self.open(&p.secret)?;
        }
        Ok(e)
    }
}

/// The key file in use: `security.key_file`, or beside the data directory (embedded) or in
/// the working directory (Redis).
pub fn key_file(settings: &Settings) -> PathBuf {
    let s: &SecuritySettings = &settings.security;
    if !s.key_file.as_os_str().is_empty() {
        return s.key_file.clone();
    }
    match settings.storage.backend {
        StorageBackend::Embedded => {
            let mut name = settings.storage.path.clone().into_os_string();
            name.push(".key");
            PathBuf::from(name)
        }
        StorageBackend::Redis => PathBuf::from("hookd.key"),
    }
}

fn decode_key(setting: &'static str, text: &str) -> Result<[u8; 32], SecretBoxError> {
    let bad = |problem: &str| SecretBoxError::BadKey {
        setting,
        problem: problem.to_string(),
    };
    let bytes = B64
        .decode(text.trim())
        .map_err(|_| bad("not base64 (make one with `head -c 32 /dev/urandom | base64`)"))?;
    bytes
        .try_into()
        .map_err(|_| bad("must be 32 bytes, base64-encoded"))
}

fn inside(path: &Path, dir: &Path) -> bool {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    abs(path).starts_with(abs(dir))
}

/// Writes a new key file readable by its owner only; never overwrites one.
fn write_new_key_file(path: &Path, key: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{key}")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_and_does_not_show_the_secret() {
        let b = SecretBox::new(&[7; 32], &[]);
        let sealed = b.seal("whsec_abc").expect("sealed");
        assert!(sealed.starts_with(SEALED));
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            b.seal("whsec_abc").expect("sealed"),
            "a fresh nonce each time"
        );
        assert_eq!(b.open(&sealed).expect("opens"), "whsec_abc");
        assert!(b.is_current(&sealed));
    }

    #[test]
    fn after_rotation_old_secrets_open_with_the_previous_key_and_new_ones_use_the_new() {
        let old = SecretBox::new(&[1; 32], &[]);
        let sealed_old = old.seal("s1").expect("sealed");
        let new = SecretBox::new(&[2; 32], &[[1; 32]]);
        assert_eq!(new.open(&sealed_old).expect("opens"), "s1");
        assert!(!new.is_current(&sealed_old));
        assert!(new.is_current(&new.seal("s2").expect("sealed")));
        let forgot = SecretBox::new(&[2; 32], &[]);
        assert!(matches!(
            forgot.open(&sealed_old),
            Err(SecretBoxError::UnknownKey(_))
        ));
    }

    #[test]
    fn a_tampered_secret_is_refused_not_returned_garbled() {
        let b = SecretBox::new(&[3; 32], &[]);
        let sealed = b.seal("whsec_x").expect("sealed");
        let (head, data) = sealed.rsplit_once(':').expect("sealed form");
        let mut bytes = B64.decode(data).expect("base64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("{head}:{}", B64.encode(bytes));
        assert!(matches!(b.open(&tampered), Err(SecretBoxError::Damaged(_))));
        assert!(matches!(
            b.open(&format!("{head}:???")),
            Err(SecretBoxError::Damaged(_))
        ));
    }

    #[test]
    fn a_secret_stored_before_encryption_reads_as_it_is() {
        let b = SecretBox::new(&[4; 32], &[]);
        assert_eq!(b.open("whsec_plain").expect("plain"), "whsec_plain");
        assert!(!b.is_current("whsec_plain"));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(decode_key("k", &B64.encode([0u8; 32])).is_ok());
        for bad in ["", "not base64!", &B64.encode([0u8; 16])] {
            assert!(decode_key("k", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_key_file_is_generated_once_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings::load_with_env(
            None,
            figment::providers::Env::prefixed("HOOKD_UNIT_NOTHING_"),
        )
        .expect("defaults");
        settings.storage.path = dir.path().join("data");
        let (first, source) = SecretBox::load(&settings).expect("generated");
        let path = dir.path().join("data.key");
        assert_eq!(source, KeySource::Generated(path.clone()));
        let sealed = first.seal("s").expect("sealed");
        let (again, source) = SecretBox::load(&settings).expect("read back");
        assert_eq!(source, KeySource::File(path.clone()));
        assert_eq!(again.open(&sealed).expect("same key"), "s");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o077, 0, "only its owner may read it");
        }
        settings.security.key_file = settings.storage.path.join("inside.key");
        assert!(matches!(
            SecretBox::load(&settings),
            Err(SecretBoxError::KeyInsideStorage(_))
        ));
    }
}
