//! Every metric hookd exports, with its description. Names carry their unit; labels are
//! bounded (source names come from the configuration, event types from a fixed catalogue).

use std::sync::OnceLock;

use metrics::{describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Webhook requests by `source` and `outcome` (one of [`INGRESS_OUTCOMES`]).
pub const INGRESS_REQUESTS: &str = "hookd_ingress_requests_total";
/// Time from a webhook request's arrival to its answer, by `outcome`.
pub const INGRESS_DURATION: &str = "hookd_ingress_request_duration_seconds";
/// Size of accepted webhook bodies.
pub const INGRESS_BODY_BYTES: &str = "hookd_ingress_body_bytes";
/// Requests journaled per commit (group commit).
pub const JOURNAL_BATCH_SIZE: &str = "hookd_journal_commit_batch_size";
/// Time one journal commit takes.
pub const JOURNAL_COMMIT_DURATION: &str = "hookd_journal_commit_duration_seconds";
/// Journal commits by `outcome` (ok, error).
pub const JOURNAL_COMMITS: &str = "hookd_journal_commits_total";
/// Journal entries read by the previous holder of the journal lease, taken over with it.
pub const JOURNAL_CLAIMED: &str = "hookd_journal_claimed_total";
/// Journal pipelines that fewer replicas than `redis.wait_replicas` acknowledged in time.
pub const JOURNAL_UNREPLICATED: &str = "hookd_journal_unreplicated_total";
/// Journal entries processed by the normalizer, by `outcome` (split, quarantined, missing).
pub const NORMALIZER_BODIES: &str = "hookd_normalizer_bodies_total";
/// Time to split and commit one batch of journal entries.
pub const NORMALIZER_BATCH_DURATION: &str = "hookd_normalizer_batch_duration_seconds";
/// New events stored, by `platform` and `type`.
pub const EVENTS: &str = "hookd_events_total";
/// Events dropped as duplicates of stored ones, by `platform` and `type`.
pub const DUPLICATES: &str = "hookd_events_duplicate_total";
/// Signed bodies that could not be split and were quarantined.
pub const QUARANTINED: &str = "hookd_quarantined_total";
/// Actor restarts by supervision, by `actor`.
pub const ACTOR_RESTARTS: &str = "hookd_actor_restarts_total";
/// Messages refused because an actor's queue was full, by `actor`.
pub const MAILBOX_FULL: &str = "hookd_mailbox_full_total";
/// Failed storage calls (Redis or the embedded data file), by `op`.
pub const STORAGE_ERRORS: &str = "hookd_storage_errors_total";
/// Time of storage calls, by `op`.
pub const STORAGE_DURATION: &str = "hookd_storage_operation_duration_seconds";
/// Entries in a stream, by `stream` (inbound, events, quarantine).
pub const STREAM_LENGTH: &str = "hookd_stream_length";
/// Journal entries not yet read by the normalizer group (backlog).
pub const STREAM_LAG: &str = "hookd_stream_lag";
/// Journal entries read but not yet acknowledged.
pub const STREAM_PENDING: &str = "hookd_stream_pending";
/// 1 while storage answered the last housekeeping probe, 0 otherwise.
pub const STORAGE_UP: &str = "hookd_storage_up";
/// Time of the embedded backend's group commits, by `durable` (fsynced or not).
pub const STORAGE_COMMIT_DURATION: &str = "hookd_storage_commit_duration_seconds";
/// What storage holds: the embedded data file's size, or Redis's used memory.
pub const STORAGE_BYTES: &str = "hookd_storage_bytes";
/// Space left on the filesystem of the embedded backend's data directory.
pub const STORAGE_FREE_BYTES: &str = "hookd_storage_free_bytes";

/// Delivery attempts by `outcome` (delivered, retry, dead, gone), `status_class` (2xx, 3xx,
/// 4xx, 5xx, error) and, unless `delivery.endpoint_metrics_label` is off, `endpoint`.
pub const DELIVERY_ATTEMPTS: &str = "hookd_delivery_attempts_total";
/// Time of one delivery attempt (request sent to response read), by `endpoint` when labelled.
pub const DELIVERY_DURATION: &str = "hookd_delivery_attempt_duration_seconds";
/// From Meta's POST reaching hookd to the endpoint's 2xx, by `platform`.
pub const END_TO_END: &str = "hookd_delivery_end_to_end_seconds";
/// Deliveries put back for later without an attempt: their endpoint's lane was full or stopped
/// keeping up.
pub const DELIVERY_DEFERRED: &str = "hookd_delivery_deferred_total";
/// Retries scheduled after a failed attempt.
pub const RETRIES_SCHEDULED: &str = "hookd_delivery_retries_scheduled_total";
/// Due retries moved back to the deliveries stream (`outcome`: moved, dropped when the event
/// was already trimmed).
pub const RETRIES_PROMOTED: &str = "hookd_delivery_retries_promoted_total";
/// Deliveries moved to the dead stream, by `reason` (exhausted, gone, disabled, blocked,
/// missing).
pub const DEAD_LETTERS: &str = "hookd_delivery_dead_letters_total";
/// Dead deliveries put back by replay.
pub const REPLAYED: &str = "hookd_delivery_replayed_total";
/// Deliveries waiting in the retry set (`state`: scheduled, due).
pub const RETRY_QUEUE: &str = "hookd_delivery_retry_queue";
/// Endpoints by `state` (active, disabled, gone, failing).
pub const ENDPOINTS: &str = "hookd_endpoints";
/// Attempts this instance has started and not yet committed.
pub const DELIVERY_IN_FLIGHT: &str = "hookd_delivery_in_flight";
/// Time one commit of delivery outcomes takes.
pub const DELIVERY_COMMIT_DURATION: &str = "hookd_delivery_commit_duration_seconds";
/// Deliveries another instance held too long and this one took over.
pub const DELIVERY_CLAIMED: &str = "hookd_delivery_claimed_total";
/// Reloads of the routing table after endpoint changes.
pub const ROUTE_RELOADS: &str = "hookd_route_table_reloads_total";
/// Consumer groups found missing and recreated: storage lost data it had acknowledged.
pub const STORAGE_DATA_LOST: &str = "hookd_storage_data_lost_total";
/// Management API requests refused with 429, by `reason`: `caller` (its key's request rate)
/// or `auth_failures` (its address's failed authentications).
pub const API_RATE_LIMITED: &str = "hookd_api_rate_limited_total";
/// Management API requests with a missing or wrong key.
pub const API_AUTH_FAILURES: &str = "hookd_api_auth_failures_total";
/// Refused or failed management API requests whose audit record could not be written
/// (storage unreachable); each is logged instead. Changes themselves are never unrecorded.
pub const AUDIT_UNRECORDED: &str = "hookd_audit_unrecorded_total";
/// Events of test suite runs stored (counted apart from `hookd_events_total`).
pub const TEST_EVENTS: &str = "hookd_test_events_total";
/// `GET /api/v1/stream` clients being served by this instance.
pub const STREAM_CLIENTS: &str = "hookd_stream_clients";
/// Stream clients dropped for not reading fast enough.
pub const STREAM_DROPPED: &str = "hookd_stream_clients_dropped_total";
/// Graph API calls made through the subscription management API, by `outcome`: ok, refused
/// (Meta's error), rate_limited, unreachable (no answer, or not Meta's JSON).
pub const GRAPH_CALLS: &str = "hookd_graph_calls_total";
/// Reloads of the HTTPS certificate by `outcome` (ok, error: the previous one keeps serving).
pub const TLS_RELOADS: &str = "hookd_tls_certificate_reloads_total";
/// Always 1, labelled with hookd's `version` and the `commit` it was built from.
pub const BUILD_INFO: &str = "hookd_build_info";

const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];
const BYTES_BUCKETS: &[f64] = &[
    256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

/// Installs the process-wide Prometheus recorder once and returns its handle (tests that run
/// several apps in one process share it).
/// The process's own metrics (`process_resident_memory_bytes`, CPU, open files, threads),
/// read from the operating system at each scrape.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Updates the process metrics; called before each scrape is rendered.
pub fn collect_process() {
    process_collector().collect();
}

pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(JOURNAL_BATCH_SIZE.into()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS)
                })
                .expect("bucket lists are non-empty constants");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding application); hookd's
            // handle then renders only what hookd records through it.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            process_collector().describe();
            handle
        })
        .clone()
}

