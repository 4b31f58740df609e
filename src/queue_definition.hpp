/*
 * A queue's definition as plain values: what the catalog (catalog.hpp)
 * stores, its cache keeps, validation checks and the worker delivers by.
 * A ground-floor header, so each of them can include it without including
 * the others.
 */
#pragma once

#include "pg_prelude.hpp"

#include <optional>
#include <string>

namespace querator {

/* Outgoing delivery of a queue's items (empty url: none). */
struct Webhook
{
	std::string url;
	std::string headers_json = "{}"; /* a JSON object of extra request headers */
	Interval timeout{10 * USECS_PER_SEC, 0, 0};
	int32 concurrency = 8;
	Interval backoff{USECS_PER_SEC, 0, 0};          /* first retry delay, doubled per attempt */
	Interval backoff_max{5 * USECS_PER_MINUTE, 0, 0};
};

struct QueueDef
{
	int32 id = 0;                  /* internal id; names the queue's tables */
	std::string name;
	Interval lease_timeout{};
	std::optional<Interval> expire_timeout; /* empty = never */
	int32 max_attempts = 0;        /* 0 = unlimited */
	std::string dead_queue;        /* empty = own dead-letter table */
	std::string reference;
	int32 partitions = 1;
	bool paused = false;           /* lease returns nothing while paused */
	std::string owner;             /* role name of the creator: holds every privilege */
	Webhook webhook;
};

} // namespace querator
