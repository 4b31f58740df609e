/* Shared worker state; see worker_state.hpp. */
#include "worker_state.hpp"

#include <algorithm>

extern "C" {
#include "storage/latch.h"
#include "storage/proc.h"
}

#include <cstring>

namespace querator {

namespace {

struct DatabaseSlot
{
	Oid database;      /* InvalidOid: free */
	bool wanted;       /* serve it: the extension exists, or it has not been probed yet */
	int worker_pid;    /* 0: no worker attached */
	Latch *worker_latch;
	TimestampTz started_at;
	TimestampTz last_run;
	TimestampTz next_wakeup; /* 0: nothing known (a round runs); DT_NOEND: nothing due */
	/*
	 * The earliest deadline committed before next_wakeup that the worker has
	 * not taken yet (DT_NOEND: none): it plans its next round by it, without
	 * running one now unless it is due.
	 */
	TimestampTz requested_wakeup;
	WorkerCounters counters;
};

struct SharedState
{
	int launcher_pid;
	Latch *launcher_latch;
	/*
	 * Requests to serve a database that found no slot, since the launcher
	 * last reported them, and the last such database: recorded in a commit
	 * callback, which must not report anything itself.
	 */
	uint64 unserved_requests;
	Oid last_unserved_database;
	DatabaseSlot slots[kMaxServedDatabases];
};

SharedState *state = nullptr;
LWLock *state_lock = nullptr;

DatabaseSlot *
find_slot(Oid database)
{
	for (DatabaseSlot &slot : state->slots)
		if (slot.database == database)
			return &slot;
	return nullptr;
}

DatabaseSlot *
find_or_add_slot(Oid database)
{
	if (DatabaseSlot *slot = find_slot(database))
		return slot;
	DatabaseSlot *slot = find_slot(InvalidOid);
	if (slot != nullptr)
	{
		*slot = DatabaseSlot{};
		slot->database = database;
		slot->wanted = true;
	}
	return slot;
}

} // namespace

void
worker_state_request_shmem()
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)));
	RequestNamedLWLockTranche("querator_worker_state", 1);
}

void
worker_state_startup_shmem()
{
	bool found = false;
	state = static_cast<SharedState *>(ShmemInitStruct("querator worker state", sizeof(SharedState), &found));
	state_lock = &(GetNamedLWLockTranche("querator_worker_state"))->lock;
	if (!found)
		*state = SharedState{};
}

void
launcher_attach()
{
	LWLockAcquire(state_lock, LW_EXCLUSIVE);
	state->launcher_pid = MyProcPid;
	state->launcher_latch = MyLatch;
	LWLockRelease(state_lock);
}

void
launcher_sync_databases(const std::vector<Oid> &databases)
{
	LWLockAcquire(state_lock, LW_EXCLUSIVE);
	/* Forget dropped databases; start probing new ones. */
	for (DatabaseSlot &slot : state->slots)
	{
		if (slot.database == InvalidOid || slot.worker_pid != 0)
			continue;
		bool exists = false;
		for (Oid db : databases)
			exists = exists || db == slot.database;
		if (!exists)
			slot = DatabaseSlot{};
	}
	for (Oid db : databases)
		if (find_slot(db) == nullptr)
			find_or_add_slot(db);
	LWLockRelease(state_lock);
}

std::vector<Oid>
launcher_wanted_databases()
{
	std::vector<Oid> result;
	result.reserve(kMaxServedDatabases);
	LWLockAcquire(state_lock, LW_SHARED);
	for (const DatabaseSlot &slot : state->slots)
		if (slot.database != InvalidOid && slot.wanted)
			result.push_back(slot.database);
	LWLockRelease(state_lock);
	return result;
}

bool
worker_attach(Oid database)
{
	LWLockAcquire(state_lock, LW_EXCLUSIVE);
	DatabaseSlot *slot = find_or_add_slot(database);
	bool ok = slot != nullptr && slot->worker_pid == 0;
	if (ok)
	{
		slot->worker_pid = MyProcPid;
		slot->worker_latch = MyLatch;
		slot->started_at = GetCurrentTimestamp();
		slot->next_wakeup = 0;
		slot->requested_wakeup = DT_NOEND;
	}
	LWLockRelease(state_lock);
	return ok;
}

void
worker_detach(Oid database, bool extension_gone)
{
	if (state == nullptr)
		return;
	LWLockAcquire(state_lock, LW_EXCLUSIVE);
	DatabaseSlot *slot = find_slot(database);
	if (slot != nullptr && slot->worker_pid == MyProcPid)
	{
		slot->worker_pid = 0;
		slot->worker_latch = nullptr;
		slot->next_wakeup = 0;
		if (extension_gone)
			slot->wanted = false;
	}
	LWLockRelease(state_lock);
}

