/*
 * Long-poll leases: consumers waiting on a queue, in shared memory.
 *
 * A waiting queue_lease registers a waiter (arrival order, batch size). When
 * a transaction that made items ready commits (produce, retry, expiry,
 * promotion: every change recorded with estimates_add_at_commit), the new items are dealt round-robin among the queue's waiters
 * in arrival order, each up to its batch size, as an allowance; their latches
 * are set. A woken waiter leases up to its allowance. Nothing is dealt for a
 * transaction that rolls back.
 */
#pragma once

#include "pg_prelude.hpp"

#include <string>

namespace querator {

void waiters_request_shmem();
void waiters_startup_shmem();

/*
 * Registers this backend as a waiter; throws 55006 if client_id already waits
 * on the queue, 55000 if the queue's deletion is in progress (waiters_end).
 */
void waiter_register(int32 queue_id, const std::string &queue_name, const std::string &client_id, int32 batch_size);
/* Takes the allowance dealt to this backend's waiter (0 if none) and resets it. */
int32 waiter_take_allowance();
/* Ends this backend's wait, if any: when it returns, and at the abort of a waiting lease (commit_effects.cpp). */
void waiter_unregister();

/* Deals `count` new ready items of a queue to its waiters; called at commit (commit_effects.cpp). */
void waiters_deal(int32 queue_id, int64 count);

/*
 * DDL that is about to take the locks waiters hold (queues_delete, DROP
 * EXTENSION) calls this first: the waits on the queue (kAllQueues: every
 * queue of this database) end at once with 55000, and new ones are refused
 * until the calling transaction ends, so the DDL does not queue behind a
 * wait of up to 15 minutes.
 */
enum class WaitEnd : uint8
{
	none,
	queue_deleted,
	queue_resized, /* partitions removed */
	extension_dropped,
};
constexpr int32 kAllQueues = -1;
void waiters_end(int32 queue_id, WaitEnd why);
/* The transaction that called waiters_end has ended (commit, abort, prepare): waits are possible again. */
void waiters_end_over();
/* In the wait loop: throws 55000 if DDL ended this backend's wait on `queue_name`. */
void waiter_check_ended(const std::string &queue_name);

} // namespace querator
