/* Shared-memory estimates of unleased items per partition; see the header for why. */
#include "partition_estimates.hpp"
#include "error.hpp"
#include "partition_head.hpp"
#include "partition_key.hpp"
#include "settings.hpp"
#include "transaction_guard.hpp"
#include "waiters.hpp"
#include "webhook_state.hpp"

extern "C" {
#include "common/pg_prng.h"
#include "port/atomics.h"
#include "utils/syscache.h"
}

#include <algorithm>
#include <numeric>

namespace querator {

namespace {

struct PartitionEntry
{
	PartitionKey key; /* hash key, must be first */
	pg_atomic_uint64 unleased; /* signed value stored as unsigned */
	pg_atomic_uint64 counters[kCounterCount];
};

struct PendingDelta
{
	int32 queue_id;
	int32 partition;
	SubTransactionId subxact; /* dropped if this subtransaction (or its parent) aborts */
	int64 ready_added;        /* new ready items: also dealt to waiters */
	int64 ready_removed;
	int64 counters[kCounterCount];
	bool wake_all;            /* deal every waiter a full batch (resume) */
};

HTAB *estimates_table = nullptr;
LWLock *estimates_lock = nullptr;

/* Deltas of the running transaction; plain storage, applied at commit. */
std::vector<PendingDelta> pending;

/* Entries this transaction created for new partitions: removed again if it aborts. */
struct Reservation
{
	int32 queue_id;
	int32 partition;
	SubTransactionId subxact;
};
std::vector<Reservation> reservations;

/* The entry of a partition, created (zeroed) unless there; nullptr when the table is full. Lock held exclusively. */
PartitionEntry *
enter_entry(const PartitionKey &key, bool *created)
{
	auto *entry = static_cast<PartitionEntry *>(enter_partition(estimates_table, key, created));
	if (*created)
	{
		pg_atomic_init_u64(&entry->unleased, 0);
		for (pg_atomic_uint64 &c : entry->counters)
			pg_atomic_init_u64(&c, 0);
	}
	return entry;
}

/* Removes the entries of the reservations that `drop` selects. */
template <typename Drop>
void
undo_reservations(Drop drop)
{
	auto undone = std::stable_partition(reservations.begin(), reservations.end(),
										[&](const Reservation &r) { return !drop(r); });
	if (undone == reservations.end())
		return;
	LWLockAcquire(estimates_lock, LW_EXCLUSIVE);
	for (auto it = undone; it != reservations.end(); ++it)
	{
		PartitionKey key = make_partition_key(it->queue_id, it->partition);
		hash_search(estimates_table, &key, HASH_REMOVE, nullptr);
	}
	LWLockRelease(estimates_lock);
	reservations.erase(undone, reservations.end());
}

void
apply_pending()
{
	if (estimates_table == nullptr)
		return;
	for (const PendingDelta &d : pending)
	{
		PartitionKey key = make_partition_key(d.queue_id, d.partition);
		LWLockAcquire(estimates_lock, LW_SHARED);
		auto *entry = static_cast<PartitionEntry *>(hash_search(estimates_table, &key, HASH_FIND, nullptr));
		LWLockRelease(estimates_lock);
		if (entry == nullptr)
		{
			bool created = false;
			LWLockAcquire(estimates_lock, LW_EXCLUSIVE);
			entry = enter_entry(key, &created);
			LWLockRelease(estimates_lock);
			if (entry == nullptr)
				continue; /* table full: the estimate simply stays unknown (zero) */
		}
		pg_atomic_fetch_add_u64(&entry->unleased, static_cast<uint64>(d.ready_added - d.ready_removed));
		for (int c = 0; c < kCounterCount; c++)
			if (d.counters[c] != 0)
				pg_atomic_fetch_add_u64(&entry->counters[c], static_cast<uint64>(d.counters[c]));
	}
}

/* New ready items per queue go to the queue's waiting consumers. */
void
deal_to_waiters()
{
	for (size_t i = 0; i < pending.size(); i++)
	{
		if (pending[i].wake_all)
			waiters_deal(pending[i].queue_id, INT32_MAX);
		if (pending[i].ready_added <= 0)
			continue;
		/* Dealt once per queue, from its first entry that made items ready (not its first entry). */
		int64 ready = 0;
		bool first = true;
		for (size_t j = 0; j < pending.size(); j++)
			if (pending[j].queue_id == pending[i].queue_id)
			{
				first = first && (j >= i || pending[j].ready_added <= 0);
				ready += pending[j].ready_added;
			}
		if (first)
		{
			waiters_deal(pending[i].queue_id, ready);
			webhook_note_ready(pending[i].queue_id); /* the worker delivers webhook queues */
		}
	}
}

void
on_subxact_event(SubXactEvent event, SubTransactionId subxact, SubTransactionId, void *)
{
	/* Subtransactions started later have larger ids: those are this one's children. */
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		pending.erase(std::remove_if(pending.begin(), pending.end(),
									 [&](const PendingDelta &d) { return d.subxact >= subxact; }),
					  pending.end());
		undo_reservations([&](const Reservation &r) { return r.subxact >= subxact; });
	}
}

void
on_xact_event(XactEvent event, void *)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			apply_pending();
			deal_to_waiters();
			pending.clear();
			reservations.clear();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			pending.clear();
			undo_reservations([](const Reservation &) { return true; });
			break;
		default:
			break;
	}
}

