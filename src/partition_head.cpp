/* Partition heads in shared memory; see partition_head.hpp for why they are safe. */
#include "partition_head.hpp"
#include "partition_key.hpp"

extern "C" {
#include "port/atomics.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
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
	uint32 segments; /* bit s: it may have inserted into segment s (every segment current when it wrote) */
};

/* The ring of segments (partition_head.hpp), under the entry's mutex. */
struct Ring
{
	int count; /* 0: not known yet */
	int current;
	uint64 inserted;
	TimestampTz since;
	bool attention; /* the worker should look at this partition's segments */
	/*
	 * A writer woke the worker for the current segment's due rotation. Reset
	 * by the rotation only: while every segment holds items the rotation
	 * stays due, and the worker retries on its own every second; a wake-up per
	 * insert kept it running rounds back to back (15% of a core).
	 */
	bool wake_sent;
	SegmentBounds segments[kMaxSegments];
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
	Ring ring;
};

HTAB *heads = nullptr;
LWLock *heads_lock = nullptr;
/* Set when some entry has ring.attention: the worker looks at the entries only then. */
pg_atomic_uint32 *ring_attention = nullptr;

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
		entry->ring.count = 0;
		entry->ring.attention = false;
		entry->ring.wake_sent = false;
	}
	LWLockRelease(heads_lock);
	return entry;
}


/* The ring as a view, with the registrations' segments; caller holds the entry's mutex. */
RingView
ring_view(const HeadEntry *entry)
{
	RingView view;
	view.count = entry->ring.count;
	view.current = entry->ring.current;
	view.inserted = entry->ring.inserted;
	view.since = entry->ring.since;
	view.head = entry->head;
	view.frozen = entry->overflow > 0;
	for (const Registration &r : entry->registrations)
		for (int seg = 0; seg < kMaxSegments && r.pid != 0; seg++)
			if (r.segments & (1u << seg))
				view.writers[seg]++;
	for (int s = 0; s < kMaxSegments; s++)
		view.segments[s] = entry->ring.segments[s];
	return view;
}

void
flag_attention(HeadEntry *entry)
{
	entry->ring.attention = true;
	pg_atomic_write_u32(ring_attention, 1);
}

} // namespace

void
head_request_shmem()
{
	request_partition_table("querator_heads", sizeof(HeadEntry));
	RequestAddinShmemSpace(MAXALIGN(sizeof(pg_atomic_uint32)));
}

void
head_startup_shmem()
{
	heads = attach_partition_table("querator partition heads", "querator_heads", sizeof(HeadEntry), &heads_lock);
	bool found = false;
	ring_attention =
		static_cast<pg_atomic_uint32 *>(ShmemInitStruct("querator segment attention", sizeof(pg_atomic_uint32), &found));
	if (!found)
		pg_atomic_init_u32(ring_attention, 0);
}

RingView
head_ring_read(int32 queue_id, int partition)
{
	HeadEntry *entry = heads ? find_entry(make_partition_key(queue_id, partition), false) : nullptr;
	if (entry == nullptr)
		return RingView{};
	SpinLockAcquire(&entry->mutex);
	RingView view = ring_view(entry);
	SpinLockRelease(&entry->mutex);
	return view;
}

void
head_ring_install(int32 queue_id, int partition, const RingView &derived)
{
	HeadEntry *entry = heads ? find_entry(make_partition_key(queue_id, partition), true) : nullptr;
	if (entry == nullptr)
		return;
	SpinLockAcquire(&entry->mutex);
	if (entry->ring.count == 0)
	{
		entry->ring.count = derived.count;
		entry->ring.current = derived.current;
		entry->ring.inserted = derived.inserted;
		entry->ring.since = derived.since;
		for (int s = 0; s < kMaxSegments; s++)
			entry->ring.segments[s] = derived.segments[s];
		flag_attention(entry); /* segments left over from before a restart may be emptied */
	}
	SpinLockRelease(&entry->mutex);
}

