/* The commit-effects dispatcher; see commit_effects.hpp and docs/design.md, "Commit effects". */
#include "commit_effects.hpp"
#include "catalog_cache.hpp"
#include "partition_estimates.hpp"
#include "partition_head.hpp"
#include "waiters.hpp"
#include "webhook_state.hpp"
#include "worker_state.hpp"

#include <algorithm>

namespace querator {

namespace {

/*
 * Every pending effect carries the subtransaction that recorded it.
 * Subtransaction ids grow in creation order and subtransactions nest, so
 * when subtransaction S aborts, the effects with an id >= S are exactly
 * those of S and its children: they are dropped. A child that commits hands
 * its effects to its parent (merge_into_parent): dropped if the parent
 * aborts, applied if the transaction commits, and merged with the parent's
 * own, so a loop of subtransactions (a PL/pgSQL EXCEPTION block per
 * iteration) keeps one entry per partition, not one per iteration.
 */

/* Changes to one partition recorded in one subtransaction: a transaction of many calls stays small. */
struct PartitionChange
{
	int32 queue_id;
	int32 partition;
	SubTransactionId subxact;
	int64 ready_added; /* new ready items: also dealt to the queue's waiters */
	int64 ready_removed;
	int64 counters[kCounterCount];
	bool wake_all; /* deal every waiter of the queue a full batch (resume) */
	/* By Floor (partition_estimates.hpp): */
	TimestampTz earliest_deadline[kFloorKinds]; /* the earliest deadline it set (DT_NOEND: none): lowers the floor */
	bool floor_scanned[kFloorKinds];            /* the worker scanned: the floor becomes what it found */
	TimestampTz floor_found[kFloorKinds];
};

/* An estimates entry the transaction created: removed again if it aborts. */
struct Reservation
{
	int32 queue_id;
	int32 partition;
	SubTransactionId subxact;
};

/* Partitions [first_partition, ...) of a queue forgotten at commit (shrink, delete). */
struct Forgetting
{
	int32 queue_id;
	int32 first_partition;
	SubTransactionId subxact;
};

struct WorkerDeadline
{
	SubTransactionId subxact;
	TimestampTz at;
};

/* Held until the top-level transaction ends, whatever its subtransactions do (the registration covers them all). */
struct HeldRegistration
{
	HeadRegistration registration;
	/*
	 * Its end may make items leasable that a running lease scan could not
	 * see, so the head must remember its floor: it inserted or deleted items
	 * (HeadRole::writer), or a subtransaction that used it rolled back and
	 * released the items its lease had locked.
	 */
	bool remember_at_end;
	/* The latest subtransaction that registered through it (ids grow: the highest). */
	SubTransactionId last_used;
};

/*
 * A flag is the lowest subtransaction that recorded it (0: not recorded):
 * it survives the abort of S exactly when it was recorded below S.
 */
using Flag = SubTransactionId;

struct Pending
{
	std::vector<PartitionChange> changes;
	std::vector<Reservation> reservations;
	std::vector<Forgetting> forgettings;
	std::vector<WorkerDeadline> deadlines;
	std::vector<HeldRegistration> registrations;
	Flag catalog_change = InvalidSubTransactionId;
	Flag webhook_catalog_change = InvalidSubTransactionId;
	Flag service_request = InvalidSubTransactionId;
	/*
	 * The first kind of state the transaction recorded, named when PREPARE
	 * is refused. It stays until the transaction ends, even if that state
	 * was dropped or ended since (README: a lease that took nothing still
	 * makes PREPARE fail).
	 */
	const char *first_recorded = nullptr;

