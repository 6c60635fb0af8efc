//! One sample body per event type for a given account: the catalogue's sample with its
//! account id replaced, so routing, tenant ownership and filters treat it as that account's.

use serde_json::Value;

use crate::meta::catalogue::EventType;

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("{0}: the catalogue sample does not split")]
    Unsplittable(&'static str),
}

/// Meta's webhook object of a type's sample (`whatsapp_business_account`, `page`, …).
pub fn object_of(t: &EventType) -> Option<String> {
    let body: Value = serde_json::from_str(t.sample).ok()?;
    body.get("object")?.as_str().map(str::to_string)
}

/// The sample body of `t` for `account_id`: every string that is the sample's account id
/// becomes `account_id`, and so does the account part of ids made from it (a post id
/// `{page}_{post}`).
pub fn body_for(t: &EventType, account_id: &str) -> Result<Vec<u8>, SampleError> {
    let event = t.sample_event().ok_or(SampleError::Unsplittable(t.name))?;
    let mut body: Value =
        serde_json::from_str(t.sample).map_err(|_| SampleError::Unsplittable(t.name))?;
    replace_account(&mut body, &event.account_id, account_id);
    serde_json::to_vec(&body).map_err(|_| SampleError::Unsplittable(t.name))
}

fn replace_account(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) => {
            if s == from {
                *s = to.to_string();
            } else if let Some(rest) = s.strip_prefix(from).and_then(|r| r.strip_prefix('_')) {
                *s = format!("{to}_{rest}");
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| replace_account(i, from, to)),
        Value::Object(map) => map.values_mut().for_each(|i| replace_account(i, from, to)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::catalogue::CATALOGUE;
    use crate::meta::split;

    #[test]
    fn every_types_sample_for_an_account_splits_into_that_type_for_that_account() {
        for t in CATALOGUE {
            let mut body = body_for(t, "777000111").expect("sample");
            let events = split(&mut body)
                .unwrap_or_else(|e| panic!("{}: {e}", t.name))
                .events;
            assert!(!events.is_empty(), "{}", t.name);
            for e in events {
                assert_eq!(e.event_type, t.name);
                assert_eq!(e.account_id, "777000111", "{}", t.name);
            }
        }
    }

    #[test]
    fn ids_made_from_the_account_follow_it_and_other_ids_stay() {
        let mut v = serde_json::json!({"id": "P1", "post_id": "P1_55", "from": {"id": "P10"}});
        replace_account(&mut v, "P1", "X");
        assert_eq!(
            v,
            serde_json::json!({"id": "X", "post_id": "X_55", "from": {"id": "P10"}})
        );
    }

    #[test]
    fn every_sample_of_metas_three_products_names_its_object() {
        // `other.*` stands for objects hookd does not know, which no suite is for.
        for t in CATALOGUE
            .iter()
            .filter(|t| t.platform != crate::meta::Platform::Other)
        {
            let object = object_of(t).unwrap_or_default();
            assert!(
                ["whatsapp_business_account", "page", "instagram"].contains(&object.as_str()),
                "{}: {object}",
                t.name
            );
        }
    }
}
