/*
 * The head of each partition, in shared memory: an id below which no item
 * can be leased, so a lease starts its index walk there instead of at the
 * start of the index (where consumed items leave dead index entries until
 * VACUUM, and forever while a long transaction pins the xmin horizon).
 *
 * Why it is safe: a lease scan that starts at the head and first meets an
 * unleased item at id X proves that every item in [head, X) was leased (by a
 * committed lease) or gone. Such items never become leasable again under the
 * same id: complete deletes them, retry / expiry / redrive give them new ids
 * at the tail. Only two things can put a leasable item below X later:
 *   - a transaction still inserting into the partition (its ids come from
 *     the sequence and may commit after a later id was consumed), and
 *   - a lease still in progress that skipped-locked items, and may roll back.
 * Both register before they act with the head they saw (head_enter, through
 * head_register in commit_effects.hpp, which ends the registration with the
 * transaction); the head never advances past the lowest registration of
 * another transaction, nor past that of one which ended after the scan took
 * its snapshot (its items or released locks may be invisible to that
 * snapshot). Every value is therefore safe forever, and the head only moves
 * forward (max).
 *
 * Concurrent leases starting at the same head would each walk the items the
 * others hold; the cursor (head_claimed) lets them start past those instead.
 */
#pragma once

#include "pg_prelude.hpp"

#include <utility>
#include <vector>

namespace querator {

void head_request_shmem();
void head_startup_shmem();


/*
 * The ring of segments of a partition (docs/design.md, "Segments"): the
 * items live in N tables; new items go to the current one; a segment that
 * is no longer current, that no registered transaction can still write,
 * and whose items are all gone is emptied with TRUNCATE and reused. The ring
 * lives next to the registrations because its proof is theirs: a writer
 * registers before it inserts, and its registration records every segment
 * it inserts into (the current one, each time it writes) until it ends.
 */
constexpr int kMaxSegments = 8;
constexpr int64 kUnsealed = PG_INT64_MAX; /* upper bound of a segment that may still get items */

struct SegmentBounds
{
	bool used = false;        /* false: empty, free to become current */
	int64 lower = 0;          /* every id in it is >= lower */
	int64 upper = kUnsealed;  /* every id in it is < upper (set once no writer can reach it) */
	int64 checked_below = 0;  /* every row below this id was seen dead: emptiness checks resume here */
};

struct RingView
{
	int count = 0;             /* segments; 0: not known (untracked partition, or not read since startup) */
	int current = 0;           /* where writers registering now insert */
	uint64 inserted = 0;       /* items inserted into the current segment since it became current */
	TimestampTz since = 0;     /* when it became current */
	int64 head = 0;
	int writers[kMaxSegments] = {}; /* live registrations that may have inserted into each segment */
	bool frozen = false;       /* an overflow registration (segments unknown) is live: nothing may be truncated */
	SegmentBounds segments[kMaxSegments];
};

/* What a lease scan needs to know before it takes its snapshot. */
struct HeadView
{
	int64 head = 0;        /* start the walk here (0 when unknown: from the start) */
	int64 cursor = 0;      /* or here, past what other leases claimed (never below head) */
	uint64 ended_seen = 0; /* registrations ended so far */
	bool tracked = false;  /* the partition has an entry */
	RingView ring;         /* its segments, read with the head */
};

/* Read right before the scan's statement (so before its snapshot). */
HeadView head_read(int32 queue_id, int partition);

/* The partition's ring; count 0 when it has no entry or its ring is not known yet. */
RingView head_ring_read(int32 queue_id, int partition);
/* Installs a ring read from the tables (storage), unless another process installed one first; makes the entry. */
void head_ring_install(int32 queue_id, int partition, const RingView &derived);
/*
 * Applies `change` to the ring under the entry's spinlock: it gets the ring
 * as head_ring_read gives it, must not error or allocate, and returns true
 * to store the segment fields back (current, inserted, since, segments).
 */
bool head_ring_change(int32 queue_id, int partition, bool (*change)(RingView *ring, void *arg), void *arg);
/* Counts items inserted into the current segment; flags the partition once a rotation is due (true: wake the worker). */
bool head_ring_inserted(int32 queue_id, int partition, uint64 count);
/*
 * The segment a registered writer inserts into now: the current one, which
 * its registration records before it inserts (-1: the partition has no
 * entry or no known ring). A long transaction that writes across a
 * rotation so inserts into the new segment, and holds back both.
 */
int head_writer_segment(int32 queue_id, int partition);
/* Flags the partition for the worker's segment upkeep (a rotation may be due, or a segment may be emptied). */
void head_ring_attention(int32 queue_id, int partition);
/* The partitions of this database flagged for segment upkeep; clears their flags. */
std::vector<std::pair<int32, int32>> head_ring_take_attention();

/* A backend's registration in a partition's entry (taken by head_enter, given back by head_leave). */
struct HeadRegistration
{
	int32 queue_id;
	int32 partition;
	bool overflow; /* no slot was free: it holds the head frozen instead */
	int64 floor;   /* the head when it registered: its items are all at or above it */
};

/* Registers this backend in the partition's entry (made if missing); false when the table has no room for it. */
bool head_enter(int32 queue_id, int partition, HeadRegistration *registration);

/*
 * Ends a registration. `remember` puts its floor in the ring of ended
 * registrations: needed when its end may make items leasable that a scan
 * running now could not see (a writer's commit, any abort), not when a
 * lease commits (its items are leased) or a registration did nothing.
 */
void head_leave(const HeadRegistration &registration, bool remember);

/*
 * A lease scan from before_scan.head met its first unleased item at
 * `first_unleased`: move the head up to it, as far as is safe.
 */
void head_advance(int32 queue_id, int partition, const HeadView &before_scan, int64 first_unleased);

/*
 * A lease claimed items up to `last_claimed`: the next lease may start
 * after it (the cursor). Only a hint for speed: an item below the cursor
 * that is leasable again (a lease rolled back, a produce committed late)
 * is found by a lease that starts at the head, which every short lease and
 * every few leases do (storage.cpp).
 */
void head_claimed(int32 queue_id, int partition, int64 last_claimed);

/* Forgets a queue's partitions from `first_partition` on (after delete or shrink). */
void head_forget(int32 queue_id, int first_partition);
/* Forgets every partition of a database (dropped, or without the extension now). */
void head_forget_database(Oid database);

} // namespace querator

