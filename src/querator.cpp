/*
 * Module entry: library load (settings, shared memory, the commit-effects callbacks)
 * and the check that makes CREATE EXTENSION require shared_preload_libraries.
 */
#include "catalog_cache.hpp"
#include "commit_effects.hpp"
#include "error.hpp"
#include "partition_estimates.hpp"
#include "partition_head.hpp"
#include "queue_ops.hpp"
#include "settings.hpp"
#include "spi.hpp"
#include "waiters.hpp"
#include "webhook_state.hpp"
#include "worker_state.hpp"

extern "C" {
#include "catalog/objectaccess.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "nodes/parsenodes.h"
#include "postmaster/bgworker.h"
#include "tcop/utility.h"
}

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
PG_FUNCTION_INFO_V1(querator_check_preloaded);
}

namespace {

bool loaded_at_startup = false;
shmem_request_hook_type previous_shmem_request_hook = nullptr;
shmem_startup_hook_type previous_shmem_startup_hook = nullptr;
object_access_hook_type previous_object_access_hook = nullptr;
ProcessUtility_hook_type previous_process_utility_hook = nullptr;

/* DROP EXTENSION querator: wake the database's worker at commit so it leaves at once, not when it next wakes. */
void
on_object_access(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void *arg)
{
	if (previous_object_access_hook)
		previous_object_access_hook(access, class_id, object_id, sub_id, arg);
	if (access == OAT_DROP && class_id == ExtensionRelationId && object_id == get_extension_oid("querator", true))
		querator::extension_dropping();
}

bool
drops_querator(const Node *statement)
{
	if (!IsA(statement, DropStmt))
		return false;
	const auto *drop = reinterpret_cast<const DropStmt *>(statement);
	if (drop->removeType != OBJECT_EXTENSION)
		return false;
	ListCell *cell;
	foreach (cell, drop->objects)
		if (strcmp(strVal(lfirst(cell)), "querator") == 0)
			return true;
	return false;
}

bool
updates_querator(const Node *statement)
{
	return IsA(statement, AlterExtensionStmt) &&
		   strcmp(reinterpret_cast<const AlterExtensionStmt *>(statement)->extname, "querator") == 0;
}

/*
 * DROP EXTENSION querator: end this database's long-poll waits before the
 * drop queues behind the locks they hold (the object access hook above
 * runs only once every lock is taken). ALTER EXTENSION querator UPDATE:
 * cached queue definitions are stale after it.
 */
void
on_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree, ProcessUtilityContext context,
		   ParamListInfo params, QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc)
{
	if (drops_querator(pstmt->utilityStmt))
		querator::extension_drop_starting();
	if (updates_querator(pstmt->utilityStmt))
		querator::extension_updating();
	if (previous_process_utility_hook)
		previous_process_utility_hook(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
	else
		standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
}

void
request_shmem()
{
	if (previous_shmem_request_hook)
		previous_shmem_request_hook();
	querator::estimates_request_shmem();
	querator::catalog_cache_request_shmem();
	querator::head_request_shmem();
	querator::worker_state_request_shmem();
	querator::waiters_request_shmem();
	querator::webhook_state_request_shmem();
}

void
startup_shmem()
{
	if (previous_shmem_startup_hook)
		previous_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	querator::estimates_startup_shmem();
	querator::catalog_cache_startup_shmem();
	querator::head_startup_shmem();
	querator::worker_state_startup_shmem();
	querator::waiters_startup_shmem();
	querator::webhook_state_startup_shmem();
	LWLockRelease(AddinShmemInitLock);
}

/* A background worker the postmaster starts, and restarts RESTART_SECONDS after a crash. */
void
register_worker(const char *function, const char *name, int restart_seconds)
{
	BackgroundWorker worker;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = restart_seconds;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "querator");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
	RegisterBackgroundWorker(&worker);
}

} // namespace

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return; /* loaded late: querator_check_preloaded() refuses CREATE EXTENSION */
	loaded_at_startup = true;
	querator::define_settings();
	previous_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = request_shmem;
	previous_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = startup_shmem;
	querator::commit_effects_register_callbacks();
	register_worker("querator_launcher_main", "querator launcher", 10);
	/* The HTTP/JSON API's supervisor (http_worker.cpp), only when it is turned on; its server process restarts without it. */
	if (querator::http_listen_addresses[0] != '\0')
		register_worker("querator_http_main", "querator http", 1);
	previous_object_access_hook = object_access_hook;
	object_access_hook = on_object_access;
	previous_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = on_utility;
	querator::spi_install_planner_hook();
}

Datum
querator_check_preloaded(PG_FUNCTION_ARGS)
{
	if (!loaded_at_startup)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("querator must be loaded via shared_preload_libraries"),
				 errdetail("Its background worker and shared-memory state can only start with the server."),
				 errhint("Add querator to shared_preload_libraries in postgresql.conf, e.g. "
						 "shared_preload_libraries = 'querator', and restart PostgreSQL.")));
	PG_RETURN_VOID();
}
