/*
 * The per-database background worker: runs maintenance rounds and sleeps
 * until the earliest deadline, its latch (set after commit by a backend that
 * created an earlier deadline) or querator.worker_idle_interval. Errors are
 * reported, the transaction aborted, and the loop goes on.
 */
#include "error.hpp"
#include "maintenance.hpp"
#include "settings.hpp"
#include "worker_state.hpp"

extern "C" {
#include "access/xlog.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/wait_event.h"

PGDLLEXPORT void querator_worker_main(Datum main_arg);
}

namespace {

Oid served_database = InvalidOid;
bool announced = false; /* logged "started": the database has the extension */
querator::RoundResult last_round; /* static storage: the boundary below leaves it trivially */

/* Runs one round behind the C++/PostgreSQL boundary: an exception becomes an ERROR. */
void
run_round()
{
	querator::sql_entry([] {
		last_round = querator::maintenance_round();
		return (Datum) 0;
	});
}

void
on_worker_exit(int, Datum)
{
	querator::worker_detach(served_database, false);
	if (announced)
		elog(LOG, "querator worker stopping");
}

/* How long to sleep after a round, in milliseconds. */
long
sleep_after(const querator::RoundResult &round)
{
	long idle_ms = querator::worker_idle_interval * 1000L;
	if (!round.next_deadline)
		return idle_ms;
	long secs = 0;
	int usecs = 0;
	TimestampDifference(GetCurrentTimestamp(), *round.next_deadline, &secs, &usecs);
	long ms = secs * 1000L + (usecs + 999) / 1000;
	/* Due but skipped (its row is locked by a running transaction): retry soon, without spinning. */
	if (ms == 0 && !round.made_progress)
		ms = 100;
	return std::min(ms, idle_ms);
}

} // namespace

void
querator_worker_main(Datum main_arg)
{
	served_database = DatumGetObjectId(main_arg);
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(served_database, InvalidOid, 0);
	pgstat_report_appname("querator worker");
	if (!querator::worker_attach(served_database))
		proc_exit(0); /* another worker already serves this database */
	before_shmem_exit(on_worker_exit, (Datum) 0);

	sigjmp_buf recover;
	if (sigsetjmp(recover, 1) != 0)
	{
		/* An error in a round: report it, abort the transaction, pause, go on. */
		error_context_stack = nullptr;
		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortCurrentTransaction();
		FlushErrorState();
		MemoryContextSwitchTo(TopMemoryContext);
		RESUME_INTERRUPTS();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000L, PG_WAIT_EXTENSION);
	}
	PG_exception_stack = &recover;

	for (;;)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		long sleep_ms = 1000L;
		/* A standby has nothing to do: wait quietly until promoted. */
		if (!RecoveryInProgress())
		{
			pgstat_report_activity(STATE_RUNNING, "querator maintenance round");
			run_round();
			pgstat_report_activity(STATE_IDLE, nullptr);
			if (!last_round.extension_present)
			{
				/* Not installed here (a probe), or DROP EXTENSION: leave until CREATE EXTENSION asks again. */
				querator::worker_detach(served_database, true);
				proc_exit(0);
			}
			if (!announced)
			{
				announced = true;
				elog(LOG, "querator worker started");
			}
			querator::worker_publish_round(served_database, last_round.next_deadline, last_round.counters);
			sleep_ms = sleep_after(last_round);
		}
		if (sleep_ms > 0)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms, PG_WAIT_EXTENSION);
	}
}