	/* Keeps the vectors' room: the next transaction records without allocating. */
	void
	clear()
	{
		changes.clear();
		reservations.clear();
		forgettings.clear();
		deadlines.clear();
		registrations.clear();
		catalog_change = webhook_catalog_change = service_request = InvalidSubTransactionId;
		first_recorded = nullptr;
	}
};

Pending pending;

void
note(const char *what)
{
	if (pending.first_recorded == nullptr)
		pending.first_recorded = what;
}

void
record_flag(Flag *flag, const char *what)
{
	const SubTransactionId subxact = GetCurrentSubTransactionId();
	if (*flag == InvalidSubTransactionId || subxact < *flag)
		*flag = subxact;
	note(what);
}

PartitionChange *
find_change(int32 queue_id, int partition, SubTransactionId subxact)
{
	for (PartitionChange &c : pending.changes)
		if (c.queue_id == queue_id && c.partition == partition && c.subxact == subxact)
			return &c;
	return nullptr;
}

/* The change of (queue, partition) in the current subtransaction, added if missing. */
PartitionChange &
change_of(int32 queue_id, int partition)
{
	const SubTransactionId subxact = GetCurrentSubTransactionId();
	if (PartitionChange *found = find_change(queue_id, partition, subxact))
		return *found;
	PartitionChange c{};
	c.queue_id = queue_id;
	c.partition = partition;
	c.subxact = subxact;
	for (TimestampTz &d : c.earliest_deadline)
		d = DT_NOEND;
	pending.changes.push_back(c);
	note("pending partition estimates");
	return pending.changes.back();
}

/*
 * A worker deadline of subtransaction `subxact`: skipped when a deadline as
 * early that outlives it (recorded in it or an ancestor) is recorded
 * already, lowered into its own entry if it has one.
 */
void
record_deadline(SubTransactionId subxact, TimestampTz at)
{
	for (WorkerDeadline &d : pending.deadlines)
	{
		if (d.subxact <= subxact && d.at <= at)
			return;
		if (d.subxact == subxact)
		{
			d.at = at;
			return;
		}
	}
	pending.deadlines.push_back(WorkerDeadline{subxact, at});
}

void
end_registrations(bool committed)
{
	for (const HeldRegistration &held : pending.registrations)
		head_leave(held.registration, !committed || held.remember_at_end);
}

/* Whether changes[i] is the first change of its queue that made items ready. */
bool
first_ready_change(size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (pending.changes[j].queue_id == pending.changes[i].queue_id && pending.changes[j].ready_added > 0)
			return false;
	return true;
}

int64
ready_added_to(int32 queue_id)
{
	int64 ready = 0;
	for (const PartitionChange &c : pending.changes)
		if (c.queue_id == queue_id)
			ready += c.ready_added;
	return ready;
}

/* Each queue's new ready items (all its partitions) are dealt to its waiters once, and raise its webhook flag. */
void
deal_new_items()
{
	for (size_t i = 0; i < pending.changes.size(); i++)
	{
		const PartitionChange &c = pending.changes[i];
		if (c.wake_all)
			waiters_deal(c.queue_id, INT32_MAX);
		if (c.ready_added <= 0 || !first_ready_change(i))
			continue;
		waiters_deal(c.queue_id, ready_added_to(c.queue_id));
		webhook_note_ready(c.queue_id); /* the worker delivers webhook queues */
	}
}

TimestampTz
earliest_deadline()
{
	TimestampTz earliest = pending.deadlines.front().at;
	for (const WorkerDeadline &d : pending.deadlines)
		earliest = std::min(earliest, d.at);
	return earliest;
}

/*
 * Nothing here may raise: an error in a commit callback comes after the
 * commit record and is promoted to PANIC. Every effect was allocated when
 * it was recorded; applying one takes locks and sets latches only. The
 * order is docs/design.md's "Commit effects".
 */
void
apply_at_commit()
{
	/* 1. What the transaction held ends: its items are visible now. */
	end_registrations(true);
	waiters_end_over();
	/* 2. Definitions before wake-ups: a woken consumer must not act on a cached old one (a paused queue). */
	if (pending.catalog_change != InvalidSubTransactionId)
		catalog_cache_publish_change();
	/* 3. Estimates before dealing: a woken waiter's lease picks its partition by them. */
	for (const PartitionChange &c : pending.changes)
	{
		estimates_apply(c.queue_id, c.partition, c.ready_added - c.ready_removed, c.counters);
		/* The worker's scan first: a deadline this transaction set is then kept by the lowering. */
		for (int k = 0; k < kFloorKinds; k++)
		{
			if (c.floor_scanned[k])
				deadline_floor_settle(static_cast<Floor>(k), c.queue_id, c.partition, c.floor_found[k]);
			if (c.earliest_deadline[k] != DT_NOEND)
				deadline_floor_lower(static_cast<Floor>(k), c.queue_id, c.partition, c.earliest_deadline[k]);
		}
	}
	/*
	 * After the catalog version moved (2.): a worker that read the catalog
	 * before this commit either sees the new version and does not re-track
	 * the partitions, or re-tracked them before this removes them
	 * (estimates_track).
	 */
	for (const Forgetting &f : pending.forgettings)
		estimates_forget(f.queue_id, f.first_partition);
	/* 4. New ready items to long-poll waiters and webhook queues. */
	deal_new_items();
	/* 5. The worker last: the round it starts sees everything above. */
	if (pending.webhook_catalog_change != InvalidSubTransactionId)
		webhook_note_catalog_change();
	if (pending.service_request != InvalidSubTransactionId)
		launcher_serve_this_database();
	if (!pending.deadlines.empty())
		worker_wake_before(earliest_deadline());
	/* Reservations simply stay. */
}

void
drop_at_abort()
{
	end_registrations(false);
	waiters_end_over();
	waiter_unregister(); /* a cancelled or failed waiting lease leaves the wait queue */
	for (const Reservation &r : pending.reservations)
		estimates_remove(r.queue_id, r.partition);
	if (pending.catalog_change != InvalidSubTransactionId)
		catalog_cache_discard_change();
}

/*
 * Drops what subtransaction `subxact` and its children recorded. Head
 * registrations stay until the end, but one they used is remembered when it
 * ends: the rollback released the items their leases had locked, and a
 * lease scan that skipped them (SKIP LOCKED) must not move the head past
 * them once the transaction commits.
 */
void
drop_subtransaction(SubTransactionId subxact)
{
	for (HeldRegistration &held : pending.registrations)
		if (held.last_used >= subxact)
			held.remember_at_end = true;
	auto recorded_in = [&](const auto &effect) { return effect.subxact >= subxact; };
	auto erase = [&](auto &effects) {
		effects.erase(std::remove_if(effects.begin(), effects.end(), recorded_in), effects.end());
	};
	for (const Reservation &r : pending.reservations)
		if (recorded_in(r))
			estimates_remove(r.queue_id, r.partition);
	erase(pending.reservations);
	erase(pending.forgettings);
	erase(pending.changes);
	erase(pending.deadlines);
	if (pending.catalog_change >= subxact)
	{
		pending.catalog_change = InvalidSubTransactionId;
		catalog_cache_discard_change();
	}
	if (pending.webhook_catalog_change >= subxact)
		pending.webhook_catalog_change = InvalidSubTransactionId;
	if (pending.service_request >= subxact)
		pending.service_request = InvalidSubTransactionId;
	waiter_unregister(); /* a waiting lease interrupted inside the subtransaction (savepoint, EXCEPTION block) */
}

/*
 * Subtransaction `subxact` committed: what it and its (committed) children
 * recorded becomes its parent's, merged into the parent's entries. Runs in
 * a subtransaction callback, so it must not raise: it only relabels, adds
 * and removes in place (a deadline moved to the parent reuses the room of
 * the one it replaces).
 */
void
merge_into_parent(SubTransactionId subxact, SubTransactionId parent)
{
	auto recorded_in = [&](const auto &effect) { return effect.subxact >= subxact; };
	for (PartitionChange &c : pending.changes)
	{
		if (!recorded_in(c))
			continue;
		PartitionChange *into = find_change(c.queue_id, c.partition, parent);
		if (into == nullptr)
		{
			c.subxact = parent;
			continue;
		}
		into->ready_added += c.ready_added;
		into->ready_removed += c.ready_removed;
		for (int i = 0; i < kCounterCount; i++)
			into->counters[i] += c.counters[i];
		into->wake_all = into->wake_all || c.wake_all;
		for (int k = 0; k < kFloorKinds; k++)
		{
			into->earliest_deadline[k] = std::min(into->earliest_deadline[k], c.earliest_deadline[k]);
			if (c.floor_scanned[k]) /* the child's scan is the later one */
			{
				into->floor_scanned[k] = true;
				into->floor_found[k] = c.floor_found[k];
			}
		}
		c.subxact = InvalidSubTransactionId; /* merged: removed below */
	}
	pending.changes.erase(std::remove_if(pending.changes.begin(), pending.changes.end(),
										 [](const PartitionChange &c) { return c.subxact == InvalidSubTransactionId; }),
						  pending.changes.end());
	for (Reservation &r : pending.reservations)
		if (recorded_in(r))
			r.subxact = parent;
	for (Forgetting &f : pending.forgettings)
		if (recorded_in(f))
			f.subxact = parent;
	/* One deadline per subtransaction: the child's, if any, is recorded again as the parent's. */
	auto child = std::find_if(pending.deadlines.begin(), pending.deadlines.end(), recorded_in);
	if (child != pending.deadlines.end())
	{
		const TimestampTz at = child->at;
		pending.deadlines.erase(child);
		record_deadline(parent, at);
	}
	for (Flag *flag : {&pending.catalog_change, &pending.webhook_catalog_change, &pending.service_request})
		if (*flag >= subxact)
			*flag = parent;
	/* Head registrations keep the highest subtransaction that used them: the parent's abort still covers it. */
}

/*
 * A prepared transaction ends in this backend without a commit or an abort,
 * and COMMIT PREPARED may run much later, anywhere: what it recorded would
 * be applied at this backend's next commit (a produce's head registration
 * would end before its ids became visible, stranding them). Refused before
 * anything is prepared: the abort that follows drops it all.
 */
void
refuse_prepare()
{
	if (pending.first_recorded != nullptr)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("querator does not support PREPARE TRANSACTION"),
						errdetail("This transaction changed queues or items through querator (%s); "
								  "only COMMIT or ROLLBACK can settle that.",
								  pending.first_recorded),
						errhint("Call querator functions outside two-phase transactions, "
								"or commit them in a transaction of their own.")));
}

