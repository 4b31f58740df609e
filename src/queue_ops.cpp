/* Operations on items, for the API and the worker alike; see queue_ops.hpp. */
#include "queue_ops.hpp"
#include "commit_effects.hpp"
#include "partition_estimates.hpp"
#include "time_math.hpp"

#include <map>
#include <set>

namespace querator {

namespace {

/*
 * Runs `act` on the ids of each partition and raises, if any id was not
 * acted on, require_acted_on's error. The error aborts the transaction, so
 * the call changes nothing: all ids or none.
 */
template <typename Act>
uint64
for_leased_ids(const QueueDef &queue, const std::vector<int64> &ids, const char *verb, Act act)
{
	std::map<int, std::vector<int64>> by_partition;
	for (int64 id : ids)
		by_partition[partition_of_id(id)].push_back(id);

	std::set<int64> done;
	for (const auto &[partition, part_ids] : by_partition)
	{
		if (partition < 0 || partition >= queue.partitions)
			continue;
		for (int64 id : act(partition, part_ids))
			done.insert(id);
	}
	require_acted_on(queue, ids, done, verb, "marked as leased");
	return done.size();
}

/* Dead letters go to the partition of `dead_queue` with the fewest unleased items. */
DeadLetterTarget
target_in(const QueueDef &dead_queue)
{
	DeadLetterTarget target;
	target.to_dead_queue = true;
	target.queue_id = dead_queue.id;
	target.partition = partitions_for_produce(dead_queue.id, dead_queue.partitions).front();
	target.expire_timeout = dead_queue.expire_timeout;
	return target;
}

/* Items dead-lettered into a dead queue are ready items there, with its expire deadline. */
void
count_dead_lettered(int32 queue_id, int partition, const DeadLetterTarget &target, uint64 dead)
{
	count_at_commit(queue_id, partition, Counter::dead_lettered, static_cast<int64>(dead));
	if (target.to_dead_queue)
	{
		estimates_add_at_commit(target.queue_id, target.partition, static_cast<int64>(dead));
		item_expiry_at_commit(target.queue_id, target.partition, target.expire_timeout, dead);
	}
}

} // namespace

void
require_acted_on(const QueueDef &queue, const std::vector<int64> &ids, const std::set<int64> &done, const char *verb,
				 const char *state)
{
	if (done.size() == ids.size())
		return;
	for (int64 id : ids)
	{
		if (done.count(id))
			continue;
		int partition = partition_of_id(id);
		bool exists = partition >= 0 && partition < queue.partitions &&
					  !storage_existing_ids(queue.id, partition, {id}).empty();
		if (exists)
			throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
						std::string("item(s) cannot be ") + verb + "; '" + std::to_string(id) + "' is not " + state);
		throw Error(ERRCODE_UNDEFINED_OBJECT, "invalid storage id; '" + std::to_string(id) + "' does not exist");
	}
}

void
item_deadline_at_commit(int32 queue_id, int partition, TimestampTz deadline)
{
	deadline_at_commit(Floor::items, queue_id, partition, deadline);
	wake_worker_at_commit(deadline);
}

void
item_expiry_at_commit(int32 queue_id, int partition, const std::optional<Interval> &expire_timeout, uint64 items)
{
	if (expire_timeout && items > 0)
		/* expire_deadline is now() + expire_timeout: the transaction's start, not this moment. */
		item_deadline_at_commit(queue_id, partition,
								timestamp_plus(GetCurrentTransactionStartTimestamp(), *expire_timeout));
}

std::vector<int64>
produce_items(const QueueDef &queue, ProduceBatch &batch)
{
	batch.expire_timeout = queue.expire_timeout;
	int partition = partitions_for_produce(queue.id, queue.partitions).front();
	std::vector<int64> ids = storage_produce(queue.id, partition, batch);
	count_at_commit(queue.id, partition, Counter::produced, static_cast<int64>(ids.size()));
	if (!batch.enqueue_at)
		estimates_add_at_commit(queue.id, partition, static_cast<int64>(ids.size()));
	/* Deadlines this call created: the worker must wake for them. */
	if (batch.enqueue_at)
		item_deadline_at_commit(queue.id, partition, *batch.enqueue_at);
	item_expiry_at_commit(queue.id, partition, queue.expire_timeout, ids.size());
	return ids;
}

