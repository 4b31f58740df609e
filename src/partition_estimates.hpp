/*
 * Per-partition estimates of unleased (ready) items, event counters and the
 * deadline floors, kept in shared memory.
 *
 * They only steer choices: produce writes to the partition with the fewest,
 * lease tries partitions with the most first. Correctness never depends on
 * them (a lease that finds nothing tries the next partition), so they may
 * drift or start at zero after a restart. Changes are recorded per
 * transaction in commit_effects.hpp and applied here when it commits, so
 * rolled-back work leaves no trace.
 */
#pragma once

#include "pg_prelude.hpp"

#include <vector>

namespace querator {

void estimates_request_shmem();
void estimates_startup_shmem();

/* Events counted per partition since server start (queue_stats). */
enum class Counter
{
	produced,
	leased,
	completed,
	retried,
	lease_expired,
	dead_lettered,
	expired,
};
constexpr int kCounterCount = 7;

struct PartitionCounters
{
	int64 unleased = 0; /* the estimate */
	int64 values[kCounterCount] = {};
};

/* Committed estimates of partitions [0, partitions) of a queue in this database. */
std::vector<int64> estimates_read_committed(int32 queue_id, int partitions);

/* Adds a committed transaction's changes to a partition's entry (made if missing). Never raises: runs at commit. */
void estimates_apply(int32 queue_id, int partition, int64 unleased_delta, const int64 (&counters)[kCounterCount]);

/*
 * The deadline floors of a partition: no deadline of that kind in it comes
 * before its floor. `leases`: lease deadlines (they replace the
 * lease_deadline index, docs/design.md, "Lease deadlines"); `items`: the
 * scheduled items' enqueue_at and every item's expire_deadline (docs/design.md,
 * "Deadline floors"). The worker visits a partition only once one of its
 * floors is due, and then scans only for that kind. Every commit that sets a
 * deadline lowers the floor of its kind (deadline_floor_lower, at commit);
 * the worker raises it to what it found (deadline_floor_settle, at the commit
 * of the transaction that scanned, a snapshot taken after
 * deadline_floor_scan_begin), lowered again by every deadline committed since
 * that begin, which its snapshot may have missed. Unknown after a restart
 * (and for a partition without an entry): due at once. A partition created
 * by queues_create or queues_update starts with none (its tables are new).
 */
enum class Floor
{
	leases,
	items,
};
constexpr int kFloorKinds = 2;
constexpr TimestampTz kFloorUnknown = PG_INT64_MIN;
void deadline_floor_lower(Floor kind, int32 queue_id, int partition, TimestampTz deadline);
TimestampTz deadline_floor_read(Floor kind, int32 queue_id, int partition);
/* Both floors at once, indexed by Floor: one lock for a partition the worker only looks at. */
void deadline_floors_read(int32 queue_id, int partition, TimestampTz (&floors)[kFloorKinds]);
/*
 * A partition of this database with a floor due or unknown: `floor` is the
 * earliest of its floors, kFloorUnknown when one is unknown and a deadline
 * of that kind committed since (after a restart: a partition in use), and
 * kFloorUnknownQuiet when one is unknown and nothing of the kind committed
 * since (after a restart: most partitions, each costing the worker a first
 * look at its tables; docs/design.md, "Deadline floors").
 */
struct DuePartition
{
	int32 queue_id;
	int partition;
	TimestampTz floor;
};
constexpr TimestampTz kFloorUnknownQuiet = kFloorUnknown + 1;
/*
 * One pass over this database's tracked partitions under one shared lock,
 * with no lookup per partition: the ones with a floor at or before `now`
 * (unknown included), earliest first and the quiet unknown ones last;
 * *later is the earliest floor of the others (DT_NOEND: none). A worker
 * round visits only these, so a quiet partition costs a few loads, not a
 * hash lookup and a clock read.
 */
std::vector<DuePartition> deadline_floors_due(TimestampTz now, TimestampTz *later);
void deadline_floor_scan_begin(Floor kind, int32 queue_id, int partition);
/* `earliest`: the earliest deadline the scan found, DT_NOEND for none. Never raises: runs at commit. */
void deadline_floor_settle(Floor kind, int32 queue_id, int partition, TimestampTz earliest);

/* Estimates and counters of partitions [0, partitions) of a queue. */
std::vector<PartitionCounters> counters_read(int32 queue_id, int partitions);

/* Forgets a queue's partitions from `first_partition` on (at the commit of a delete or shrink). */
void estimates_forget(int32 queue_id, int first_partition);

/*
 * Partitions count against querator.max_tracked_partitions (over all
 * databases): queues_create / queues_update create the entries of new
 * partitions [first, last) at once (estimates_create, appending the ones it
 * made to *created), or fail with 54000 when they do not fit; an aborted
 * transaction removes them again (estimates_remove; both through
 * estimates_reserve, commit_effects.hpp). After a restart each worker
 * re-tracks its database's partitions (estimates_track, at each catalog read); past
 * the limit that is logged once and those partitions go untracked
 * (docs/design.md, "Limits").
 */
void estimates_create(int32 queue_id, int first_partition, int last_partition, std::vector<int> *created);
void estimates_remove(int32 queue_id, int partition);
/*
 * `catalog_version_read` is catalog_version() read before the snapshot the
 * worker read `partitions` with: when the catalog changed since, nothing is
 * created (a shrink or delete that committed meanwhile forgets its
 * partitions after moving the version, so they must not come back).
 * True when every partition of the queue has an entry.
 */
bool estimates_track(int32 queue_id, int partitions, uint64 catalog_version_read);
/* Forgets every partition of this database, heads included (the extension was dropped). */
void estimates_forget_database();

/* Partitions ordered by their estimates, fewest or most first; ties rotate randomly. */
std::vector<int> partitions_by_estimate(const std::vector<int64> &estimates, bool most_first);

} // namespace querator

