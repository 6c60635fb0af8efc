//! The splitter takes anything a signed sender can send without panicking.

use hookd::meta::split;
use proptest::prelude::*;

fn envelope() -> impl Strategy<Value = String> {
    let object = prop_oneof![
        Just("whatsapp_business_account"),
        Just("page"),
        Just("instagram"),
        Just("user"),
    ];
    let id = prop_oneof![
        "[0-9]{1,20}".prop_map(|s| format!("\"{s}\"")),
        "[1-9][0-9]{0,17}",
        Just("null".to_string()),
        Just("{}".to_string()),
    ];
    let item = prop_oneof![
        id.clone().prop_map(|i| format!(r#"{{"field":"messages","value":{{"metadata":{{"phone_number_id":{i}}},"messages":[{{"id":{i}}}],"statuses":[{{"id":{i},"status":1}}]}}}}"#)),
        id.clone().prop_map(|i| format!(r#"{{"field":"feed","value":{{"item":"comment","comment_id":{i},"from":{i}}}}}"#)),
        Just(r#"{"field":"calls"}"#.to_string()),
        Just("[]".to_string()),
        Just("42".to_string()),
    ];
    let messaging = prop_oneof![
        id.clone().prop_map(|i| format!(
            r#"{{"sender":{{"id":{i}}},"message":{{"mid":{i},"is_echo":"yes"}}}}"#
        )),
        id.clone()
            .prop_map(|i| format!(r#"{{"read":{{"watermark":{i}}},"delivery":null}}"#)),
        Just(r#"{"sender":"x","reaction":[]}"#.to_string()),
        Just("null".to_string()),
    ];
    (object, id, prop::collection::vec(item, 0..4), prop::collection::vec(messaging, 0..4))
        .prop_map(|(o, id, changes, messaging)| {
            format!(
                r#"{{"object":"{o}","entry":[{{"id":{id},"time":{id},"changes":[{}],"messaging":[{}],"standby":[{}]}}, 7]}}"#,
                changes.join(","),
                messaging.join(","),
                messaging.join(",")
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_splitter(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = split(&mut bytes.clone());
    }

    #[test]
    fn odd_but_valid_envelopes_split_without_panicking(body in envelope()) {
        let result = split(&mut body.clone().into_bytes());
        prop_assert!(result.is_ok(), "{body}: {result:?}");
    }
}
