/*
 * The launcher: one background worker per cluster that finds the databases
 * to serve and keeps one querator worker running in each of them.
 *
 * New databases are probed once (a worker starts, finds no extension and
 * leaves); CREATE EXTENSION asks for a worker at commit; DROP EXTENSION makes
 * the worker leave. A worker that stopped for another reason is restarted
 * after querator.launcher_naptime.
 */
#include "pg_prelude.hpp"
#include "settings.hpp"
#include "spi.hpp"
#include "worker_state.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "tcop/tcopprot.h"
#include "utils/wait_event.h"

PGDLLEXPORT void querator_launcher_main(Datum main_arg);
}


namespace querator {

namespace {

/* A worker the launcher started; plain data in a fixed array, nothing to unwind. */
struct StartedWorker
{
	Oid database; /* InvalidOid: free entry */
	BackgroundWorkerHandle *handle;
	TimestampTz started_at;
};

StartedWorker started[kMaxServedDatabases];

StartedWorker *
find_started(Oid database)
{
	for (StartedWorker &w : started)
		if (w.database == database)
			return &w;
	return nullptr;
}

/* Connectable, non-template databases, read from the shared catalog pg_database. */
std::vector<Oid>
list_databases()
{
	std::vector<Oid> databases;
	databases.reserve(1024);
	StartTransactionCommand();
	Relation rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
	HeapTuple tuple;
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
	{
		auto *db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
		if (db->datallowconn && !db->datistemplate && !database_is_invalid_form(db) &&
			databases.size() < databases.capacity())
			databases.push_back(db->oid);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return databases;
}

/*
 * False while DROP DATABASE (or a rename or move) holds the database's lock,
 * and once it is gone: a worker started then would wait for the drop and log
 * "FATAL: database ... does not exist". The exit of the worker that DROP
 * DATABASE ... WITH (FORCE) terminates wakes the launcher in just that window.
 */
bool
database_accepts_worker(Oid database)
{
	LOCKTAG tag;
	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, database, 0);
	StartTransactionCommand();
	bool accepts = LockAcquire(&tag, AccessShareLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
	if (accepts)
	{
		/* A drop that committed before we got the lock: its row is gone. */
		AcceptInvalidationMessages();
		HeapTuple tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(database));
		accepts = HeapTupleIsValid(tuple) && !database_is_invalid_form(reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple)));
		if (HeapTupleIsValid(tuple))
			ReleaseSysCache(tuple);
	}
	CommitTransactionCommand(); /* releases the lock */
	return accepts;
}

bool
start_worker(Oid database, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART; /* the launcher decides */
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "querator");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "querator_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "querator worker %u", database);
	snprintf(worker.bgw_type, BGW_MAXLEN, "querator worker");
	worker.bgw_main_arg = ObjectIdGetDatum(database);
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

bool
is_running(BackgroundWorkerHandle *handle)
{
	pid_t pid;
	BgwHandleStatus status = GetBackgroundWorkerPid(handle, &pid);
	return status == BGWH_STARTED || status == BGWH_NOT_YET_STARTED;
}

void
forget(StartedWorker *w)
{
	pfree(w->handle);
	memset(w, 0, sizeof(*w));
}

/* Keeps one worker running per wanted database. */
void
serve_databases()
{
	std::vector<Oid> wanted = launcher_wanted_databases();
	TimestampTz now = GetCurrentTimestamp();
	/* Workers that left because their database no longer wants one: forget them. */
	for (StartedWorker &w : started)
	{
		if (w.database == InvalidOid || is_running(w.handle))
			continue;
		bool still_wanted = false;
		for (Oid db : wanted)
			still_wanted = still_wanted || db == w.database;
		if (!still_wanted)
			forget(&w);
	}
	for (Oid database : wanted)
	{
		StartedWorker *w = find_started(database);
		if (w != nullptr)
		{
			if (is_running(w->handle))
				continue;
			/* It stopped but its database still wants it (an error, a crash): restart, not in a tight loop. */
			if (!TimestampDifferenceExceeds(w->started_at, now, launcher_naptime * 1000))
				continue;
			forget(w);
		}
		if (!database_accepts_worker(database))
			continue; /* looked at again next round */
		w = find_started(InvalidOid);
		BackgroundWorkerHandle *handle = nullptr;
		if (w == nullptr)
			break;
		if (start_worker(database, &handle))
		{
			w->database = database;
			w->handle = handle;
			w->started_at = now;
		}
		else
			elog(WARNING, "querator launcher: no background worker slot free for database %u; "
						  "raise max_worker_processes", database);
	}
}

/*
 * Requests to serve a database that found every slot taken are recorded at
 * their commit, in a commit callback that must not report anything (an
 * error there is promoted to PANIC, and even a WARNING allocates): the
 * launcher reports them here.
 */
void
report_unserved_requests()
{
	Oid database = InvalidOid;
	const uint64 requests = launcher_take_unserved_requests(&database);
	if (requests == 0)
		return;
	StartTransactionCommand();
	const char *name = get_database_name(database);
	ereport(WARNING,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("querator launcher: database \"%s\" has no querator worker: all %d database slots are taken",
					name != nullptr ? name : "(dropped)", kMaxServedDatabases),
			 errdetail("%llu request(s) to serve a database found no slot since the last report; \"%s\" is the latest. "
					   "Every connectable database takes a slot when the launcher first looks at it.",
					   static_cast<unsigned long long>(requests), name != nullptr ? name : "(dropped)"),
			 errhint("%s", kDatabaseSlotsHint)));
	CommitTransactionCommand();
}

} // namespace

} // namespace querator

void
querator_launcher_main(Datum main_arg)
{
	using namespace querator;
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
	restrict_background_process();
	pgstat_report_appname("querator launcher");
	launcher_attach();
	elog(LOG, "querator launcher started");

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		/* While in recovery (a standby) there is nothing to do: wait quietly. */
		if (!RecoveryInProgress())
		{
			launcher_sync_databases(list_databases());
			serve_databases();
		}
		report_unserved_requests();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, launcher_naptime * 1000L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
