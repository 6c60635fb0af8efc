//! The ceiling hookd's delivery is measured against: a relay that does the same work per
//! event with no storage at all. It verifies Meta's signature, splits the body into events,
//! signs each the Standard Webhooks way, POSTs them with hookd's pooled outbound client, and
//! answers 200 once the receiver has answered every one.
//!
//! cargo run --release --example null-forwarder -- 127.0.0.1:18097 APP_SECRET \
//!     http://127.0.0.1:18092/hook whsec_... [ENDPOINTS]
//!
//! ENDPOINTS (default 1) sends each event that many times, as hookd does to that many
//! endpoints subscribed to everything. Like hookd (`delivery.endpoint_max_in_flight`, 32 by
//! default), it keeps at most 32 requests per endpoint in flight: without a cap, thousands
//! of concurrent POSTs overflow the client's connection pool and most of them would pay for
//! a new connection.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::Bytes;
use hookd::delivery::client::Outbound;
use hookd::delivery::payload::{OutboundEvent, event_body, webhook_id};
use hookd::delivery::request::signed_request;
use hookd::delivery::ssrf::AddressPolicy;
use hookd::model::Endpoint;
use hookd::time::unix_ms;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Relay {
    app_secret: Vec<u8>,
    endpoint: Endpoint,
    client: Outbound,
    copies: usize,
    in_flight: tokio::sync::Semaphore,
}

/// hookd's default `delivery.endpoint_max_in_flight`.
const IN_FLIGHT_PER_ENDPOINT: usize = 32;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: null-forwarder ADDR APP_SECRET TARGET_URL whsec_SECRET";
    let listen = args.next().expect(usage);
    let app_secret = args.next().expect(usage).into_bytes();
    let target = args.next().expect(usage);
    let secret = args.next().expect(usage);
    let copies: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1).max(1);
    let mut endpoint = Endpoint::new("", unix_ms());
    endpoint.url = target;
    endpoint.secret = secret;
    let policy = AddressPolicy::new(vec!["127.0.0.1/32".parse().expect("cidr")]);
    let relay = Arc::new(Relay {
        app_secret,
        endpoint,
        client: Outbound::new(policy),
        copies,
        in_flight: tokio::sync::Semaphore::new(IN_FLIGHT_PER_ENDPOINT * copies),
    });
    eprintln!("null forwarder on {listen}");
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::from(relay.clone()))
            .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
            .route("/webhooks/{source}", web::post().to(forward))
    })
    .workers(2)
    .bind(listen)?
    .run()
    .await
}

async fn forward(relay: web::Data<Relay>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let header = req
        .headers()
        .get("x-hub-signature-256")
        .map(|v| v.as_bytes());
    if hookd::meta::signature::verify(header, &body, &[&relay.app_secret]).is_err() {
        return HttpResponse::Unauthorized().finish();
    }
    let received_at = unix_ms();
    let mut scratch = body.to_vec();
    let Ok(split) = hookd::meta::split(&mut scratch) else {
        return HttpResponse::Ok().finish();
    };
    let copies =
        split.events.iter().enumerate().flat_map(|(i, e)| {
            (0..relay.copies).map(move |c| (format!("{received_at}-{i}-{c}"), e))
        });
    let sends = copies.map(|(id, e)| {
        let json = event_body(&OutboundEvent {
            id: &id,
            event_type: &e.event_type,
            platform: e.platform.as_str(),
            source: "load",
            account_id: &e.account_id,
            received_at,
            occurred_at: e.occurred_at_ms,
            data: &e.data,
            identity: &e.identity,
            test: false,
        });
        let request = signed_request(
            &relay.endpoint,
            &webhook_id(false, &id),
            Bytes::from(json),
            unix_ms(),
            Duration::from_secs(10),
        );
        let relay = relay.clone();
        async move {
            let Ok(_permit) = relay.in_flight.acquire().await else {
                return false;
            };
            match request {
                Ok(r) => relay.client.post(r).await.status == Some(200),
                Err(_) => false,
            }
        }
    });
    let answers = futures_util::future::join_all(sends).await;
    if answers.iter().all(|ok| *ok) {
        HttpResponse::Ok().finish()
    } else {
        HttpResponse::BadGateway().finish()
    }
}
