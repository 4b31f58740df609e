/*
 * The per-database background worker: runs maintenance rounds and sleeps
 * until the earliest deadline, its latch (set after commit by a backend that
 * created an earlier deadline) or querator.worker_idle_interval. Between
 * rounds it delivers webhook items (webhook_delivery.hpp); while transfers
 * are in flight it waits on their sockets in short slices instead of on the
 * latch (see docs/design.md, "Webhook delivery"). Errors are reported, the
 * transaction aborted, and the loop goes on.
 */
#include "error.hpp"
#include "maintenance.hpp"
#include "settings.hpp"
#include "spi.hpp"
#include "time_math.hpp"
#include "webhook_delivery.hpp"
#include "webhook_state.hpp"
#include "worker_state.hpp"

#include <algorithm>

extern "C" {
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/wait_event.h"

PGDLLEXPORT void querator_worker_main(Datum main_arg);
}

namespace {

Oid served_database = InvalidOid;
bool announced = false; /* logged "started": the database has the extension */
querator::RoundResult last_round; /* static storage: the boundary below leaves it trivially */
std::optional<TimestampTz> webhook_deadline; /* the earliest deadline the last webhook cycle created */

/*
 * Longest wait on transfer sockets while transfers are in flight; the latch
 * (a new earlier deadline, SIGTERM, SIGHUP) is checked between slices, so it
 * is noticed this late at most.
 */
constexpr int kTransferSliceMs = 10;

/* Runs one round behind the C++/PostgreSQL boundary: an exception becomes an ERROR. */
void
run_round()
{
	querator::sql_entry([] {
		last_round = querator::maintenance_round();
		return (Datum) 0;
	});
}

/* One webhook cycle behind the same boundary: record finished transfers, lease, start new ones. */
void
run_webhook_cycle()
{
	querator::sql_entry([] {
		webhook_deadline = querator::webhook_cycle();
		return (Datum) 0;
	});
}

void
run_webhook_wait(int timeout_ms)
{
	querator::sql_entry([timeout_ms] {
		querator::webhook_wait(timeout_ms);
		return (Datum) 0;
	});
}

void
on_worker_exit(int, Datum)
{
	querator::webhook_worker_detach();
	querator::worker_detach(served_database, false);
	if (announced)
		elog(LOG, "querator worker stopping");
}

/*
 * True while another session holds this database's lock in a mode that
 * excludes ours: DROP DATABASE (also ALTER DATABASE ... RENAME or SET
 * TABLESPACE), which then waits up to 5 s for the other sessions to leave and
 * fails ("being accessed by other users") if one stays. The worker leaves, so
 * a plain DROP DATABASE succeeds; the launcher starts it again once the
 * database takes workers (a rename or move that ended).
 */
bool
database_change_pending()
{
	LOCKTAG tag;
	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, served_database, 0);
	if (LockAcquire(&tag, AccessShareLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, AccessShareLock, true);
	return false;
}

/* How often the worker looks for a pending DROP DATABASE: well inside the 5 s it waits. */
constexpr long kDatabaseCheckMs = 500;

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
	/*
	 * Due when the round began, yet skipped (its row is locked by a running
	 * transaction): retry soon, without spinning. A deadline that only came
	 * due while the round ran gets the next round at once: backing off for
	 * it held items up to 100 ms past their deadline (expiry p99 125 ms).
	 */
	if (ms == 0 && !round.made_progress && *round.next_deadline <= round.started_at)
		ms = 100;
	return std::min(ms, idle_ms);
}

/*
 * The latch was set: by a backend that committed a deadline earlier than our
 * next round (a lease, a scheduled item; now for DROP EXTENSION), by webhook
 * flags (the webhook cycle reads those each turn of the loop) or by a
 * signal. A round runs when the earliest requested deadline is due, not
 * because we were woken: a lease completed in its own transaction left
 * nothing to expire.
 */
void
take_wake_up(TimestampTz *next_round_at)
{
	ResetLatch(MyLatch); /* before reading: a request that races with us sets it again */
	*next_round_at = std::min(*next_round_at, querator::worker_take_requested_wakeup(served_database));
}

} // namespace

void
querator_worker_main(Datum main_arg)
{
	served_database = DatumGetObjectId(main_arg);
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	/*
	 * Connected as the bootstrap superuser (the extension's owner may not
	 * log in, and is only known once connected); every statement then runs
	 * as that owner (SpiConnection) under the restrictions below.
	 */
	BackgroundWorkerInitializeConnectionByOid(served_database, InvalidOid, 0);
	querator::restrict_background_process();
	pgstat_report_appname("querator worker");
	if (!querator::worker_attach(served_database))
		proc_exit(0); /* another worker already serves this database */
	querator::webhook_worker_attach();
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

	/* Static: kept across the error recovery above. */
	static TimestampTz next_round_at = 0;
	static TimestampTz next_database_check = 0;
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (GetCurrentTimestamp() >= next_database_check)
		{
			if (database_change_pending())
			{
				elog(LOG, "querator worker leaves: DROP DATABASE (or a rename or move) waits for it");
				proc_exit(0); /* on_worker_exit detaches; the launcher may start a worker again later */
			}
			next_database_check = GetCurrentTimestamp() + kDatabaseCheckMs * 1000L;
		}
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		long wait_ms = 1000L;
		/* A standby has nothing to do: wait quietly until promoted. */
		if (!RecoveryInProgress())
		{
			/* Every pass, not only after a wait: while webhook queues are busy the loop may not wait at all. */
			if (MyLatch->is_set)
				take_wake_up(&next_round_at);
			if (GetCurrentTimestamp() >= next_round_at)
			{
				/* Reset before the round: a wake-up that races with it is not lost. */
				ResetLatch(MyLatch);
				pgstat_report_activity(STATE_RUNNING, "querator maintenance round");
				querator::worker_begin_round(served_database);
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
				next_round_at = GetCurrentTimestamp() + sleep_after(last_round) * 1000L;
				/*
				 * Published: when the next round looks at deadlines, never before
				 * next_round_at. A commit wakes the worker only for a deadline
				 * before the published one, so publishing a deadline that was
				 * already due (backing off from a locked row) let every deadline
				 * committed during the 100 ms back-off wait for its end.
				 */
				std::optional<TimestampTz> planned = last_round.next_deadline;
				if (planned)
					planned = std::max(*planned, next_round_at);
				querator::worker_publish_round(served_database, planned, last_round.counters);
				/* Deadlines committed while the round ran (it may not have seen them). */
				next_round_at = std::min(next_round_at, querator::worker_take_requested_wakeup(served_database));
				querator::webhook_after_round(last_round.catalog_read);
			}
			run_webhook_cycle();
			if (webhook_deadline && *webhook_deadline < next_round_at)
				next_round_at = *webhook_deadline;
			wait_ms = std::min(querator::ms_until(next_round_at), kDatabaseCheckMs);
		}
		else
			ResetLatch(MyLatch); /* on a standby a set latch only shortens the wait */
		if (querator::webhook_in_flight() > 0)
		{
			/* Transfers run: wait on their sockets, then look at the latch without blocking. */
			run_webhook_wait(static_cast<int>(std::min<long>(wait_ms, kTransferSliceMs)));
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 0L, PG_WAIT_EXTENSION);
		}
		else if (wait_ms > 0 && querator::webhook_prepare_sleep())
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, PG_WAIT_EXTENSION);
			querator::webhook_awake();
		}
	}
}
