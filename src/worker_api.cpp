/* SQL entry points about the background worker: worker_status() and the CREATE EXTENSION hook. */
#include "arguments.hpp"
#include "error.hpp"
#include "queue_ops.hpp"
#include "spi.hpp"
#include "worker_state.hpp"

extern "C" {
#include "commands/dbcommands.h"
}

namespace querator {

namespace {

Datum
worker_status(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *out = begin_set_result(fcinfo);
	for (const WorkerStatus &s : worker_status_all())
	{
		const char *name = pg_guard([&] { return static_cast<const char *>(get_database_name(s.database)); });
		if (name == nullptr || !s.wanted)
			continue; /* dropped, or a database without querator */
		Datum values[11];
		bool nulls[11] = {};
		values[0] = pg_guard([&] { return CStringGetTextDatum(name); });
		values[1] = BoolGetDatum(s.pid != 0);
		values[2] = Int32GetDatum(s.pid);
		nulls[2] = s.pid == 0;
		values[3] = TimestampTzGetDatum(s.started_at);
		nulls[3] = s.started_at == 0;
		values[4] = TimestampTzGetDatum(s.last_run);
		nulls[4] = s.last_run == 0;
		values[5] = TimestampTzGetDatum(s.next_wakeup);
		nulls[5] = s.next_wakeup == 0 || TIMESTAMP_IS_NOEND(s.next_wakeup);
		values[6] = Int64GetDatum(static_cast<int64>(s.counters.rounds));
		values[7] = Int64GetDatum(static_cast<int64>(s.counters.expired_leases));
		values[8] = Int64GetDatum(static_cast<int64>(s.counters.promoted));
		values[9] = Int64GetDatum(static_cast<int64>(s.counters.expired_items));
		values[10] = Int64GetDatum(static_cast<int64>(s.counters.dead_lettered));
		put_result_row(out, values, nulls);
	}
	return (Datum) 0;
}

Datum
request_worker(FunctionCallInfo fcinfo)
{
	extension_created();
	/* Said here, before the commit: its callback may find the same and must stay silent (the launcher logs it). */
	if (!launcher_has_room_for_this_database())
		pg_guard([] {
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("querator serves at most %d databases per server: this one will have no worker",
							kMaxServedDatabases),
					 errdetail("Without a worker, expired leases and scheduled items of this database are not handled."),
					 errhint("%s", kDatabaseSlotsHint)));
		});
	PG_RETURN_VOID();
}

} // namespace

} // namespace querator

QUERATOR_SQL_FUNCTION(querator_worker_status, querator::worker_status(fcinfo));
QUERATOR_SQL_FUNCTION(querator_request_worker, querator::request_worker(fcinfo));
