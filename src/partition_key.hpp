/*
 * The key of the per-partition shared hash tables (estimates, heads): one
 * partition of one queue in one database. Entries start with it.
 */
#pragma once

#include "pg_prelude.hpp"
#include "settings.hpp"

#include <cstring>

namespace querator {

struct PartitionKey
{
	Oid database;
	int32 queue_id;
	int32 partition;
};

inline PartitionKey
make_partition_key(int32 queue_id, int partition)
{
	PartitionKey key;
	std::memset(&key, 0, sizeof(key));
	key.database = MyDatabaseId;
	key.queue_id = queue_id;
	key.partition = partition;
	return key;
}

/* At preload: the shared memory and the lock of a per-partition table with entries of `entry_size`. */
inline void
request_partition_table(const char *tranche, Size entry_size)
{
	RequestAddinShmemSpace(hash_estimate_size(max_tracked_partitions, entry_size));
	RequestNamedLWLockTranche(tranche, 1);
}

/* At shared memory startup: attaches to (or creates) that table; sets *lock to its lock. */
inline HTAB *
attach_partition_table(const char *name, const char *tranche, Size entry_size, LWLock **lock)
{
	HASHCTL info;
	std::memset(&info, 0, sizeof(info));
	info.keysize = sizeof(PartitionKey);
	info.entrysize = entry_size;
	*lock = &(GetNamedLWLockTranche(tranche))->lock;
	return ShmemInitHash(name, max_tracked_partitions, max_tracked_partitions, &info, HASH_ELEM | HASH_BLOBS);
}

/*
 * The entry of `key`, created (*created = true) unless there; nullptr when
 * the table already holds querator.max_tracked_partitions entries (a shared
 * hash table would grow past its size into spare shared memory, so the
 * limit is checked here to keep it exact). Caller holds the lock exclusively.
 */
inline void *
enter_partition(HTAB *table, const PartitionKey &key, bool *created)
{
	*created = false;
	void *entry = hash_search(table, &key, HASH_FIND, nullptr);
	if (entry != nullptr || hash_get_num_entries(table) >= max_tracked_partitions)
		return entry;
	bool found = false;
	entry = hash_search(table, &key, HASH_ENTER_NULL, &found);
	*created = entry != nullptr && !found;
	return entry;
}

/* What a table does with an entry just before it is removed (under the exclusive lock); by default nothing. */
inline void
keep_nothing(void *)
{
}

/* Removes the entries whose key satisfies `pred`, each handed to `on_remove` first. */
template <typename Pred>
void
forget_where(HTAB *table, LWLock *lock, Pred pred, void (*on_remove)(void *entry))
{
	if (table == nullptr)
		return;
	HASH_SEQ_STATUS status;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	hash_seq_init(&status, table);
	while (auto *key = static_cast<PartitionKey *>(hash_seq_search(&status)))
		if (pred(*key))
		{
			on_remove(key);
			hash_search(table, key, HASH_REMOVE, nullptr);
		}
	LWLockRelease(lock);
}

/* Removes this database's entries of a queue from `first_partition` on (delete, shrink). */
inline void
forget_partitions(HTAB *table, LWLock *lock, int32 queue_id, int first_partition,
				  void (*on_remove)(void *entry) = keep_nothing)
{
	forget_where(
		table, lock,
		[&](const PartitionKey &key) {
			return key.database == MyDatabaseId && key.queue_id == queue_id && key.partition >= first_partition;
		},
		on_remove);
}

/* Removes every entry of a database (dropped, or DROP EXTENSION ran in it). */
inline void
forget_database(HTAB *table, LWLock *lock, Oid database, void (*on_remove)(void *entry) = keep_nothing)
{
	forget_where(table, lock, [&](const PartitionKey &key) { return key.database == database; }, on_remove);
}

} // namespace querator
