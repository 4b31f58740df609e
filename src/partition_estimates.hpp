/*
 * Per-partition estimates of unleased (ready) items and event counters,
 * kept in shared memory.
 *
 * They only steer choices: produce writes to the partition with the fewest,
 * lease tries partitions with the most first. Correctness never depends on
 * them (a lease that finds nothing tries the next partition), so they may
 * drift or start at zero after a restart. Changes are collected per
 * transaction and applied at commit, so rolled-back work leaves no trace.
 */
#pragma once

#include "pg_prelude.hpp"

#include <vector>

namespace querator {

void estimates_request_shmem();
void estimates_startup_shmem();
void estimates_register_xact_callback();

/* Current estimates for partitions [0, partitions) of a queue in this database. */
std::vector<int64> estimates_read(int32 queue_id, int partitions);

/*
 * Records a change in a partition's unleased items, applied when the current
 * transaction commits; new ready items (delta > 0) are also dealt to the
 * queue's waiting consumers then (waiters.hpp).
 */
void estimates_add_at_commit(int32 queue_id, int partition, int64 delta);

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

/* At commit, every waiter of the queue gets to try a lease (queue_resume). */
void wake_waiters_at_commit(int32 queue_id);

/* Counts `n` events of a kind, applied when the current transaction commits. */
void count_at_commit(int32 queue_id, int partition, Counter counter, int64 n);

/* Estimates and counters of partitions [0, partitions) of a queue. */
std::vector<PartitionCounters> counters_read(int32 queue_id, int partitions);

/* Forgets a queue's partitions from `first_partition` on (after delete or shrink). */
void estimates_forget(int32 queue_id, int first_partition);

/*
 * Partitions count against querator.max_tracked_partitions (over all
 * databases): queues_create / queues_update reserve the entries of new
 * partitions [first, last) at once, or fail with 54000 when they do not fit
 * (the reservation is undone if the transaction aborts). After a restart
 * each worker re-tracks its database's partitions (estimates_track, every
 * round); past the limit that is logged once and those partitions go
 * untracked (docs/design.md, "Limits").
 */
void estimates_reserve(int32 queue_id, int first_partition, int last_partition);
void estimates_track(int32 queue_id, int partitions);
/* Forgets every partition of this database, heads included (the extension was dropped). */
void estimates_forget_database();

/* Partition order for a produce (fewest first) and for a lease (most first); ties rotate. */
std::vector<int> partitions_for_produce(int32 queue_id, int partitions);
std::vector<int> partitions_for_lease(int32 queue_id, int partitions);

} // namespace querator
