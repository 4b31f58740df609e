/*
 * The background worker's duties in one database, in short transactions:
 * end expired leases, dead-letter expired items, promote due scheduled
 * items, and find the earliest deadline left.
 */
#pragma once

#include "catalog.hpp"
#include "error.hpp"
#include "storage.hpp"
#include "worker_state.hpp"

extern "C" {
#include "pgstat.h"
}

#include <optional>

namespace querator {

struct RoundResult
{
	bool extension_present = true;
	bool made_progress = false;
	bool catalog_read = false; /* the round read the queue catalog again (it changed, or its interval passed) */
	TimestampTz started_at = 0; /* before the round's first look at any deadline */
	std::optional<TimestampTz> next_deadline;
	WorkerCounters counters;
};

/* Runs f in its own transaction. On an exception the transaction stays open;
 * the worker's error recovery aborts it. */
template <typename F>
void
in_worker_transaction(F &&f)
{
	pg_guard([] {
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
	});
	f();
	pg_guard([] {
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_stat(false);
	});
}

RoundResult maintenance_round();

} // namespace querator
