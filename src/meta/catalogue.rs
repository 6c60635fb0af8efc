//! The event types hookd knows: for each, the Meta webhook field it comes from, what it means,
//! how a resent copy is recognised, a real-shaped sample body and the Meta reference page the
//! sample's shape follows. The API serves this table, metrics label by it, and the tests check
//! that the splitter turns each sample into events of exactly its type.

use super::event::Platform;

/// How the splitter recognises an event of this type when Meta sends it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedup {
    /// By Meta's ids: the text names them.
    Ids(&'static str),
    /// By a hash of the event's canonical JSON (Meta gives no id); the text says what else
    /// takes part.
    Content(&'static str),
}

impl Dedup {
    pub fn kind(self) -> &'static str {
        match self {
            Dedup::Ids(_) => "ids",
            Dedup::Content(_) => "content",
        }
    }

    pub fn rule(self) -> &'static str {
        match self {
            Dedup::Ids(rule) | Dedup::Content(rule) => rule,
        }
    }
}

/// One known event type.
#[derive(Debug)]
pub struct EventType {
    /// `platform.name`, as events and endpoint filters carry it.
    pub name: &'static str,
    pub platform: Platform,
    /// The webhook field an app subscribes to (`/{app-id}/subscriptions` `fields`) to get it.
    pub field: &'static str,
    pub description: &'static str,
    pub dedup: Dedup,
    /// A complete Meta webhook body carrying one event of this type.
    pub sample: &'static str,
    /// Meta's page the sample's shape follows.
    pub reference: &'static str,
}

const WA_REF: &str =
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/";
const MESSENGER_REF: &str =
    "https://developers.facebook.com/docs/messenger-platform/reference/webhook-events/";
const PAGE_REF: &str = "https://developers.facebook.com/docs/graph-api/webhooks/reference/page/";
const IG_REF: &str =
    "https://developers.facebook.com/docs/instagram-platform/webhooks/#webhook-payload-structure";

/// What `entry.time` adds to a content key: Meta's trigger time, so the same notice sent again
/// is one event while the same state reached again later (a template approved twice) is two.
const WA_CONTENT: Dedup = Dedup::Content("the change's `value` and the trigger time `entry.time`");
const GROUPS_REF: &str =
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/groups/webhooks";
const GROUP_IDS: Dedup = Dedup::Ids(
    "the group id `groups[].group_id`, the notice's `type`, its `request_id` and `timestamp`",
);
const ITEM_CONTENT: Dedup = Dedup::Content("the messaging item, its `timestamp` included");

macro_rules! event_type {
    ($name:literal, $platform:ident, $field:literal, $dedup:expr, $reference:expr, $description:literal) => {
        EventType {
            name: $name,
            platform: Platform::$platform,
            field: $field,
            description: $description,
            dedup: $dedup,
            sample: include_str!(concat!("samples/", $name, ".json")),
            reference: $reference,
        }
    };
}

