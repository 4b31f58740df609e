/*
 * Shared memory of webhook delivery: per webhook queue, its counters (shown
 * by querator.webhook_status()) and a "ready" flag that backends raise at
 * commit when they made items of the queue ready; per database, whether the
 * worker sleeps on its latch, so only then does a backend set it.
 */
#pragma once

#include "pg_prelude.hpp"

#include <string>
#include <vector>

namespace querator {

constexpr int kMaxWebhookQueues = 1024; /* over all databases */
constexpr int kWebhookErrorLength = 256;

struct WebhookStatus
{
	int32 queue_id;
	uint64 deliveries;
	uint64 failures;
	/* The latest finished attempt: its status (0: none yet, or no HTTP answer), its error ('' for a success). */
	int32 last_status;
	std::string last_error;
	TimestampTz last_delivery_at; /* 0: none yet */
	int32 in_flight;
};

void webhook_state_request_shmem();
void webhook_state_startup_shmem();

/* Worker of this database. */
void webhook_worker_attach();
void webhook_worker_detach();
/* Keeps slots for `webhook_queues` (created as needed) and frees the slots of this database's other queues. */
void webhook_track_queues(const std::vector<int32> &webhook_queues);
/* Queues whose ready flag was raised since the last call; the flags are cleared. */
std::vector<int32> webhook_take_ready();
/* Before sleeping on the latch: false (and no sleep) when a ready flag is up. */
bool webhook_prepare_sleep();
void webhook_awake();
/* Adds a cycle's results; last_status and last_error are its latest attempt's. */
void webhook_count(int32 queue_id, uint64 deliveries, uint64 failures, int32 last_status,
				   const std::string &last_error, TimestampTz at);
void webhook_set_in_flight(int32 queue_id, int32 in_flight);

/* Any backend, at commit: items of queue_id (this database) became ready. */
void webhook_note_ready(int32 queue_id);

/*
 * Any backend, at commit of a queue catalog change (recorded by
 * webhook_catalog_changed_at_commit, commit_effects.hpp): the worker is told
 * to re-read its webhook queues (not through a worker deadline, which would
 * hide a later deadline committed during the round it triggers).
 */
void webhook_note_catalog_change();
/* Worker: whether the catalog changed since the last call. */
bool webhook_take_catalog_change();

/* The slots of this database. */
std::vector<WebhookStatus> webhook_status_read();

} // namespace querator