uint64
lease_items(const QueueDef &queue, const std::string &client_id, int32 batch_size, ReturnSetInfo *out)
{
	if (queue.paused)
		return 0; /* paused: nothing to lease; waiters keep waiting */
	/* Due scheduled items are the worker's: it promotes them within milliseconds of enqueue_at. */
	for (int partition : partitions_for_lease(queue.id, queue.partitions))
	{
		TimestampTz earliest_deadline = DT_NOEND;
		uint64 leased =
			storage_lease(queue.id, partition, client_id, batch_size, queue.lease_timeout, out, &earliest_deadline);
		estimates_add_at_commit(queue.id, partition, -static_cast<int64>(leased));
		count_at_commit(queue.id, partition, Counter::leased, static_cast<int64>(leased));
		if (leased > 0)
		{
			deadline_at_commit(Floor::leases, queue.id, partition, earliest_deadline);
			wake_worker_at_commit(earliest_deadline);
			return leased;
		}
	}
	return 0;
}

std::vector<int64>
complete_in_partition(int32 queue_id, int partition, const std::vector<int64> &ids)
{
	std::vector<int64> done = storage_complete(queue_id, partition, ids);
	count_at_commit(queue_id, partition, Counter::completed, static_cast<int64>(done.size()));
	return done;
}

uint64
complete_items(const QueueDef &queue, const std::vector<int64> &ids)
{
	return for_leased_ids(queue, ids, "completed", [&](int partition, const std::vector<int64> &part_ids) {
		return complete_in_partition(queue.id, partition, part_ids);
	});
}

RetryOutcome
retry_in_partition(const QueueDef &queue, int partition, const std::vector<int64> &ids,
				   std::optional<TimestampTz> retry_at, bool dead, const DeadLetterTarget &target,
				   std::optional<std::string> last_error)
{
	RetryOutcome outcome =
		storage_retry(queue.id, partition, ids, retry_at, dead, queue.max_attempts, target, std::move(last_error));
	estimates_add_at_commit(queue.id, partition, static_cast<int64>(outcome.requeued));
	count_at_commit(queue.id, partition, Counter::retried, static_cast<int64>(outcome.requeued + outcome.scheduled));
	count_dead_lettered(queue.id, partition, target, outcome.dead);
	if (retry_at && outcome.scheduled > 0)
		item_deadline_at_commit(queue.id, partition, *retry_at);
	return outcome;
}

uint64
retry_items(const QueueDef &queue, const std::vector<int64> &ids, std::optional<TimestampTz> retry_at, bool dead)
{
	if (ids.empty())
		return 0; /* records nothing: no worker wake-up for a retry of nothing */
	DeadLetterTarget target;
	if (!queue.dead_queue.empty())
		target = target_in(catalog_get(queue.dead_queue, false, "dead queue"));
	return for_leased_ids(queue, ids, "retried", [&](int partition, const std::vector<int64> &part_ids) {
		return retry_in_partition(queue, partition, part_ids, retry_at, dead, target).taken_ids;
	});
}

uint64
extend_leases(const QueueDef &queue, const std::vector<int64> &ids, const Interval &lease_timeout)
{
	if (ids.empty())
		return 0;
	/*
	 * Before the statement, so at most its clock_timestamp() + timeout. A
	 * deadline capped at the item's expire_deadline instead is no earlier
	 * than the old one, which the floor already covers.
	 */
	const TimestampTz new_deadline = timestamp_plus(GetCurrentTimestamp(), lease_timeout);
	wake_worker_at_commit(new_deadline);
	return for_leased_ids(queue, ids, "extended", [&](int partition, const std::vector<int64> &part_ids) {
		deadline_at_commit(Floor::leases, queue.id, partition, new_deadline);
		return storage_extend(queue.id, partition, part_ids, lease_timeout);
	});
}

