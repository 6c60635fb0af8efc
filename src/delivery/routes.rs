//! The routing table: which endpoints want an event. Built from the endpoint list whenever it
//! changes, consulted for every new event, so matching is a lookup per platform and account.

use std::collections::HashMap;
use std::sync::Arc;

use super::endpoint::TypePattern;
use crate::meta::{Event, Platform};
use crate::model::{AccountOwners, Endpoint, LiveEndpoint};

/// Where one event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub endpoint_id: Arc<str>,
    /// Empty for an endpoint the admin owns.
    pub tenant_id: Arc<str>,
    pub raw: bool,
    /// Delivered per conversation, one at a time, in the order received.
    pub ordered: bool,
}

#[derive(Debug, Clone)]
struct Rule {
    target: Target,
    /// `None`: every type of the platform.
    types: Option<Vec<String>>,
}

impl Rule {
    fn wants(&self, event_type: &str) -> bool {
        self.types
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == event_type))
    }
}

#[derive(Debug, Default)]
struct PlatformRules {
    any_account: Vec<Rule>,
    by_account: HashMap<String, Vec<Rule>>,
}

/// Every active endpoint's subscription, by platform and account, plus every endpoint (active
/// or not) by id for the dispatcher, and who owns which account.
#[derive(Debug, Default)]
pub struct RouteTable {
    platforms: HashMap<Platform, PlatformRules>,
    endpoints: HashMap<String, Arc<LiveEndpoint>>,
    owners: AccountOwners,
}

/// Whether an endpoint of `tenant_id` (empty: the admin's) may receive what happens on
/// `account`, an account of the envelope entry `entry`: a tenant only its own accounts, the
/// admin everything.
fn owned_by(owners: &AccountOwners, tenant_id: &str, account: &str, entry: &str) -> bool {
    tenant_id.is_empty()
        || owners.get(account).is_some_and(|t| t == tenant_id)
        || owners.get(entry).is_some_and(|t| t == tenant_id)
}

impl RouteTable {
    pub fn build(endpoints: Vec<LiveEndpoint>, owners: AccountOwners) -> RouteTable {
        let mut table = RouteTable {
            owners,
            ..RouteTable::default()
        };
        for live in endpoints {
            let live = Arc::new(live);
            if live.active() {
                table.add_rules(&live.endpoint);
            }
            table.endpoints.insert(live.endpoint.id.clone(), live);
        }
        table
    }

    fn add_rules(&mut self, e: &Endpoint) {
        let target = Target {
            endpoint_id: Arc::from(e.id.as_str()),
            tenant_id: Arc::from(e.tenant_id.as_str()),
            raw: e.raw,
            ordered: !e.raw && e.ordering == crate::model::Ordering::Conversation,
        };
        // Per platform: every type, or the listed ones.
        let mut wanted: HashMap<Platform, Option<Vec<String>>> = HashMap::new();
        for pattern in e
            .event_types
            .iter()
            .filter_map(|t| TypePattern::parse(t).ok())
        {
            match pattern {
                TypePattern::All => {
                    for p in Platform::ALL {
                        wanted.insert(p, None);
                    }
                }
                TypePattern::Platform(p) => {
                    wanted.insert(p, None);
                }
                TypePattern::Exact(t) => {
                    let platform = t.split('.').next().and_then(Platform::parse);
                    if let Some(p) = platform {
                        // `None` already means every type of the platform.
                        if let Some(list) = wanted.entry(p).or_insert_with(|| Some(Vec::new())) {
                            list.push(t);
                        }
                    }
                }
            }
        }
        for (platform, types) in wanted {
            let rules = self.platforms.entry(platform).or_default();
            let rule = Rule {
                target: target.clone(),
                types,
            };
            if e.account_ids.is_empty() {
                rules.any_account.push(rule);
            } else {
                for account in &e.account_ids {
                    rules
                        .by_account
                        .entry(account.clone())
                        .or_default()
                        .push(rule.clone());
                }
            }
        }
    }

