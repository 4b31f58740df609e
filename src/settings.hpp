/* querator.* settings (GUCs) and fixed limits, defined in one place. */
#pragma once

namespace querator {

/* Hard limits that are not settings. */
constexpr int kMaxQueueNameLength = 512;
constexpr int kMaxPartitions = 256;
constexpr int kMaxAttemptsLimit = 65536;
constexpr int kMaxTextFieldLength = 1024; /* kind, reference, encoding, client_id */
constexpr int kMaxListLimit = 10000;
constexpr int kMaxWaitMinutes = 15;
/* Durations (docs/design.md, "Limits"): a deadline is now + one of them, so none can overflow. */
constexpr int kMaxLeaseTimeoutHours = 24;
constexpr int kMaxExpireTimeoutYears = 10; /* also how far ahead enqueue_at and retry_at may be */
constexpr int kMaxWebhookTimeoutHours = 1;
constexpr int kMaxWebhookBackoffHours = 24;

extern "C" {
extern int max_batch_size;     /* querator.max_batch_size */
extern int max_payload_size;   /* querator.max_payload_size, bytes */
extern int max_cached_plans;   /* querator.max_cached_plans, per backend */
extern int max_tracked_partitions; /* querator.max_tracked_partitions (shared memory) */
extern int launcher_naptime;   /* querator.launcher_naptime, seconds */
extern int worker_idle_interval; /* querator.worker_idle_interval, seconds */
extern int worker_batch_size;  /* querator.worker_batch_size */
extern int wait_recheck_interval; /* querator.wait_recheck_interval, seconds */
extern int webhook_max_transfers; /* querator.webhook_max_transfers, per worker */
extern int segments_per_partition;           /* querator.segments: segment tables of a new partition */
extern int segment_items;      /* querator.segment_items: items a segment takes before the next one is started */
extern int segment_interval_ms; /* querator.segment_interval: or after this long, with at least one item */
extern char *webhook_allowed_cidrs; /* querator.webhook_allowed_cidrs, never NULL after define_settings */
/* The HTTP/JSON API (http_worker.cpp); never NULL after define_settings. */
extern char *http_listen_addresses; /* querator.http_listen_addresses, empty = no HTTP API */
extern int http_port;                /* querator.http_port */
extern char *http_database;          /* querator.http_database */
extern int http_max_requests;        /* querator.http_max_requests: requests running SQL at once */
extern int http_max_body_size;       /* querator.http_max_body_size, bytes */
extern char *http_anonymous_role;    /* querator.http_anonymous_role, empty = a key is required */
extern char *http_metrics_role;      /* querator.http_metrics_role: GET /metrics without a key acts as it; empty = a key is required */
extern char *http_tls_cert_file;     /* querator.http_tls_cert_file, with the key file: HTTPS */
extern char *http_tls_key_file;      /* querator.http_tls_key_file */
}

void define_settings();

} // namespace querator
