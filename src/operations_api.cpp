/* SQL entry points for operations: queue_clear, queue_redrive, queue_stats, queue_tables, storage_items_delete. */
#include "access.hpp"
#include "arguments.hpp"
#include "catalog.hpp"
#include "error.hpp"
#include "partition_estimates.hpp"
#include "queue_ops.hpp"
#include "spi.hpp"
#include "storage_admin.hpp"
#include "validation.hpp"

namespace querator {

namespace {

Datum
queue_clear(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	bool ready = arg_bool(fcinfo, 1).value_or(true);
	bool scheduled = arg_bool(fcinfo, 2).value_or(false);
	bool destructive = arg_bool(fcinfo, 3).value_or(false);
	SpiConnection spi;
	QueueDef queue = catalog_get(name);
	require_privilege(queue, Privilege::admin);
	uint64 total = clear_queue(queue, ready, scheduled, destructive);
	spi.finish();
	PG_RETURN_INT64(static_cast<int64>(total));
}

Datum
queue_redrive(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	std::optional<std::vector<int64>> ids = arg_ids(fcinfo, 1, "ids", NullIds::all);
	std::optional<TimestampTz> dead_before = arg_timestamptz(fcinfo, 2);
	SpiConnection spi;
	QueueDef queue = catalog_get(name);
	require_privilege(queue, Privilege::admin);
	RedriveOutcome outcome = redrive_queue(queue, ids, dead_before);
	if (outcome.kept_for_privilege)
		report_notice("items kept in '" + name + "'; some came from queues the role may not produce to and stay here");
	spi.finish();
	PG_RETURN_INT64(static_cast<int64>(outcome.moved));
}

Datum
storage_items_delete(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	std::optional<std::vector<int64>> ids = arg_ids(fcinfo, 1, "ids", NullIds::refused);
	SpiConnection spi;
	QueueDef queue = catalog_get(name);
	require_privilege(queue, Privilege::admin);
	uint64 deleted = delete_items(queue, *ids);
	spi.finish();
	PG_RETURN_INT64(static_cast<int64>(deleted));
}

/* An optional interval as a datum (NULL when empty), for a result row. */
Datum
interval_or_null(const std::optional<Interval> &value, bool *is_null)
{
	SqlParam p = param_interval(value ? &*value : nullptr);
	*is_null = p.is_null;
	return p.value;
}

Datum
queue_stats(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	ReturnSetInfo *out = begin_set_result(fcinfo);
	SpiConnection spi;
	QueueDef queue = catalog_get(name);
	require_visibility(queue);
	std::vector<PartitionCounters> counters = counters_read(queue.id, queue.partitions);
	Datum name_datum = param_text(queue.name).value;
	for (int p = 0; p < queue.partitions; p++)
	{
		PartitionFigures f = storage_partition_figures(queue.id, p, queue.partitions);
		Datum values[17];
		bool nulls[17] = {};
		values[0] = name_datum;
		values[1] = Int32GetDatum(p);
		values[2] = Int64GetDatum(f.total);
		values[3] = Int64GetDatum(f.leased);
		values[4] = Int64GetDatum(f.scheduled);
		values[5] = Int64GetDatum(f.dead);
		values[6] = interval_or_null(f.oldest_age, &nulls[6]);
		values[7] = interval_or_null(f.average_age, &nulls[7]);
		values[8] = interval_or_null(f.average_lease_remaining, &nulls[8]);
		values[9] = BoolGetDatum(queue.paused);
		for (int c = 0; c < kCounterCount; c++)
			values[10 + c] = Int64GetDatum(counters[p].values[c]);
		put_result_row(out, values, nulls);
	}
	spi.finish();
	return (Datum) 0;
}

/* queue_tables(queue_name): the tables to VACUUM or inspect, named from the queue's name. */
Datum
queue_tables(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	ReturnSetInfo *out = begin_set_result(fcinfo);
	SpiConnection spi;
	QueueDef queue = catalog_get(name);
	require_visibility(queue);
	for (const QueueTable &t : storage_queue_tables(queue.id, queue.partitions))
	{
		Datum values[3];
		bool nulls[3] = {};
		values[0] = Int32GetDatum(t.partition.value_or(0));
		nulls[0] = !t.partition;
		values[1] = param_text(t.kind).value;
		values[2] = ObjectIdGetDatum(t.table);
		nulls[2] = t.table == InvalidOid;
		put_result_row(out, values, nulls);
	}
	spi.finish();
	return (Datum) 0;
}

} // namespace

} // namespace querator

QUERATOR_SQL_FUNCTION(querator_queue_clear, querator::queue_clear(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queue_redrive, querator::queue_redrive(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queue_stats, querator::queue_stats(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queue_tables, querator::queue_tables(fcinfo));
QUERATOR_SQL_FUNCTION(querator_storage_items_delete, querator::storage_items_delete(fcinfo));
