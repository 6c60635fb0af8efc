//! `X-Hub-Signature-256` verification.
//!
//! Meta signs the exact bytes it sends (unicode escaped as `\u00e9`, `/` as `\/`), so the MAC is
//! always computed over the received bytes, never over a re-serialisation.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Why a request's signature was refused. The names are metric labels and API values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("X-Hub-Signature-256 header is not `sha256=<64 hex digits>`")]
    Malformed,
    #[error("X-Hub-Signature-256 matches none of the source's app secrets")]
    Mismatch,
}

impl SignatureError {
    /// Short stable name, used as the `reason` label and in the rejected list.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Mismatch => "signature_mismatch",
        }
    }
}

/// Verifies `header` (the value of `X-Hub-Signature-256`) over `body` against every secret.
///
/// Every secret is tried even after a match would be found, and each comparison is constant
/// time, so timing tells an attacker nothing about which secret or how many bytes matched.
pub fn verify<S: AsRef<[u8]>>(
    header: Option<&[u8]>,
    body: &[u8],
    secrets: &[S],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let expected = parse_header(header)?;
    let mut matched = false;
    for secret in secrets {
        let mut mac =
            HmacSha256::new_from_slice(secret.as_ref()).expect("HMAC accepts keys of any length");
        mac.update(body);
        matched |= mac.verify_slice(&expected).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header value Meta would send for `body` signed with `secret` (tests, load generators).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn parse_header(header: &[u8]) -> Result<[u8; 32], SignatureError> {
    let hex_digest = header
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    let mut out = [0u8; 32];
    // Meta sends lowercase; upper case is accepted as the same digest.
    hex::decode_to_slice(hex_digest, &mut out).map_err(|_| SignatureError::Malformed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"object":"page","entry":[]}"#;

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let header = sign(b"s3cret", BODY);
        assert_eq!(verify(Some(header.as_bytes()), BODY, &["s3cret"]), Ok(()));
    }

    #[test]
    fn any_of_several_secrets_verifies() {
        let header = sign(b"new", BODY);
        assert_eq!(
            verify(Some(header.as_bytes()), BODY, &["old", "new"]),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_is_a_mismatch() {
        let header = sign(b"s3cret", BODY);
        let mut body = BODY.to_vec();
        body[3] ^= 1;
        assert_eq!(
            verify(Some(header.as_bytes()), &body, &["s3cret"]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_told_apart() {
        assert_eq!(verify(None, BODY, &["s"]), Err(SignatureError::Missing));
        assert_eq!(
            verify(Some(b"sha1=abcd"), BODY, &["s"]),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some(b"sha256=zz"), BODY, &["s"]),
            Err(SignatureError::Malformed)
        );
        let short = format!("sha256={}", "a".repeat(62));
        assert_eq!(
            verify(Some(short.as_bytes()), BODY, &["s"]),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn uppercase_hex_is_the_same_digest() {
        let header = sign(b"k", BODY)
            .to_uppercase()
            .replace("SHA256=", "sha256=");
        assert_eq!(verify(Some(header.as_bytes()), BODY, &["k"]), Ok(()));
    }
}
