/*
 * Storage of items: the only module that knows the tables of a queue and
 * the SQL that reads and writes them (see docs/design.md). Requires an open
 * SpiConnection. Functions that write are called only by the operations
 * layer (queue_ops.hpp), which records their commit effects; reads may be
 * called from anywhere above.
 *
 * Per queue (internal id Q):  querator_data.qQ_seq   item id sequence
 *                             querator_data.qQ_dead  dead letters
 * Per partition P:            querator_data.qQ_pP_items      ready + leased items (payload, never rewritten)
 *                             querator_data.qQ_pP_leases     lease state, narrow
 *                             querator_data.qQ_pP_scheduled  items not yet due
 * An item id is (P << 48) | nextval(qQ_seq), so it names its partition.
 * The tables are clones of querator_data.{items,leases,scheduled,dead}_template,
 * which the extension's upgrade scripts define (docs/design.md, "Tables").
 */
#pragma once

#include "pg_prelude.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace querator {

int partition_of_id(int64 id);

/* Where dead-lettered items of a queue go. */
struct DeadLetterTarget
{
	bool to_dead_queue = false; /* false: the queue's own dead-letter table */
	int32 queue_id = 0;         /* the dead queue */
	int partition = 0;          /* partition of the dead queue that receives them */
	std::optional<Interval> expire_timeout; /* the dead queue's */
};

struct ProduceBatch
{
	Datum payloads;             /* bytea[] */
	int count = 0;              /* elements of payloads */
	std::optional<Datum> kinds; /* text[] */
	std::optional<Datum> references; /* text[] */
	std::string encoding;
	std::optional<TimestampTz> enqueue_at; /* set: scheduled until then */
	std::optional<Interval> expire_timeout;
};

struct RetryOutcome
{
	std::vector<int64> taken_ids;
	uint64 requeued = 0;
	uint64 scheduled = 0;
	uint64 dead = 0;
};

/* Queue and partition tables. */
void storage_create_queue(int32 queue_id, int partitions);
void storage_create_partitions(int32 queue_id, int from, int to);
void storage_drop_partitions(int32 queue_id, int from, int to);
void storage_drop_queue(int32 queue_id, int partitions);
/*
 * Before tables are dropped (a shrink, a delete): locks partitions [from, to)
 * (and the dead table with `dead`) in ACCESS EXCLUSIVE mode, waiting for every
 * transaction that writes them. An emptiness check made after it sees what
 * those transactions committed; made before, a produce that committed while
 * the drop waited for its lock was dropped with the table.
 */
void storage_lock_for_drop(int32 queue_id, int from, int to, bool dead);
bool storage_partitions_hold_items(int32 queue_id, int from, int to);
bool storage_has_dead_letters(int32 queue_id);

/*
 * For the worker, which must never wait for a table lock: takes the locks of
 * a partition's tables (items, leases, scheduled) and of its queue's dead
 * table and sequence without waiting. False when a DDL or a LOCK TABLE holds
 * one of them, or the partition is gone; the worker then leaves the partition
 * for a later round. Waiting instead could deadlock with a transaction that
 * drops several queues, since the worker's transactions span queues too.
 */
bool storage_try_lock_partition(int32 queue_id, int partition);

/* Item operations on one partition. */
std::vector<int64> storage_produce(int32 queue_id, int partition, const ProduceBatch &batch);
uint64 storage_promote_due(int32 queue_id, int partition, int32 limit);
/* Sets *earliest_deadline to the earliest deadline of the leases it granted (DT_NOEND: none). */
uint64 storage_lease(int32 queue_id, int partition, const std::string &client_id, int32 batch_size,
					 const Interval &lease_timeout, ReturnSetInfo *out, TimestampTz *earliest_deadline);
/* complete / retry / extend act on the leased ones among `ids` and report which they took. */
std::vector<int64> storage_complete(int32 queue_id, int partition, const std::vector<int64> &ids);
/* last_error, when set, is kept with the items (shown by the lists; webhook delivery records failures). */
RetryOutcome storage_retry(int32 queue_id, int partition, const std::vector<int64> &ids,
						   std::optional<TimestampTz> retry_at, bool dead, int32 max_attempts,
						   const DeadLetterTarget &target, std::optional<std::string> last_error = std::nullopt);
/* Background duties: end expired leases, dead-letter expired items; the earliest deadline. */
RetryOutcome storage_expire_leases(int32 queue_id, int partition, int32 max_attempts, const DeadLetterTarget &target,
								   int32 limit);
uint64 storage_expire_items(int32 queue_id, int partition, const DeadLetterTarget &target, int32 limit);
/* The earliest scheduled enqueue_at or item expire_deadline (storage_am.hpp: earliest_item_deadline). */
std::optional<TimestampTz> storage_next_deadline(int32 queue_id, int partition);
/* The earliest lease deadline: a walk of the partition's leases (not indexed), for the worker once its floor is due. */
std::optional<TimestampTz> storage_earliest_lease_deadline(int32 queue_id, int partition);

/*
 * Segments (docs/design.md, "Segments"), for the worker: the partitions of
 * this database flagged for upkeep since the last call, and the upkeep of
 * one (storage_segments.hpp: start the next segment, empty drained ones;
 * true when something is left to try again later). The caller holds the
 * partition's locks (storage_try_lock_partition).
 */
std::vector<std::pair<int32, int32>> storage_segments_flagged();
bool storage_segments_upkeep(int32 queue_id, int partition);

std::vector<int64> storage_extend(int32 queue_id, int partition, const std::vector<int64> &ids,
								  const Interval &lease_timeout);

/* For error reports: which of `ids` exist in the partition (ready, leased or scheduled). */
std::vector<int64> storage_existing_ids(int32 queue_id, int partition, const std::vector<int64> &ids);

/* Read-only lists into a materialized SRF result, ordered by id from `pivot` on. */
void storage_list_items(ReturnSetInfo *out, int32 queue_id, int partitions, int64 pivot, int32 limit, bool with_errors);
void storage_list_scheduled(ReturnSetInfo *out, int32 queue_id, int partitions, int64 pivot, int32 limit, bool with_errors);
void storage_list_dead(ReturnSetInfo *out, int32 queue_id, int64 pivot, int32 limit, bool with_errors);

/* Webhook delivery: the claim of storage_lease, into C++ values (payload copied). */
struct LeasedItem
{
	int64 id = 0;
	int64 origin_id = 0;       /* the id it was produced with, kept across retries and expiry */
	int partition = 0;
	int32 attempts = 0;        /* this lease's attempt, 1 for the first */
	std::string kind;
	std::string reference;
	std::string encoding;
	std::string payload;
	TimestampTz lease_deadline = 0;
};
std::vector<LeasedItem> storage_lease_items(int32 queue_id, int partition, const std::string &client_id,
											int32 batch_size, const Interval &lease_timeout);

} // namespace querator
