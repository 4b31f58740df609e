/* Operations on queues: definitions, clear, redrive, the extension's own DDL; see queue_ops.hpp. */
#include "queue_ops.hpp"
#include "commit_effects.hpp"
#include "access.hpp"
#include "partition_estimates.hpp"
#include "partition_head.hpp"
#include "storage_admin.hpp"
#include "waiters.hpp"

#include <map>

namespace querator {

namespace {

/*
 * Before every write of the catalog: this transaction bypasses the cached
 * definitions now and every backend's go at commit; with `webhooks` the
 * worker re-reads its webhook queues after commit (a new or changed webhook
 * is delivered without delay, a resumed queue is considered again).
 */
void
catalog_changing(bool webhooks)
{
	catalog_cache_changed();
	if (webhooks)
		webhook_catalog_changed_at_commit();
}

} // namespace

std::optional<int32>
create_queue(const QueueDef &def)
{
	/*
	 * Only a webhook queue wakes the worker: for any other the re-read of
	 * every queue it triggers cost the worker 3.8 ms per queues_create with
	 * 1,000 queues, quadratic over a batch of creates.
	 */
	catalog_changing(!def.webhook.url.empty());
	std::optional<int32> id = catalog_insert(def);
	if (!id)
		return std::nullopt;
	estimates_reserve(*id, 0, def.partitions);
	storage_create_queue(*id, def.partitions);
	return id;
}

void
update_queue(const QueueDef &def, const QueueDef &stored)
{
	const int old_partitions = stored.partitions;
	if (def.partitions > old_partitions)
	{
		estimates_reserve(def.id, old_partitions, def.partitions);
		storage_create_partitions(def.id, old_partitions, def.partitions);
	}
	else if (def.partitions < old_partitions)
	{
		waiters_end(def.id, WaitEnd::queue_resized); /* their locks would hold up the drop */
		storage_lock_for_drop(def.id, def.partitions, old_partitions, false);
		if (storage_partitions_hold_items(def.id, def.partitions, old_partitions))
			throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
						"partitions is invalid; cannot shrink '" + stored.name + "' from " +
							std::to_string(old_partitions) + " to " + std::to_string(def.partitions) +
							" partitions while the removed partitions hold items",
						"Drain or clear the items of the removed partitions first.");
		storage_drop_partitions(def.id, def.partitions, old_partitions);
		estimates_forget_at_commit(def.id, def.partitions);
		head_forget(def.id, def.partitions);
	}
	catalog_changing(true);
	catalog_update(def);
}

std::vector<QueueDef>
delete_queue(const QueueDef &def, bool force, bool has_feeders)
{
	waiters_end(def.id, WaitEnd::queue_deleted); /* their locks would hold up the drop */
	storage_lock_for_drop(def.id, 0, def.partitions, true);
	if (!force && (storage_partitions_hold_items(def.id, 0, def.partitions) || storage_has_dead_letters(def.id)))
		throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					"queue is not empty; '" + def.name + "' still holds items or dead letters",
					"Use queues_delete(queue_name, force => true) to delete it with its items.");
	catalog_changing(false);
	std::vector<QueueDef> detached;
	if (has_feeders)
		detached = catalog_clear_dead_queue(def.name);
	storage_drop_queue(def.id, def.partitions);
	catalog_delete(def.id);
	estimates_forget_at_commit(def.id, 0);
	head_forget(def.id, 0);
	return detached;
}

void
set_queue_paused(const QueueDef &def, bool paused)
{
	QueueDef changed = def;
	changed.paused = paused;
	catalog_changing(true);
	catalog_update(changed);
	if (!paused)
		wake_waiters_at_commit(def.id); /* every waiter of the queue gets to try a lease */
}

uint64
clear_queue(const QueueDef &queue, bool ready, bool scheduled, bool destructive)
{
	uint64 total = 0;
	for (int p = 0; p < queue.partitions; p++)
	{
		ClearCounts c = storage_clear_partition(queue.id, p, ready, scheduled, destructive);
		estimates_add_at_commit(queue.id, p, -static_cast<int64>(c.ready));
		total += c.ready + c.leased + c.scheduled;
	}
	return total;
}

uint64
delete_items(const QueueDef &queue, const std::vector<int64> &ids)
{
	std::map<int, std::vector<int64>> by_partition;
	for (int64 id : ids)
		if (int p = partition_of_id(id); p >= 0 && p < queue.partitions)
			by_partition[p].push_back(id);
	std::set<int64> done;
	for (const auto &[partition, partition_ids] : by_partition)
	{
		DeletedItems deleted = storage_delete_items(queue.id, partition, partition_ids);
		estimates_add_at_commit(queue.id, partition, -static_cast<int64>(deleted.ready));
		done.insert(deleted.ids.begin(), deleted.ids.end());
	}
	require_acted_on(queue, ids, done, "deleted", "an item");
	return done.size();
}

RedriveOutcome
redrive_queue(const QueueDef &queue, const std::optional<std::vector<int64>> &ids,
			  std::optional<TimestampTz> dead_before)
{
	RedriveOutcome outcome;
	if (ids && ids->empty())
		return outcome; /* a list of no ids (NULL is all) */
	if (ids)
	{
		std::vector<int64> found = storage_dead_letter_ids(queue.id, queue.partitions, *ids);
		require_acted_on(queue, *ids, std::set<int64>(found.begin(), found.end()), "redriven", "a dead letter");
	}
	/* The queue's own dead letters, back to the partition they died in. */
	for (int p = 0; p < queue.partitions; p++)
	{
		uint64 n = storage_redrive_dead(queue.id, p, queue.partitions, ids, dead_before, queue.expire_timeout);
		estimates_add_at_commit(queue.id, p, static_cast<int64>(n));
		item_expiry_at_commit(queue.id, p, queue.expire_timeout, n);
		outcome.moved += n;
	}
	/* A dead queue: its items go back to the queue each came from (admin here grants nothing there). */
	for (int p = 0; p < queue.partitions; p++)
		for (int32 source_id : storage_source_queues(queue.id, p))
		{
			std::optional<QueueDef> source = catalog_find_by_id(source_id);
			if (!source)
				continue; /* that queue was deleted: the items stay here */
			if (!holds_privilege(*source, Privilege::produce))
			{
				outcome.kept_for_privilege = true;
				continue;
			}
			int target = partitions_for_produce(source->id, source->partitions).front();
			uint64 n = storage_redrive_to_source(queue.id, p, source->id, target, ids, dead_before,
												 source->expire_timeout);
			estimates_add_at_commit(queue.id, p, -static_cast<int64>(n));
			estimates_add_at_commit(source->id, target, static_cast<int64>(n));
			item_expiry_at_commit(source->id, target, source->expire_timeout, n);
			outcome.moved += n;
		}
	return outcome;
}

void
extension_created()
{
	request_service_at_commit();
	catalog_cache_changed(); /* a new catalog: no definition cached before it is valid */
}

void
extension_updating()
{
	/* The upgrade script may rewrite queue definitions: every backend reloads them once it commits. */
	catalog_cache_changed();
}

void
extension_drop_starting()
{
	/* End this database's long-poll waits before the drop queues behind the locks they hold. */
	waiters_end(kAllQueues, WaitEnd::extension_dropped);
}

void
extension_dropping()
{
	wake_worker_at_commit(GetCurrentTimestamp()); /* the worker leaves at once, not when it next wakes */
	catalog_cache_changed();                       /* every cached queue is gone with it */
}

} // namespace querator