/// Ingress outcomes, as `hookd_ingress_requests_total` labels them.
pub const INGRESS_OUTCOMES: &[&str] = &[
    "accepted",
    "signature_missing",
    "signature_malformed",
    "signature_mismatch",
    "client_certificate_missing",
    "client_certificate_untrusted",
    "client_certificate_name",
    "too_large",
    "unknown_source",
    "overloaded",
    "unavailable",
    "bad_body",
];
const ACTORS: &[&str] = &[
    "ingress_writer",
    "normalizer",
    "reclaimer",
    "housekeeper",
    "router",
    "dispatcher",
    "retry_timer",
];
const MAILBOXES: &[&str] = &["ingress_writer", "normalizer", "dispatcher"];
const DEAD_REASONS: &[&str] = &["exhausted", "gone", "disabled", "blocked", "missing"];
/// The Redis calls on the hot paths, whose errors alerts and dashboards watch.
const HOT_STORAGE_OPS: &[&str] = &[
    "append_journal",
    "commit_normalized",
    "commit_attempts",
    "promote_retries",
    "ping",
];

/// Creates, at zero, the counters that stay silent while all is well (restarts, rejections,
/// dead letters, storage errors). A counter that appears only with its first increment has no
/// series for `rate()` before that, so a dashboard shows "No data" instead of 0 and an alert
/// on `increase()` misses the first failure.
pub fn register_zero_series<'a>(sources: impl IntoIterator<Item = &'a str>) {
    for source in sources {
        for outcome in INGRESS_OUTCOMES {
            metrics::counter!(INGRESS_REQUESTS, "source" => source.to_string(), "outcome" => *outcome)
                .increment(0);
        }
    }
    for actor in ACTORS {
        metrics::counter!(ACTOR_RESTARTS, "actor" => *actor).increment(0);
    }
    for actor in MAILBOXES {
        metrics::counter!(MAILBOX_FULL, "actor" => *actor).increment(0);
    }
    for reason in DEAD_REASONS {
        metrics::counter!(DEAD_LETTERS, "reason" => *reason).increment(0);
    }
    for op in HOT_STORAGE_OPS {
        metrics::counter!(STORAGE_ERRORS, "op" => *op).increment(0);
    }
    metrics::counter!(QUARANTINED).increment(0);
    metrics::counter!(STORAGE_DATA_LOST).increment(0);
    metrics::counter!(JOURNAL_CLAIMED).increment(0);
    metrics::counter!(JOURNAL_UNREPLICATED).increment(0);
    metrics::counter!(API_AUTH_FAILURES).increment(0);
    metrics::counter!(AUDIT_UNRECORDED).increment(0);
    for outcome in ["ok", "error"] {
        metrics::counter!(TLS_RELOADS, "outcome" => outcome).increment(0);
    }
    metrics::counter!(STREAM_DROPPED).increment(0);
    metrics::counter!(TEST_EVENTS).increment(0);
    metrics::gauge!(STREAM_CLIENTS).set(0.0);
    for outcome in ["ok", "refused", "rate_limited", "unreachable"] {
        metrics::counter!(GRAPH_CALLS, "outcome" => outcome).increment(0);
    }
    for reason in ["caller", "auth_failures"] {
        metrics::counter!(API_RATE_LIMITED, "reason" => reason).increment(0);
    }
    for outcome in ["ok", "error"] {
        metrics::counter!(JOURNAL_COMMITS, "outcome" => outcome).increment(0);
    }
    for outcome in ["split", "quarantined", "missing"] {
        metrics::counter!(NORMALIZER_BODIES, "outcome" => outcome).increment(0);
    }
    for outcome in ["moved", "dropped"] {
        metrics::counter!(RETRIES_PROMOTED, "outcome" => outcome).increment(0);
    }
    // Histograms with fixed labels, registered so that they are exported (empty) at once.
    for name in [
        INGRESS_BODY_BYTES,
        JOURNAL_BATCH_SIZE,
        JOURNAL_COMMIT_DURATION,
        NORMALIZER_BATCH_DURATION,
        DELIVERY_COMMIT_DURATION,
    ] {
        let _ = metrics::histogram!(name);
    }
    for outcome in INGRESS_OUTCOMES {
        let _ = metrics::histogram!(INGRESS_DURATION, "outcome" => *outcome);
    }
    for platform in ["whatsapp", "messenger", "page", "instagram"] {
        let _ = metrics::histogram!(END_TO_END, "platform" => platform);
    }
    for op in HOT_STORAGE_OPS {
        let _ = metrics::histogram!(STORAGE_DURATION, "op" => *op);
    }
    // Every known event type, under the platform its name starts with.
    for t in crate::meta::catalogue::CATALOGUE {
        for name in [EVENTS, DUPLICATES] {
            metrics::counter!(name, "platform" => t.platform.as_str(), "type" => t.name)
                .increment(0);
        }
    }
    metrics::counter!(DELIVERY_CLAIMED).increment(0);
    metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => env!("BUILD_GIT_COMMIT")
    )
    .set(1.0);
    metrics::counter!(RETRIES_SCHEDULED).increment(0);
    metrics::counter!(REPLAYED).increment(0);
    metrics::counter!(DELIVERY_DEFERRED).increment(0);
}

