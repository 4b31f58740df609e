/*
 * The queue-operations layer: one function per operation on a queue, each
 * running its storage statements *and* recording the commit effects they
 * owe (estimates and event counters, worker wake-ups, waiter dealing, the
 * catalog-cache and webhook flags, forgetting shared-memory entries).
 *
 * The rule (docs/design.md, "Code layout"): only this layer calls the
 * writing functions of storage.hpp, storage_admin.hpp and catalog.hpp, and
 * only it records commit effects. A new path that writes items calls an
 * operation here instead of a storage function, so it cannot forget the
 * wake-ups or the estimates that long polls and partition balancing rely on.
 *
 * Callers: the SQL entry points (*_api.cpp) after reading, validating and
 * checking privileges; the worker (maintenance.cpp, webhook_delivery.cpp);
 * the extension hooks (querator.cpp). Requires an open SpiConnection, except
 * for the extension_* functions.
 */
#pragma once

#include "catalog.hpp"
#include "partition_estimates.hpp"
#include "storage.hpp"

#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace querator {

/* Items (queue_ops.cpp). */

/*
 * Produces `batch` into the queue's partition with the fewest unleased
 * items; sets batch.expire_timeout to the queue's. Returns the new ids.
 */
std::vector<int64> produce_items(const QueueDef &queue, ProduceBatch &batch);

/* Leases from the partitions with the most unleased items first; stops at the first that gives items. */
uint64 lease_items(const QueueDef &queue, const std::string &client_id, int32 batch_size, ReturnSetInfo *out);

/*
 * Complete / retry / extend the leased items `ids` (distinct). All or none:
 * when an id is not acted on, the error for the first such id in the
 * caller's order (42704 when it does not exist, 55000 when it is not
 * leased), which aborts the transaction. Return how many were acted on;
 * no ids act on nothing and record nothing.
 */
uint64 complete_items(const QueueDef &queue, const std::vector<int64> &ids);
/* retry_at: nothing = ready now; dead: dead-letter them now. */
uint64 retry_items(const QueueDef &queue, const std::vector<int64> &ids, std::optional<TimestampTz> retry_at,
				   bool dead);
uint64 extend_leases(const QueueDef &queue, const std::vector<int64> &ids, const Interval &lease_timeout);

/* The leased ones among `ids` of one partition: complete / retry them; return which were taken. */
std::vector<int64> complete_in_partition(int32 queue_id, int partition, const std::vector<int64> &ids);
RetryOutcome retry_in_partition(const QueueDef &queue, int partition, const std::vector<int64> &ids,
								std::optional<TimestampTz> retry_at, bool dead, const DeadLetterTarget &target,
								std::optional<std::string> last_error = std::nullopt);

/*
 * All or none: when some of `ids` (distinct) are not in `done`, the error for
 * the first in the caller's order: 42704 when it is not an item of the
 * queue, 55000 "item(s) cannot be <verb>; '<id>' is not <state>" when it is.
 */
void require_acted_on(const QueueDef &queue, const std::vector<int64> &ids, const std::set<int64> &done,
					  const char *verb, const char *state);

/* The queues of the worker's catalog read, found by name (a queue's dead queue). */
class QueuesByName
{
public:
	explicit QueuesByName(const std::vector<QueueDef> &queues);
	/* nullptr: it has none, or it is gone. */
	const QueueDef *dead_queue_of(const QueueDef &queue) const;

private:
	std::unordered_map<std::string, const QueueDef *> by_name_;
};

/*
 * Where the dead letters of a queue go, given its dead queue's definition
 * (QueuesByName::dead_queue_of; nullptr: its own dead-letter table).
 */
DeadLetterTarget dead_letter_target(const QueueDef *dead_queue);

/*
 * The worker visits a partition only for the kinds of deadline that are due
 * there (docs/design.md, "Deadline floors"): floor_due says whether the
 * partition's floor of that kind is due, and if so begins the worker's scan
 * of it (its duties of that kind, then rescan_deadlines in the same
 * transaction, whose commit sets the floor to the earliest deadline left).
 * Floor::leases: expire_leases; Floor::items: expire_items and promote_due.
 */
