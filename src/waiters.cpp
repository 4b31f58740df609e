/* Waiting consumers in shared memory; see waiters.hpp. */
#include "waiters.hpp"
#include "error.hpp"
#include "settings.hpp"

extern "C" {
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/proc.h"
}

#include <algorithm>
#include <cstring>

namespace querator {

namespace {

struct WaiterSlot
{
	bool used;
	Oid database;
	int32 queue_id;
	uint64 arrival;       /* order of arrival, for fairness */
	int32 batch_size;
	int32 allowance;      /* items dealt to it, not yet leased */
	WaitEnd ended;        /* set by DDL that needs the locks this wait holds */
	Latch *latch;
	char client_id[kMaxTextFieldLength + 1];
};

/* A queue (or a database's every queue) whose deletion is in progress: no new waits on it. */
struct EndMarker
{
	WaitEnd why; /* none: free */
	Oid database;
	int32 queue_id; /* or kAllQueues */
	int pid;        /* the backend whose transaction deletes it */
};

/* More deletions in progress at once than this still end the current waits, but do not refuse new ones. */
constexpr int kMaxEndMarkers = 64;

struct WaiterTable
{
	uint64 next_arrival;
	pg_atomic_uint32 active; /* used slots: lets committers skip the table when nobody waits */
	EndMarker markers[kMaxEndMarkers];
	int size;
	WaiterSlot slots[FLEXIBLE_ARRAY_MEMBER];
};

WaiterTable *table = nullptr;
LWLock *table_lock = nullptr;
int my_slot = -1;
bool placed_markers = false; /* this backend's transaction placed end markers */

int
table_size()
{
	return MaxBackends;
}

Size
table_bytes()
{
	return add_size(offsetof(WaiterTable, slots), mul_size(sizeof(WaiterSlot), table_size()));
}

/* At most this many waiters of one queue are dealt items at a time (the rest wait for the next deal). */
constexpr int kMaxDealtWaiters = 1024;

/*
 * The latches of the waiters a deal gave items to. They are set after the
 * table lock is released: a waiter woken while the dealer still holds it
 * would run straight into the lock (its first step is to take its allowance)
 * and sleep again until the dealer is scheduled to release it, which on a
 * busy machine cost the wake-up milliseconds (p99 3 ms).
 */
struct Woken
{
	Latch *latches[kMaxDealtWaiters];
	int count = 0;

	void
	set_all() const
	{
		for (int k = 0; k < count; k++)
			SetLatch(latches[k]);
	}
};

/* Deals `count` items round-robin to the waiters of a queue, in arrival order; collects whom to wake. */
void
deal(int32 queue_id, int64 count, Woken *woken)
{
	int order[kMaxDealtWaiters];
	int n = 0;
	for (int i = 0; i < table->size && n < kMaxDealtWaiters; i++)
	{
		const WaiterSlot &s = table->slots[i];
		if (s.used && s.database == MyDatabaseId && s.queue_id == queue_id)
			order[n++] = i;
	}
	std::sort(order, order + n, [](int a, int b) { return table->slots[a].arrival < table->slots[b].arrival; });
	bool dealt = true;
	while (count > 0 && dealt)
	{
		dealt = false;
		for (int k = 0; k < n && count > 0; k++)
		{
			WaiterSlot &s = table->slots[order[k]];
			if (s.allowance < s.batch_size)
			{
				s.allowance++;
				count--;
				dealt = true;
			}
		}
	}
	for (int k = 0; k < n; k++)
		if (table->slots[order[k]].allowance > 0)
			woken->latches[woken->count++] = table->slots[order[k]].latch;
}

bool
covers(const EndMarker &m, int32 queue_id)
{
	return m.why != WaitEnd::none && m.database == MyDatabaseId && (m.queue_id == kAllQueues || m.queue_id == queue_id);
}

/* "<what happens>; the wait on '<queue>' ends" and a hint, for a wait ended by DDL. */
Error
ended_error(WaitEnd why, const std::string &queue_name)
{
	const char *what = "extension is being dropped";
	const char *hint = "Another transaction drops the querator extension in this database.";
	if (why == WaitEnd::queue_deleted)
	{
		what = "queue is being deleted";
		hint = "Another transaction deletes the queue; it is gone once that transaction commits.";
	}
	else if (why == WaitEnd::queue_resized)
	{
		what = "queue is being resized";
		hint = "Another transaction removes partitions of the queue; wait again once it ends.";
	}
	return Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				 std::string(what) + "; the wait on '" + queue_name + "' ends", hint);
}

} // namespace

void
waiters_request_shmem()
{
	RequestAddinShmemSpace(MAXALIGN(table_bytes()));
	RequestNamedLWLockTranche("querator_waiters", 1);
}

