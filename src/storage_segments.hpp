/*
 * The segments of a partition (docs/design.md, "Segments"): its items and
 * leases live in N child tables of qQ_pP_items / qQ_pP_leases (qQ_pP_items_s0
 * ...). SQL that reads, deletes or updates names the parent and reaches
 * every segment; inserts name the segment of the writer's registration
 * (partition_head.hpp keeps the ring); the hot path opens only the segments
 * it needs. The worker starts new segments and empties drained ones with
 * TRUNCATE. Nothing outside the storage modules includes this.
 */
#pragma once

#include "commit_effects.hpp"
#include "partition_head.hpp"
#include "storage_am.hpp"

#include <string>
#include <vector>

namespace querator {

/* The partition's ring, read from its tables once after startup (count 0: not split into segments yet). */
RingView segment_ring(int32 queue_id, int partition);
/*
 * Registers the transaction (commit_effects.hpp) and returns the segment it
 * inserts into, recorded in its registration (-1: not split). A leaser
 * inserts nothing and records nothing.
 */
int writer_segment(int32 queue_id, int partition, HeadRole role = HeadRole::writer);
/* writer_segment as the quoted name of the items table an INSERT statement names. */
std::string insert_target(int32 queue_id, int partition);
/* After inserting `count` items into the current segment: wakes the worker when a rotation is due. */
void note_inserted(int32 queue_id, int partition, uint64 count);
/* The segments that may hold ids >= from, in the order of their ids: what a lease walks. */
std::vector<SegmentTables> segments_from(const RingView &ring, int32 queue_id, int partition, int64 from);
/* Every segment that may hold any item, for complete: lookups by id. */
std::vector<SegmentTables> segments_all(const RingView &ring, int32 queue_id, int partition);
/* Each segment's table of `kind` (items, leases) that exists, whatever the ring says: statistics, deadlines. */
std::vector<std::string> segment_relnames(int32 queue_id, int partition, const char *kind);

/* CREATE of a partition's items and leases tables with `count` segments each. */
std::string segments_create_sql(int32 queue_id, int partition, int count);
/* The partition's items and leases tables with their segments, quoted, comma-separated: for DROP and LOCK. */
std::string segments_drop_list(int32 queue_id, int partition);

/*
 * The worker's upkeep of one flagged partition, in the caller's
 * transaction: starts the next segment when the current one is due, and
 * empties with TRUNCATE the segments that no writer can reach and that hold
 * no item any more, without waiting for a lock. Returns true when something
 * is left to retry later (a segment still busy or not yet drained).
 */
bool segments_upkeep(int32 queue_id, int partition);

} // namespace querator