/// Every type the splitter emits for the fields Meta documents. A field Meta adds later still
/// becomes an event, typed `platform.field` after it (see [`UNKNOWN_FIELDS`]).
pub static CATALOGUE: &[EventType] = &[
    event_type!(
        "whatsapp.messages",
        WhatsApp,
        "messages",
        Dedup::Ids("the message id `messages[].id` (wamid)"),
        WA_REF,
        "A message a WhatsApp user sent to the business: text, media, location, contacts, interactive and button replies, orders, reactions, system notices. One event per message of a batch, with the change's `metadata` and `contacts`."
    ),
    event_type!(
        "whatsapp.statuses",
        WhatsApp,
        "messages",
        Dedup::Ids("the message id `statuses[].id`, the `status` and the group participant"),
        WA_REF,
        "The status of a message the business sent: sent, delivered, read, played or failed (with `errors`), with pricing. One event per status."
    ),
    event_type!(
        "whatsapp.errors",
        WhatsApp,
        "messages",
        WA_CONTENT,
        WA_REF,
        "A `messages` change that carries only `errors`: a problem Meta reports outside any message or status."
    ),
    event_type!(
        "whatsapp.smb_message_echoes",
        WhatsApp,
        "smb_message_echoes",
        Dedup::Ids("the message id `message_echoes[].id`"),
        WA_REF,
        "A message the business sent from the WhatsApp Business app on a number also on Cloud API (coexistence). One event per echo."
    ),
    event_type!(
        "whatsapp.calls",
        WhatsApp,
        "calls",
        Dedup::Ids(
            "the call id `calls[].id` and its `event`, or for a call status its id and `status`"
        ),
        WA_REF,
        "A WhatsApp call: connect, terminate (with duration and errors) and call statuses (ringing, accepted, rejected)."
    ),
    event_type!(
        "whatsapp.account_update",
        WhatsApp,
        "account_update",
        WA_CONTENT,
        WA_REF,
        "A change to the WhatsApp Business Account: business verification, violations and restrictions, bans, offboarding, deletion, partner sharing."
    ),
    event_type!(
        "whatsapp.account_review_update",
        WhatsApp,
        "account_review_update",
        WA_CONTENT,
        WA_REF,
        "The outcome of the account's policy review (`decision`)."
    ),
    event_type!(
        "whatsapp.account_alerts",
        WhatsApp,
        "account_alerts",
        WA_CONTENT,
        WA_REF,
        "An alert about a phone number's messaging limit, business profile or Official Business Account status."
    ),
    event_type!(
        "whatsapp.business_capability_update",
        WhatsApp,
        "business_capability_update",
        WA_CONTENT,
        WA_REF,
        "A new messaging or phone-number limit for the account or business portfolio."
    ),
    event_type!(
        "whatsapp.message_template_status_update",
        WhatsApp,
        "message_template_status_update",
        WA_CONTENT,
        WA_REF,
        "A template was approved, rejected, paused, disabled or flagged, with the reason."
    ),
    event_type!(
        "whatsapp.message_template_quality_update",
        WhatsApp,
        "message_template_quality_update",
        WA_CONTENT,
        WA_REF,
        "A template's quality score changed (previous and new score)."
    ),
    event_type!(
        "whatsapp.message_template_components_update",
        WhatsApp,
        "message_template_components_update",
        WA_CONTENT,
        WA_REF,
        "A template's components (header, body, footer, buttons) were edited."
    ),
    event_type!(
        "whatsapp.template_category_update",
        WhatsApp,
        "template_category_update",
        WA_CONTENT,
        WA_REF,
        "Meta changed, or will change, a template's category."
    ),
    event_type!(
        "whatsapp.phone_number_quality_update",
        WhatsApp,
        "phone_number_quality_update",
        WA_CONTENT,
        WA_REF,
        "A phone number's quality rating or messaging limit tier changed."
    ),
    event_type!(
        "whatsapp.phone_number_name_update",
        WhatsApp,
        "phone_number_name_update",
        WA_CONTENT,
        WA_REF,
        "The outcome of a display name verification for a phone number."
    ),
    event_type!(
        "whatsapp.security",
        WhatsApp,
        "security",
        WA_CONTENT,
        WA_REF,
        "A phone number's two-step verification PIN was changed, or its reset was requested or completed."
    ),
    event_type!(
        "whatsapp.history",
        WhatsApp,
        "history",
        WA_CONTENT,
        WA_REF,
        "A chunk of WhatsApp Business app chat history shared at onboarding (coexistence), with its phase and progress; or the refusal to share it."
    ),
    event_type!(
        "whatsapp.smb_app_state_sync",
        WhatsApp,
        "smb_app_state_sync",
        WA_CONTENT,
        WA_REF,
        "Contacts the business added, edited or removed in the WhatsApp Business app (coexistence)."
    ),
    event_type!(
        "whatsapp.flows",
        WhatsApp,
        "flows",
        WA_CONTENT,
        "https://developers.facebook.com/docs/whatsapp/flows/reference/flowswebhooks",
        "A Flow changed status, or its endpoint crossed an error-rate or latency threshold."
    ),
    event_type!(
        "whatsapp.user_preferences",
        WhatsApp,
        "user_preferences",
        WA_CONTENT,
        WA_REF,
        "A WhatsApp user stopped or resumed marketing messages from the business."
    ),
    event_type!(
        "whatsapp.automatic_events",
        WhatsApp,
        "automatic_events",
        WA_CONTENT,
        WA_REF,
        "A purchase or lead Meta detected in a chat that started from a Click to WhatsApp ad."
    ),
    event_type!(
        "whatsapp.partner_solutions",
        WhatsApp,
        "partner_solutions",
        WA_CONTENT,
        WA_REF,
        "A Multi-Partner Solution changed status."
    ),
    event_type!(
        "whatsapp.payment_configuration_update",
        WhatsApp,
        "payment_configuration_update",
        WA_CONTENT,
        WA_REF,
        "A payment configuration (Payments API India or Brazil) changed."
    ),
    event_type!(
        "whatsapp.group_lifecycle_update",
        WhatsApp,
        "group_lifecycle_update",
        GROUP_IDS,
        GROUPS_REF,
        "A group the business created or deleted through the Groups API, or the failure to. One event per group of a batch."
    ),
    event_type!(
        "whatsapp.group_participants_update",
        WhatsApp,
        "group_participants_update",
        GROUP_IDS,
        GROUPS_REF,
        "Someone joined a group (by invite link or an approved request), asked or stopped asking to join, left, or was removed."
    ),
    event_type!(
        "whatsapp.group_settings_update",
        WhatsApp,
        "group_settings_update",
        GROUP_IDS,
        GROUPS_REF,
        "The outcome of a change to a group's subject, description or picture, field by field."
    ),
    event_type!(
        "whatsapp.group_status_update",
        WhatsApp,
        "group_status_update",
        GROUP_IDS,
        GROUPS_REF,
        "A group the business manages was suspended or reinstated."
    ),
    event_type!(
        "whatsapp.entry",
        WhatsApp,
        "",
        Dedup::Content("the whole entry"),
        WA_REF,
        "An entry with no change hookd could read: kept whole rather than dropped."
    ),
    event_type!(
        "messenger.messages",
        Messenger,
        "messages",
        Dedup::Ids("the message id `message.mid`"),
        MESSENGER_REF,
        "A message a person sent to the Page in Messenger: text, attachments, quick replies, replies."
    ),
    event_type!(
        "messenger.message_echoes",
        Messenger,
        "message_echoes",
        Dedup::Ids("the message id `message.mid`"),
        MESSENGER_REF,
        "A message the Page sent (`is_echo`), by this app or another."
    ),
    event_type!(
        "messenger.messaging_postbacks",
        Messenger,
        "messaging_postbacks",
        Dedup::Ids("the postback's `mid`; the item's content when it has none"),
        MESSENGER_REF,
        "A person tapped a postback button, Get Started or a persistent menu item."
    ),
    event_type!(
        "messenger.message_deliveries",
        Messenger,
        "message_deliveries",
        Dedup::Ids("the person and the `watermark`"),
        MESSENGER_REF,
        "Messages the Page sent were delivered, up to the watermark."
    ),
    event_type!(
        "messenger.message_reads",
        Messenger,
        "message_reads",
        Dedup::Ids("the person and the `watermark`"),
        MESSENGER_REF,
        "A person read the Page's messages up to the watermark."
    ),
    event_type!(
        "messenger.message_reactions",
        Messenger,
        "message_reactions",
        Dedup::Ids("the message `mid`, the person, the `action` and the emoji"),
        MESSENGER_REF,
        "A person reacted to a message, or removed a reaction."
    ),
    event_type!(
        "messenger.message_edits",
        Messenger,
        "message_edits",
        Dedup::Ids("the message `mid` and `num_edit`"),
        MESSENGER_REF,
        "A person edited a message they sent (the new text and how many edits so far)."
    ),
    event_type!(
        "messenger.messaging_optins",
        Messenger,
        "messaging_optins",
        ITEM_CONTENT,
        MESSENGER_REF,
        "A person opted in to marketing messages, or stopped or resumed them, or used a Send to Messenger or checkbox plugin."
    ),
    event_type!(
        "messenger.messaging_optouts",
        Messenger,
        "messaging_optouts",
        ITEM_CONTENT,
        MESSENGER_REF,
        "A person opted out of the Page's marketing messages (item `optout`; Meta's reference gives the field without a payload, so the sample follows the opt-in shape)."
    ),
    event_type!(
        "messenger.messaging_referrals",
        Messenger,
        "messaging_referrals",
        ITEM_CONTENT,
        MESSENGER_REF,
        "A person already in a conversation came back through an m.me link, an ad or a chat plugin, with its `ref`."
    ),
    event_type!(
        "messenger.messaging_handovers",
        Messenger,
        "messaging_handovers",
        ITEM_CONTENT,
        MESSENGER_REF,
        "Conversation control passed, was taken or was requested between apps (handover protocol)."
    ),
    event_type!(
        "messenger.messaging_policy_enforcement",
        Messenger,
        "messaging_policy_enforcement",
        ITEM_CONTENT,
        MESSENGER_REF,
        "Meta warned, blocked or unblocked the app for a policy violation."
    ),
    event_type!(
        "messenger.messaging_account_linking",
        Messenger,
        "messaging_account_linking",
        ITEM_CONTENT,
        MESSENGER_REF,
        "A person linked or unlinked their account with the business's."
    ),
    event_type!(
        "messenger.standby",
        Messenger,
        "standby",
        Dedup::Ids("as the item's own kind, in a key space of its own"),
        MESSENGER_REF,
        "Any messaging item seen by an app that does not control the conversation (handover protocol)."
    ),
    event_type!(
        "messenger.messaging",
        Messenger,
        "messages",
        ITEM_CONTENT,
        MESSENGER_REF,
        "A messaging item holding nothing but its addressing and time."
    ),
    event_type!(
        "page.feed",
        Page,
        "feed",
        Dedup::Ids(
            "the `item` kind, `verb`, the comment or post id, the author, the reaction and `created_time`"
        ),
        PAGE_REF,
        "A change to the Page's feed. `item` says what: status, post, photo, video, share, comment, reaction, like, event, album; `verb` says add, edited, remove, hide or unhide."
    ),
    event_type!(
        "page.leadgen",
        Page,
        "leadgen",
        Dedup::Ids("the lead id `leadgen_id`"),
        "https://developers.facebook.com/docs/marketing-api/guides/lead-ads/retrieving",
        "A person submitted a Lead Ads form; fetch the lead with its `leadgen_id`."
    ),
    event_type!(
        "page.mention",
        Page,
        "mention",
        Dedup::Ids("the post id, the comment id and the `verb`"),
        PAGE_REF,
        "The Page was mentioned in a post or comment."
    ),
    event_type!(
        "page.ratings",
        Page,
        "ratings",
        Dedup::Ids("the `review_id` (or `open_graph_story_id`) and the `verb`"),
        PAGE_REF,
        "A recommendation or rating of the Page was added, edited or removed."
    ),
    event_type!(
        "page.live_videos",
        Page,
        "live_videos",
        Dedup::Ids("the video `id` and its `status`"),
        PAGE_REF,
        "A live video of the Page changed status (scheduled, live, processing, vod)."
    ),
    event_type!(
        "page.messages",
        Page,
        "messages",
        Dedup::Content("the change's `value`"),
        PAGE_REF,
        "A `messages` field sent as a change rather than a messaging item, as the App Dashboard's Test button sends it."
    ),
    event_type!(
        "page.entry",
        Page,
        "",
        Dedup::Content("the whole entry"),
        PAGE_REF,
        "An entry with no change or messaging item hookd could read: kept whole rather than dropped."
    ),
    event_type!(
        "instagram.messages",
        Instagram,
        "messages",
        Dedup::Ids("the message id `message.mid`"),
        IG_REF,
        "A direct message a person sent to the Instagram professional account: text, media, story replies and mentions, shares."
    ),
    event_type!(
        "instagram.message_echoes",
        Instagram,
        "messages",
        Dedup::Ids("the message id `message.mid`"),
        IG_REF,
        "A direct message the account sent (`is_echo`)."
    ),
    event_type!(
        "instagram.messaging_seen",
        Instagram,
        "messaging_seen",
        Dedup::Ids("the message `mid` and the person"),
        IG_REF,
        "A person saw a message the account sent."
    ),
    event_type!(
        "instagram.message_reactions",
        Instagram,
        "message_reactions",
        Dedup::Ids("the message `mid`, the person, the `action` and the emoji"),
        IG_REF,
        "A person reacted to a direct message, or removed a reaction."
    ),
    event_type!(
        "instagram.messaging_postbacks",
        Instagram,
        "messaging_postbacks",
        Dedup::Ids("the postback's `mid`; the item's content when it has none"),
        IG_REF,
        "A person tapped an icebreaker, a generic template button or a persistent menu item."
    ),
    event_type!(
        "instagram.messaging_referral",
        Instagram,
        "messaging_referral",
        ITEM_CONTENT,
        IG_REF,
        "A person entered a conversation through an ig.me link or an ad, with its `ref`."
    ),
    event_type!(
        "instagram.messaging_optins",
        Instagram,
        "messaging_optins",
        ITEM_CONTENT,
        IG_REF,
        "A person opted in to marketing messages from the account."
    ),
    event_type!(
        "instagram.messaging_handover",
        Instagram,
        "messaging_handover",
        ITEM_CONTENT,
        IG_REF,
        "Conversation control passed, was taken or was requested between apps (handover protocol)."
    ),
    event_type!(
        "instagram.message_edit",
        Instagram,
        "message_edit",
        Dedup::Ids("the message `mid` and `num_edit`"),
        IG_REF,
        "A person edited a direct message they sent."
    ),
    event_type!(
        "instagram.standby",
        Instagram,
        "standby",
        Dedup::Ids("as the item's own kind, in a key space of its own"),
        IG_REF,
        "Any messaging item seen by an app that does not control the conversation (handover protocol)."
    ),
    event_type!(
        "instagram.messaging",
        Instagram,
        "messages",
        ITEM_CONTENT,
        IG_REF,
        "A messaging item holding nothing but its addressing and time."
    ),
    event_type!(
        "instagram.comments",
        Instagram,
        "comments",
        Dedup::Ids("the comment `id`"),
        IG_REF,
        "A comment on one of the account's posts or reels."
    ),
    event_type!(
        "instagram.live_comments",
        Instagram,
        "live_comments",
        Dedup::Ids("the comment `id`"),
        IG_REF,
        "A comment on the account's live broadcast, while it is live."
    ),
    event_type!(
        "instagram.mentions",
        Instagram,
        "mentions",
        Dedup::Ids("the `media_id` and the `comment_id`"),
        IG_REF,
        "The account was @mentioned in a caption or comment."
    ),
    event_type!(
        "instagram.story_insights",
        Instagram,
        "story_insights",
        Dedup::Ids("the story's `media_id` (Meta sends its insights once, when it expires)"),
        IG_REF,
        "Metrics of an expired story: reach, impressions, replies, taps, exits."
    ),
    event_type!(
        "instagram.entry",
        Instagram,
        "",
        Dedup::Content("the whole entry"),
        IG_REF,
        "An entry with no change or messaging item hookd could read: kept whole rather than dropped."
    ),
    event_type!(
        "other.entry",
        Other,
        "",
        Dedup::Content("the whole entry"),
        "https://developers.facebook.com/docs/graph-api/webhooks/getting-started",
        "An entry of an `object` hookd does not split (for example `user` or `permissions`): kept whole, one event per entry."
    ),
];

