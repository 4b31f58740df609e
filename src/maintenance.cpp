/* One maintenance round of a database's worker; see maintenance.hpp. */
#include "maintenance.hpp"
#include "catalog.hpp"
#include "catalog_cache.hpp"
#include "error.hpp"
#include "partition_estimates.hpp"
#include "queue_ops.hpp"
#include "settings.hpp"
#include "spi.hpp"
#include "storage.hpp"

extern "C" {
#include "commands/extension.h"
#include "pgstat.h"
}

#include <algorithm>
#include <optional>

namespace querator {

namespace {

/* How soon a partition whose tables were busy is looked at again. */
constexpr int64 kBusyPartitionRetryUsec = 1000 * 1000;

void
note_deadline(RoundResult &result, std::optional<TimestampTz> deadline)
{
	if (deadline && (!result.next_deadline || *deadline < *result.next_deadline))
		result.next_deadline = deadline;
}

/*
 * Works one partition until no batch comes back full, for the kinds of
 * deadline that are due there only (queue_ops.hpp, floor_due): a partition
 * with nothing due costs no transaction and no statement, so a round costs
 * what is due, not how many queues there are (docs/design.md, "Deadline
 * floors").
 */
void
maintain_partition(RoundResult &result, const QueueDef &queue, int partition, const QueueDef *dead_queue)
{
	if (std::optional<TimestampTz> next; floors_quiet(queue, partition, &next))
	{
		note_deadline(result, next);
		return;
	}
	const int32 batch = worker_batch_size;
	bool more = true;
	while (more)
	{
		const bool leases_due = floor_due(Floor::leases, queue, partition);
		const bool items_due = floor_due(Floor::items, queue, partition);
		if (!leases_due && !items_due)
		{
			note_deadline(result, floor_deadline(Floor::leases, queue, partition));
			note_deadline(result, floor_deadline(Floor::items, queue, partition));
			return;
		}
		const DeadLetterTarget target = dead_letter_target(dead_queue);
		in_worker_transaction([&] {
			SpiConnection spi;
			if (!storage_try_lock_partition(queue.id, partition) ||
				(target.to_dead_queue && !storage_try_lock_partition(target.queue_id, target.partition)))
			{
				/* A DDL or LOCK TABLE holds a table: leave the partition to a round in a second. */
				note_deadline(result, GetCurrentTimestamp() + kBusyPartitionRetryUsec);
				more = false;
				spi.finish();
				return;
			}
			RetryOutcome leases = leases_due ? expire_leases(queue, partition, target, batch) : RetryOutcome{};
			uint64 expired = items_due ? expire_items(queue, partition, target, batch) : 0;
			uint64 promoted = items_due ? promote_due(queue, partition, batch) : 0;
			result.counters.expired_leases += leases.taken_ids.size();
			result.counters.promoted += promoted;
			result.counters.expired_items += expired;
			result.counters.dead_lettered += leases.dead + expired;
			result.made_progress = result.made_progress || !leases.taken_ids.empty() || expired > 0 || promoted > 0;
			more = leases.taken_ids.size() >= static_cast<size_t>(batch) || expired >= static_cast<uint64>(batch) ||
				   promoted >= static_cast<uint64>(batch);
			if (!more)
				for (Floor kind : {Floor::leases, Floor::items})
				{
					const bool due = kind == Floor::leases ? leases_due : items_due;
					note_deadline(result, due ? rescan_deadlines(kind, queue, partition)
											  : floor_deadline(kind, queue, partition));
				}
			spi.finish();
		});
		pg_guard([] { CHECK_FOR_INTERRUPTS(); });
	}
}

/*
 * The queues of the database as the worker last read them: read again when
 * the catalog version moved (every change through querator's API moves it)
 * or once per querator.worker_idle_interval (a catalog changed by other
 * means, a restore), not on every round: with thousands of queues the read
 * was most of an idle round.
 */
struct KnownQueues
{
	std::vector<QueueDef> queues;
	std::optional<QueuesByName> by_name; /* of `queues` */
	uint64 version = 0;
	TimestampTz read_at = 0;
	bool valid = false;
};
KnownQueues known;

bool
catalog_read_due(uint64 version_now, TimestampTz now)
{
	return !known.valid || known.version != version_now ||
		   now - known.read_at >= static_cast<int64>(worker_idle_interval) * USECS_PER_SEC;
}

} // namespace

RoundResult
maintenance_round()
{
	RoundResult result;
	result.counters.rounds = 1;
	result.started_at = GetCurrentTimestamp();
	/* Before the transaction, so before any snapshot of it: see estimates_track. */
	const uint64 catalog_version_read = catalog_version();
	const bool read_catalog = catalog_read_due(catalog_version_read, result.started_at);
	in_worker_transaction([&] {
		/* DROP EXTENSION: the worker leaves instead of touching anything. */
		result.extension_present = pg_guard([] { return OidIsValid(get_extension_oid("querator", true)); });
		if (!result.extension_present || !read_catalog)
			return;
		SpiConnection spi;
		known.queues = catalog_all();
		spi.finish();
		known.by_name.emplace(known.queues);
		known.version = catalog_version_read;
		known.read_at = result.started_at;
		known.valid = true;
		result.catalog_read = true;
	});
	if (!result.extension_present)
	{
		known = KnownQueues{};
		estimates_forget_database(); /* DROP EXTENSION: its partitions no longer count */
		return result;
	}
	for (const QueueDef &queue : known.queues)
	{
		if (read_catalog)
			estimates_track(queue.id, queue.partitions, catalog_version_read); /* after a restart: count what exists */
		const QueueDef *dead_queue = known.by_name->dead_queue_of(queue);
		for (int partition = 0; partition < queue.partitions; partition++)
			maintain_partition(result, queue, partition, dead_queue);
	}
	return result;
}

} // namespace querator
