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

/* When the partition's leases must be looked at next: its floor (DT_NOEND: no lease). */
std::optional<TimestampTz>
lease_floor_deadline(int32 queue_id, int partition)
{
	TimestampTz floor = lease_floor_read(queue_id, partition);
	return floor == DT_NOEND ? std::nullopt : std::optional<TimestampTz>(floor);
}

/* Works one partition until no batch comes back full. */
void
maintain_partition(RoundResult &result, const QueueDef &queue, int partition, const DeadLetterTarget &target)
{
	const int32 batch = worker_batch_size;
	bool more = true;
	while (more)
	{
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
			const bool leases_due = lease_expiry_due(queue, partition);
			RetryOutcome leases = leases_due ? expire_leases(queue, partition, target, batch) : RetryOutcome{};
			uint64 expired = expire_items(queue, partition, target, batch);
			uint64 promoted = promote_due(queue, partition, batch);
			result.counters.expired_leases += leases.taken_ids.size();
			result.counters.promoted += promoted;
			result.counters.expired_items += expired;
			result.counters.dead_lettered += leases.dead + expired;
			result.made_progress = result.made_progress || !leases.taken_ids.empty() || expired > 0 || promoted > 0;
			more = leases.taken_ids.size() >= static_cast<size_t>(batch) || expired >= static_cast<uint64>(batch) ||
				   promoted >= static_cast<uint64>(batch);
			if (!more)
			{
				note_deadline(result, storage_next_deadline(queue.id, partition));
				note_deadline(result, leases_due ? rescan_lease_deadlines(queue, partition)
												 : lease_floor_deadline(queue.id, partition));
			}
			spi.finish();
		});
		pg_guard([] { CHECK_FOR_INTERRUPTS(); });
	}
}

} // namespace

RoundResult
maintenance_round()
{
	RoundResult result;
	result.counters.rounds = 1;
	result.started_at = GetCurrentTimestamp();
	std::vector<QueueDef> queues;
	/* Before the transaction, so before any snapshot of it: see estimates_track. */
	const uint64 catalog_version_read = catalog_version();
	in_worker_transaction([&] {
		/* DROP EXTENSION: the worker leaves instead of touching anything. */
		result.extension_present = pg_guard([] { return OidIsValid(get_extension_oid("querator", true)); });
		if (!result.extension_present)
			return;
		SpiConnection spi;
		queues = catalog_all();
		spi.finish();
	});
	if (!result.extension_present)
	{
		estimates_forget_database(); /* DROP EXTENSION: its partitions no longer count */
		return result;
	}
	for (const QueueDef &queue : queues)
	{
		estimates_track(queue.id, queue.partitions, catalog_version_read); /* after a restart: count what exists */
		DeadLetterTarget target = dead_letter_target(queue, queues);
		for (int partition = 0; partition < queue.partitions; partition++)
			maintain_partition(result, queue, partition, target);
	}
	return result;
}

} // namespace querator
