/* The segments of a partition and their upkeep; see storage_segments.hpp and docs/design.md, "Segments". */
#include "storage_segments.hpp"
#include "error.hpp"
#include "settings.hpp"
#include "spi.hpp"
#include "storage_am.hpp"
#include "storage_sql.hpp"
#include "worker_state.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

#include <algorithm>

namespace querator {

namespace {

Oid
data_relation(const std::string &relname)
{
	const char *name = relname.c_str();
	return pg_guard([&] { return get_relname_relid(name, get_namespace_oid("querator_data", false)); });
}

/* Segment tables that exist: s0, s1, ... until one is missing (0: the partition is not split). */
int
segments_in_catalog(int32 queue_id, int partition)
{
	int count = 0;
	while (count < kMaxSegments && OidIsValid(data_relation(segment_relname(queue_id, partition, "items", count))))
		count++;
	return count;
}

/*
 * The ring as the tables show it, after a restart (shared memory is gone,
 * and with it every registration): the segment holding the highest id is
 * current; every other one that holds rows (live or dead) is sealed at its
 * highest id, and may be emptied once drained; empty ones are free.
 */
RingView
ring_from_tables(int32 queue_id, int partition, int count)
{
	RingView ring;
	ring.count = count;
	ring.since = GetCurrentTimestamp();
	int64 highest = -1;
	for (int s = 0; s < count; s++)
	{
		const IdRange range = id_range_of(segment_relname(queue_id, partition, "items", s));
		SegmentBounds &bounds = ring.segments[s];
		bounds.used = range.any;
		if (range.any)
		{
			bounds.lower = range.lowest;
			bounds.upper = range.highest + 1;
			if (range.highest > highest)
			{
				highest = range.highest;
				ring.current = s;
			}
		}
	}
	ring.segments[ring.current].used = true;
	ring.segments[ring.current].upper = kUnsealed;
	return ring;
}

SegmentTables
tables_of(int32 queue_id, int partition, int segment, int64 lower, int64 upper)
{
	return SegmentTables{segment_relname(queue_id, partition, "items", segment),
						 segment_relname(queue_id, partition, "leases", segment), lower, upper};
}

bool
rotation_due(const RingView &ring, TimestampTz now)
{
	return ring.inserted >= static_cast<uint64>(segment_items) ||
		   (ring.inserted > 0 && now - ring.since >= static_cast<int64>(segment_interval_ms) * 1000);
}

/* The free segment that follows the current one in the ring; -1 when every one holds items. */
int
next_free_segment(const RingView &ring)
{
	for (int step = 1; step < ring.count; step++)
	{
		const int s = (ring.current + step) % ring.count;
		if (!ring.segments[s].used)
			return s;
	}
	return -1;
}

struct Rotation
{
	int next;
	int64 lower;
	TimestampTz now;
};

/*
 * Makes `next` current. Writers registered from now on insert there; those
 * registered before keep writing the old current one (their registration
 * names it), which is sealed once they are all gone. `lower` was drawn from
 * the queue's sequence before: every id drawn after it is higher.
 */
bool
apply_rotation(RingView *ring, void *arg)
{
	const Rotation *r = static_cast<const Rotation *>(arg);
	if (ring->segments[r->next].used || !rotation_due(*ring, r->now))
		return false;
	ring->segments[r->next] = SegmentBounds{true, r->lower, kUnsealed, 0};
	ring->current = r->next;
	ring->inserted = 0;
	ring->since = r->now;
	return true;
}

struct SegmentUpdate
{
	int segment;
	SegmentBounds bounds;
};

bool
apply_segment_update(RingView *ring, void *arg)
{
	const SegmentUpdate *u = static_cast<const SegmentUpdate *>(arg);
	if (u->segment == ring->current)
		return false;
	ring->segments[u->segment] = u->bounds;
	return true;
}

/* The ring changed under us only in what other writers do; the worker is the one process that seals and frees. */
void
store_segment(int32 queue_id, int partition, int segment, const SegmentBounds &bounds)
{
	SegmentUpdate update{segment, bounds};
	(void) head_ring_change(queue_id, partition, apply_segment_update, &update);
}

/* Draws an id from the queue's sequence: every id drawn afterwards, by anyone, is higher. */
int64
draw_id(int32 queue_id, int partition)
{
	spi_run("SELECT nextval(" + sequence_literal(queue_id) + ")", {});
	return partition_bits(partition) | spi_get_int64(0, 1);
}

/*
 * Empties a sealed segment that lies wholly below the head, if it holds
 * no live row: true when done, false to try again later (an item is still
 * leased there, or a transaction holds one of its tables). The check
 * resumes where the last one stopped: a row a fresh snapshot does not see
 * was deleted by a committed transaction (or inserted by an aborted one)
 * and stays invisible, and nothing is inserted into a sealed segment, so
 * under a pinned xmin horizon the dead rows of a segment are passed over
 * once, not on every try. The check therefore needs no lock; the lock is
 * for TRUNCATE, and is taken only if free at once.
 */
bool
try_empty_segment(int32 queue_id, int partition, int segment, SegmentBounds *bounds)
{
	const std::string items = segment_relname(queue_id, partition, "items", segment);
	const std::string leases = segment_relname(queue_id, partition, "leases", segment);
	if (const std::optional<int64> live = first_live_id(items, bounds->checked_below))
	{
		bounds->checked_below = *live;
		return false;
	}
	bounds->checked_below = bounds->upper; /* every row in it is dead for good */
	const Oid items_oid = data_relation(items), leases_oid = data_relation(leases);
	const bool locked = pg_guard([&] {
		return ConditionalLockRelationOid(items_oid, AccessExclusiveLock) &&
			   ConditionalLockRelationOid(leases_oid, AccessExclusiveLock);
	});
	if (!locked)
		return false; /* a lock taken goes with the transaction */
	spi_exec_utility("TRUNCATE " + data_object_name(items) + ", " + data_object_name(leases));
	return true;
}

} // namespace

RingView
segment_ring(int32 queue_id, int partition)
{
	RingView ring = head_ring_read(queue_id, partition);
	if (ring.count > 0)
		return ring;
	/*
	 * Before looking for segments: the update to 0.6.0 splits a partition
	 * under ACCESS EXCLUSIVE on its items table, so a process that found no
	 * segments while the update ran would insert into the table itself
	 * after it, where nothing looks any more. The lock waits for the update
	 * and reads the catalog as it committed (it stays to the transaction's
	 * end, as a statement's).
	 */
	const Oid items = data_relation(partition_relname(queue_id, partition, "items"));
	if (OidIsValid(items))
		pg_guard([&] { LockRelationOid(items, AccessShareLock); });
	const int count = segments_in_catalog(queue_id, partition);
	if (count == 0)
		return ring;
	const RingView derived = ring_from_tables(queue_id, partition, count);
	head_ring_install(queue_id, partition, derived);
	ring = head_ring_read(queue_id, partition);
	/* No shared entry (querator.max_tracked_partitions is full): the tables' view, which never rotates. */
	return ring.count > 0 ? ring : derived;
}

int
writer_segment(int32 queue_id, int partition, HeadRole role)
{
	const RingView ring = segment_ring(queue_id, partition); /* before registering: the registration names segments */
	head_register(queue_id, partition, role);
	if (ring.count == 0)
		return -1;
	if (role == HeadRole::leaser)
		return ring.current; /* inserts no item: records nothing */
	const int segment = head_writer_segment(queue_id, partition);
	return segment >= 0 ? segment : ring.current; /* no shared entry: the ring never rotates */
}

std::string
insert_target(int32 queue_id, int partition)
{
	return data_object_name(segment_relname(queue_id, partition, "items", writer_segment(queue_id, partition)));
}

void
note_inserted(int32 queue_id, int partition, uint64 count)
{
	if (head_ring_inserted(queue_id, partition, count))
		worker_wake_before(GetCurrentTimestamp()); /* a rotation is due */
}

std::vector<SegmentTables>
segments_from(const RingView &ring, int32 queue_id, int partition, int64 from)
{
	std::vector<SegmentTables> walk;
	if (ring.count == 0)
	{
		walk.push_back(tables_of(queue_id, partition, -1, 0, kUnsealed));
		return walk;
	}
	for (int s = 0; s < ring.count; s++)
	{
		const SegmentBounds &b = ring.segments[s];
		if (b.used && b.upper > from) /* one wholly below the walk's start is never opened */
			walk.push_back(tables_of(queue_id, partition, s, b.lower, b.upper));
	}
	std::sort(walk.begin(), walk.end(), [](const SegmentTables &a, const SegmentTables &b) { return a.lower < b.lower; });
	return walk;
}

std::vector<SegmentTables>
segments_all(const RingView &ring, int32 queue_id, int partition)
{
	return segments_from(ring, queue_id, partition, 0);
}

std::vector<std::string>
segment_relnames(int32 queue_id, int partition, const char *kind)
{
	const int count = segments_in_catalog(queue_id, partition);
	std::vector<std::string> names;
	if (count == 0)
		names.push_back(partition_relname(queue_id, partition, kind));
	for (int s = 0; s < count; s++)
		names.push_back(segment_relname(queue_id, partition, kind, s));
	return names;
}

std::string
segments_create_sql(int32 queue_id, int partition, int count)
{
	std::string sql;
	for (const char *kind : {"items", "leases"})
	{
		const std::string parent = partition_table(queue_id, partition, kind);
		sql += "CREATE TABLE " + parent + " (LIKE querator_data." + kind + "_template INCLUDING ALL);";
		for (int s = 0; s < count; s++)
		{
			const std::string child = data_object_name(segment_relname(queue_id, partition, kind, s));
			sql += "CREATE TABLE " + child + " (LIKE querator_data." + kind + "_template INCLUDING ALL);" +
				   "ALTER TABLE " + child + " INHERIT " + parent + ";";
		}
	}
	return sql;
}

std::string
segments_drop_list(int32 queue_id, int partition)
{
	std::string list;
	for (const char *kind : {"items", "leases"})
	{
		const std::string parent = partition_relname(queue_id, partition, kind);
		for (const std::string &child : segment_relnames(queue_id, partition, kind))
			if (child != parent)
				list += data_object_name(child) + ", ";
		list += data_object_name(parent) + (std::string(kind) == "items" ? ", " : "");
	}
	return list;
}

bool
segments_upkeep(int32 queue_id, int partition)
{
	RingView ring = segment_ring(queue_id, partition);
	if (ring.count == 0)
		return false;
	bool retry = false;
	const TimestampTz now = GetCurrentTimestamp();
	if (rotation_due(ring, now))
	{
		if (const int next = next_free_segment(ring); next >= 0)
		{
			Rotation rotation{next, draw_id(queue_id, partition), now};
			(void) head_ring_change(queue_id, partition, apply_rotation, &rotation);
			ring = head_ring_read(queue_id, partition);
		}
		else
			retry = true; /* every segment holds items: the current one grows until one drains */
	}
	for (int s = 0; s < ring.count; s++)
	{
		SegmentBounds bounds = ring.segments[s];
		if (s == ring.current || !bounds.used)
			continue;
		if (bounds.upper == kUnsealed)
		{
			/* Sealed once no registered writer can insert into it: its highest id so far bounds it for good. */
			if (ring.writers[s] > 0 || ring.frozen)
			{
				retry = true;
				continue;
			}
			const IdRange range = id_range_of(segment_relname(queue_id, partition, "items", s));
			bounds.upper = range.any ? range.highest + 1 : bounds.lower;
			store_segment(queue_id, partition, s, bounds);
		}
		if (bounds.upper > ring.head)
		{
			retry = true; /* leases still walk it; the head passes it once its items are all taken */
			continue;
		}
		if (try_empty_segment(queue_id, partition, s, &bounds))
			bounds = SegmentBounds{};
		else
			retry = true;
		store_segment(queue_id, partition, s, bounds);
	}
	return retry;
}

} // namespace querator