    /// The endpoints that want `event` and may see it, each once.
    pub fn route(&self, event: &Event) -> Vec<&Target> {
        let Some(rules) = self.platforms.get(&event.platform) else {
            return Vec::new();
        };
        let listed = |account: &str| {
            rules
                .by_account
                .get(account)
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        let by_entry = if event.entry_id != event.account_id {
            listed(&event.entry_id)
        } else {
            &[]
        };
        let mut out: Vec<&Target> = Vec::new();
        for rule in rules
            .any_account
            .iter()
            .chain(listed(&event.account_id))
            .chain(by_entry)
        {
            if rule.wants(&event.event_type)
                && !out.contains(&&rule.target)
                && owned_by(
                    &self.owners,
                    &rule.target.tenant_id,
                    &event.account_id,
                    &event.entry_id,
                )
            {
                out.push(&rule.target);
            }
        }
        out
    }

    /// Whether `endpoint` may see what happens on `account` (of envelope entry `entry`): its
    /// tenant owns it and its `account_ids`, when set, name it. Raw mode asks this of every
    /// part of a body before forwarding it.
    pub fn sees(&self, endpoint: &Endpoint, account: &str, entry: &str) -> bool {
        owned_by(&self.owners, &endpoint.tenant_id, account, entry)
            && (endpoint.account_ids.is_empty()
                || endpoint
                    .account_ids
                    .iter()
                    .any(|a| a == account || a == entry))
    }

    /// Whether `endpoint` sees every account (the admin's, with no `account_ids`).
    pub fn sees_everything(&self, endpoint: &Endpoint) -> bool {
        endpoint.tenant_id.is_empty() && endpoint.account_ids.is_empty()
    }

    pub fn endpoint(&self, id: &str) -> Option<&Arc<LiveEndpoint>> {
        self.endpoints.get(id)
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    pub fn endpoints(&self) -> impl Iterator<Item = &Arc<LiveEndpoint>> {
        self.endpoints.values()
    }
}

/// The current routing table, shared by the normalizer, the dispatcher and the API; replaced
/// whole when endpoints change, so readers never see half an update.
#[derive(Clone, Default)]
pub struct Routes(Arc<std::sync::RwLock<Arc<RouteTable>>>);

impl Routes {
    pub fn current(&self) -> Arc<RouteTable> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Marks an endpoint disabled at once (this instance just saw it answer 410 or fail too
    /// long); the reload that follows the stored change agrees.
    pub fn disable(&self, endpoint_id: &str, reason: &str) {
        let mut guard = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let endpoints = guard
            .endpoints()
            .map(|live| {
                let mut live = LiveEndpoint::clone(live);
                if live.endpoint.id == endpoint_id && live.health.disabled_reason.is_none() {
                    live.health.disabled_reason = Some(reason.to_string());
                }
                live
            })
            .collect();
        *guard = Arc::new(RouteTable::build(endpoints, guard.owners.clone()));
    }

    pub fn replace(&self, table: RouteTable) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::DedupKey;
    use crate::model::EndpointHealth;

    /// An admin-owned endpoint: it may see every account.
    fn endpoint(id: &str, types: &[&str], accounts: &[&str]) -> LiveEndpoint {
        tenant_endpoint("", id, types, accounts)
    }

    fn tenant_endpoint(tenant: &str, id: &str, types: &[&str], accounts: &[&str]) -> LiveEndpoint {
        LiveEndpoint {
            endpoint: Endpoint {
                id: id.into(),
                tenant_id: tenant.into(),
                url: "https://example.com".into(),
                event_types: types.iter().map(|s| s.to_string()).collect(),
                account_ids: accounts.iter().map(|s| s.to_string()).collect(),
                ..Endpoint::new("t", 0)
            },
            health: EndpointHealth::default(),
        }
    }

    fn event(platform: Platform, event_type: &str, account: &str) -> Event {
        entry_event(platform, event_type, account, account)
    }

    fn entry_event(platform: Platform, event_type: &str, account: &str, entry: &str) -> Event {
        Event {
            platform,
            event_type: event_type.into(),
            account_id: account.into(),
            entry_id: entry.into(),
            occurred_at_ms: None,
            dedup_key: DedupKey::new("k", account, &[]),
            data: "{}".into(),
            identity: String::new(),
            conversation: account.into(),
            status_step: None,
        }
    }

    fn routed(table: &RouteTable, e: &Event) -> Vec<String> {
        let mut ids: Vec<String> = table
            .route(e)
            .iter()
            .map(|t| t.endpoint_id.to_string())
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn exact_wildcard_and_account_filters_match_as_documented() {
        let table = RouteTable::build(
            vec![
                endpoint("exact", &["whatsapp.messages"], &[]),
                endpoint("platform", &["whatsapp.*"], &[]),
                endpoint("all", &["*"], &[]),
                endpoint("acct", &["whatsapp.*"], &["111"]),
                endpoint("page", &["page.feed", "instagram.comments"], &[]),
            ],
            AccountOwners::new(),
        );
        let msg = event(Platform::WhatsApp, "whatsapp.messages", "111");
        assert_eq!(routed(&table, &msg), ["acct", "all", "exact", "platform"]);
        let status = event(Platform::WhatsApp, "whatsapp.statuses", "222");
        assert_eq!(routed(&table, &status), ["all", "platform"]);
        let feed = event(Platform::Page, "page.feed", "9");
        assert_eq!(routed(&table, &feed), ["all", "page"]);
        let comment = event(Platform::Instagram, "instagram.comments", "9");
        assert_eq!(routed(&table, &comment), ["all", "page"]);
        let mention = event(Platform::Instagram, "instagram.mentions", "9");
        assert_eq!(routed(&table, &mention), ["all"]);
    }

    #[test]
    fn an_endpoint_matching_twice_gets_the_event_once() {
        let table = RouteTable::build(
            vec![endpoint(
                "e",
                &["*", "whatsapp.*", "whatsapp.messages"],
                &[],
            )],
            AccountOwners::new(),
        );
        let msg = event(Platform::WhatsApp, "whatsapp.messages", "1");
        assert_eq!(routed(&table, &msg), ["e"]);
    }

    #[test]
    fn disabled_endpoints_get_nothing_but_stay_known() {
        let mut off = endpoint("off", &["*"], &[]);
        off.endpoint.enabled = false;
        let mut gone = endpoint("gone", &["*"], &[]);
        gone.health.disabled_reason = Some("gone".into());
        let table = RouteTable::build(vec![off, gone], AccountOwners::new());
        let msg = event(Platform::WhatsApp, "whatsapp.messages", "1");
        assert!(table.route(&msg).is_empty());
        assert!(table.endpoint("off").is_some() && table.endpoint("gone").is_some());
    }

    fn owners(pairs: &[(&str, &str)]) -> AccountOwners {
        pairs
            .iter()
            .map(|(a, t)| (a.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn a_tenant_catch_all_endpoint_gets_only_its_own_accounts_events() {
        let table = RouteTable::build(
            vec![
                tenant_endpoint("t_a", "a_all", &["*"], &[]),
                tenant_endpoint("t_b", "b_all", &["*"], &[]),
                endpoint("admin", &["*"], &[]),
            ],
            owners(&[("page_a", "t_a"), ("page_b", "t_b")]),
        );
        let of_a = event(Platform::Messenger, "messenger.messages", "page_a");
        assert_eq!(routed(&table, &of_a), ["a_all", "admin"]);
        let of_b = event(Platform::Messenger, "messenger.messages", "page_b");
        assert_eq!(routed(&table, &of_b), ["admin", "b_all"]);
        let unowned = event(Platform::Messenger, "messenger.messages", "page_c");
        assert_eq!(routed(&table, &unowned), ["admin"]);
    }

    #[test]
    fn account_ids_naming_another_tenants_account_give_nothing() {
        let table = RouteTable::build(
            vec![tenant_endpoint("t_a", "a", &["*"], &["page_b"])],
            owners(&[("page_a", "t_a"), ("page_b", "t_b")]),
        );
        let of_b = event(Platform::Messenger, "messenger.messages", "page_b");
        assert!(table.route(&of_b).is_empty());
    }

    #[test]
    fn a_business_account_covers_its_phone_numbers() {
        let table = RouteTable::build(
            vec![
                tenant_endpoint("t_a", "all", &["whatsapp.*"], &[]),
                tenant_endpoint("t_a", "by_waba", &["whatsapp.*"], &["WABA"]),
            ],
            owners(&[("WABA", "t_a")]),
        );
        let msg = entry_event(Platform::WhatsApp, "whatsapp.messages", "PN1", "WABA");
        assert_eq!(routed(&table, &msg), ["all", "by_waba"]);
        let elsewhere = entry_event(Platform::WhatsApp, "whatsapp.messages", "PN2", "WABA2");
        assert!(table.route(&elsewhere).is_empty());
    }

    #[test]
    fn an_endpoint_sees_owned_accounts_within_its_filter() {
        let table = RouteTable::build(vec![], owners(&[("a1", "t_a"), ("a2", "t_a")]));
        let all = tenant_endpoint("t_a", "e", &["*"], &[]).endpoint;
        assert!(table.sees(&all, "a1", "a1") && table.sees(&all, "a2", "a2"));
        assert!(!table.sees(&all, "b1", "b1"));
        let narrowed = tenant_endpoint("t_a", "e", &["*"], &["a2"]).endpoint;
        assert!(!table.sees(&narrowed, "a1", "a1") && table.sees(&narrowed, "a2", "a2"));
        let admin = endpoint("e", &["*"], &[]).endpoint;
        assert!(table.sees(&admin, "b1", "b1") && table.sees_everything(&admin));
    }
}
