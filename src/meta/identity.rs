//! Who an event is about, in one place of the delivered envelope. WhatsApp: the `sender` of a
//! message, the `recipient` of a status; Meta names a user by phone number (`wa_id`) and, from
//! 2026, by business-scoped user id (`user_id`, and `parent_user_id` where a business enabled
//! parent ids) and `username`, and a user who adopted a username may come without a phone
//! number; each field is taken from the item itself, else from the matching entry of
//! `contacts`. Messenger and Instagram messaging: the `sender` by its scoped id.

use std::borrow::Cow;

use simd_json::BorrowedValue;
use simd_json::prelude::*;

use super::envelope::id_str;

/// The item fields naming the user, by list: member name, phone, user id, and the parent
/// user id under each name it has been seen with (Graph v25 statuses say
/// `parent_recipient_user_id`).
type Fields = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

fn fields_of(list_key: &str) -> Option<Fields> {
    match list_key {
        "messages" => Some(("sender", "from", "from_user_id", &["from_parent_user_id"])),
        "statuses" => Some((
            "recipient",
            "recipient_id",
            "recipient_user_id",
            &["recipient_parent_user_id", "parent_recipient_user_id"],
        )),
        _ => None,
    }
}

/// The envelope member naming the user `item` (one of `value[list_key]`) is about, e.g.
/// `"sender":{"user_id":"US.1","wa_id":"1555"}` (empty when Meta names nobody), and the id
/// its conversation goes by: the business-scoped user id when Meta sends one, else the phone.
pub(crate) fn whatsapp_identity(
    list_key: &str,
    value: &BorrowedValue<'_>,
    item: &BorrowedValue<'_>,
) -> (String, Option<String>) {
    let Some((name, phone_key, user_key, parent_keys)) = fields_of(list_key) else {
        return (String::new(), None);
    };
    let phone = id_str(item.get(phone_key));
    let user = id_str(item.get(user_key));
    let contacts = value.get_array("contacts");
    // The contact of this user: the one with its phone or user id, else the only one.
    let contact = contacts.and_then(|all| {
        all.iter()
            .find(|c| {
                let same = |field: &str, want: &Option<Cow<'_, str>>| {
                    want.is_some() && id_str(c.get(field)) == *want
                };
                same("wa_id", &phone) || same("user_id", &user)
            })
            .or_else(|| (all.len() == 1).then(|| &all[0]))
    });
    let from_contact = |field: &str| contact.and_then(|c| id_str(c.get(field)));
    let fields = [
        ("wa_id", phone.or_else(|| from_contact("wa_id"))),
        ("user_id", user.or_else(|| from_contact("user_id"))),
        (
            "parent_user_id",
            parent_keys
                .iter()
                .find_map(|k| id_str(item.get(*k)))
                .or_else(|| from_contact("parent_user_id")),
        ),
        (
            "username",
            contact.and_then(|c| c.get("profile").and_then(|p| id_str(p.get("username")))),
        ),
    ];
    let user = fields[1].1.as_ref().or(fields[0].1.as_ref());
    let user = user.map(|u| u.to_string());
    (member(name, fields), user)
}

/// The envelope member naming who sent a Messenger or Instagram messaging item: Meta's
/// `sender.id` (a page-scoped id on Messenger, an Instagram-scoped id on Instagram; for an
/// echo of the page's own message, the page), as `"sender":{"id":…}`; empty without one.
pub(crate) fn messaging_identity(item: &BorrowedValue<'_>) -> String {
    let id = id_str(item.get("sender").and_then(|s| s.get("id")));
    member("sender", [("id", id)])
}

/// The user a messaging item's conversation is with: the sender, or the recipient when the
/// page (`account`) itself sent it (an echo).
pub(crate) fn messaging_user(item: &BorrowedValue<'_>, account: &str) -> Option<String> {
    let id_of = |side: &str| id_str(item.get(side).and_then(|s| s.get("id")));
    match id_of("sender") {
        Some(sender) if sender != account => Some(sender.into_owned()),
        _ => id_of("recipient").map(Cow::into_owned),
    }
}