/// How a field Meta adds later is typed; the API prints this beside the catalogue.
pub const UNKNOWN_FIELDS: &str = "A field or messaging kind Meta adds later still becomes an event, \
typed platform.field after Meta's name for it and recognised by its content; endpoints can \
subscribe to it by that name or by platform.*.";

impl EventType {
    /// The first event the splitter makes of the sample: what a receiver gets for this type.
    pub fn sample_event(&self) -> Option<super::Event> {
        let mut body = self.sample.as_bytes().to_vec();
        super::split(&mut body).ok()?.events.into_iter().next()
    }
}

/// The catalogue entry of `name`.
pub fn find(name: &str) -> Option<&'static EventType> {
    CATALOGUE.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::envelope::split;
    use std::collections::HashSet;

    fn split_sample(t: &EventType) -> Vec<crate::meta::Event> {
        split(&mut t.sample.as_bytes().to_vec())
            .unwrap_or_else(|e| panic!("{}: {e}", t.name))
            .events
    }

    #[test]
    fn every_sample_splits_into_events_of_exactly_its_type() {
        for t in CATALOGUE {
            let events = split_sample(t);
            assert!(!events.is_empty(), "{} yields no event", t.name);
            for e in &events {
                assert_eq!(e.event_type, t.name, "a sample of {}", t.name);
                assert_eq!(e.platform, t.platform, "{}", t.name);
            }
        }
    }

    #[test]
    fn the_dedup_rule_the_catalogue_states_is_the_one_the_splitter_applies() {
        for t in CATALOGUE {
            for e in split_sample(t) {
                // Content keys are `kind, account, "#", hash…`; id keys never carry the marker.
                let hashed = e.dedup_key.as_str().split('\u{1f}').nth(2) == Some("#");
                let says_ids = matches!(t.dedup, Dedup::Ids(_));
                assert_eq!(!hashed, says_ids, "{}: key {:?}", t.name, e.dedup_key);
            }
        }
    }

    #[test]
    fn the_catalogue_names_each_type_once_and_all_samples_together_emit_exactly_it() {
        let names: HashSet<&str> = CATALOGUE.iter().map(|t| t.name).collect();
        assert_eq!(names.len(), CATALOGUE.len(), "a type is listed twice");
        let emitted: HashSet<String> = CATALOGUE
            .iter()
            .flat_map(split_sample)
            .map(|e| e.event_type)
            .collect();
        let emitted: HashSet<&str> = emitted.iter().map(String::as_str).collect();
        assert_eq!(emitted, names);
    }

    /// The fields of Meta's webhook references for each object (WhatsApp's reference index,
    /// the Page and Messenger webhook events, Instagram's webhook fields).
    const DOCUMENTED: &[(Platform, &[&str])] = &[
        (
            Platform::WhatsApp,
            &[
                "account_alerts",
                "account_review_update",
                "account_update",
                "automatic_events",
                "business_capability_update",
                "calls",
                "flows",
                "history",
                "message_template_components_update",
                "message_template_quality_update",
                "message_template_status_update",
                "messages",
                "partner_solutions",
                "payment_configuration_update",
                "phone_number_name_update",
                "phone_number_quality_update",
                "security",
                "smb_app_state_sync",
                "smb_message_echoes",
                "template_category_update",
                "user_preferences",
                "group_lifecycle_update",
                "group_participants_update",
                "group_settings_update",
                "group_status_update",
            ],
        ),
        (
            Platform::Messenger,
            &[
                "messages",
                "message_echoes",
                "messaging_postbacks",
                "message_deliveries",
                "message_reads",
                "message_reactions",
                "message_edits",
                "messaging_optins",
                "messaging_optouts",
                "messaging_referrals",
                "messaging_handovers",
                "messaging_policy_enforcement",
                "messaging_account_linking",
                "standby",
            ],
        ),
        (
            Platform::Page,
            &["feed", "leadgen", "mention", "ratings", "live_videos"],
        ),
        (
            Platform::Instagram,
            &[
                "messages",
                "messaging_seen",
                "message_reactions",
                "messaging_postbacks",
                "messaging_referral",
                "messaging_optins",
                "messaging_handover",
                "message_edit",
                "standby",
                "comments",
                "live_comments",
                "mentions",
                "story_insights",
            ],
        ),
    ];

    #[test]
    fn every_field_meta_documents_has_a_type() {
        for (platform, fields) in DOCUMENTED {
            for field in *fields {
                let typed = CATALOGUE
                    .iter()
                    .any(|t| t.platform == *platform && t.field == *field);
                assert!(typed, "{}: {field} has no type", platform.as_str());
            }
        }
    }

    #[test]
    fn every_type_is_named_after_its_platform_and_has_a_description() {
        for t in CATALOGUE {
            assert!(
                t.name.starts_with(&format!("{}.", t.platform.as_str())),
                "{}",
                t.name
            );
            assert!(t.description.ends_with('.'), "{}", t.name);
            assert!(
                t.reference.starts_with("https://developers.facebook.com/"),
                "{}",
                t.name
            );
        }
    }
}