void
on_xact_event(XactEvent event, void *)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			apply_at_commit();
			pending.clear();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			drop_at_abort();
			pending.clear();
			break;
		case XACT_EVENT_PRE_PREPARE:
			refuse_prepare();
			break;
		case XACT_EVENT_PREPARE:
			waiters_end_over(); /* the only state a transaction that may be prepared can hold */
			pending.clear();
			break;
		default:
			break;
	}
}

void
on_subxact_event(SubXactEvent event, SubTransactionId subxact, SubTransactionId parent, void *)
{
	if (event == SUBXACT_EVENT_COMMIT_SUB)
		merge_into_parent(subxact, parent);
	else if (event == SUBXACT_EVENT_ABORT_SUB)
		drop_subtransaction(subxact);
}

} // namespace

void
commit_effects_register_callbacks()
{
	RegisterXactCallback(on_xact_event, nullptr);
	RegisterSubXactCallback(on_subxact_event, nullptr);
}

void
estimates_add_at_commit(int32 queue_id, int partition, int64 delta)
{
	if (delta > 0)
		change_of(queue_id, partition).ready_added += delta;
	else if (delta < 0)
		change_of(queue_id, partition).ready_removed -= delta;
}

void
count_at_commit(int32 queue_id, int partition, Counter counter, int64 n)
{
	if (n != 0)
		change_of(queue_id, partition).counters[static_cast<int>(counter)] += n;
}