/// `"name":{"field":"value",…}` of the fields present, or empty when none is. Written
/// directly: this runs for every message and status split.
fn member<'a>(
    name: &str,
    fields: impl IntoIterator<Item = (&'static str, Option<Cow<'a, str>>)>,
) -> String {
    let mut out = Vec::with_capacity(128);
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":{");
    let empty = out.len();
    for (field, value) in fields {
        let Some(value) = value else { continue };
        if out.len() > empty {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b"\":");
        // Writing a string into a Vec cannot fail; it escapes what JSON needs.
        let _ = serde_json::to_writer(&mut out, value.as_ref());
    }
    if out.len() == empty {
        return String::new();
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(list_key: &str, body: &str) -> serde_json::Value {
        let mut bytes = body.as_bytes().to_vec();
        let value = simd_json::to_borrowed_value(&mut bytes).expect("json");
        let item = &value.get_array(list_key).expect("list")[0];
        let (member, _) = whatsapp_identity(list_key, &value, item);
        serde_json::from_str(&format!("{{{member}}}")).expect("a JSON member")
    }

    #[test]
    fn a_phone_only_sender_is_named_by_its_phone() {
        let body = r#"{"contacts":[{"profile":{"name":"A"},"wa_id":"1555"}],"messages":[{"from":"1555","id":"m"}]}"#;
        assert_eq!(
            identity("messages", body),
            serde_json::json!({"sender": {"wa_id": "1555"}})
        );
    }

    #[test]
    fn a_username_user_without_a_phone_is_named_by_its_business_scoped_ids() {
        let body = r#"{"contacts":[{"profile":{"name":"A","username":"@a"},"user_id":"US.1","parent_user_id":"US.ENT.9"}],"messages":[{"from_user_id":"US.1","id":"m"}]}"#;
        assert_eq!(
            identity("messages", body),
            serde_json::json!({"sender": {"user_id": "US.1", "parent_user_id": "US.ENT.9", "username": "@a"}})
        );
    }

    #[test]
    fn a_status_names_its_recipient_from_the_item_and_its_contact() {
        let body = r#"{"contacts":[{"wa_id":"2","user_id":"US.2"},{"wa_id":"3","user_id":"US.3","profile":{"username":"@c"}}],"statuses":[{"id":"s","recipient_id":"3"}]}"#;
        assert_eq!(
            identity("statuses", body),
            serde_json::json!({"recipient": {"wa_id": "3", "user_id": "US.3", "username": "@c"}})
        );
    }

    #[test]
    fn a_messaging_item_names_its_sender_by_its_scoped_id() {
        let mut bytes = br#"{"sender":{"id":"3424692677644577"},"recipient":{"id":"1"}}"#.to_vec();
        let item = simd_json::to_borrowed_value(&mut bytes).expect("json");
        assert_eq!(
            messaging_identity(&item),
            r#""sender":{"id":"3424692677644577"}"#
        );
        let mut none = br#"{"recipient":{"id":"1"}}"#.to_vec();
        let item = simd_json::to_borrowed_value(&mut none).expect("json");
        assert_eq!(messaging_identity(&item), "");
    }

    #[test]
    fn a_conversation_goes_by_the_business_scoped_id_else_the_phone() {
        let user = |list_key: &str, body: &str| {
            let mut bytes = body.as_bytes().to_vec();
            let value = simd_json::to_borrowed_value(&mut bytes).expect("json");
            let item = &value.get_array(list_key).expect("list")[0];
            whatsapp_identity(list_key, &value, item).1
        };
        let phone = r#"{"contacts":[{"wa_id":"1555"}],"messages":[{"from":"1555","id":"m"}]}"#;
        assert_eq!(user("messages", phone).as_deref(), Some("1555"));
        let both = r#"{"statuses":[{"id":"s","recipient_id":"1555","recipient_user_id":"US.1"}]}"#;
        assert_eq!(user("statuses", both).as_deref(), Some("US.1"));
    }

    #[test]
    fn an_echo_belongs_to_the_conversation_with_its_recipient() {
        let user = |body: &[u8]| {
            let mut bytes = body.to_vec();
            let item = simd_json::to_borrowed_value(&mut bytes).expect("json");
            messaging_user(&item, "PAGE")
        };
        assert_eq!(
            user(br#"{"sender":{"id":"PSID"},"recipient":{"id":"PAGE"}}"#).as_deref(),
            Some("PSID")
        );
        assert_eq!(
            user(br#"{"sender":{"id":"PAGE"},"recipient":{"id":"PSID"}}"#).as_deref(),
            Some("PSID")
        );
        assert_eq!(user(br#"{"read":{}}"#), None);
    }

    #[test]
    fn nobody_named_leaves_the_envelope_without_the_member() {
        let mut bytes = br#"{"statuses":[{"id":"s"}]}"#.to_vec();
        let value = simd_json::to_borrowed_value(&mut bytes).expect("json");
        let item = &value.get_array("statuses").expect("list")[0];
        assert_eq!(
            whatsapp_identity("statuses", &value, item),
            (String::new(), None)
        );
        assert_eq!(
            whatsapp_identity("calls", &value, item),
            (String::new(), None)
        );
    }
}
