/* Shared-memory estimates of unleased items per partition; see the header for why. */
#include "partition_estimates.hpp"
#include "catalog_cache.hpp"
#include "error.hpp"
#include "partition_head.hpp"
#include "partition_key.hpp"
#include "settings.hpp"

extern "C" {
#include "common/pg_prng.h"
#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/spin.h"
#include "utils/syscache.h"
}

#include <algorithm>

namespace querator {

namespace {

struct PartitionEntry
{
	PartitionKey key; /* hash key, must be first */
	pg_atomic_uint64 unleased; /* signed value stored as unsigned */
	pg_atomic_uint64 counters[kCounterCount];
	/* The deadline floors (partition_estimates.hpp), by Floor; all under `floor_lock`. */
	slock_t floor_lock;
	TimestampTz floor[kFloorKinds];           /* kFloorUnknown until the worker's first scan */
	TimestampTz lowered_in_scan[kFloorKinds]; /* earliest deadline committed since the worker's scan began */
	int32 due_slot;                           /* its place in the due index */
};

/*
 * The due index: for each entry, its key and the earliest of its floors, in
 * an array without gaps to speak of, so that the worker's pass over it
 * (deadline_floors_due, every round) reads a few contiguous bytes per
 * partition. Walking the hash table itself for that cost 0.6 ms per round
 * with 10,000 partitions (a cache miss per bucket), 40% of the worker's CPU
 * under load. Slots are taken and given back under the table's exclusive
 * lock; `earliest` is written under the entry's floor_lock and read
 * without it (a floor lowered just after the read wakes the worker by its
 * commit, docs/design.md "Sleeping").
 */
struct DueSlot
{
	PartitionKey key; /* database InvalidOid: free */
	pg_atomic_uint64 earliest; /* a TimestampTz */
};
struct DueIndex
{
	int32 used;       /* slots [0, used) have been taken at some time */
	int32 free_count; /* free_slots[0, free_count) are free below `used` */
	/* then DueSlot slots[max_tracked_partitions], int32 free_slots[max_tracked_partitions] */
};

HTAB *estimates_table = nullptr;
LWLock *estimates_lock = nullptr;
DueIndex *due_index = nullptr;

Size
due_index_size()
{
	return add_size(sizeof(DueIndex), mul_size(max_tracked_partitions, sizeof(DueSlot) + sizeof(int32)));
}

DueSlot *
due_slots()
{
	return reinterpret_cast<DueSlot *>(due_index + 1);
}

int32 *
free_due_slots()
{
	return reinterpret_cast<int32 *>(due_slots() + max_tracked_partitions);
}

/*
 * Called with the entry's floor_lock held, after any change of its floors.
 * An unknown floor is published as kFloorUnknown when a deadline of its kind
 * committed since the worker last began a scan there (a lease taken after a
 * restart), else as kFloorUnknownQuiet: see DuePartition.
 */
void
publish_earliest(PartitionEntry &entry)
{
	TimestampTz earliest = DT_NOEND;
	bool unknown = false, urgent = false;
	for (int k = 0; k < kFloorKinds; k++)
	{
		earliest = std::min(earliest, entry.floor[k]);
		if (entry.floor[k] == kFloorUnknown)
		{
			unknown = true;
			urgent = urgent || entry.lowered_in_scan[k] != DT_NOEND;
		}
	}
	if (unknown)
		earliest = urgent ? kFloorUnknown : kFloorUnknownQuiet;
	pg_atomic_write_u64(&due_slots()[entry.due_slot].earliest, static_cast<uint64>(earliest));
}

/* Gives an entry's due slot back; the table's lock held exclusively, just before the entry goes. */
void
release_due_slot(void *removed)
{
	auto *entry = static_cast<PartitionEntry *>(removed);
	due_slots()[entry->due_slot].key.database = InvalidOid;
	free_due_slots()[due_index->free_count++] = entry->due_slot;
}

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
		SpinLockInit(&entry->floor_lock);
		for (TimestampTz &floor : entry->floor)
			floor = kFloorUnknown;
		for (TimestampTz &lowered : entry->lowered_in_scan)
			lowered = DT_NOEND;
		/* A slot is always there: the table holds at most max_tracked_partitions entries. */
		entry->due_slot = due_index->free_count > 0 ? free_due_slots()[--due_index->free_count] : due_index->used++;
		due_slots()[entry->due_slot].key = key;
		publish_earliest(*entry);
	}
	return entry;
}

/* The entry of a partition, or nullptr. */
PartitionEntry *
find_entry(int32 queue_id, int partition)
{
	if (estimates_table == nullptr)
		return nullptr;
	PartitionKey key = make_partition_key(queue_id, partition);
	LWLockAcquire(estimates_lock, LW_SHARED);
	auto *entry = static_cast<PartitionEntry *>(hash_search(estimates_table, &key, HASH_FIND, nullptr));
	LWLockRelease(estimates_lock);
	return entry;
}

} // namespace

