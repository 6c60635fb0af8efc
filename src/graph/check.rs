//! The subscription check: after re-posting the subscription Meta has on record (which makes
//! Meta run the handshake against its callback URL), what the answer and the handshakes this
//! instance saw say about that URL and token.

use serde::Serialize;

use super::error::{GraphError, GraphFailure};
use super::handshakes::Handshake;

/// Meta's code for a callback URL that failed its verification handshake.
pub const CALLBACK_VERIFICATION_FAILED: i64 = 2200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Meta verified the callback URL with hookd's verify token.
    Ok,
    /// The app has no subscription to the object: nothing to check.
    NotSubscribed,
    /// The handshake reached this hookd but the token did not match the source it reached.
    VerifyTokenMismatch,
    /// Meta could not verify the URL and no handshake reached this instance: the URL is wrong,
    /// unreachable from Meta, or served by something else.
    CallbackUnreachable,
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    pub detail: String,
    /// A handshake this instance answered during the check, and for which source.
    pub handshake_seen: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_error: Option<GraphFailure>,
}

/// Judges a check. `repost` is Meta's answer to the re-post (`None`: not subscribed, so none
/// was made); `seen` the handshakes this instance answered meanwhile. A Graph error other than
/// a failed verification is not a verdict on the URL: it is returned for the caller to see.
pub fn judge(
    source: &str,
    repost: Option<Result<(), GraphError>>,
    seen: &[Handshake],
) -> Result<Report, GraphError> {
    let last = seen.last();
    let report = |verdict, detail: String, graph_error| Report {
        verdict,
        detail,
        handshake_seen: last.is_some(),
        handshake_source: last.map(|h| h.source.clone()),
        graph_error,
    };
    let Some(repost) = repost else {
        return Ok(report(
            Verdict::NotSubscribed,
            "the app has no subscription to this object".into(),
            None,
        ));
    };
    match repost {
        Ok(()) => {
            let detail = match last {
                Some(h) if h.source == source => {
                    "Meta verified the callback URL; this instance answered the handshake".into()
                }
                Some(h) => format!(
                    "Meta verified the callback URL, which reaches source {:?} of this hookd, not {source:?}",
                    h.source
                ),
                None => "Meta verified the callback URL; another instance (or whatever serves \
                         that URL) answered the handshake"
                    .into(),
            };
            Ok(report(Verdict::Ok, detail, None))
        }
        Err(GraphError::Refused(f)) if f.code == CALLBACK_VERIFICATION_FAILED => {
            let (verdict, detail) = match seen.iter().rev().find(|h| !h.accepted) {
                Some(h) => (
                    Verdict::VerifyTokenMismatch,
                    format!(
                        "the callback URL reaches source {:?} of this hookd, whose verify token is not the one sent",
                        h.source
                    ),
                ),
                None => (
                    Verdict::CallbackUnreachable,
                    "Meta could not verify the callback URL and no handshake reached this instance"
                        .into(),
                ),
            };
            Ok(report(verdict, detail, Some(f)))
        }
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(source: &str, accepted: bool) -> Handshake {
        Handshake {
            source: source.into(),
            at_ms: 1,
            accepted,
        }
    }

    fn verification_failed() -> GraphError {
        GraphError::Refused(GraphFailure {
            status: 400,
            code: CALLBACK_VERIFICATION_FAILED,
            error_subcode: None,
            kind: "OAuthException".into(),
            message: "(#2200) callback verification failed".into(),
            fbtrace_id: None,
        })
    }

    #[test]
    fn a_verified_url_answered_here_is_ok() {
        let r = judge("acme", Some(Ok(())), &[seen("acme", true)]).expect("report");
        assert_eq!(r.verdict, Verdict::Ok);
        assert!(r.handshake_seen);
    }

    #[test]
    fn a_failed_verification_seen_here_with_a_wrong_token_is_a_token_mismatch() {
        let r = judge(
            "acme",
            Some(Err(verification_failed())),
            &[seen("other", false)],
        )
        .expect("report");
        assert_eq!(r.verdict, Verdict::VerifyTokenMismatch);
        assert!(r.detail.contains("other"));
        assert_eq!(
            r.graph_error.map(|f| f.code),
            Some(CALLBACK_VERIFICATION_FAILED)
        );
    }

    #[test]
    fn a_failed_verification_never_seen_here_is_an_unreachable_url() {
        let r = judge("acme", Some(Err(verification_failed())), &[]).expect("report");
        assert_eq!(r.verdict, Verdict::CallbackUnreachable);
    }

    #[test]
    fn no_subscription_is_its_own_verdict_and_other_graph_errors_are_passed_on() {
        let r = judge("acme", None, &[]).expect("report");
        assert_eq!(r.verdict, Verdict::NotSubscribed);
        let unreachable = judge(
            "acme",
            Some(Err(GraphError::Unreachable("dns".into()))),
            &[],
        );
        assert!(matches!(unreachable, Err(GraphError::Unreachable(_))));
    }
}
