//! Which conversation an event belongs to, and where a WhatsApp status stands among its
//! message's statuses: what an endpoint with conversation ordering waits on.
//!
//! A conversation is a receiving account and the user it talks to: WhatsApp, the phone
//! number id and the user's business-scoped id when Meta sends one, else the phone (`wa_id`);
//! Messenger, the page and the page-scoped id; Instagram, the account and the Instagram-scoped
//! id. Events that name no user (a page's feed, a template's review) form one conversation
//! per account.

/// Where a WhatsApp status stands in its message's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusStep {
    pub message_id: String,
    /// 1 `sent`, 2 `delivered`, 3 `read`, 4 `played`.
    pub rank: u8,
}

impl StatusStep {
    /// The step of a status item, when it has an id and a status that comes in a fixed order
    /// (`failed` and statuses hookd does not know have no place, and are never stale).
    pub fn of(message_id: Option<&str>, status: Option<&str>) -> Option<StatusStep> {
        let rank = match status? {
            "sent" => 1,
            "delivered" => 2,
            "read" => 3,
            "played" => 4,
            _ => return None,
        };
        Some(StatusStep {
            message_id: message_id.filter(|id| !id.is_empty())?.to_string(),
            rank,
        })
    }

    /// The highest rank.
    pub const LAST: u8 = 4;
}

/// The conversation key of `account` with `user`, or of the account's own events.
pub fn key(account: &str, user: Option<&str>) -> String {
    match user {
        Some(u) if !u.is_empty() => format!("{account}:{u}"),
        _ => account.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_rank_sent_delivered_read_played() {
        let rank = |s| StatusStep::of(Some("wamid.1"), Some(s)).map(|x| x.rank);
        assert!(rank("sent") < rank("delivered"));
        assert!(rank("delivered") < rank("read"));
        assert!(rank("read") < rank("played"));
        assert_eq!(rank("played"), Some(StatusStep::LAST));
        assert_eq!(rank("failed"), None, "a failure is never stale");
        assert_eq!(StatusStep::of(None, Some("read")), None);
    }

    #[test]
    fn a_conversation_is_an_account_and_a_user() {
        assert_eq!(key("PN", Some("US.1")), "PN:US.1");
        assert_eq!(key("PAGE", None), "PAGE");
        assert_eq!(key("PAGE", Some("")), "PAGE");
    }
}
