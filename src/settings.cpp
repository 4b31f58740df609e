/* querator.* GUC definitions. */
#include "pg_prelude.hpp"
#include "settings.hpp"
#include "webhook_address.hpp"

#include <stdexcept>

namespace querator {

extern "C" {
int max_batch_size = 1000;
int max_payload_size = 1024 * 1024;
int max_cached_plans = 512;
int max_tracked_partitions = 8192;
int segments_per_partition = 3;
int segment_items = 100000;
int segment_interval_ms = 300000;
int launcher_naptime = 10;
int worker_idle_interval = 60;
int worker_batch_size = 1000;
int wait_recheck_interval = 5;
int webhook_max_transfers = 256;
char *webhook_allowed_cidrs = nullptr;
char *http_listen_addresses = nullptr;
int http_port = 2319;
char *http_database = nullptr;
int http_max_requests = 32;
int http_max_body_size = 64 * 1024 * 1024;
char *http_anonymous_role = nullptr;
char *http_metrics_role = nullptr;
char *http_tls_cert_file = nullptr;
char *http_tls_key_file = nullptr;
}

namespace {

/* A list the webhook destination policy cannot read is refused here, not at delivery. */
bool
check_allowed_cidrs(char **newval, void **, GucSource)
{
	char problem[256] = {};
	try
	{
		http::parse_cidr_list(*newval != nullptr ? *newval : "");
	}
	catch (const std::exception &e)
	{
		strlcpy(problem, e.what(), sizeof(problem));
	}
	if (problem[0] == '\0')
		return true;
	/* Raised after the catch block: GUC_check_errmsg allocates and may longjmp. */
	GUC_check_errmsg("invalid value for querator.webhook_allowed_cidrs: %s", problem);
	GUC_check_errhint("Give a comma-separated list of CIDRs such as 10.0.0.0/8, 127.0.0.1/32, fd00::/8, "
					  "or an empty string for public addresses only.");
	return false;
}

} // namespace

void
define_settings()
{
	DefineCustomIntVariable("querator.max_batch_size",
							"Most items one produce, lease, complete, retry or extend call may carry.",
							nullptr, &max_batch_size, 1000, 1, 100000,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.max_cached_plans",
							"Most plans of querator's statements a backend keeps; the least recently used are freed.",
							"Each takes about 100 KB; a statement on a queue's tables has a plan per partition.",
							&max_cached_plans, 512, 16, 1000000,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.max_payload_size",
							"Largest payload of one item.",
							nullptr, &max_payload_size, 1024 * 1024, 1, 256 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE, nullptr, nullptr, nullptr);
	/* Sizes shared memory, so it can only be set at server start. */
	DefineCustomIntVariable("querator.max_tracked_partitions",
							"Partitions (over all databases) whose ready-item estimates are kept in shared memory.",
							nullptr, &max_tracked_partitions, 8192, 64, 1048576,
							PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.launcher_naptime",
							"How often the launcher looks for new databases and restarts failed workers.",
							nullptr, &launcher_naptime, 10, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.worker_idle_interval",
							"Longest a worker sleeps with no known deadline before it re-reads its queues.",
							nullptr, &worker_idle_interval, 60, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.worker_batch_size",
							"Most items a worker moves in one transaction (expired leases, due items, expired items).",
							nullptr, &worker_batch_size, 1000, 1, 100000,
							PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.wait_recheck_interval",
							"How often a waiting lease re-tries on its own, in case a wake-up was missed.",
							nullptr, &wait_recheck_interval, 5, 1, 900,
							PGC_USERSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
	/* kMaxSegments (partition_head.hpp) bounds the shared ring; at least 2, so one can drain while one fills. */
	DefineCustomIntVariable("querator.segments",
							"Segment tables of each new partition (existing partitions keep theirs).",
							"Items of a partition live in a ring of segments; a drained segment is emptied with TRUNCATE.",
							&segments_per_partition, 3, 2, 8,
							PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.segment_items",
							"Items a partition's current segment takes before the worker starts the next one.",
							nullptr, &segment_items, 100000, 100, 100000000,
							PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.segment_interval",
							"Age after which the worker starts the next segment of a partition that got any item.",
							nullptr, &segment_interval_ms, 300000, 1000, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.webhook_max_transfers",
							"Most webhook transfers a worker runs at once, over all its queues.",
							"Each queue also has its own limit, webhook_concurrency.",
							&webhook_max_transfers, 256, 1, 4096,
							PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	/* Server-wide, like the network it describes: only postgresql.conf or ALTER SYSTEM, read by the workers. */
	DefineCustomStringVariable("querator.webhook_allowed_cidrs",
							   "Non-public addresses webhooks may connect to, as a comma-separated CIDR list.",
							   "Empty: public addresses only. Loopback, private, link-local, CGNAT, multicast, "
							   "reserved and cloud metadata addresses are refused unless listed here.",
							   &webhook_allowed_cidrs, "",
							   PGC_SIGHUP, 0, check_allowed_cidrs, nullptr, nullptr);
	/* The HTTP API: where it listens and which database it serves are fixed at server start, like the pool's target. */
	DefineCustomStringVariable("querator.http_listen_addresses",
							   "Addresses the HTTP/JSON API listens on, comma-separated; empty turns it off.",
							   "Host names or IP addresses; * for every address.",
							   &http_listen_addresses, "",
							   PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.http_port",
							"TCP port of the HTTP/JSON API.",
							nullptr, &http_port, 2319, 1, 65535,
							PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("querator.http_database",
							   "The database whose queues the HTTP/JSON API serves.",
							   nullptr, &http_database, "postgres",
							   PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.http_max_requests",
							"Most HTTP requests running SQL at once: the size of the API's connection pool.",
							"Further requests wait for a connection; a long-polling lease holds one while it waits.",
							&http_max_requests, 32, 1, 1024,
							PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("querator.http_max_body_size",
							"Largest HTTP request body, over every endpoint's own limit.",
							nullptr, &http_max_body_size, 64 * 1024 * 1024, 1024, 1024 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("querator.http_anonymous_role",
							   "Role that HTTP requests without an API key act as; empty: a key is required.",
							   nullptr, &http_anonymous_role, "",
							   PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("querator.http_metrics_role",
							   "Role that GET /metrics without an API key acts as; empty: a key is required.",
							   "Metrics show the queues this role holds a privilege on.",
							   &http_metrics_role, "",
							   PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("querator.http_tls_cert_file",
							   "PEM certificate of the HTTP/JSON API; with querator.http_tls_key_file it serves HTTPS.",
							   nullptr, &http_tls_cert_file, "",
							   PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("querator.http_tls_key_file",
							   "PEM private key of the HTTP/JSON API's certificate.",
							   nullptr, &http_tls_key_file, "",
							   PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
	MarkGUCPrefixReserved("querator");
}

} // namespace querator