void
deadline_at_commit(Floor kind, int32 queue_id, int partition, TimestampTz deadline)
{
	PartitionChange &c = change_of(queue_id, partition);
	TimestampTz &earliest = c.earliest_deadline[static_cast<int>(kind)];
	earliest = std::min(earliest, deadline);
}

void
floor_found_at_commit(Floor kind, int32 queue_id, int partition, TimestampTz earliest)
{
	PartitionChange &c = change_of(queue_id, partition);
	c.floor_scanned[static_cast<int>(kind)] = true;
	c.floor_found[static_cast<int>(kind)] = earliest;
}

void
wake_waiters_at_commit(int32 queue_id)
{
	change_of(queue_id, 0).wake_all = true;
}

void
wake_worker_at_commit(TimestampTz deadline)
{
	note("a worker wake-up");
	record_deadline(GetCurrentSubTransactionId(), deadline);
}

void
request_service_at_commit()
{
	record_flag(&pending.service_request, "a worker request");
}

void
webhook_catalog_changed_at_commit()
{
	record_flag(&pending.webhook_catalog_change, "a webhook catalog change");
}

void
catalog_cache_changed()
{
	record_flag(&pending.catalog_change, "a queue catalog change");
	catalog_cache_bypass();
}

void
estimates_forget_at_commit(int32 queue_id, int first_partition)
{
	pending.forgettings.push_back(Forgetting{queue_id, first_partition, GetCurrentSubTransactionId()});
	note("a partition estimate to forget");
}