void
worker_begin_round(Oid database)
{
	/* Unknown while the round runs: a deadline committed meanwhile (maybe unseen by the round) is requested. */
	LWLockAcquire(state_lock, LW_EXCLUSIVE);
	if (DatabaseSlot *slot = find_slot(database))
		slot->next_wakeup = 0;
	LWLockRelease(state_lock);
}

void
worker_publish_round(Oid database, std::optional<TimestampTz> next_wakeup, const WorkerCounters &added)
{
	LWLockAcquire(state_lock, LW_EXCLUSIVE);
	DatabaseSlot *slot = find_slot(database);
	if (slot != nullptr)
	{
		slot->last_run = GetCurrentTimestamp();
		/* A deadline requested during the round and not taken yet is still ahead of us. */
		slot->next_wakeup = std::min(next_wakeup.value_or(DT_NOEND), slot->requested_wakeup);
		slot->counters.rounds += added.rounds;
		slot->counters.expired_leases += added.expired_leases;
		slot->counters.promoted += added.promoted;
		slot->counters.expired_items += added.expired_items;
		slot->counters.dead_lettered += added.dead_lettered;
	}
	LWLockRelease(state_lock);
}

void
launcher_serve_this_database()
{
	if (state == nullptr)
		return;
	LWLockAcquire(state_lock, LW_EXCLUSIVE);
	DatabaseSlot *slot = find_or_add_slot(MyDatabaseId);
	if (slot != nullptr)
		slot->wanted = true;
	else
	{
		state->unserved_requests++;
		state->last_unserved_database = MyDatabaseId;
	}
	Latch *launcher = state->launcher_latch;
	LWLockRelease(state_lock);
	if (launcher != nullptr)
		SetLatch(launcher);
}

bool
launcher_has_room_for_this_database()
{
	if (state == nullptr)
		return true;
	LWLockAcquire(state_lock, LW_SHARED);
	const bool room = find_slot(MyDatabaseId) != nullptr || find_slot(InvalidOid) != nullptr;
	LWLockRelease(state_lock);
	return room;
}

uint64
launcher_take_unserved_requests(Oid *last_database)
{
	LWLockAcquire(state_lock, LW_EXCLUSIVE);
	const uint64 requests = state->unserved_requests;
	*last_database = state->last_unserved_database;
	state->unserved_requests = 0;
	LWLockRelease(state_lock);
	return requests;
}

namespace {

bool
wakes_worker(const DatabaseSlot *slot, TimestampTz deadline)
{
	return slot != nullptr && slot->worker_latch != nullptr && (slot->next_wakeup == 0 || deadline < slot->next_wakeup);
}

} // namespace

void
worker_wake_before(TimestampTz deadline)
{
	if (state == nullptr)
		return;
	/* The usual case, a deadline after the one the worker plans for, needs only the shared lock. */
	LWLockAcquire(state_lock, LW_SHARED);
	bool wakes = wakes_worker(find_slot(MyDatabaseId), deadline);
	LWLockRelease(state_lock);
	if (!wakes)
		return;
	Latch *worker = nullptr;
	LWLockAcquire(state_lock, LW_EXCLUSIVE);
	DatabaseSlot *slot = find_slot(MyDatabaseId);
	if (wakes_worker(slot, deadline))
	{
		slot->next_wakeup = std::min(deadline, slot->next_wakeup == 0 ? DT_NOEND : slot->next_wakeup);
		slot->requested_wakeup = std::min(deadline, slot->requested_wakeup);
		worker = slot->worker_latch;
	}
	LWLockRelease(state_lock);
	if (worker != nullptr)
		SetLatch(worker);
}

TimestampTz
worker_take_requested_wakeup(Oid database)
{
	TimestampTz requested = DT_NOEND;
	LWLockAcquire(state_lock, LW_EXCLUSIVE);
	if (DatabaseSlot *slot = find_slot(database))
	{
		requested = slot->requested_wakeup;
		slot->requested_wakeup = DT_NOEND;
	}
	LWLockRelease(state_lock);
	return requested;
}

std::vector<WorkerStatus>
worker_status_all()
{
	std::vector<WorkerStatus> result;
	result.reserve(kMaxServedDatabases);
	LWLockAcquire(state_lock, LW_SHARED);
	for (const DatabaseSlot &slot : state->slots)
		if (slot.database != InvalidOid)
			result.push_back(WorkerStatus{slot.database, slot.wanted, slot.worker_pid, slot.started_at,
										  slot.last_run, slot.next_wakeup, slot.counters});
	LWLockRelease(state_lock);
	return result;
}

} // namespace querator
