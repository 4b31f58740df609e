/* Shared webhook state; see webhook_state.hpp. */
#include "webhook_state.hpp"
#include "worker_state.hpp"

extern "C" {
#include "storage/latch.h"
}

#include <algorithm>
#include <cstring>

namespace querator {

namespace {

struct QueueSlot
{
	Oid database;      /* InvalidOid: free */
	int32 queue_id;
	bool ready;
	uint64 deliveries;
	uint64 failures;
	int32 last_status;
	TimestampTz last_delivery_at;
	int32 in_flight;
	char last_error[kWebhookErrorLength];
};

struct DatabaseSlot
{
	Oid database;      /* InvalidOid: free */
	Latch *latch;      /* the worker's, while attached */
	bool sleeping;     /* the worker waits on its latch */
	bool catalog_changed;
};

struct SharedState
{
	DatabaseSlot databases[kMaxServedDatabases];
	QueueSlot queues[kMaxWebhookQueues];
	pg_atomic_uint32 tracked_queues; /* occupied queue slots: 0 lets every commit skip the lock */
};

SharedState *state = nullptr;
LWLock *lock = nullptr;

QueueSlot *
find_queue(Oid database, int32 queue_id)
{
	for (QueueSlot &slot : state->queues)
		if (slot.database == database && slot.queue_id == queue_id)
			return &slot;
	return nullptr;
}

DatabaseSlot *
find_database(Oid database)
{
	for (DatabaseSlot &slot : state->databases)
		if (slot.database == database)
			return &slot;
	return nullptr;
}

} // namespace

void
webhook_state_request_shmem()
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)));
	RequestNamedLWLockTranche("querator_webhooks", 1);
}

void
webhook_state_startup_shmem()
{
	bool found = false;
	state = static_cast<SharedState *>(ShmemInitStruct("querator webhook state", sizeof(SharedState), &found));
	lock = &(GetNamedLWLockTranche("querator_webhooks"))->lock;
	if (!found)
	{
		memset(state, 0, sizeof(SharedState));
		pg_atomic_init_u32(&state->tracked_queues, 0);
	}
}

void
webhook_worker_attach()
{
	LWLockAcquire(lock, LW_EXCLUSIVE);
	DatabaseSlot *slot = find_database(MyDatabaseId);
	if (slot == nullptr)
		slot = find_database(InvalidOid);
	if (slot != nullptr)
		*slot = DatabaseSlot{MyDatabaseId, MyLatch, false, false};
	LWLockRelease(lock);
}

void
webhook_worker_detach()
{
	if (state == nullptr)
		return;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (DatabaseSlot *slot = find_database(MyDatabaseId); slot != nullptr && slot->latch == MyLatch)
		*slot = DatabaseSlot{};
	for (QueueSlot &q : state->queues)
		if (q.database == MyDatabaseId)
			q.in_flight = 0;
	LWLockRelease(lock);
}

void
webhook_track_queues(const std::vector<int32> &webhook_queues)
{
	bool full = false;
	uint32 tracked = 0;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	for (QueueSlot &q : state->queues)
		if (q.database == MyDatabaseId &&
			std::find(webhook_queues.begin(), webhook_queues.end(), q.queue_id) == webhook_queues.end())
			q = QueueSlot{};
	for (int32 id : webhook_queues)
	{
		if (find_queue(MyDatabaseId, id) != nullptr)
			continue;
		QueueSlot *free_slot = find_queue(InvalidOid, 0);
		if (free_slot == nullptr)
		{
			full = true;
			continue;
		}
		*free_slot = QueueSlot{};
		free_slot->database = MyDatabaseId;
		free_slot->queue_id = id;
	}
	for (const QueueSlot &q : state->queues)
		if (q.database != InvalidOid)
			tracked++;
	pg_atomic_write_u32(&state->tracked_queues, tracked);
	LWLockRelease(lock);
	if (full)
		elog(WARNING, "querator: more than %d webhook queues; the status of some is not shown", kMaxWebhookQueues);
}

