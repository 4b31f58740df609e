/*
 * Shared memory between the launcher, the per-database workers and the
 * backends: which databases want a worker, each worker's latch and next
 * wake-up, and its counters. Backends wake a worker after commit when they
 * created a deadline earlier than the one it sleeps towards.
 */
#pragma once

#include "pg_prelude.hpp"

#include <optional>
#include <string>
#include <vector>

namespace querator {

constexpr int kMaxServedDatabases = 64;
/* How to free slots when a database that uses querator found none (its CREATE EXTENSION and the launcher say it). */
constexpr const char *kDatabaseSlotsHint =
	"Drop unused databases or disallow connections to the ones that do not use querator "
	"(ALTER DATABASE ... ALLOW_CONNECTIONS false): the launcher then gives their slots away.";

struct WorkerCounters
{
	uint64 rounds = 0;
	uint64 expired_leases = 0;  /* leases that ended by their deadline */
	uint64 promoted = 0;        /* scheduled items that came due */
	uint64 expired_items = 0;   /* items dead-lettered by expire_timeout */
	uint64 dead_lettered = 0;   /* all items the worker dead-lettered */
};

struct WorkerStatus
{
	Oid database;
	bool wanted;
	int pid;
	TimestampTz started_at;
	TimestampTz last_run;
	TimestampTz next_wakeup; /* 0 = none known */
	WorkerCounters counters;
};

void worker_state_request_shmem();
void worker_state_startup_shmem();

/* Launcher. */
void launcher_attach();
void launcher_sync_databases(const std::vector<Oid> &databases);
std::vector<Oid> launcher_wanted_databases();
/*
 * Requests to serve a database that found every slot taken, since the last
 * call (0: none), and the last such database: the launcher reports them, as
 * the commit callback that records them must not.
 */
uint64 launcher_take_unserved_requests(Oid *last_database);

/* Worker of a database. */
bool worker_attach(Oid database);
void worker_detach(Oid database, bool extension_gone);
void worker_begin_round(Oid database);
void worker_publish_round(Oid database, std::optional<TimestampTz> next_wakeup, const WorkerCounters &added);
/*
 * The earliest deadline backends committed since the worker last asked
 * (DT_NOEND: none), and forgets it: the worker runs its next round then,
 * not when woken. So a stream of transactions whose leases end before they
 * commit (lease and complete in one transaction) costs one latch and one
 * round per lease_timeout, not a round per commit.
 */
TimestampTz worker_take_requested_wakeup(Oid database);

/*
 * Backends, applied at commit (recorded by request_service_at_commit and
 * wake_worker_at_commit, commit_effects.hpp): ask the launcher to serve this
 * database (CREATE EXTENSION; with every slot taken it records that for the
 * launcher to report, and reports nothing itself); wake this database's worker if `deadline` is
 * before its next wake-up (it then plans its next round for `deadline`; once
 * one backend did, later deadlines wake nobody).
 */
void launcher_serve_this_database();
void worker_wake_before(TimestampTz deadline);
/* Whether this database has a slot or a free one is left (CREATE EXTENSION warns before its commit if not). */
bool launcher_has_room_for_this_database();

std::vector<WorkerStatus> worker_status_all();

} // namespace querator