void
estimates_request_shmem()
{
	request_partition_table("querator_estimates", sizeof(PartitionEntry));
	RequestAddinShmemSpace(due_index_size());
}

void
estimates_startup_shmem()
{
	estimates_table = attach_partition_table("querator partition estimates", "querator_estimates",
											 sizeof(PartitionEntry), &estimates_lock);
	bool found = false;
	due_index = static_cast<DueIndex *>(ShmemInitStruct("querator due index", due_index_size(), &found));
	if (!found)
	{
		due_index->used = 0;
		due_index->free_count = 0;
		for (int i = 0; i < max_tracked_partitions; i++)
		{
			due_slots()[i].key.database = InvalidOid;
			pg_atomic_init_u64(&due_slots()[i].earliest, 0);
		}
	}
}

std::vector<int64>
estimates_read_committed(int32 queue_id, int partitions)
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
	return result;
}

void
estimates_apply(int32 queue_id, int partition, int64 unleased_delta, const int64 (&counters)[kCounterCount])
{
	if (estimates_table == nullptr)
		return;
	PartitionEntry *entry = find_entry(queue_id, partition);
	if (entry == nullptr)
	{
		bool created = false;
		LWLockAcquire(estimates_lock, LW_EXCLUSIVE);
		entry = enter_entry(make_partition_key(queue_id, partition), &created);
		LWLockRelease(estimates_lock);
		if (entry == nullptr)
			return; /* table full: the estimate simply stays unknown (zero) */
	}
	pg_atomic_fetch_add_u64(&entry->unleased, static_cast<uint64>(unleased_delta));
	for (int c = 0; c < kCounterCount; c++)
		if (counters[c] != 0)
			pg_atomic_fetch_add_u64(&entry->counters[c], static_cast<uint64>(counters[c]));
}

namespace {

/*
 * Runs `change` on a partition's floors under its spinlock, with the table's
 * lock held shared so that the entry cannot be removed (a queue deleted or
 * shrunk) and reused for another partition meanwhile. False when the
 * partition has no entry.
 */
template <typename Change>
bool
with_floors(int32 queue_id, int partition, Change change)
{
	if (estimates_table == nullptr)
		return false;
	PartitionKey key = make_partition_key(queue_id, partition);
	LWLockAcquire(estimates_lock, LW_SHARED);
	auto *entry = static_cast<PartitionEntry *>(hash_search(estimates_table, &key, HASH_FIND, nullptr));
	if (entry != nullptr)
	{
		SpinLockAcquire(&entry->floor_lock);
		change(*entry);
		SpinLockRelease(&entry->floor_lock);
	}
	LWLockRelease(estimates_lock);
	return entry != nullptr;
}

} // namespace

void
deadline_floor_lower(Floor kind, int32 queue_id, int partition, TimestampTz deadline)
{
	const int k = static_cast<int>(kind);
	/* No entry: untracked, the worker scans it every round. */
	(void) with_floors(queue_id, partition, [&](PartitionEntry &entry) {
		entry.floor[k] = std::min(entry.floor[k], deadline);
		entry.lowered_in_scan[k] = std::min(entry.lowered_in_scan[k], deadline);
		publish_earliest(entry);
	});
}

TimestampTz
deadline_floor_read(Floor kind, int32 queue_id, int partition)
{
	TimestampTz floor = kFloorUnknown;
	(void) with_floors(queue_id, partition,
					   [&](PartitionEntry &entry) { floor = entry.floor[static_cast<int>(kind)]; });
	return floor;
}

void
deadline_floors_read(int32 queue_id, int partition, TimestampTz (&floors)[kFloorKinds])
{
	std::fill(std::begin(floors), std::end(floors), kFloorUnknown);
	(void) with_floors(queue_id, partition, [&](PartitionEntry &entry) {
		std::copy(std::begin(entry.floor), std::end(entry.floor), std::begin(floors));
	});
}

std::vector<DuePartition>
deadline_floors_due(TimestampTz now, TimestampTz *later)
{
	*later = DT_NOEND;
	std::vector<DuePartition> due;
	if (estimates_table == nullptr)
		return due;
	due.reserve(64); /* allocation under the lock below only when many are due */
	/* Shared: no slot is taken or given back meanwhile. */
	LWLockAcquire(estimates_lock, LW_SHARED);
	DueSlot *slots = due_slots();
	for (int32 i = 0; i < due_index->used; i++)
	{
		if (slots[i].key.database != MyDatabaseId)
			continue;
		const auto earliest = static_cast<TimestampTz>(pg_atomic_read_u64(&slots[i].earliest));
		if (earliest <= now)
			due.push_back(DuePartition{slots[i].key.queue_id, slots[i].key.partition, earliest});
		else
			*later = std::min(*later, earliest);
	}
	LWLockRelease(estimates_lock);
	/* Earliest first; the quiet unknown ones last (DuePartition). */
	std::sort(due.begin(), due.end(), [](const DuePartition &a, const DuePartition &b) {
		const bool a_quiet = a.floor == kFloorUnknownQuiet, b_quiet = b.floor == kFloorUnknownQuiet;
		return a_quiet != b_quiet ? b_quiet : a.floor < b.floor;
	});
	return due;
}