std::vector<int32>
webhook_take_ready()
{
	std::vector<int32> ready;
	ready.reserve(kMaxWebhookQueues); /* no allocation while the lock is held */
	LWLockAcquire(lock, LW_EXCLUSIVE);
	for (QueueSlot &q : state->queues)
		if (q.database == MyDatabaseId && q.ready)
		{
			q.ready = false;
			ready.push_back(q.queue_id);
		}
	LWLockRelease(lock);
	return ready;
}

bool
webhook_prepare_sleep()
{
	bool sleep = true;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	for (const QueueSlot &q : state->queues)
		sleep = sleep && !(q.database == MyDatabaseId && q.ready);
	DatabaseSlot *slot = find_database(MyDatabaseId);
	sleep = sleep && !(slot != nullptr && slot->catalog_changed);
	if (slot != nullptr)
		slot->sleeping = sleep;
	LWLockRelease(lock);
	return sleep;
}

void
webhook_awake()
{
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (DatabaseSlot *slot = find_database(MyDatabaseId); slot != nullptr)
		slot->sleeping = false;
	LWLockRelease(lock);
}

void
webhook_count(int32 queue_id, uint64 deliveries, uint64 failures, int32 last_status, const std::string &last_error,
			  TimestampTz at)
{
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (QueueSlot *q = find_queue(MyDatabaseId, queue_id); q != nullptr)
	{
		q->deliveries += deliveries;
		q->failures += failures;
		q->last_status = last_status;
		q->last_delivery_at = at;
		strlcpy(q->last_error, last_error.c_str(), sizeof(q->last_error));
	}
	LWLockRelease(lock);
}

void
webhook_set_in_flight(int32 queue_id, int32 in_flight)
{
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (QueueSlot *q = find_queue(MyDatabaseId, queue_id); q != nullptr)
		q->in_flight = in_flight;
	LWLockRelease(lock);
}

void
webhook_note_ready(int32 queue_id)
{
	if (state == nullptr || pg_atomic_read_u32(&state->tracked_queues) == 0)
		return;
	/* Most queues have no webhook: look under the shared lock first. */
	LWLockAcquire(lock, LW_SHARED);
	bool tracked = find_queue(MyDatabaseId, queue_id) != nullptr;
	LWLockRelease(lock);
	if (!tracked)
		return;
	Latch *wake = nullptr;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (QueueSlot *q = find_queue(MyDatabaseId, queue_id); q != nullptr)
	{
		q->ready = true;
		DatabaseSlot *db = find_database(MyDatabaseId);
		if (db != nullptr && db->sleeping)
			wake = db->latch;
	}
	LWLockRelease(lock);
	if (wake != nullptr)
		SetLatch(wake);
}

void
webhook_note_catalog_change()
{
	if (state == nullptr)
		return;
	Latch *wake = nullptr;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (DatabaseSlot *slot = find_database(MyDatabaseId); slot != nullptr)
	{
		slot->catalog_changed = true;
		if (slot->sleeping)
			wake = slot->latch;
	}
	LWLockRelease(lock);
	if (wake != nullptr)
		SetLatch(wake);
}

bool
webhook_take_catalog_change()
{
	bool changed = false;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (DatabaseSlot *slot = find_database(MyDatabaseId); slot != nullptr)
	{
		changed = slot->catalog_changed;
		slot->catalog_changed = false;
	}
	LWLockRelease(lock);
	return changed;
}

std::vector<WebhookStatus>
webhook_status_read()
{
	/* Copied under the lock into reserved space, turned into strings after: no allocation while it is held. */
	std::vector<QueueSlot> copies;
	copies.reserve(kMaxWebhookQueues);
	LWLockAcquire(lock, LW_SHARED);
	for (const QueueSlot &q : state->queues)
		if (q.database == MyDatabaseId)
			copies.push_back(q);
	LWLockRelease(lock);
	std::vector<WebhookStatus> result;
	result.reserve(copies.size());
	for (const QueueSlot &q : copies)
		result.push_back(WebhookStatus{q.queue_id, q.deliveries, q.failures, q.last_status,
									   std::string(q.last_error, strnlen(q.last_error, sizeof(q.last_error))),
									   q.last_delivery_at, q.in_flight});
	return result;
}

} // namespace querator