void
waiters_startup_shmem()
{
	bool found = false;
	table = static_cast<WaiterTable *>(ShmemInitStruct("querator waiters", table_bytes(), &found));
	table_lock = &(GetNamedLWLockTranche("querator_waiters"))->lock;
	if (!found)
	{
		memset(table, 0, table_bytes());
		pg_atomic_init_u32(&table->active, 0);
		table->size = table_size();
	}
}

void
waiter_register(int32 queue_id, const std::string &queue_name, const std::string &client_id, int32 batch_size)
{
	bool duplicate = false;
	bool full = false;
	WaitEnd ended = WaitEnd::none;
	LWLockAcquire(table_lock, LW_EXCLUSIVE);
	/* Its deletion is in progress: waiting would only hold up the DDL (and find nothing). */
	for (const EndMarker &m : table->markers)
		if (covers(m, queue_id))
			ended = m.why;
	if (ended != WaitEnd::none)
	{
		LWLockRelease(table_lock);
		throw ended_error(ended, queue_name);
	}
	int free_slot = -1;
	for (int i = 0; i < table->size; i++)
	{
		WaiterSlot &s = table->slots[i];
		if (!s.used)
		{
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (s.database == MyDatabaseId && s.queue_id == queue_id && client_id == s.client_id)
			duplicate = true;
	}
	if (!duplicate && free_slot >= 0)
	{
		WaiterSlot &s = table->slots[free_slot];
		s.used = true;
		s.database = MyDatabaseId;
		s.queue_id = queue_id;
		s.arrival = table->next_arrival++;
		s.batch_size = batch_size;
		s.allowance = 0;
		s.ended = WaitEnd::none;
		s.latch = MyLatch;
		strlcpy(s.client_id, client_id.c_str(), sizeof(s.client_id));
		pg_atomic_fetch_add_u32(&table->active, 1);
		my_slot = free_slot;
	}
	full = free_slot < 0;
	LWLockRelease(table_lock);
	if (duplicate)
		throw Error(ERRCODE_OBJECT_IN_USE,
					"duplicate client id; a client cannot make multiple leased requests to the same queue");
	if (full)
		throw Error(ERRCODE_TOO_MANY_CONNECTIONS, "too many waiting leases; no waiter slot is free");
}

int32
waiter_take_allowance()
{
	if (my_slot < 0)
		return 0;
	LWLockAcquire(table_lock, LW_EXCLUSIVE);
	int32 allowance = table->slots[my_slot].allowance;
	table->slots[my_slot].allowance = 0;
	LWLockRelease(table_lock);
	return allowance;
}

void
waiter_unregister()
{
	if (my_slot < 0 || table == nullptr)
		return;
	LWLockAcquire(table_lock, LW_EXCLUSIVE);
	WaiterSlot &s = table->slots[my_slot];
	int32 leftover = s.allowance;
	int32 queue_id = s.queue_id;
	s.used = false;
	s.allowance = 0;
	pg_atomic_fetch_sub_u32(&table->active, 1);
	/* Items dealt to us but not taken go to the next waiters. */
	Woken woken;
	if (leftover > 0)
		deal(queue_id, leftover, &woken);
	LWLockRelease(table_lock);
	my_slot = -1;
	woken.set_all();
}

void
waiters_deal(int32 queue_id, int64 count)
{
	if (table == nullptr || count <= 0 || pg_atomic_read_u32(&table->active) == 0)
		return;
	Woken woken;
	LWLockAcquire(table_lock, LW_EXCLUSIVE);
	deal(queue_id, count, &woken);
	LWLockRelease(table_lock);
	woken.set_all();
}

void
waiters_end(int32 queue_id, WaitEnd why)
{
	if (table == nullptr)
		return;
	LWLockAcquire(table_lock, LW_EXCLUSIVE);
	for (EndMarker &m : table->markers)
		if (m.why == WaitEnd::none)
		{
			m = EndMarker{why, MyDatabaseId, queue_id, MyProcPid};
			placed_markers = true;
			break;
		}
	for (int i = 0; i < table->size; i++)
	{
		WaiterSlot &s = table->slots[i];
		if (s.used && s.database == MyDatabaseId && (queue_id == kAllQueues || s.queue_id == queue_id))
		{
			s.ended = why;
			SetLatch(s.latch);
		}
	}
	LWLockRelease(table_lock);
}

void
waiters_end_over()
{
	if (!placed_markers || table == nullptr)
		return;
	LWLockAcquire(table_lock, LW_EXCLUSIVE);
	for (EndMarker &m : table->markers)
		if (m.why != WaitEnd::none && m.pid == MyProcPid)
			m = EndMarker{};
	LWLockRelease(table_lock);
	placed_markers = false;
}

void
waiter_check_ended(const std::string &queue_name)
{
	if (my_slot < 0)
		return;
	LWLockAcquire(table_lock, LW_SHARED);
	WaitEnd ended = table->slots[my_slot].ended;
	LWLockRelease(table_lock);
	if (ended != WaitEnd::none)
		throw ended_error(ended, queue_name);
}

} // namespace querator
