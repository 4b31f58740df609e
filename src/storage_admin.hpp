/*
 * Storage for operations (queue_clear, queue_redrive, queue_stats): the
 * other half of the storage module, off the hot path. Requires an open
 * SpiConnection. Clear and redrive are called only by the operations layer
 * (queue_ops.hpp).
 */
#pragma once

#include "pg_prelude.hpp"

#include <optional>
#include <string>
#include <vector>

namespace querator {

struct ClearCounts
{
	uint64 ready = 0;
	uint64 leased = 0;
	uint64 scheduled = 0;
};

/* The given items a partition held, deleted: ready and leased ones (with their leases), scheduled ones. */
struct DeletedItems
{
	std::vector<int64> ids;
	uint64 ready = 0; /* not leased */
};
DeletedItems storage_delete_items(int32 queue_id, int partition, const std::vector<int64> &ids);

/* Deletes unleased items (ready), scheduled items, and with destructive also leased items. */
ClearCounts storage_clear_partition(int32 queue_id, int partition, bool ready, bool scheduled, bool destructive);

/* Moves the queue's own dead letters back to the tail of `partition` (attempts 0); returns how many. */
uint64 storage_redrive_dead(int32 queue_id, int partition, int partitions, const std::optional<std::vector<int64>> &ids,
							std::optional<TimestampTz> dead_before, const std::optional<Interval> &expire_timeout);

/* Items of a dead queue's partition that came from `source_queue`: moved to that queue's tail. */
uint64 storage_redrive_to_source(int32 dead_queue_id, int dead_partition, int32 source_queue_id,
								 int source_partition, const std::optional<std::vector<int64>> &ids,
								 std::optional<TimestampTz> dead_before, const std::optional<Interval> &expire_timeout);

/*
 * Which of `ids` name a dead letter of the queue: one of its own (its dead
 * table) or, for a dead queue, an item that came from another queue.
 */
std::vector<int64> storage_dead_letter_ids(int32 queue_id, int partitions, const std::vector<int64> &ids);

/* Source queues (internal ids) of the items in a dead queue's partition. */
std::vector<int32> storage_source_queues(int32 dead_queue_id, int partition);

struct QueueTable
{
	std::optional<int> partition; /* none: the dead letters, one table per queue */
	const char *kind;             /* items, leases, scheduled, dead */
	Oid table;                    /* InvalidOid if missing */
};
/* Every table of a queue: items, leases and scheduled of each partition, then its dead letters. */
std::vector<QueueTable> storage_queue_tables(int32 queue_id, int partitions);

struct PartitionFigures
{
	int64 total = 0; /* ready items including leased ones (Querator's meaning); scheduled ones apart */
	int64 leased = 0;
	int64 scheduled = 0;
	int64 dead = 0;
	std::optional<Interval> oldest_age;
	std::optional<Interval> average_age;
	std::optional<Interval> average_lease_remaining;
};

/* Cheap figures of a partition: no full scan of a large table (see docs/design.md). */
PartitionFigures storage_partition_figures(int32 queue_id, int partition, int partitions);

} // namespace querator
