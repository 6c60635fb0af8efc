//! `X-Hub-Signature-256` verification of 1 KB and 64 KB bodies, with one and two secrets
//! (rotation makes hookd try every secret).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookd::meta::signature::{sign, verify};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("signature_verify");
    for size in [1024usize, 64 * 1024] {
        let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let header = sign(b"app_secret_one", &body);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("{}KB_1_secret", size / 1024), |b| {
            b.iter(|| {
                verify(
                    Some(header.as_bytes()),
                    black_box(&body),
                    &["app_secret_one"],
                )
            })
        });
        group.bench_function(format!("{}KB_2_secrets", size / 1024), |b| {
            b.iter(|| {
                verify(
                    Some(header.as_bytes()),
                    black_box(&body),
                    &["app_secret_one", "app_secret_two"],
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