std::vector<int>
order_partitions(int32 queue_id, int partitions, bool most_first)
{
	std::vector<int64> estimates = estimates_read(queue_id, partitions);
	std::vector<int> order(partitions);
	/* Rotate the start so ties spread over partitions instead of piling on partition 0. */
	int start = static_cast<int>(pg_prng_uint32(&pg_global_prng_state) % static_cast<uint32>(partitions));
	for (int i = 0; i < partitions; i++)
		order[i] = (start + i) % partitions;
	std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
		return most_first ? estimates[a] > estimates[b] : estimates[a] < estimates[b];
	});
	return order;
}

} // namespace

void
estimates_request_shmem()
{
	request_partition_table("querator_estimates", sizeof(PartitionEntry));
}

void
estimates_startup_shmem()
{
	estimates_table = attach_partition_table("querator partition estimates", "querator_estimates",
											 sizeof(PartitionEntry), &estimates_lock);
}

void
estimates_register_xact_callback()
{
	RegisterXactCallback(on_xact_event, nullptr);
	RegisterSubXactCallback(on_subxact_event, nullptr);
}

std::vector<int64>
estimates_read(int32 queue_id, int partitions)
{
	std::vector<int64> result(partitions, 0);
	if (estimates_table == nullptr)
		return result;
	LWLockAcquire(estimates_lock, LW_SHARED);
	for (int p = 0; p < partitions; p++)
	{
		PartitionKey key = make_partition_key(queue_id, p);
		auto *entry = static_cast<PartitionEntry *>(hash_search(estimates_table, &key, HASH_FIND, nullptr));
		if (entry != nullptr)
			result[p] = static_cast<int64>(pg_atomic_read_u64(&entry->unleased));
	}
	LWLockRelease(estimates_lock);
	/* This transaction's own changes count too, so two produces in one transaction spread. */
	for (const PendingDelta &d : pending)
		if (d.queue_id == queue_id && d.partition < partitions)
			result[d.partition] += d.ready_added - d.ready_removed;
	return result;
}

namespace {

/* The pending entry of (queue, partition) in the current subtransaction: a transaction of many calls stays small. */
PendingDelta &
pending_entry(int32 queue_id, int partition)
{
	SubTransactionId subxact = GetCurrentSubTransactionId();
	for (PendingDelta &d : pending)
		if (d.queue_id == queue_id && d.partition == partition && d.subxact == subxact)
			return d;
	PendingDelta d{};
	d.queue_id = queue_id;
	d.partition = partition;
	d.subxact = subxact;
	pending.push_back(d);
	transaction_guard_note("pending partition estimates");
	return pending.back();
}

} // namespace

void
estimates_add_at_commit(int32 queue_id, int partition, int64 delta)
{
	if (delta > 0)
		pending_entry(queue_id, partition).ready_added += delta;
	else if (delta < 0)
		pending_entry(queue_id, partition).ready_removed -= delta;
}

void
wake_waiters_at_commit(int32 queue_id)
{
	pending_entry(queue_id, 0).wake_all = true;
}

void
count_at_commit(int32 queue_id, int partition, Counter counter, int64 n)
{
	if (n != 0)
		pending_entry(queue_id, partition).counters[static_cast<int>(counter)] += n;
}

std::vector<PartitionCounters>
counters_read(int32 queue_id, int partitions)
{
	std::vector<PartitionCounters> result(partitions);
	if (estimates_table == nullptr)
		return result;
	LWLockAcquire(estimates_lock, LW_SHARED);
	for (int p = 0; p < partitions; p++)
	{
		PartitionKey key = make_partition_key(queue_id, p);
		auto *entry = static_cast<PartitionEntry *>(hash_search(estimates_table, &key, HASH_FIND, nullptr));
		if (entry == nullptr)
			continue;
		result[p].unleased = static_cast<int64>(pg_atomic_read_u64(&entry->unleased));
		for (int c = 0; c < kCounterCount; c++)
			result[p].values[c] = static_cast<int64>(pg_atomic_read_u64(&entry->counters[c]));
	}
	LWLockRelease(estimates_lock);
	return result;
}

