//! The storage contract of deliveries lanes (run by `contract_suite!` on every backend): one
//! tenant's backlog does not stand in front of another tenant's deliveries.

use std::sync::Arc;

use hookd::model::{Endpoint, Tenant};
use hookd::store::*;

use crate::contract::{NO_WAIT, audit, resolution, store_routed};
use crate::helpers::whatsapp_body;

/// A tenant with one endpoint, both stored; the endpoint's id.
async fn tenant_endpoint(b: &dyn Backend, tenant: &str) -> String {
    let t = Tenant {
        id: tenant.into(),
        name: tenant.into(),
        created_at: 1,
    };
    b.put_tenant(&t, &audit("tenant.create", tenant, tenant))
        .await
        .expect("tenant");
    let mut ep = Endpoint::new(tenant, 1);
    ep.url = "https://example.com/hook".into();
    ep.event_types = vec!["*".into()];
    b.put_endpoint(
        &ep,
        DisabledByHookd::Keep,
        &audit("endpoint.create", &ep.id, tenant),
    )
    .await
    .expect("endpoint");
    ep.id
}

fn journal(wamids: &[String]) -> JournalEntry {
    JournalEntry {
        source: "test".into(),
        received_at_ms: hookd::time::unix_ms(),
        request_id: "lanes".into(),
        signature: String::new(),
        user_agent: String::new(),
        body: whatsapp_body(wamids).into(),
    }
}

pub async fn a_tenants_backlog_does_not_stand_in_front_of_another_tenants_deliveries(
    b: Arc<dyn Backend>,
) {
    let (busy, quiet) = (
        tenant_endpoint(&*b, "t_busy").await,
        tenant_endpoint(&*b, "t_quiet").await,
    );
    let routed = |ep: &str| Routing {
        endpoints: vec![ep.to_string()],
        ..Routing::default()
    };
    // 40 requests of 25 events for the busy tenant, then one event for the quiet one.
    for r in 0..40 {
        let wamids: Vec<String> = (0..25).map(|i| format!("wamid.busy.{r}.{i}")).collect();
        store_routed(&*b, vec![journal(&wamids)], routed(&busy)).await;
    }
    let quiet_ids = store_routed(&*b, vec![journal(&["wamid.quiet".into()])], routed(&quiet)).await;
    let quiet_event = quiet_ids[0][0].clone().expect("stored");
    let first = b
        .read_deliveries("d", ReadFrom::New, 64, NO_WAIT)
        .await
        .expect("read");
    assert!(
        first.len() <= 64 + 32,
        "one read takes a share, not the backlog"
    );
    assert!(
        first
            .iter()
            .any(|r| r.subject == quiet_event && r.endpoints == [quiet.clone()]),
        "the quiet tenant's delivery comes with the first read, ahead of 1000 queued before it"
    );
    // Everything read is acknowledged in its own lane; the rest of the backlog follows.
    let mut all = first;
    loop {
        let commit = AttemptCommit {
            resolutions: all
                .iter()
                .map(|r| resolution(r, NextStep::Delivered))
                .collect(),
            acks: {
                let mut ids: Vec<String> = all.iter().map(|r| r.id.clone()).collect();
                ids.dedup();
                ids
            },
            stats: Vec::new(),
        };
        b.commit_attempts(&commit).await.expect("commit");
        all = b
            .read_deliveries("d", ReadFrom::New, 256, NO_WAIT)
            .await
            .expect("read");
        if all.is_empty() {
            break;
        }
    }
    let pending = b
        .read_deliveries("d", ReadFrom::Pending, 256, NO_WAIT)
        .await
        .expect("pending");
    assert!(
        pending.is_empty(),
        "every lane's entries were acknowledged: {pending:?}"
    );
    assert_eq!(
        b.delivery_gauges(hookd::time::unix_ms())
            .await
            .expect("gauges")
            .pending,
        0
    );
}