void
deadline_floor_scan_begin(Floor kind, int32 queue_id, int partition)
{
	(void) with_floors(queue_id, partition,
					   [&](PartitionEntry &entry) {
						   entry.lowered_in_scan[static_cast<int>(kind)] = DT_NOEND;
						   publish_earliest(entry);
					   });
}

void
deadline_floor_settle(Floor kind, int32 queue_id, int partition, TimestampTz earliest)
{
	const int k = static_cast<int>(kind);
	(void) with_floors(queue_id, partition,
					   [&](PartitionEntry &entry) {
						   entry.floor[k] = std::min(earliest, entry.lowered_in_scan[k]);
						   publish_earliest(entry);
					   });
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
	forget_partitions(estimates_table, estimates_lock, queue_id, first_partition, release_due_slot);
}

namespace {

/*
 * Creates the missing entries of partitions [first, last) of a queue if they
 * all fit; false (nothing created) otherwise. Appends the partitions it
 * created to *created (room reserved by the caller: no allocation under the
 * lock). Sets *tracked to the entries there were before.
 */
bool
create_range(int32 queue_id, int first, int last, std::vector<int> *created, long *tracked)
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
		bool made = false;
		PartitionEntry *entry = enter_entry(make_partition_key(queue_id, p), &made);
		fits = entry != nullptr;
		if (made)
		{
			/*
			 * A new partition's tables are empty: no deadline until a commit
			 * sets one and lowers its floor, so the worker need not scan it
			 * (1,000 new queues otherwise cost the next round 1,000 scans).
			 */
			for (TimestampTz &floor : entry->floor)
				floor = DT_NOEND;
			publish_earliest(*entry); /* no other process has the new entry yet: no floor_lock needed */
			created->push_back(p);
		}
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
			forget_database(estimates_table, estimates_lock, database, release_due_slot);
			head_forget_database(database);
		}
}

} // namespace

void
estimates_create(int32 queue_id, int first_partition, int last_partition, std::vector<int> *created)
{
	if (estimates_table == nullptr)
		return;
	/* Both attempts together create each partition at most once. */
	created->reserve(created->size() + std::max(0, last_partition - first_partition));
	long tracked = 0;
	if (create_range(queue_id, first_partition, last_partition, created, &tracked))
		return;
	forget_dropped_databases();
	if (create_range(queue_id, first_partition, last_partition, created, &tracked))
		return;
	throw Error(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
				"partitions is invalid; " + std::to_string(last_partition - first_partition) +
					" more partitions do not fit: querator.max_tracked_partitions is " +
					std::to_string(max_tracked_partitions) + " and " + std::to_string(tracked) +
					" are tracked over all databases",
				"Raise querator.max_tracked_partitions (it takes effect at server start), or use fewer partitions.");
}

void
estimates_remove(int32 queue_id, int partition)
{
	if (estimates_table == nullptr)
		return;
	PartitionKey key = make_partition_key(queue_id, partition);
	LWLockAcquire(estimates_lock, LW_EXCLUSIVE);
	if (void *entry = hash_search(estimates_table, &key, HASH_FIND, nullptr))
	{
		release_due_slot(entry);
		hash_search(estimates_table, &key, HASH_REMOVE, nullptr);
	}
	LWLockRelease(estimates_lock);
}

bool
estimates_track(int32 queue_id, int partitions, uint64 catalog_version_read)
{
	static bool warned = false; /* once per process: the worker calls this at every catalog read */
	if (estimates_table == nullptr)
		return false;
	/* The usual case (all there) needs only the shared lock. */
	bool all = true;
	LWLockAcquire(estimates_lock, LW_SHARED);
	for (int p = 0; p < partitions && all; p++)
	{
		PartitionKey key = make_partition_key(queue_id, p);
		all = hash_search(estimates_table, &key, HASH_FIND, nullptr) != nullptr;
	}
	LWLockRelease(estimates_lock);
	if (all)
		return true;
	LWLockAcquire(estimates_lock, LW_EXCLUSIVE);
	/* Under the lock that forgetting takes: a change that commits after this check forgets after us. */
	if (catalog_version() != catalog_version_read)
	{
		LWLockRelease(estimates_lock);
		return false; /* the next round reads the new catalog */
	}
	all = true; /* whether every partition has an entry now */
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
	return all;
}

void
estimates_forget_database()
{
	forget_database(estimates_table, estimates_lock, MyDatabaseId, release_due_slot);
	head_forget_database(MyDatabaseId);
}

std::vector<int>
partitions_by_estimate(const std::vector<int64> &estimates, bool most_first)
{
	const int partitions = static_cast<int>(estimates.size());
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

} // namespace querator