void
estimates_forget(int32 queue_id, int first_partition)
{
	forget_partitions(estimates_table, estimates_lock, queue_id, first_partition);
}

namespace {

/*
 * Creates the missing entries of partitions [first, last) of a queue if they
 * all fit; false (nothing created) otherwise. Sets *tracked to the entries
 * there were before.
 */
bool
reserve_range(int32 queue_id, int first, int last, long *tracked)
{
	LWLockAcquire(estimates_lock, LW_EXCLUSIVE);
	*tracked = hash_get_num_entries(estimates_table);
	long missing = 0;
	for (int p = first; p < last; p++)
	{
		PartitionKey key = make_partition_key(queue_id, p);
		if (hash_search(estimates_table, &key, HASH_FIND, nullptr) == nullptr)
			missing++;
	}
	bool fits = *tracked + missing <= max_tracked_partitions;
	for (int p = first; fits && p < last; p++)
	{
		bool created = false;
		fits = enter_entry(make_partition_key(queue_id, p), &created) != nullptr;
		if (created)
			reservations.push_back(Reservation{queue_id, p, GetCurrentSubTransactionId()});
	}
	LWLockRelease(estimates_lock);
	return fits;
}

/* Databases dropped since they used querator keep their entries: frees them (the slow path of a full table). */
void
forget_dropped_databases()
{
	std::vector<Oid> databases;
	HASH_SEQ_STATUS status;
	LWLockAcquire(estimates_lock, LW_SHARED);
	hash_seq_init(&status, estimates_table);
	while (auto *entry = static_cast<PartitionEntry *>(hash_seq_search(&status)))
		if (std::find(databases.begin(), databases.end(), entry->key.database) == databases.end())
			databases.push_back(entry->key.database);
	LWLockRelease(estimates_lock);
	for (Oid database : databases)
		if (!pg_guard([&] { return SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(database)); }))
		{
			forget_database(estimates_table, estimates_lock, database);
			head_forget_database(database);
		}
}

} // namespace

void
estimates_reserve(int32 queue_id, int first_partition, int last_partition)
{
	if (estimates_table == nullptr)
		return;
	long tracked = 0;
	if (reserve_range(queue_id, first_partition, last_partition, &tracked))
		return;
	forget_dropped_databases();
	if (reserve_range(queue_id, first_partition, last_partition, &tracked))
		return;
	throw Error(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
				"partitions is invalid; " + std::to_string(last_partition - first_partition) +
					" more partitions do not fit: querator.max_tracked_partitions is " +
					std::to_string(max_tracked_partitions) + " and " + std::to_string(tracked) +
					" are tracked over all databases",
				"Raise querator.max_tracked_partitions (it takes effect at server start), or use fewer partitions.");
}

void
estimates_track(int32 queue_id, int partitions)
{
	static bool warned = false; /* once per process: the worker calls this every round */
	if (estimates_table == nullptr)
		return;
	/* Every round: the usual case (all there) needs only the shared lock. */
	bool all = true;
	LWLockAcquire(estimates_lock, LW_SHARED);
	for (int p = 0; p < partitions && all; p++)
	{
		PartitionKey key = make_partition_key(queue_id, p);
		all = hash_search(estimates_table, &key, HASH_FIND, nullptr) != nullptr;
	}
	LWLockRelease(estimates_lock);
	if (all)
		return;
	LWLockAcquire(estimates_lock, LW_EXCLUSIVE);
	for (int p = 0; p < partitions; p++)
	{
		bool created = false;
		all = enter_entry(make_partition_key(queue_id, p), &created) != nullptr && all;
	}
	LWLockRelease(estimates_lock);
	if (!all && !warned)
	{
		warned = true;
		pg_guard([] {
			ereport(WARNING,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("querator.max_tracked_partitions (%d) is too small for the partitions that exist",
							max_tracked_partitions),
					 errdetail("Partitions without an entry work, but produce and lease no longer steer by "
							   "their item counts and queue_stats shows no counters for them."),
					 errhint("Raise querator.max_tracked_partitions (it takes effect at server start).")));
		});
	}
}

void
estimates_forget_database()
{
	forget_database(estimates_table, estimates_lock, MyDatabaseId);
	head_forget_database(MyDatabaseId);
}

std::vector<int>
partitions_for_produce(int32 queue_id, int partitions)
{
	return order_partitions(queue_id, partitions, false);
}

std::vector<int>
partitions_for_lease(int32 queue_id, int partitions)
{
	return order_partitions(queue_id, partitions, true);
}

} // namespace querator
