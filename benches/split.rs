//! Splitting bodies into events, per platform: one real fixture body each, and a WhatsApp body
//! batching 1000 statuses (Meta's upper bound per POST).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hookd::meta::split;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/meta/samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn whatsapp_statuses(n: usize) -> Vec<u8> {
    let statuses: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMx{i:06}","status":"delivered","timestamp":"1750030075","recipient_id":"16505551234","pricing":{{"billable":true,"pricing_model":"PMP","category":"marketing"}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"statuses":[{}]}}}}]}}]}}"#,
        statuses.join(",")
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("split");
    let bodies = [
        ("whatsapp_message", fixture("wa_message_text.json")),
        ("whatsapp_1000_statuses", whatsapp_statuses(1000)),
        (
            "messenger_delivery_read",
            fixture("messenger_delivery_and_read_batched.json"),
        ),
        ("page_feed_comment", fixture("page_feed_comment.json")),
        (
            "instagram_mentions_insights",
            fixture("instagram_mentions_and_story_insights_batched.json"),
        ),
    ];
    for (name, body) in bodies {
        group.throughput(Throughput::Bytes(body.len() as u64));
        // simd-json parses in place, so every iteration gets a fresh copy (not timed).
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || body.clone(),
                |buf| split(black_box(buf)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