QueuesByName::QueuesByName(const std::vector<QueueDef> &queues)
{
	for (const QueueDef &queue : queues)
		by_name_[queue.name] = &queue;
}

const QueueDef *
QueuesByName::dead_queue_of(const QueueDef &queue) const
{
	if (queue.dead_queue.empty())
		return nullptr;
	auto found = by_name_.find(queue.dead_queue);
	return found == by_name_.end() ? nullptr : found->second;
}

DeadLetterTarget
dead_letter_target(const QueueDef *dead_queue)
{
	return dead_queue != nullptr ? target_in(*dead_queue) : DeadLetterTarget{};
}

bool
floor_due(Floor kind, const QueueDef &queue, int partition)
{
	if (deadline_floor_read(kind, queue.id, partition) > GetCurrentTimestamp())
		return false;
	deadline_floor_scan_begin(kind, queue.id, partition); /* before the snapshot of the duties and the rescan */
	return true;
}

bool
floors_quiet(const QueueDef &queue, int partition, std::optional<TimestampTz> *next)
{
	TimestampTz floors[kFloorKinds];
	deadline_floors_read(queue.id, partition, floors);
	const TimestampTz now = GetCurrentTimestamp();
	TimestampTz earliest = DT_NOEND;
	for (TimestampTz floor : floors)
	{
		if (floor <= now)
			return false;
		earliest = std::min(earliest, floor);
	}
	*next = earliest == DT_NOEND ? std::nullopt : std::optional<TimestampTz>(earliest);
	return true;
}

std::optional<TimestampTz>
rescan_deadlines(Floor kind, const QueueDef &queue, int partition)
{
	std::optional<TimestampTz> earliest = kind == Floor::leases
											  ? storage_earliest_lease_deadline(queue.id, partition)
											  : storage_next_deadline(queue.id, partition);
	floor_found_at_commit(kind, queue.id, partition, earliest.value_or(DT_NOEND));
	return earliest;
}

std::optional<TimestampTz>
floor_deadline(Floor kind, const QueueDef &queue, int partition)
{
	TimestampTz floor = deadline_floor_read(kind, queue.id, partition);
	return floor == DT_NOEND ? std::nullopt : std::optional<TimestampTz>(floor);
}

RetryOutcome
expire_leases(const QueueDef &queue, int partition, const DeadLetterTarget &target, int32 limit)
{
	RetryOutcome outcome = storage_expire_leases(queue.id, partition, queue.max_attempts, target, limit);
	estimates_add_at_commit(queue.id, partition, static_cast<int64>(outcome.requeued));
	count_at_commit(queue.id, partition, Counter::lease_expired, static_cast<int64>(outcome.taken_ids.size()));
	count_dead_lettered(queue.id, partition, target, outcome.dead);
	return outcome;
}

uint64
expire_items(const QueueDef &queue, int partition, const DeadLetterTarget &target, int32 limit)
{
	uint64 expired = storage_expire_items(queue.id, partition, target, limit);
	count_dead_lettered(queue.id, partition, target, expired);
	count_at_commit(queue.id, partition, Counter::expired, static_cast<int64>(expired));
	return expired;
}

uint64
promote_due(const QueueDef &queue, int partition, int32 limit)
{
	uint64 promoted = storage_promote_due(queue.id, partition, limit);
	estimates_add_at_commit(queue.id, partition, static_cast<int64>(promoted));
	return promoted;
}

std::vector<LeasedItem>
lease_for_delivery(const QueueDef &queue, int partition, const std::string &client_id, int32 batch_size,
				   const Interval &lease_timeout)
{
	std::vector<LeasedItem> items = storage_lease_items(queue.id, partition, client_id, batch_size, lease_timeout);
	for (const LeasedItem &item : items)
		deadline_at_commit(Floor::leases, queue.id, partition, item.lease_deadline);
	estimates_add_at_commit(queue.id, partition, -static_cast<int64>(items.size()));
	count_at_commit(queue.id, partition, Counter::leased, static_cast<int64>(items.size()));
	return items;
}

} // namespace querator
