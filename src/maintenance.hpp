/*
 * The background worker's duties in one database, in short transactions:
 * end expired leases, dead-letter expired items, promote due scheduled
 * items, and find the earliest deadline left.
 */
#pragma once

#include "worker_state.hpp"

#include <optional>

namespace querator {

struct RoundResult
{
	bool extension_present = true;
	bool made_progress = false;
	std::optional<TimestampTz> next_deadline;
	WorkerCounters counters;
};

RoundResult maintenance_round();

} // namespace querator
