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

/* Removes this database's entries of a queue from `first_partition` on (delete, shrink). */
inline void
forget_partitions(HTAB *table, LWLock *lock, int32 queue_id, int first_partition)
{
	if (table == nullptr)
		return;
	HASH_SEQ_STATUS status;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	hash_seq_init(&status, table);
	while (auto *key = static_cast<PartitionKey *>(hash_seq_search(&status)))
		if (key->database == MyDatabaseId && key->queue_id == queue_id && key->partition >= first_partition)
			hash_search(table, key, HASH_REMOVE, nullptr);
	LWLockRelease(lock);
}

} // namespace querator
