/* Webhook delivery, the PostgreSQL side; see webhook_delivery.hpp. */
#include "webhook_delivery.hpp"
#include "commit_effects.hpp"
#include "catalog.hpp"
#include "error.hpp"
#include "maintenance.hpp"
#include "queue_ops.hpp"
#include "settings.hpp"
#include "spi.hpp"
#include "storage.hpp"
#include "webhook_http.hpp"
#include "webhook_state.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#ifndef QUERATOR_VERSION
#error "QUERATOR_VERSION must be defined (Makefile)"
#endif

namespace querator {

namespace {

const char *const kClientId = "querator webhook";
/* A webhook lease outlives the transfer's timeout by this much, so a slow answer is still recorded. */
constexpr int64 kLeaseMarginUsec = 5 * USECS_PER_SEC;
/* A retry due this soon goes straight back to the queue (as queue_retry does). */
constexpr int64 kRetryNowWindowUsec = 100 * 1000;

struct Delivery
{
	int32 queue_id;
	int partition;
	int64 item_id;
	int32 attempts;
};

struct Finished
{
	Delivery delivery;
	http::Response response;
};

/*
 * curl's descriptors in PostgreSQL's count (storage/fd.h): PostgreSQL closes
 * cached relation files to make room for them instead of running out, and
 * refuses an acquisition past a third of its descriptors. None of the three
 * can longjmp (a failed close of a cached file is logged, or is a PANIC under
 * data_sync_retry = off, which ends the process), so they run inside curl's
 * callbacks without a guard.
 */
class PostgresDescriptors final : public http::DescriptorBudget
{
public:
	bool try_reserve() noexcept override { return AcquireExternalFD(); }
	void reserve() noexcept override { ReserveExternalFD(); }
	void release() noexcept override { ReleaseExternalFD(); }
};

/* What the worker keeps between cycles (static storage: an error in a cycle does not lose it). */
PostgresDescriptors descriptors; /* before the client, which holds reservations in it until it goes */
std::unique_ptr<http::Client> client;
std::map<uint64_t, Delivery> deliveries; /* by request tag */
std::map<int32, int32> in_flight_per_queue;
uint64_t next_tag = 1;
std::set<int32> ready_queues;     /* may have ready items */
std::map<int32, int32> webhook_queues; /* id -> concurrency, as of the last catalog read */
bool consider_all = true;
std::map<std::string, std::vector<http::Header>> parsed_headers; /* by headers_json */
std::vector<Finished> unrecorded; /* results of partitions a DDL held last cycle */

int64
interval_usec(const Interval &i)
{
	return i.time + static_cast<int64>(i.day) * USECS_PER_DAY +
		   static_cast<int64>(i.month) * DAYS_PER_MONTH * USECS_PER_DAY;
}

void
note(std::optional<TimestampTz> &earliest, TimestampTz t)
{
	if (!earliest || t < *earliest)
		earliest = t;
}

/* Transfers a queue may start now: its concurrency and the worker's querator.webhook_max_transfers. */
int32
free_slots(int32 queue_id, int32 concurrency, size_t starting)
{
	int32 queue_free = concurrency - in_flight_per_queue[queue_id];
	int32 worker_free = webhook_max_transfers - static_cast<int32>(deliveries.size() + starting);
	return std::min(queue_free, worker_free);
}

http::Client &
the_client()
{
	if (!client)
		client = std::make_unique<http::Client>(std::string("querator/") + QUERATOR_VERSION, descriptors);
	return *client;
}

/*
 * Of `wanted` more transfers (after `starting` already admitted this cycle),
 * how many can have their descriptors now. An item is leased only when its
 * transfer can start: the others stay ready in their queue, untouched (no
 * attempt counted), until a transfer ends and gives its descriptors back.
 */
int32
descriptor_room(size_t starting, int32 wanted)
{
	size_t fit = the_client().make_room(starting + static_cast<size_t>(std::max(wanted, 0)));
	return fit > starting ? static_cast<int32>(fit - starting) : 0;
}

/* The queue's extra headers (a validated JSON object of strings), parsed once per distinct text. */
const std::vector<http::Header> &
extra_headers(const std::string &json)
{
	auto found = parsed_headers.find(json);
	if (found != parsed_headers.end())
		return found->second;
	if (parsed_headers.size() > 1000)
		parsed_headers.clear();
	std::vector<http::Header> headers;
	for (http::Header &h : webhook_headers_parse(json))
		if (http::header_problem(h.name, h.value).empty()) /* a definition older than the rule */
			headers.push_back(std::move(h));
	return parsed_headers.emplace(json, std::move(headers)).first->second;
}

/* The client's destination policy follows querator.webhook_allowed_cidrs (checked by its GUC hook). */
void
refresh_address_policy()
{
	static std::string applied;
	const std::string current = webhook_allowed_cidrs != nullptr ? webhook_allowed_cidrs : "";
	if (current == applied)
		return;
	client->set_address_policy(std::make_shared<const http::AddressPolicy>(http::parse_cidr_list(current)));
	applied = current;
}

bool
is_header(const std::string &name, const char *wanted)
{
	return pg_strcasecmp(name.c_str(), wanted) == 0;
}

/* The POST of one leased item: the queue's headers, then querator's (which a queue cannot override). */
http::Request
build_request(const QueueDef &queue, const std::vector<http::Header> &extra, LeasedItem &item)
{
	http::Request request;
	request.url = queue.webhook.url;
	request.timeout_ms = static_cast<long>(std::max<int64>(1, interval_usec(queue.webhook.timeout) / 1000));
	bool content_type = false;
	for (const http::Header &h : extra)
	{
		if (pg_strncasecmp(h.name.c_str(), "X-Querator-", 11) == 0)
			continue;
		content_type = content_type || is_header(h.name, "Content-Type");
		request.headers.push_back(h);
	}
	if (!content_type)
		request.headers.push_back({"Content-Type", http::header_safe(item.encoding)});
	/* The id it was produced with: the same on every redelivery, so receivers can deduplicate. */
	request.headers.push_back({"X-Querator-Id", std::to_string(item.origin_id)});
	request.headers.push_back({"X-Querator-Queue", http::header_safe(queue.name)});
	request.headers.push_back({"X-Querator-Kind", http::header_safe(item.kind)});
	request.headers.push_back({"X-Querator-Reference", http::header_safe(item.reference)});
	request.headers.push_back({"X-Querator-Attempt", std::to_string(item.attempts)});
	request.body = std::move(item.payload);
	return request;
}

/* Per queue, what a cycle changed in the shared counters (applied after commit). */
struct CounterUpdate
{
	uint64 deliveries = 0;
	uint64 failures = 0;
	int32 last_status = 0;
	std::string last_error; /* of the same attempt as last_status: '' after a success */
};

/*
 * Records finished transfers: complete on 2xx, retry with backoff otherwise.
 * Returns the results of partitions whose tables a DDL or LOCK TABLE holds
 * right now, for the next cycle: the worker never waits for a table lock (see
 * storage_try_lock_partition).
 */
std::vector<Finished>
record_results(std::vector<Finished> finished, const std::vector<QueueDef> &queues,
			   std::map<int32, CounterUpdate> &updates, std::optional<TimestampTz> &earliest)
{
	std::map<int32, const QueueDef *> by_id;
	for (const QueueDef &q : queues)
		by_id[q.id] = &q;
	const QueuesByName by_name(queues);
	/* A queue deleted or shrunk meanwhile has nothing left to record. */
	auto queue_of = [&](int32 id, int partition) -> const QueueDef * {
		auto found = by_id.find(id);
		return found == by_id.end() || partition >= found->second->partitions ? nullptr : found->second;
	};
	std::map<std::pair<int32, int>, bool> writable;
	auto can_write = [&](const QueueDef &queue, int partition) {
		auto [entry, fresh] = writable.try_emplace({queue.id, partition}, false);
		if (fresh)
		{
			DeadLetterTarget target = dead_letter_target(by_name.dead_queue_of(queue));
			entry->second = storage_try_lock_partition(queue.id, partition) &&
							(!target.to_dead_queue || storage_try_lock_partition(target.queue_id, target.partition));
		}
		return entry->second;
	};

	std::vector<Finished> later;
	std::map<std::pair<int32, int>, std::vector<int64>> completed;
	/* Failures that share queue, partition, attempt and error share one retry time (jittered per group). */
	std::map<std::tuple<int32, int, int32, std::string>, std::vector<int64>> failed;
	for (Finished &f : finished)
	{
		const Delivery &d = f.delivery;
		const QueueDef *queue = queue_of(d.queue_id, d.partition);
		if (queue == nullptr)
			continue;
		if (!can_write(*queue, d.partition))
		{
			later.push_back(std::move(f));
			continue;
		}
		CounterUpdate &u = updates[d.queue_id];
		u.last_status = static_cast<int32>(f.response.status);
		if (f.response.delivered())
		{
			u.deliveries++;
			u.last_error.clear();
			completed[{d.queue_id, d.partition}].push_back(d.item_id);
		}
		else
		{
			u.failures++;
			u.last_error = f.response.error;
			failed[{d.queue_id, d.partition, d.attempts, f.response.error}].push_back(d.item_id);
		}
	}

	for (const auto &[key, ids] : completed)
	{
		complete_in_partition(key.first, key.second, ids);
	}
	const TimestampTz now = GetCurrentTimestamp();
	for (const auto &[key, ids] : failed)
	{
		const auto &[queue_id, partition, attempts, error] = key;
		const QueueDef *queue = queue_of(queue_id, partition);
		int64 delay = http::backoff_delay_us(interval_usec(queue->webhook.backoff),
											 interval_usec(queue->webhook.backoff_max), attempts);
		std::optional<TimestampTz> retry_at;
		if (delay > kRetryNowWindowUsec)
			retry_at = now + delay;
		DeadLetterTarget target = dead_letter_target(by_name.dead_queue_of(*queue));
		RetryOutcome outcome = retry_in_partition(*queue, partition, ids, retry_at, false, target, error);
		if (retry_at && outcome.scheduled > 0)
			note(earliest, *retry_at);
	}
	return later;
}

/* Leases items of ready webhook queues up to their free slots; returns the requests to start. */
std::vector<std::pair<Delivery, http::Request>>
lease_ready(const std::vector<QueueDef> &queues, std::optional<TimestampTz> &earliest)
{
	std::vector<std::pair<Delivery, http::Request>> started;
	for (const QueueDef &queue : queues)
	{
		if (queue.webhook.url.empty() || (!consider_all && ready_queues.count(queue.id) == 0))
			continue;
		if (queue.paused)
		{
			ready_queues.erase(queue.id); /* queue_resume re-announces it (catalog change) */
			continue;
		}
		int32 wanted = free_slots(queue.id, queue.webhook.concurrency, started.size());
		if (wanted > 0)
			wanted = descriptor_room(started.size(), wanted);
		if (wanted <= 0)
		{
			ready_queues.insert(queue.id); /* full now; try again when a slot (or a descriptor) frees */
			continue;
		}
		const std::vector<http::Header> &extra = extra_headers(queue.webhook.headers_json);
		/* The lease outlives the transfer: a late answer is still recorded, not delivered twice. */
		int64 lease_usec = std::max(interval_usec(queue.lease_timeout),
									interval_usec(queue.webhook.timeout) + kLeaseMarginUsec);
		const Interval lease_timeout{lease_usec, 0, 0};
		int32 got = 0;
		bool skipped_busy = false;
		for (int partition : partitions_for_lease(queue.id, queue.partitions))
		{
			if (!storage_try_lock_partition(queue.id, partition))
			{
				skipped_busy = true; /* a DDL holds its tables: the next cycle tries again */
				continue;
			}
			std::vector<LeasedItem> items = lease_for_delivery(queue, partition, kClientId, wanted - got, lease_timeout);
			for (LeasedItem &item : items)
			{
				note(earliest, item.lease_deadline);
				Delivery d{queue.id, partition, item.id, item.attempts};
				started.emplace_back(d, build_request(queue, extra, item));
			}
			got += static_cast<int32>(items.size());
			if (got >= wanted)
				break;
		}
		if (got < wanted && !skipped_busy)
			ready_queues.erase(queue.id); /* drained: wait for the next announcement */
		else
			ready_queues.insert(queue.id);
	}
	return started;
}

/* Whether a cycle has anything to do in a transaction. */
bool
worth_a_transaction(bool have_results)
{
	if (have_results || consider_all)
		return true;
	/* Only queues known to be webhook queues with a free slot, and a descriptor for it: others cannot lease now. */
	for (int32 id : ready_queues)
	{
		auto known = webhook_queues.find(id);
		if (known != webhook_queues.end() && free_slots(id, known->second, 0) > 0)
			return descriptor_room(0, 1) > 0;
	}
	return false;
}

} // namespace

std::optional<TimestampTz>
webhook_cycle()
{
	std::vector<Finished> finished = std::move(unrecorded);
	unrecorded.clear();
	if (client)
		for (http::Response &response : client->drive())
		{
			auto found = deliveries.find(response.tag);
			if (found == deliveries.end())
				continue;
			in_flight_per_queue[found->second.queue_id]--;
			finished.push_back(Finished{found->second, std::move(response)});
			deliveries.erase(found);
		}
	for (int32 id : webhook_take_ready())
		ready_queues.insert(id);
	if (webhook_take_catalog_change())
		consider_all = true;
	if (!worth_a_transaction(!finished.empty()))
		return std::nullopt;

	std::optional<TimestampTz> earliest;
	std::map<int32, CounterUpdate> updates;
	std::vector<std::pair<Delivery, http::Request>> requests;
	in_worker_transaction([&] {
		SpiConnection spi;
		/* Not catalog_all(): run after every maintenance round, it was most of the worker's CPU with 2,000 queues. */
		std::vector<int32> finishing;
		for (const Finished &f : finished)
			finishing.push_back(f.delivery.queue_id);
		std::vector<QueueDef> queues = catalog_webhook_queues(finishing);
		unrecorded = record_results(std::move(finished), queues, updates, earliest);
		webhook_queues.clear();
		std::vector<int32> ids;
		for (const QueueDef &q : queues)
			if (!q.webhook.url.empty())
			{
				webhook_queues[q.id] = q.webhook.concurrency;
				ids.push_back(q.id);
			}
		webhook_track_queues(ids);
		requests = lease_ready(queues, earliest);
		consider_all = false;
		spi.finish();
	});

	/* Committed: the results are recorded and the new leases are ours. Now the network. */
	const TimestampTz now = GetCurrentTimestamp();
	for (const auto &[queue_id, u] : updates)
		webhook_count(queue_id, u.deliveries, u.failures, u.last_status, u.last_error, now);
	if (client)
		refresh_address_policy();
	std::set<int32> touched;
	for (const auto &[queue_id, u] : updates)
		touched.insert(queue_id);
	for (auto &[delivery, request] : requests)
	{
		request.tag = next_tag++;
		deliveries.emplace(request.tag, delivery);
		in_flight_per_queue[delivery.queue_id]++;
		touched.insert(delivery.queue_id);
		client->start(std::move(request));
	}
	if (client)
		client->make_room(0); /* what a queue admitted but did not lease */
	for (int32 queue_id : touched)
		webhook_set_in_flight(queue_id, in_flight_per_queue[queue_id]);
	return earliest;
}

void
webhook_after_round(bool catalog_read)
{
	if (catalog_read || !webhook_queues.empty())
		consider_all = true;
}

std::vector<http::Header>
webhook_headers_parse(const std::string &json)
{
	spi_run("SELECT pg_catalog.jsonb_typeof($1::pg_catalog.jsonb)", {param_text(json)}, true);
	if (spi_get_text(0, 1) != "object")
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"webhook headers is invalid; must be a JSON object of header names to string values");
	uint64 n = spi_run("SELECT e.key, e.value OPERATOR(pg_catalog.#>>) '{}', pg_catalog.jsonb_typeof(e.value) "
					   "FROM pg_catalog.jsonb_each($1::pg_catalog.jsonb) e ORDER BY e.key",
					   {param_text(json)}, true);
	std::vector<http::Header> headers;
	for (uint64 i = 0; i < n; i++)
	{
		std::string name = spi_get_text(i, 1);
		if (spi_get_text(i, 3) != "string")
			throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
						"webhook headers is invalid; the value of header '" + http::header_safe(name) +
							"' must be a JSON string");
		headers.push_back(http::Header{std::move(name), spi_get_text(i, 2)});
	}
	return headers;
}

size_t
webhook_in_flight()
{
	return deliveries.size();
}

void
webhook_wait(int timeout_ms)
{
	if (client)
		client->wait(timeout_ms);
}

} // namespace querator
