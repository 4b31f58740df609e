/* Storage for operations; see storage_admin.hpp. */
#include "storage_admin.hpp"
#include "commit_effects.hpp"
#include "error.hpp"
#include "spi.hpp"
#include "storage_am.hpp"
#include "storage_segments.hpp"
#include "storage_sql.hpp"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
}

#include <algorithm>
#include <cmath>

namespace querator {

namespace {

std::vector<SqlParam>
filter_params(const std::optional<std::vector<int64>> &ids, std::optional<TimestampTz> before)
{
	return {ids ? param_int64_array(*ids) : param_datum(INT8ARRAYOID, 0, true),
			param_timestamptz(before ? &*before : nullptr)};
}

} // namespace

ClearCounts
storage_clear_partition(int32 queue_id, int partition, bool ready, bool scheduled, bool destructive)
{
	ClearCounts counts;
	(void) writer_segment(queue_id, partition); /* deletes unleased items: a rollback brings them back */
	if (destructive)
	{
		/*
		 * Item rows first, then lease rows: the lock order of every
		 * statement. The condition on `gone` makes the lease delete wait
		 * for the item delete to finish; without it the lease rows went
		 * first (the executor runs a CTE when its result is first read) and
		 * the clear deadlocked with a complete (clear_lock_order.spec).
		 */
		spi_run(render_partition("WITH gone AS (DELETE FROM {items} RETURNING id), "
								 "released AS (DELETE FROM {leases} WHERE (SELECT count(*) FROM gone) >= 0 RETURNING id) "
								 "SELECT (SELECT count(*) FROM released), (SELECT count(*) FROM gone)",
								 queue_id, partition),
				{});
		counts.leased = static_cast<uint64>(spi_get_int64(0, 1));
		counts.ready = static_cast<uint64>(spi_get_int64(0, 2)) - counts.leased;
	}
	else if (ready)
		counts.ready = spi_run(render_partition("DELETE FROM {items} i WHERE NOT EXISTS "
												"(SELECT 1 FROM {leases} l WHERE l.id = i.id OFFSET 0)",
												queue_id, partition),
							   {});
	if (scheduled)
		counts.scheduled = spi_run(render_partition("DELETE FROM {scheduled}", queue_id, partition), {});
	return counts;
}

DeletedItems
storage_delete_items(int32 queue_id, int partition, const std::vector<int64> &ids)
{
	DeletedItems deleted;
	(void) writer_segment(queue_id, partition); /* deletes unleased items: a rollback brings them back */
	/* Item rows before lease rows, as in storage_clear_partition: the lock order of every statement. */
	const uint64 rows = spi_run(
		render_partition("WITH gone AS (DELETE FROM {items} WHERE id = ANY ($1) RETURNING id), "
						 "released AS (DELETE FROM {leases} WHERE id = ANY ($1) AND (SELECT count(*) FROM gone) >= 0 "
						 "RETURNING id), "
						 "unscheduled AS (DELETE FROM {scheduled} WHERE id = ANY ($1) RETURNING id) "
						 "SELECT g.id, l.id IS NULL FROM gone g LEFT JOIN released l USING (id) "
						 "UNION ALL SELECT id, false FROM unscheduled",
						 queue_id, partition),
		{param_int64_array(ids)});
	for (uint64 row = 0; row < rows; row++)
	{
		deleted.ids.push_back(spi_get_int64(row, 1));
		deleted.ready += spi_get_bool(row, 2) ? 1 : 0;
	}
	return deleted;
}

uint64
storage_redrive_dead(int32 queue_id, int partition, int partitions, const std::optional<std::vector<int64>> &ids,
					 std::optional<TimestampTz> dead_before, const std::optional<Interval> &expire_timeout)
{
	/* Dead letters of a partition that no longer exists go to partition 0. */
	const char *sql =
		"WITH moved AS ("
		"  DELETE FROM {dead} WHERE ($1::bigint[] IS NULL OR id = ANY ($1)) AND ($2::timestamptz IS NULL OR dead_at < $2)"
		"    AND (CASE WHEN partition < $4 THEN partition ELSE 0 END) = $5"
		"  RETURNING *) "
		"INSERT INTO {segment} (id, attempts, created_at, expire_deadline, source_id, source_queue, last_error,"
		"  origin_id, kind, reference, encoding, payload) "
		"SELECT $3 | nextval({seq}), 0, created_at, now() + $6, source_id, source_queue, last_error,"
		"  coalesce(origin_id, id), kind, reference, encoding, payload FROM moved ORDER BY id";
	std::vector<SqlParam> params = filter_params(ids, dead_before);
	params.push_back(param_int64(partition_bits(partition)));
	params.push_back(param_int32(partitions));
	params.push_back(param_int32(partition));
	params.push_back(param_interval(expire_timeout ? &*expire_timeout : nullptr));
	const std::string segment = insert_target(queue_id, partition);
	const uint64 moved = spi_run(render_partition(render(sql, {{"segment", segment}}), queue_id, partition), params);
	note_inserted(queue_id, partition, moved);
	return moved;
}

uint64
storage_redrive_to_source(int32 dead_queue_id, int dead_partition, int32 source_queue_id, int source_partition,
						  const std::optional<std::vector<int64>> &ids, std::optional<TimestampTz> dead_before,
						  const std::optional<Interval> &expire_timeout)
{
	/* Unleased items only: a consumer of the dead queue may be working on the others. Lock order: items first. */
	const std::string target_segment = insert_target(source_queue_id, source_partition);
	(void) writer_segment(dead_queue_id, dead_partition); /* deletes unleased items there */
	std::string sql = render(
		"WITH moved AS ("
		"  DELETE FROM {items} i WHERE i.source_queue = $4 AND ($1::bigint[] IS NULL OR i.id = ANY ($1))"
		"    AND ($2::timestamptz IS NULL OR i.created_at < $2)"
		"    AND NOT EXISTS (SELECT 1 FROM {leases} l WHERE l.id = i.id OFFSET 0)"
		"  RETURNING *) "
		"INSERT INTO {target_items} (id, attempts, created_at, expire_deadline, source_id, source_queue, last_error,"
		"  kind, reference, encoding, payload) "
		"SELECT $3 | nextval({target_seq}), 0, created_at, now() + $5, NULL, NULL, last_error, kind, reference,"
		"  encoding, payload FROM moved ORDER BY id",
		{{"target_items", target_segment},
		 {"target_seq", sequence_literal(source_queue_id)}});
	std::vector<SqlParam> params = filter_params(ids, dead_before);
	params.push_back(param_int64(partition_bits(source_partition)));
	params.push_back(param_int32(source_queue_id));
	params.push_back(param_interval(expire_timeout ? &*expire_timeout : nullptr));
	const uint64 moved = spi_run(render_partition(sql, dead_queue_id, dead_partition), params);
	note_inserted(source_queue_id, source_partition, moved);
	return moved;
}

std::vector<int64>
storage_dead_letter_ids(int32 queue_id, int partitions, const std::vector<int64> &ids)
{
	/* Not read-only, as storage_existing_ids: a fresh snapshot sees a redrive we waited for. */
	spi_run(render_partition("SELECT id FROM {dead} WHERE id = ANY ($1)", queue_id, 0), {param_int64_array(ids)}, false);
	std::vector<int64> found = collect_int64_column();
	for (int p = 0; p < partitions; p++)
	{
		spi_run(render_partition("SELECT id FROM {items} WHERE id = ANY ($1) AND source_queue IS NOT NULL", queue_id, p),
				{param_int64_array(ids)}, false);
		for (int64 id : collect_int64_column())
			found.push_back(id);
	}
	return found;
}

std::vector<int32>
storage_source_queues(int32 dead_queue_id, int partition)
{
	uint64 n = spi_run(render_partition("SELECT DISTINCT source_queue FROM {items} WHERE source_queue IS NOT NULL",
										dead_queue_id, partition),
					   {}, true);
	std::vector<int32> ids;
	for (uint64 i = 0; i < n; i++)
		ids.push_back(spi_get_int32(i, 1));
	return ids;
}

namespace {

/* A table of querator_data by name, in the schema's OID: no search_path is involved. InvalidOid if missing. */
Oid
data_table_oid(const std::string &relname)
{
	const char *name = relname.c_str();
	return pg_guard([&] { return get_relname_relid(name, get_namespace_oid("querator_data", false)); });
}

/*
 * The statistics read tables through the access methods, not through SQL:
 * a statement names one queue's tables, so each was planned anew for each
 * partition (4 ms; the stats view over 1,000 queues took 3.5 s, 44% of it
 * in the planner). Plain C below, called inside one pg_guard: it creates no
 * C++ object, and what it opens is closed by the transaction's resource
 * owner if it raises.
 */
constexpr double kExactCountBelow = 100000;

struct RawTableFigures
{
	int64 rows;
	bool has_first; /* first and last: the timestamp column of the first and last row in primary key order */
	TimestampTz first;
	TimestampTz last;
};

/* Rows visible to `snapshot`; with `filter` set, only those whose int4 column `filter` equals `value`. */
int64
count_rows(Relation rel, Snapshot snapshot, AttrNumber filter, int32 value)
{
	int64 rows = 0;
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool is_null = true;
		if (filter == InvalidAttrNumber || DatumGetInt32(slot_getattr(slot, filter, &is_null)) == value)
			rows++;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return rows;
}

/* The timestamp `column` of the first row in primary key order, in `direction`; false when there is none. */
bool
primary_key_endpoint(Relation rel, Relation pk, Snapshot snapshot, ScanDirection direction, AttrNumber column,
					 TimestampTz *out)
{
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan = index_beginscan(rel, pk, snapshot, 0, 0);
	index_rescan(scan, NULL, 0, NULL, 0);
	bool found = index_getnext_slot(scan, direction, slot);
	if (found)
	{
		bool is_null = true;
		Datum d = slot_getattr(slot, column, &is_null);
		found = !is_null;
		if (found)
			*out = DatumGetTimestampTz(d);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return found;
}

/*
 * Rows of a table (exact below kExactCountBelow rows by the planner's
 * estimate, the estimate above: reltuples scaled to the table's current
 * size, as the planner does) and, for `endpoint_column`, its value in the
 * first and last row by primary key. With `partitions` > 1 the rows are
 * those of `partition` (the dead letters: one table per queue). An empty
 * file is read no further (an idle queue's tables, and no index opened).
 */
void
read_table_figures(Oid table, const char *endpoint_column, int partition, int partitions, RawTableFigures *out)
{
	*out = RawTableFigures{};
	if (table == InvalidOid)
		elog(ERROR, "querator: a table of the queue is missing");
	Relation rel = table_open(table, AccessShareLock);
	const BlockNumber blocks = RelationGetNumberOfBlocks(rel);
	if (blocks > 0)
	{
		Snapshot snapshot = GetActiveSnapshot();
		const double estimate = rel->rd_rel->relpages > 0 && rel->rd_rel->reltuples >= 0
									? rel->rd_rel->reltuples / rel->rd_rel->relpages * blocks
									: blocks * static_cast<double>(BLCKSZ) / 160.0;
		if (estimate >= kExactCountBelow)
			out->rows = std::llround(estimate) / partitions;
		else
			out->rows = count_rows(rel, snapshot, partitions > 1 ? column_number(rel, "partition") : InvalidAttrNumber,
								   partition);
		if (endpoint_column != nullptr)
		{
			AttrNumber column = column_number(rel, endpoint_column);
			Relation pk = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
			out->has_first = primary_key_endpoint(rel, pk, snapshot, ForwardScanDirection, column, &out->first);
			if (out->has_first)
				primary_key_endpoint(rel, pk, snapshot, BackwardScanDirection, column, &out->last);
			index_close(pk, AccessShareLock);
		}
	}
	/*
	 * Locks released at once, as pg_relation_size does: the view over 10,000
	 * queues held 40,000 table locks to its end and ran out of shared memory
	 * for them (max_locks_per_transaction 64). A figure read from a table
	 * that changes right after is what a statistic is anyway.
	 */
	table_close(rel, AccessShareLock);
}

/* read_table_figures over a partition's segments: rows added up, the earliest first and latest last. */
void
read_segments_figures(const std::vector<Oid> &segments, const char *endpoint_column, RawTableFigures *out)
{
	*out = RawTableFigures{};
	for (Oid segment : segments)
	{
		RawTableFigures f;
		read_table_figures(segment, endpoint_column, 0, 1, &f);
		out->rows += f.rows;
		if (f.has_first)
		{
			out->first = out->has_first ? std::min(out->first, f.first) : f.first;
			out->last = out->has_first ? std::max(out->last, f.last) : f.last;
			out->has_first = true;
		}
	}
}

/* a - b as PostgreSQL's timestamptz subtraction gives it (hours past 24 shown as days). */
Interval
timestamp_difference(TimestampTz a, TimestampTz b)
{
	return pg_guard([&] {
		return *DatumGetIntervalP(DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(a), TimestampTzGetDatum(b)));
	});
}

TimestampTz
midpoint(TimestampTz first, TimestampTz last)
{
	return first + (last - first) / 2;
}

} // namespace

std::vector<QueueTable>
storage_queue_tables(int32 queue_id, int partitions)
{
	std::vector<QueueTable> tables;
	for (int p = 0; p < partitions; p++)
	{
		/* The items and leases tables, then their segments, which hold the rows (docs/design.md, "Segments"). */
		for (const char *kind : {"items", "leases"})
		{
			const std::string table = partition_relname(queue_id, p, kind);
			tables.push_back(QueueTable{p, kind, data_table_oid(table)});
			for (const std::string &segment : segment_relnames(queue_id, p, kind))
				if (segment != table)
					tables.push_back(QueueTable{p, kind, data_table_oid(segment)});
		}
		tables.push_back(QueueTable{p, "scheduled", data_table_oid(partition_relname(queue_id, p, "scheduled"))});
	}
	tables.push_back(QueueTable{std::nullopt, "dead", data_table_oid(dead_relname(queue_id))});
	return tables;
}

PartitionFigures
storage_partition_figures(int32 queue_id, int partition, int partitions)
{
	/*
	 * Index endpoints only: the head and tail of the id index give the
	 * oldest item and, by their midpoint, the average age; the deadlines of
	 * the leases of the lowest and highest leased id (leases are taken in id
	 * order) give the average remaining lease the same way. Lease deadlines
	 * have no index (docs/design.md, "Lease deadlines").
	 */
	std::vector<Oid> items, leases;
	for (const std::string &segment : segment_relnames(queue_id, partition, "items"))
		items.push_back(data_table_oid(segment));
	for (const std::string &segment : segment_relnames(queue_id, partition, "leases"))
		leases.push_back(data_table_oid(segment));
	const Oid scheduled = data_table_oid(partition_relname(queue_id, partition, "scheduled"));
	const Oid dead = data_table_oid(dead_relname(queue_id));
	RawTableFigures i, l, s, d;
	pg_guard([&] {
		read_segments_figures(items, "created_at", &i);
		read_segments_figures(leases, "lease_deadline", &l);
		read_table_figures(scheduled, nullptr, 0, 1, &s);
		read_table_figures(dead, nullptr, partition, partitions, &d);
	});
	PartitionFigures f;
	f.leased = l.rows;
	f.total = i.rows; /* a leased item stays in the items table */
	f.scheduled = s.rows;
	f.dead = d.rows;
	if (i.has_first)
	{
		const TimestampTz now = GetCurrentTransactionStartTimestamp();
		f.oldest_age = timestamp_difference(now, i.first);
		f.average_age = timestamp_difference(now, midpoint(i.first, i.last));
	}
	if (l.has_first)
		f.average_lease_remaining = timestamp_difference(midpoint(l.first, l.last), GetCurrentTimestamp());
	return f;
}

} // namespace querator
