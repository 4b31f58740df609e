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
#include "utils/inval.h"
#include "pgstat.h"
}

#include <algorithm>
#include <optional>
#include <unordered_map>

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
 * A first look at a partition builds relation cache entries for its tables
 * and indexes (about 40 KB), which a process keeps: after a restart with
 * 10,000 queues the worker held 400 MB. Every so many first looks the
 * worker drops its caches (as a backend does that missed too many
 * invalidations), so its first pass holds a bounded amount.
 */
constexpr uint64 kFirstLooksPerCacheReset = 256;
uint64 first_looks = 0;

/*
 * After a restart every floor is unknown, so the first round visits every
 * partition. It finds the floors with reads only, before any duty runs: a
 * partition with nothing due (nearly all of them) then never plans a write
 * statement. With 10,000 queues, planning the duties' DELETEs and UPDATEs for
 * every table kept the first round busy for minutes: each built the table's
 * publication list in the catalog cache, whose lists PostgreSQL 15 searches
 * one by one. False when the partition's tables are busy (a DDL): try again.
 */
bool
settle_unknown_floors(const QueueDef &queue, int partition)
{
	bool settled = true;
	bool first_look = true;
	for (Floor kind : {Floor::leases, Floor::items})
	{
		if (deadline_floor_read(kind, queue.id, partition) != kFloorUnknown || !settled)
			continue;
		in_worker_transaction([&] {
			if (first_look && ++first_looks % kFirstLooksPerCacheReset == 0)
				pg_guard([] { InvalidateSystemCaches(); }); /* nothing is open yet */
			first_look = false;
			SpiConnection spi;
			settled = storage_try_lock_partition(queue.id, partition);
			if (settled && floor_due(kind, queue, partition))
				(void) rescan_deadlines(kind, queue, partition);
			spi.finish();
		});
	}
	return settled;
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
	if (!settle_unknown_floors(queue, partition))
	{
		note_deadline(result, GetCurrentTimestamp() + kBusyPartitionRetryUsec);
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
 * The queues of the database as the worker last read them: read again only
 * when the catalog version moved. Every change to querator.queues moves it
 * at commit, through the API or not (the trigger queues_changed: a
 * restore's COPY, a superuser's UPDATE), so an idle worker reads nothing;
 * until 0.5.0 it re-read every queue once per worker_idle_interval for
 * those, about 50 ms of CPU a minute at 10,000 queues.
 */
struct KnownQueues
{
	std::vector<QueueDef> queues;
	std::optional<QueuesByName> by_name;           /* of `queues` */
	std::unordered_map<int32, const QueueDef *> by_id; /* of `queues` */
	/* Queues with a partition that has no shared entry (querator.max_tracked_partitions is too small). */
	std::vector<const QueueDef *> untracked;
	uint64 version = 0;
	bool valid = false;
};
KnownQueues known;

/* After reading the catalog: the indexes of `known`, and entries for every partition (after a restart). */
void
index_known_queues()
{
	known.by_name.emplace(known.queues);
	known.by_id.clear();
	known.untracked.clear();
	for (const QueueDef &queue : known.queues)
	{
		known.by_id.emplace(queue.id, &queue);
		if (!estimates_track(queue.id, queue.partitions, known.version))
			known.untracked.push_back(&queue);
	}
}

/*
 * After a restart the first look at 10,000 idle partitions takes the worker
 * 15-25 s (opening each table for the first time in the process); a round
 * spends this long on them at most, after what is due, so that a lease
 * expiring meanwhile waits for one slice, not for all of them.
 */
constexpr int64 kQuietUnknownBudgetUsec = 200 * 1000;

/*
 * The partitions to visit: those whose floors are due (one pass over shared
 * memory, not a lookup per queue), the ones whose floors are unknown and
 * quiet after the others and for a bounded time, then every partition of an
 * untracked queue, which has no floors to go by. A due partition of a queue this
 * catalog read does not know (made or resized since; the version moved, so
 * the next round reads again) waits for that round.
 */
void
maintain_due_partitions(RoundResult &result)
{
	TimestampTz later = DT_NOEND;
	const std::vector<DuePartition> due = deadline_floors_due(GetCurrentTimestamp(), &later);
	if (later != DT_NOEND)
		note_deadline(result, later);
	const TimestampTz quiet_budget_ends = GetCurrentTimestamp() + kQuietUnknownBudgetUsec;
	for (const DuePartition &partition : due)
	{
		if (partition.floor == kFloorUnknownQuiet && GetCurrentTimestamp() >= quiet_budget_ends)
		{
			note_deadline(result, GetCurrentTimestamp()); /* the rest in the next round, which comes at once */
			break;
		}
		const auto queue = known.by_id.find(partition.queue_id);
		if (queue == known.by_id.end() || partition.partition >= queue->second->partitions)
			continue;
		maintain_partition(result, *queue->second, partition.partition, known.by_name->dead_queue_of(*queue->second));
	}
	for (const QueueDef *queue : known.untracked)
		for (int partition = 0; partition < queue->partitions; partition++)
			maintain_partition(result, *queue, partition, known.by_name->dead_queue_of(*queue));
}

/*
 * Segment upkeep (docs/design.md, "Segments"): the partitions flagged since
 * the last round (a rotation due, a writer of an old segment gone), and
 * those that had something left to try a second ago (a segment not drained
 * yet, a table busy). Each in its own short transaction; a round spends
 * this long on them at most, the rest waits for the next round.
 */
constexpr int64 kSegmentBudgetUsec = 100 * 1000;
std::vector<std::pair<int32, int32>> segments_to_retry;  /* at segments_retry_at */
TimestampTz segments_retry_at = 0;
std::vector<std::pair<int32, int32>> segments_next_round; /* left when a round's budget ran out */

void
maintain_segments(RoundResult &result)
{
	std::vector<std::pair<int32, int32>> work = storage_segments_flagged();
	work.insert(work.end(), segments_next_round.begin(), segments_next_round.end());
	segments_next_round.clear();
	if (!segments_to_retry.empty() && GetCurrentTimestamp() >= segments_retry_at)
	{
		work.insert(work.end(), segments_to_retry.begin(), segments_to_retry.end());
		segments_to_retry.clear();
	}
	std::sort(work.begin(), work.end());
	work.erase(std::unique(work.begin(), work.end()), work.end());
	const bool retries_waiting = !segments_to_retry.empty(); /* their time is set: rounds in between must not move it */
	const TimestampTz budget_ends = GetCurrentTimestamp() + kSegmentBudgetUsec;
	bool out_of_budget = false;
	for (const auto &[queue_id, partition] : work)
	{
		const auto queue = known.by_id.find(queue_id);
		if (queue == known.by_id.end() || partition >= queue->second->partitions)
			continue; /* deleted or shrunk since it was flagged */
		if (GetCurrentTimestamp() >= budget_ends)
		{
			out_of_budget = true;
			segments_next_round.emplace_back(queue_id, partition);
			continue;
		}
		bool again = false;
		in_worker_transaction([&] {
			SpiConnection spi;
			again = !storage_try_lock_partition(queue_id, partition) || storage_segments_upkeep(queue_id, partition);
			spi.finish();
		});
		if (again)
			segments_to_retry.emplace_back(queue_id, partition);
		pg_guard([] { CHECK_FOR_INTERRUPTS(); });
	}
	if (!retries_waiting && !segments_to_retry.empty())
		segments_retry_at = GetCurrentTimestamp() + kBusyPartitionRetryUsec;
	if (!segments_to_retry.empty())
		note_deadline(result, segments_retry_at);
	if (out_of_budget)
		note_deadline(result, GetCurrentTimestamp()); /* the rest in the next round, which comes at once */
}

bool
catalog_read_due(uint64 version_now)
{
	return !known.valid || known.version != version_now;
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
	const bool read_catalog = catalog_read_due(catalog_version_read);
	in_worker_transaction([&] {
		/* DROP EXTENSION: the worker leaves instead of touching anything. */
		result.extension_present = pg_guard([] { return OidIsValid(get_extension_oid("querator", true)); });
		if (!result.extension_present || !read_catalog)
			return;
		known.valid = false; /* until indexed: an error in between leaves nothing half-read */
		SpiConnection spi;
		known.queues = catalog_all();
		spi.finish();
		known.version = catalog_version_read;
		index_known_queues();
		known.valid = true;
		result.catalog_read = true;
	});
	if (!result.extension_present)
	{
		known = KnownQueues{};
		estimates_forget_database(); /* DROP EXTENSION: its partitions no longer count */
		return result;
	}
	maintain_due_partitions(result);
	maintain_segments(result);
	return result;
}

} // namespace querator