bool floor_due(Floor kind, const QueueDef &queue, int partition);
/*
 * Whether nothing is due in the partition (both floors read at once: the
 * round's recheck of a partition the due index named, whose floors a
 * commit or an earlier visit may have moved since); if so, *next is when to
 * look again (nothing: no deadline).
 */
bool floors_quiet(const QueueDef &queue, int partition, std::optional<TimestampTz> *next);
std::optional<TimestampTz> rescan_deadlines(Floor kind, const QueueDef &queue, int partition);
/* The floor of that kind, as the time the worker must look again (nothing: no deadline). */
std::optional<TimestampTz> floor_deadline(Floor kind, const QueueDef &queue, int partition);

/* The worker's duties on one partition, up to `limit` items each (queue_ops.cpp). */
RetryOutcome expire_leases(const QueueDef &queue, int partition, const DeadLetterTarget &target, int32 limit);
uint64 expire_items(const QueueDef &queue, int partition, const DeadLetterTarget &target, int32 limit);
uint64 promote_due(const QueueDef &queue, int partition, int32 limit);

/*
 * Webhook delivery's lease: as lease_items on one partition, into C++
 * values. Wakes no worker: the webhook cycle returns its deadlines itself
 * (the partition's lease deadline floor is lowered at commit as for any lease).
 */
std::vector<LeasedItem> lease_for_delivery(const QueueDef &queue, int partition, const std::string &client_id,
										   int32 batch_size, const Interval &lease_timeout);

/*
 * A deadline of an item the transaction put into the partition (a scheduled
 * item's enqueue_at, an expire deadline): lowers the partition's items floor
 * and wakes the worker for it at commit. Every path that creates one calls
 * this, or the worker would skip the partition past it. Shared by
 * queue_ops*.cpp.
 */
void item_deadline_at_commit(int32 queue_id, int partition, TimestampTz deadline);
/* For `items` put into the partition of a queue with an expire_timeout (now() + expire_timeout). */
void item_expiry_at_commit(int32 queue_id, int partition, const std::optional<Interval> &expire_timeout,
						   uint64 items);

/* Queues (queue_ops_admin.cpp). */

/*
 * Creates a validated definition: its catalog row, its tables, its
 * partitions' shared-memory entries. Nothing when the name is taken.
 */
std::optional<int32> create_queue(const QueueDef &def);
/*
 * Stores a validated definition that replaces `stored`, adding or dropping
 * partitions. Dropping ends the waits on the queue, then fails with 55000
 * while the removed partitions hold items (checked once their locks are held).
 */
void update_queue(const QueueDef &def, const QueueDef &stored);
/*
 * Deletes a queue with its tables; without `force` it fails with 55000 while
 * it holds items or dead letters. With `has_feeders` (queues name it as their
 * dead_queue; the caller allows that only with force) those queues keep
 * their dead letters themselves from now on: returns them.
 */
std::vector<QueueDef> delete_queue(const QueueDef &def, bool force, bool has_feeders);
void set_queue_paused(const QueueDef &def, bool paused);

/* Deletes ready, scheduled and (destructive) leased items; returns how many. */
uint64 clear_queue(const QueueDef &queue, bool ready, bool scheduled, bool destructive);
/* Deletes the given items (ready, leased or scheduled): all or none (42704 for an id the queue does not hold). */
uint64 delete_items(const QueueDef &queue, const std::vector<int64> &ids);

struct RedriveOutcome
{
	uint64 moved = 0;
	bool kept_for_privilege = false; /* some came from queues the invoking role may not produce to */
};
/*
 * Moves dead letters back: the queue's own to the partition they died in,
 * a dead queue's to the queue each came from when the invoking role may
 * produce to it (a privilege on one queue grants no effect on another).
 * `ids` empty moves nothing; otherwise each must name a dead letter of the
 * queue (require_acted_on's error for the first that does not), which the
 * other filters (dead_before, a lease in the dead queue, the privilege) may
 * still leave where it is.
 */
RedriveOutcome redrive_queue(const QueueDef &queue, const std::optional<std::vector<int64>> &ids,
							 std::optional<TimestampTz> dead_before);

/* The extension itself (queue_ops_admin.cpp): effects of CREATE / ALTER / DROP EXTENSION querator. */
void extension_created();
void extension_updating();
/* DROP EXTENSION querator, before its locks are taken, and once they are. */
void extension_drop_starting();
void extension_dropping();

} // namespace querator