fn describe() {
    use metrics::Unit;
    describe_counter!(INGRESS_REQUESTS, "Webhook requests by source and outcome.");
    describe_histogram!(
        INGRESS_DURATION,
        Unit::Seconds,
        "Webhook request latency, arrival to answer."
    );
    describe_histogram!(
        INGRESS_BODY_BYTES,
        Unit::Bytes,
        "Size of accepted webhook bodies."
    );
    describe_histogram!(
        JOURNAL_BATCH_SIZE,
        Unit::Count,
        "Requests journaled per Redis pipeline."
    );
    describe_histogram!(
        JOURNAL_COMMIT_DURATION,
        Unit::Seconds,
        "Duration of one journal commit."
    );
    describe_counter!(JOURNAL_COMMITS, "Journal pipelines by outcome.");
    describe_counter!(
        JOURNAL_CLAIMED,
        "Journal entries taken over with the journal lease."
    );
    describe_counter!(
        JOURNAL_UNREPLICATED,
        "Journal pipelines answered 503 because too few replicas acknowledged them (redis.wait_replicas)."
    );
    describe_counter!(
        NORMALIZER_BODIES,
        "Journal entries processed by the normalizer, by outcome."
    );
    describe_histogram!(
        NORMALIZER_BATCH_DURATION,
        Unit::Seconds,
        "Time to split and commit one batch."
    );
    describe_counter!(EVENTS, "New events stored, by platform and type.");
    describe_counter!(
        DUPLICATES,
        "Duplicate events dropped, by platform and type."
    );
    describe_counter!(QUARANTINED, "Signed bodies that could not be split.");
    describe_counter!(ACTOR_RESTARTS, "Actor restarts by supervision.");
    describe_gauge!(
        BUILD_INFO,
        "Always 1, labelled with hookd's version and the commit it was built from."
    );
    describe_counter!(
        MAILBOX_FULL,
        "Messages refused because an actor queue was full."
    );
    describe_counter!(STORAGE_ERRORS, "Failed storage calls by operation.");
    describe_counter!(
        API_RATE_LIMITED,
        "Management API requests refused with 429, by reason (caller, auth_failures)."
    );
    describe_counter!(
        API_AUTH_FAILURES,
        "Management API requests with a missing or wrong key."
    );
    describe_counter!(
        TLS_RELOADS,
        "Reloads of the HTTPS certificate by outcome (ok, error: the previous one keeps serving)."
    );
    describe_counter!(
        TEST_EVENTS,
        "Events of test suite runs stored (not counted in hookd_events_total)."
    );
    describe_gauge!(
        STREAM_CLIENTS,
        "GET /api/v1/stream clients being served by this instance."
    );
    describe_counter!(
        STREAM_DROPPED,
        "Stream clients dropped for not reading fast enough."
    );
    describe_counter!(
        GRAPH_CALLS,
        "Graph API calls of the subscription management API by outcome (ok, refused, rate_limited, unreachable)."
    );
    describe_counter!(
        AUDIT_UNRECORDED,
        "Refused or failed management API requests whose audit record could not be written."
    );
    describe_histogram!(
        STORAGE_DURATION,
        Unit::Seconds,
        "Storage call latency by operation."
    );
    describe_gauge!(STREAM_LENGTH, Unit::Count, "Entries in a stream.");
    describe_gauge!(
        STREAM_LAG,
        Unit::Count,
        "Journal entries not yet read by the normalizer group."
    );
    describe_gauge!(
        STREAM_PENDING,
        Unit::Count,
        "Journal entries read but not acknowledged."
    );
    describe_gauge!(STORAGE_UP, "1 while storage answered the last probe.");
    describe_histogram!(
        STORAGE_COMMIT_DURATION,
        Unit::Seconds,
        "Group commit time of the embedded backend, fsynced or not."
    );
    describe_gauge!(
        STORAGE_BYTES,
        Unit::Bytes,
        "What storage holds: the embedded data file's size, or Redis's used memory."
    );
    describe_gauge!(
        STORAGE_FREE_BYTES,
        Unit::Bytes,
        "Space left on the filesystem of the embedded backend's data directory."
    );
    describe_counter!(
        DELIVERY_ATTEMPTS,
        "Delivery attempts by outcome, status class and endpoint."
    );
    describe_histogram!(
        DELIVERY_DURATION,
        Unit::Seconds,
        "Duration of one delivery attempt."
    );
    describe_histogram!(
        END_TO_END,
        Unit::Seconds,
        "Meta's POST to the endpoint's 2xx, by platform."
    );
    describe_counter!(
        DELIVERY_DEFERRED,
        "Deliveries put back unattempted: their endpoint's lane was full or stopped keeping up."
    );
    describe_counter!(
        RETRIES_SCHEDULED,
        "Retries scheduled after a failed attempt."
    );
    describe_counter!(
        RETRIES_PROMOTED,
        "Due retries moved back to the deliveries stream, by outcome."
    );
    describe_counter!(
        DEAD_LETTERS,
        "Deliveries moved to the dead stream, by reason."
    );
    describe_counter!(REPLAYED, "Dead deliveries put back by replay.");
    describe_gauge!(
        RETRY_QUEUE,
        Unit::Count,
        "Deliveries waiting in the retry set, by state."
    );
    describe_gauge!(ENDPOINTS, Unit::Count, "Endpoints by state.");
    describe_gauge!(
        DELIVERY_IN_FLIGHT,
        Unit::Count,
        "Delivery attempts started and not yet committed."
    );
    describe_histogram!(
        DELIVERY_COMMIT_DURATION,
        Unit::Seconds,
        "Duration of one commit of delivery outcomes."
    );
    describe_counter!(
        DELIVERY_CLAIMED,
        "Deliveries taken over from a stalled consumer."
    );
    describe_counter!(ROUTE_RELOADS, "Reloads of the routing table.");
    describe_counter!(
        STORAGE_DATA_LOST,
        "Consumer groups found missing and recreated: storage lost acknowledged data (a Redis restarted empty)."
    );
}
