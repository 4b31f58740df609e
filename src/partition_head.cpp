/* Partition heads in shared memory; see partition_head.hpp for why they are safe. */
#include "partition_head.hpp"
#include "partition_key.hpp"

extern "C" {
#include "storage/spin.h"
}

#include <algorithm>
#include <cstring>
#include <vector>

namespace querator {

namespace {

constexpr int kMaxRegistrations = 32;
constexpr uint64 kEndedRing = 64;

struct Registration
{
	int pid;      /* 0: free */
	int64 floor;  /* the head when it registered: its items are all at or above it */
};

struct HeadEntry
{
	PartitionKey key; /* hash key, must be first */
	slock_t mutex;
	int64 head;
	int64 cursor; /* past the last item a lease claimed: where the next lease starts (a hint) */
	int overflow; /* registrations that found no free slot: the head is frozen while > 0 */
	Registration registrations[kMaxRegistrations];
	/*
	 * The floors of the registrations that ended last: the n-th ended
	 * registration is at [n % kEndedRing]. A lease scan must also respect
	 * the registrations that ended while it ran (head_advance).
	 */
	uint64 ended_count;
	int64 ended_floors[kEndedRing];
};

HTAB *heads = nullptr;
LWLock *heads_lock = nullptr;

HeadEntry *
find_entry(const PartitionKey &key, bool create)
{
	LWLockAcquire(heads_lock, LW_SHARED);
	auto *entry = static_cast<HeadEntry *>(hash_search(heads, &key, HASH_FIND, nullptr));
	LWLockRelease(heads_lock);
	if (entry != nullptr || !create)
		return entry;
	bool created = false;
	LWLockAcquire(heads_lock, LW_EXCLUSIVE);
	entry = static_cast<HeadEntry *>(enter_partition(heads, key, &created));
	if (created)
	{
		SpinLockInit(&entry->mutex);
		entry->head = 0;
		entry->cursor = 0;
		entry->overflow = 0;
		memset(entry->registrations, 0, sizeof(entry->registrations));
		entry->ended_count = 0;
	}
	LWLockRelease(heads_lock);
	return entry;
}

} // namespace

void
head_request_shmem()
{
	request_partition_table("querator_heads", sizeof(HeadEntry));
}

void
head_startup_shmem()
{
	heads = attach_partition_table("querator partition heads", "querator_heads", sizeof(HeadEntry), &heads_lock);
}

HeadView
head_read(int32 queue_id, int partition)
{
	HeadView view;
	if (heads == nullptr)
		return view;
	HeadEntry *entry = find_entry(make_partition_key(queue_id, partition), false);
	if (entry == nullptr)
		return view;
	SpinLockAcquire(&entry->mutex);
	view.head = entry->head;
	view.cursor = std::max(entry->head, entry->cursor);
	view.ended_seen = entry->ended_count;
	view.tracked = true;
	SpinLockRelease(&entry->mutex);
	return view;
}

bool
head_enter(int32 queue_id, int partition, HeadRegistration *registration)
{
	if (heads == nullptr)
		return false;
	HeadEntry *entry = find_entry(make_partition_key(queue_id, partition), true);
	if (entry == nullptr)
		return false; /* table full: this partition has no entry, so its head stays 0 */
	bool overflow = true;
	SpinLockAcquire(&entry->mutex);
	const int64 floor = entry->head;
	for (Registration &r : entry->registrations)
		if (r.pid == 0)
		{
			r.pid = MyProcPid;
			r.floor = floor;
			overflow = false;
			break;
		}
	if (overflow)
		entry->overflow++;
	SpinLockRelease(&entry->mutex);
	*registration = HeadRegistration{queue_id, partition, overflow, floor};
	return true;
}

void
head_leave(const HeadRegistration &registration, bool remember)
{
	if (heads == nullptr)
		return;
	HeadEntry *entry = find_entry(make_partition_key(registration.queue_id, registration.partition), false);
	if (entry == nullptr)
		return;
	SpinLockAcquire(&entry->mutex);
	if (registration.overflow)
		entry->overflow--;
	else
		for (Registration &r : entry->registrations)
			if (r.pid == MyProcPid)
				r.pid = 0;
	if (remember)
	{
		entry->ended_floors[entry->ended_count % kEndedRing] = registration.floor;
		entry->ended_count++;
	}
	SpinLockRelease(&entry->mutex);
}

void
head_advance(int32 queue_id, int partition, const HeadView &before_scan, int64 first_unleased)
{
	if (heads == nullptr || !before_scan.tracked)
		return;
	HeadEntry *entry = find_entry(make_partition_key(queue_id, partition), false);
	if (entry == nullptr)
		return;
	SpinLockAcquire(&entry->mutex);
	int64 limit = first_unleased;
	for (const Registration &r : entry->registrations)
		if (r.pid != 0 && r.pid != MyProcPid)
			limit = std::min(limit, r.floor);
	/*
	 * A registration that ended after the scan's snapshot (so after
	 * before_scan was read) may have committed items the scan did not see,
	 * or released locks of items it skipped: its floor bounds the head
	 * like a live one. If more ended than the ring remembers, stay put.
	 */
	const uint64 ended_since = entry->ended_count - before_scan.ended_seen;
	if (ended_since > kEndedRing)
		limit = entry->head;
	for (uint64 n = before_scan.ended_seen; n < entry->ended_count && ended_since <= kEndedRing; n++)
		limit = std::min(limit, entry->ended_floors[n % kEndedRing]);
	if (entry->overflow == 0 && limit > entry->head)
		entry->head = limit;
	SpinLockRelease(&entry->mutex);
}

void
head_claimed(int32 queue_id, int partition, int64 last_claimed)
{
	if (heads == nullptr)
		return;
	HeadEntry *entry = find_entry(make_partition_key(queue_id, partition), false);
	if (entry == nullptr)
		return;
	SpinLockAcquire(&entry->mutex);
	entry->cursor = std::max(entry->cursor, last_claimed + 1);
	SpinLockRelease(&entry->mutex);
}

void
head_forget(int32 queue_id, int first_partition)
{
	forget_partitions(heads, heads_lock, queue_id, first_partition);
}

void
head_forget_database(Oid database)
{
	forget_database(heads, heads_lock, database);
}

} // namespace querator
