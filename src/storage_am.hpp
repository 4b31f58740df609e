/*
 * The item path's hot writes over the index and heap access methods,
 * without planning a statement or starting an executor per call (those
 * were a quarter of a one-item cycle's backend time): produce, the lease
 * claim (which storage.cpp's run_claim drives) and complete. Each does what its SQL
 * statement did, row by row, with the same locks, snapshots and lock order
 * (docs/design.md, "The cycle over the access methods"). The statistics
 * (storage_admin.cpp) read tables over the access methods too. Nothing
 * outside the storage modules includes this.
 */
#pragma once
#include "pg_prelude.hpp"

extern "C" {
#include "utils/rel.h"
}

#include <optional>
#include <string>
#include <vector>

namespace querator {

/*
 * A column's number by name (PostgreSQL calls only: for code under
 * pg_guard). Tables created by an older library may order their columns
 * differently.
 */
AttrNumber column_number(Relation rel, const char *name);

/* One lease granted by a pass: Datums copied into the caller's memory context. */
struct GrantedLease
{
	int64 id;
	int64 origin_id;  /* the id the item was produced with */
	int32 attempts;   /* this lease's attempt */
	TimestampTz lease_deadline;
	TimestampTz created_at;
	Datum kind;       /* text */
	Datum reference;  /* text */
	Datum encoding;   /* text */
	Datum payload;    /* bytea, detoasted */
};

struct ClaimPass
{
	/* Items locked: the granted ones and those whose lease committed after the walk's snapshot. */
	uint64 locked;
	int64 first_locked; /* ids of the first and last locked item (set when locked > 0) */
	int64 last_locked;
	/*
	 * With locked > 0: every item the walk could have met below this id was
	 * leased or gone (the first locked id, or the lowest id a segment it did
	 * not reach may hold, if lower): how far the head may move.
	 */
	int64 proven_below;
	GrantedLease *granted; /* granted_count entries, in id order */
	uint64 granted_count;
};

/* One segment of a partition (storage_segments.hpp): its tables and the ids it may hold, [lower, upper). */
struct SegmentTables
{
	std::string items;  /* unqualified relnames in querator_data */
	std::string leases;
	int64 lower;
	int64 upper;
};

/*
 * One pass of the claim: walks the segments' items in id order from
 * `start`, one segment after the other (`segments` in the order of their
 * ids), skips those leased as its snapshot sees them, locks the others FOR
 * UPDATE SKIP LOCKED until `wanted` are locked, and inserts a lease row for
 * each into the item's segment, except an item whose lease committed after
 * the snapshot. Requires an open SpiConnection.
 */
ClaimPass claim_pass(const std::vector<SegmentTables> &segments, int64 start, int32 wanted,
					 const Interval &lease_timeout, const std::string &client_id);

/*
 * Inserts `count` new items into querator_data.`table` (a segment of the
 * partition's items, or its scheduled table when `enqueue_at` is set), with ids from the queue's
 * sequence, in the order of `payloads`; returns the ids. `payloads` is a
 * bytea[] without NULLs (or a text or json array relabelled as one),
 * `kinds` / `references` text[] of the same length whose NULL elements (or
 * a NULL array) mean ''. Several items go in with one multi-insert, as COPY
 * writes them. Requires an open SpiConnection.
 */
std::vector<int64> insert_items(int32 queue_id, int partition, const std::string &table, Datum payloads, int count, std::optional<Datum> kinds,
								std::optional<Datum> references, const std::string &encoding,
								std::optional<TimestampTz> enqueue_at, std::optional<Interval> expire_timeout);

/*
 * Deletes the leased items among `ids` and their lease rows (the item
 * first, as everywhere: docs/design.md, "Lock order"); returns the ids it
 * completed, in id order. An id is looked up in the segments whose range
 * may hold it, each opened only when needed. Requires an open SpiConnection.
 */
std::vector<int64> complete_leased(const std::vector<SegmentTables> &segments, const std::vector<int64> &ids);

/* The lowest and highest id in a table's primary key, dead rows included (any = false: no entry). */
struct IdRange
{
	bool any = false;
	int64 lowest = 0;
	int64 highest = 0;
};
IdRange id_range_of(const std::string &table);
/* The lowest id >= from of a row of querator_data.`table` that a snapshot taken now sees; nothing if none. */
std::optional<int64> first_live_id(const std::string &table, int64 from);

/*
 * A partition's earliest lease deadline, and its earliest scheduled
 * enqueue_at or item expire_deadline, as a snapshot taken now sees them
 * (the caller's own writes included); nothing when there is none. min()
 * without planning a statement: the worker rescans every partition once
 * after a restart, and with 10,000 queues planning those statements kept
 * its first round busy for 15 s.
 */
std::optional<TimestampTz> earliest_lease_deadline(const std::vector<std::string> &lease_tables);
std::optional<TimestampTz> earliest_item_deadline(const std::vector<std::string> &item_tables,
												  const std::string &scheduled_table);

} // namespace querator
