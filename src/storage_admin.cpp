/* Storage for operations; see storage_admin.hpp. */
#include "storage_admin.hpp"
#include "commit_effects.hpp"
#include "error.hpp"
#include "spi.hpp"
#include "storage_sql.hpp"

extern "C" {
#include "catalog/namespace.h"
}

namespace querator {

namespace {

/*
 * Row count of a table: exact up to 100,000 rows, above that the planner's
 * estimate (reltuples scaled to the table's current size), so statistics
 * never scan a large table.
 */
const char *const kRowCount =
	"(SELECT CASE WHEN e.estimate < 100000 THEN (SELECT count(*) FROM {table}) ELSE e.estimate::bigint END "
	" FROM (SELECT CASE WHEN c.relpages > 0 AND c.reltuples >= 0 "
	"              THEN c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::float8) "
	"              ELSE pg_relation_size(c.oid) / 160.0 END AS estimate "
	"       FROM pg_class c WHERE c.oid = '{table}'::regclass) e)";

std::string
row_count(const char *table)
{
	return render(kRowCount, {{"table", table}});
}

std::optional<Interval>
optional_interval(uint64 row, int col)
{
	if (spi_is_null(row, col))
		return std::nullopt;
	return spi_get_interval(row, col);
}

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
	head_register(queue_id, partition); /* deletes unleased items: a rollback brings them back */
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
		"INSERT INTO {items} (id, attempts, created_at, expire_deadline, source_id, source_queue, last_error,"
		"  origin_id, kind, reference, encoding, payload) "
		"SELECT $3 | nextval({seq}), 0, created_at, now() + $6, source_id, source_queue, last_error,"
		"  coalesce(origin_id, id), kind, reference, encoding, payload FROM moved ORDER BY id";
	std::vector<SqlParam> params = filter_params(ids, dead_before);
	params.push_back(param_int64(partition_bits(partition)));
	params.push_back(param_int32(partitions));
	params.push_back(param_int32(partition));
	params.push_back(param_interval(expire_timeout ? &*expire_timeout : nullptr));
	head_register(queue_id, partition);
	return spi_run(render_partition(sql, queue_id, partition), params);
}

uint64
storage_redrive_to_source(int32 dead_queue_id, int dead_partition, int32 source_queue_id, int source_partition,
						  const std::optional<std::vector<int64>> &ids, std::optional<TimestampTz> dead_before,
						  const std::optional<Interval> &expire_timeout)
{
	/* Unleased items only: a consumer of the dead queue may be working on the others. Lock order: items first. */
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
		{{"target_items", partition_table(source_queue_id, source_partition, "items")},
		 {"target_seq", sequence_literal(source_queue_id)}});
	std::vector<SqlParam> params = filter_params(ids, dead_before);
	params.push_back(param_int64(partition_bits(source_partition)));
	params.push_back(param_int32(source_queue_id));
	params.push_back(param_interval(expire_timeout ? &*expire_timeout : nullptr));
	head_register(source_queue_id, source_partition);
	head_register(dead_queue_id, dead_partition); /* deletes unleased items there */
	return spi_run(render_partition(sql, dead_queue_id, dead_partition), params);
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

std::vector<QueueTable>
storage_queue_tables(int32 queue_id, int partitions)
{
	/* By name in the schema's OID: no search_path is involved. */
	const Oid schema = pg_guard([] { return get_namespace_oid("querator_data", false); });
	auto lookup = [&](const std::string &relname) {
		const char *name = relname.c_str();
		return pg_guard([&] { return get_relname_relid(name, schema); });
	};
	std::vector<QueueTable> tables;
	for (int p = 0; p < partitions; p++)
		for (const char *kind : {"items", "leases", "scheduled"})
			tables.push_back(QueueTable{p, kind, lookup(partition_relname(queue_id, p, kind))});
	tables.push_back(QueueTable{std::nullopt, "dead", lookup(dead_relname(queue_id))});
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
	std::string sql = std::string("SELECT ") + row_count("{items}") + ", " + row_count("{leases}") + ", " +
					  row_count("{scheduled}") + ", " +
					  "(SELECT CASE WHEN $2 = 1 OR d.n >= 100000 THEN d.n / $2 "
					  "        ELSE (SELECT count(*) FROM {dead} WHERE partition = $1) END "
					  " FROM (SELECT " + row_count("{dead}") + " AS n) d), "
					  "now() - h.head, now() - (h.head + (h.tail - h.head) / 2), "
					  "(l.first + (l.last - l.first) / 2) - clock_timestamp() "
					  "FROM (SELECT (SELECT created_at FROM {items} ORDER BY id LIMIT 1) AS head,"
					  "             (SELECT created_at FROM {items} ORDER BY id DESC LIMIT 1) AS tail) h,"
					  "     (SELECT (SELECT lease_deadline FROM {leases} ORDER BY id LIMIT 1) AS first,"
					  "             (SELECT lease_deadline FROM {leases} ORDER BY id DESC LIMIT 1) AS last) l";
	spi_run(render_partition(sql, queue_id, partition), {param_int32(partition), param_int32(partitions)}, true);
	PartitionFigures f;
	int64 items = spi_get_int64(0, 1);
	f.leased = spi_get_int64(0, 2);
	f.ready = std::max<int64>(0, items - f.leased);
	f.scheduled = spi_get_int64(0, 3);
	f.dead = spi_get_int64(0, 4);
	f.oldest_age = optional_interval(0, 5);
	f.average_age = optional_interval(0, 6);
	f.average_lease_remaining = optional_interval(0, 7);
	return f;
}

} // namespace querator