bool
head_ring_change(int32 queue_id, int partition, bool (*change)(RingView *ring, void *arg), void *arg)
{
	HeadEntry *entry = heads ? find_entry(make_partition_key(queue_id, partition), false) : nullptr;
	if (entry == nullptr)
		return false;
	SpinLockAcquire(&entry->mutex);
	RingView view = ring_view(entry);
	const bool changed = view.count > 0 && change(&view, arg);
	if (changed)
	{
		if (view.current != entry->ring.current)
			entry->ring.wake_sent = false; /* a new segment: its own rotation wakes the worker once more */
		entry->ring.current = view.current;
		entry->ring.inserted = view.inserted;
		entry->ring.since = view.since;
		for (int s = 0; s < kMaxSegments; s++)
			entry->ring.segments[s] = view.segments[s];
	}
	SpinLockRelease(&entry->mutex);
	return changed;
}

bool
head_ring_inserted(int32 queue_id, int partition, uint64 count)
{
	HeadEntry *entry = heads ? find_entry(make_partition_key(queue_id, partition), false) : nullptr;
	if (entry == nullptr || count == 0)
		return false;
	const TimestampTz now = GetCurrentTimestamp();
	SpinLockAcquire(&entry->mutex);
	Ring &ring = entry->ring;
	ring.inserted += count;
	/* One wake-up per due rotation: while every segment holds items, the worker retries on its own. */
	const bool wake = ring.count > 0 && !ring.wake_sent &&
					  (ring.inserted >= static_cast<uint64>(segment_items) ||
					   now - ring.since >= static_cast<int64>(segment_interval_ms) * 1000);
	if (wake)
	{
		ring.wake_sent = true;
		flag_attention(entry);
	}
	SpinLockRelease(&entry->mutex);
	return wake;
}

int
head_writer_segment(int32 queue_id, int partition)
{
	HeadEntry *entry = heads ? find_entry(make_partition_key(queue_id, partition), false) : nullptr;
	if (entry == nullptr)
		return -1;
	SpinLockAcquire(&entry->mutex);
	const int current = entry->ring.count > 0 ? entry->ring.current : -1;
	if (current >= 0)
		for (Registration &r : entry->registrations)
			if (r.pid == MyProcPid)
				r.segments |= 1u << current;
	SpinLockRelease(&entry->mutex);
	return current;
}

void
head_ring_attention(int32 queue_id, int partition)
{
	HeadEntry *entry = heads ? find_entry(make_partition_key(queue_id, partition), false) : nullptr;
	if (entry == nullptr)
		return;
	SpinLockAcquire(&entry->mutex);
	flag_attention(entry);
	SpinLockRelease(&entry->mutex);
}

std::vector<std::pair<int32, int32>>
head_ring_take_attention()
{
	std::vector<std::pair<int32, int32>> flagged;
	if (heads == nullptr || pg_atomic_exchange_u32(ring_attention, 0) == 0)
		return flagged;
	bool other_databases = false;
	LWLockAcquire(heads_lock, LW_SHARED);
	HASH_SEQ_STATUS scan;
	hash_seq_init(&scan, heads);
	while (auto *entry = static_cast<HeadEntry *>(hash_seq_search(&scan)))
	{
		SpinLockAcquire(&entry->mutex);
		const bool flagged_here = entry->ring.attention;
		if (flagged_here && entry->key.database == MyDatabaseId)
			entry->ring.attention = false;
		SpinLockRelease(&entry->mutex);
		if (!flagged_here)
			continue;
		if (entry->key.database == MyDatabaseId)
			flagged.emplace_back(entry->key.queue_id, entry->key.partition);
		else
			other_databases = true;
	}
	LWLockRelease(heads_lock);
	if (other_databases)
		pg_atomic_write_u32(ring_attention, 1); /* their workers take them */
	return flagged;
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
	view.ring = ring_view(entry);
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
	const uint32 segments = entry->ring.count > 0 ? 1u << entry->ring.current : 0;
	for (Registration &r : entry->registrations)
		if (r.pid == 0)
		{
			r.pid = MyProcPid;
			r.floor = floor;
			r.segments = segments;
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
	uint32 segments_left = 0;
	if (registration.overflow)
		entry->overflow--;
	else
		for (Registration &r : entry->registrations)
			if (r.pid == MyProcPid)
			{
				segments_left = r.segments;
				r.pid = 0;
			}
	if (remember)
	{
		entry->ended_floors[entry->ended_count % kEndedRing] = registration.floor;
		entry->ended_count++;
	}
	if (entry->ring.count > 0 && (registration.overflow || (segments_left & ~(1u << entry->ring.current)) != 0))
		flag_attention(entry); /* the last writer of a segment that is no longer current may have left */
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
