/*
 * Commit effects: what a transaction does to querator's shared memory takes
 * effect when it commits, and not at all when it rolls back.
 *
 * Call sites record effects here while they work (new ready items, event
 * counts, worker wake-ups, catalog changes, partition reservations and head
 * registrations). This module owns all of that per-transaction state and is
 * the extension's only transaction callback: at commit it applies the
 * effects in one fixed order through the shared-memory modules
 * (partition_estimates, partition_head, waiters, webhook_state,
 * worker_state, catalog_cache), which only apply what they are told; at
 * abort, and at the abort of the subtransaction that recorded them, it drops
 * them; PREPARE TRANSACTION of a transaction that recorded any is refused.
 * docs/design.md, "Commit effects", has the order and the rules.
 */
#pragma once

#include "pg_prelude.hpp"
#include "partition_estimates.hpp"

#include <vector>

namespace querator {

enum class Counter; /* partition_estimates.hpp */

/* At library load: the one transaction and subtransaction callback. */
void commit_effects_register_callbacks();

/*
 * A change in a partition's unleased items; new ready items (delta > 0) are
 * also dealt to the queue's waiting consumers and raise its webhook ready flag.
 */
void estimates_add_at_commit(int32 queue_id, int partition, int64 delta);
/* `n` events of a kind in a partition (queue_stats). */
void count_at_commit(int32 queue_id, int partition, Counter counter, int64 n);
/*
 * A deadline floor of the partition (partition_estimates.hpp) at commit:
 * lowered to a deadline of that kind the transaction set (a lease, an
 * extend; a scheduled item, an expire deadline; a lower bound of it will
 * do), or, for the worker's scan of the partition (begun with
 * deadline_floor_scan_begin), set to the earliest deadline it found
 * (DT_NOEND: none). deadline_at_commit does not wake the worker: callers
 * that need it say so with wake_worker_at_commit (webhook delivery, the
 * worker itself, does not).
 */
void deadline_at_commit(Floor kind, int32 queue_id, int partition, TimestampTz deadline);
void floor_found_at_commit(Floor kind, int32 queue_id, int partition, TimestampTz earliest);
/* Every waiter of the queue gets to try a lease (queue_resume). */
void wake_waiters_at_commit(int32 queue_id);
/* Wake this database's worker if `deadline` is before its next wake-up. */
void wake_worker_at_commit(TimestampTz deadline);
/* Ask the launcher to serve this database (CREATE EXTENSION). */
void request_service_at_commit();
/* The worker re-reads its webhook queues (a webhook queue created, changed, resumed). */
void webhook_catalog_changed_at_commit();
/* The queue catalog changed: this backend bypasses its cache now, every backend's is stale at commit. */
void catalog_cache_changed();

/*
 * Creates the estimates entries of partitions [first, last) of a queue now,
 * or fails with 54000 when they do not fit querator.max_tracked_partitions;
 * removed again if the (sub)transaction aborts.
 */
void estimates_reserve(int32 queue_id, int first_partition, int last_partition);

/* Partitions [first_partition, ...) of a queue stop counting at commit (they were dropped: shrink, delete). */
void estimates_forget_at_commit(int32 queue_id, int first_partition);

/* The transaction's view of the estimates: the committed ones plus its own pending changes. */
std::vector<int64> estimates_read(int32 queue_id, int partitions);
/* Partition order by that view: for a produce (fewest first), for a lease (most first); ties rotate. */
std::vector<int> partitions_for_produce(int32 queue_id, int partitions);
std::vector<int> partitions_for_lease(int32 queue_id, int partitions);

/* What a registered transaction does to a partition's items (partition_head.hpp says why it registers). */
enum class HeadRole
{
	leaser, /* locks items to lease them: only a rollback makes them leasable again */
	writer  /* inserts items, or deletes unleased ones (a rollback brings them back) */
};

/*
 * Registers the current transaction in the partition's head entry until it
 * ends (once per transaction, subtransactions included; a later writer
 * registration upgrades a leaser one). Returns false if it was registered
 * already in this transaction, or the partition has no entry.
 */
bool head_register(int32 queue_id, int partition, HeadRole role = HeadRole::writer);
/* Ends a registration early: a lease that took nothing (or a promotion that inserted nothing) has nothing to protect. */
void head_unregister(int32 queue_id, int partition);
/* Whether this transaction holds a registration in the partition. */
bool head_registered(int32 queue_id, int partition);

} // namespace querator