void
estimates_reserve(int32 queue_id, int first_partition, int last_partition)
{
	const SubTransactionId subxact = GetCurrentSubTransactionId();
	/* Room first: an entry that exists must be recorded, or an abort would not remove it. */
	pending.reservations.reserve(pending.reservations.size() + std::max(0, last_partition - first_partition));
	std::vector<int> created;
	auto record = [&] {
		for (int p : created)
			pending.reservations.push_back(Reservation{queue_id, p, subxact});
		if (!created.empty())
			note("a partition reservation");
	};
	try
	{
		estimates_create(queue_id, first_partition, last_partition, &created);
	}
	catch (...)
	{
		record(); /* what a failed attempt created before it ran out of room */
		throw;
	}
	record();
}

std::vector<int64>
estimates_read(int32 queue_id, int partitions)
{
	std::vector<int64> result = estimates_read_committed(queue_id, partitions);
	/* The transaction's own changes count too, so two produces in one transaction spread. */
	for (const PartitionChange &c : pending.changes)
		if (c.queue_id == queue_id && c.partition < partitions)
			result[c.partition] += c.ready_added - c.ready_removed;
	return result;
}

std::vector<int>
partitions_for_produce(int32 queue_id, int partitions)
{
	return partitions_by_estimate(estimates_read(queue_id, partitions), false);
}

std::vector<int>
partitions_for_lease(int32 queue_id, int partitions)
{
	return partitions_by_estimate(estimates_read(queue_id, partitions), true);
}

bool
head_register(int32 queue_id, int partition, HeadRole role)
{
	const bool writer = role == HeadRole::writer;
	const SubTransactionId subxact = GetCurrentSubTransactionId();
	for (HeldRegistration &held : pending.registrations)
		if (held.registration.queue_id == queue_id && held.registration.partition == partition)
		{
			held.remember_at_end = held.remember_at_end || writer;
			held.last_used = std::max(held.last_used, subxact);
			return false; /* registered earlier in this transaction, with a lower or equal floor */
		}
	pending.registrations.reserve(pending.registrations.size() + 1); /* before registering: ending it must not fail */
	HeadRegistration registration;
	if (!head_enter(queue_id, partition, &registration))
		return false;
	pending.registrations.push_back(HeldRegistration{registration, writer, subxact});
	note("a partition head registration");
	return true;
}

void
head_unregister(int32 queue_id, int partition)
{
	auto &held = pending.registrations;
	for (auto it = held.begin(); it != held.end(); ++it)
		if (it->registration.queue_id == queue_id && it->registration.partition == partition)
		{
			head_leave(it->registration, false); /* it did nothing that a scan could miss */
			held.erase(it);
			return;
		}
}

bool
head_registered(int32 queue_id, int partition)
{
	for (const HeldRegistration &held : pending.registrations)
		if (held.registration.queue_id == queue_id && held.registration.partition == partition)
			return true;
	return false;
}

} // namespace querator
