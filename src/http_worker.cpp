/*
 * The "querator http" background worker: supervises the HTTP server process
 * (http_server.hpp), which it forks. The server is not a backend and is not
 * the postmaster's child, so its crash (kill -9 included) never takes
 * PostgreSQL down: this worker starts it again within a second. On SIGHUP
 * the worker reloads the configuration and restarts the server when one of
 * its settings changed; on SIGTERM it stops the server (which answers what
 * is in flight with 453) and leaves within a second. See docs/design.md,
 * "The HTTP API".
 */
#include "pg_prelude.hpp"
#include "http_server.hpp"
#include "settings.hpp"

#include <sys/wait.h>
#include <unistd.h>

extern "C" {
#include "catalog/pg_authid_d.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/latch.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

PGDLLEXPORT void querator_http_main(Datum main_arg);
}

namespace {

using querator::http::ServerConfig;

/* How long a stopping server may take (it gives itself half of it) before SIGKILL. */
constexpr long kStopWaitMs = 900;
/* A server that exited abnormally is started again after this, not in a tight loop. */
constexpr long kRestartDelayMs = 1000;
constexpr long kSuperviseIntervalMs = 100;

/* Static: a FATAL exit of this process runs no C++ unwinding, and none is needed. */
ServerConfig running_config;
std::string pool_user;
pid_t server_pid = 0;

/* The pool connects over the first of the server's own unix sockets (or localhost) to its own port. */
std::string
local_host()
{
	char *raw = pstrdup(Unix_socket_directories != nullptr ? Unix_socket_directories : "");
	List *directories = nullptr;
	std::string host = "localhost";
	if (SplitDirectoriesString(raw, ',', &directories) && directories != nullptr)
		host = static_cast<const char *>(linitial(directories));
	list_free_deep(directories); /* its elements are palloc'd copies */
	pfree(raw);
	return host;
}

ServerConfig
current_config()
{
	ServerConfig config;
	config.listen_addresses = querator::http_listen_addresses;
	config.port = querator::http_port;
	config.tls_cert_file = querator::http_tls_cert_file;
	config.tls_key_file = querator::http_tls_key_file;
	config.pg_host = local_host();
	config.pg_port = PostPortNumber;
	config.database = querator::http_database;
	config.user = pool_user;
	config.max_requests = querator::http_max_requests;
	config.max_body_size = static_cast<std::size_t>(querator::http_max_body_size);
	config.anonymous_role = querator::http_anonymous_role;
	config.metrics_role = querator::http_metrics_role;
	return config;
}

void
start_server()
{
	fflush(stdout);
	fflush(stderr);
	const pid_t pid = fork();
	if (pid == 0)
		_exit(querator::http::serve(running_config)); /* no proc_exit: this process is no backend */
	if (pid < 0)
		ereport(WARNING, (errmsg("querator http: could not start the HTTP server process: %m")));
	else
		server_pid = pid;
}

/* True when the server has exited (and was reaped); logs an abnormal end. */
bool
reap_server(bool expected)
{
	int status = 0;
	if (server_pid <= 0 || waitpid(server_pid, &status, WNOHANG) != server_pid)
		return false;
	if (!expected && WIFSIGNALED(status))
		ereport(WARNING, (errmsg("querator http: the HTTP server process %d was terminated by signal %d; starting it again",
								 static_cast<int>(server_pid), WTERMSIG(status))));
	else if (!expected)
		ereport(WARNING, (errmsg("querator http: the HTTP server process %d exited with status %d; starting it again",
								 static_cast<int>(server_pid), WEXITSTATUS(status))));
	server_pid = 0;
	return true;
}

void
stop_server()
{
	if (server_pid <= 0)
		return;
	(void) kill(server_pid, SIGTERM);
	for (long waited = 0; waited < kStopWaitMs; waited += 10)
	{
		if (reap_server(true))
			return;
		pg_usleep(10 * 1000L);
	}
	(void) kill(server_pid, SIGKILL);
	(void) waitpid(server_pid, nullptr, 0);
	server_pid = 0;
}

void
on_supervisor_exit(int, Datum)
{
	stop_server();
}

} // namespace

void
querator_http_main(Datum main_arg)
{
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	/* No database: only the bootstrap superuser's name, from the shared catalog, for the pool's connections. */
	BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
	pgstat_report_appname("querator http");
	StartTransactionCommand();
	pool_user = GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false);
	CommitTransactionCommand();
	running_config = current_config();
	before_shmem_exit(on_supervisor_exit, (Datum) 0);
	elog(LOG, "querator http started: listening on \"%s\" port %d for database \"%s\"",
		 running_config.listen_addresses.c_str(), running_config.port, running_config.database.c_str());

	TimestampTz start_at = 0;
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
		{
			stop_server();
			elog(LOG, "querator http stopping");
			/* Not 0, which unregisters the worker: after pg_terminate_backend it comes back (at shutdown nothing does). */
			proc_exit(1);
		}
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			ServerConfig next = current_config();
			if (next != running_config)
			{
				elog(LOG, "querator http: settings changed; restarting the HTTP server process");
				stop_server();
				running_config = next;
				start_at = 0;
			}
		}
		if (reap_server(false))
			start_at = GetCurrentTimestamp() + kRestartDelayMs * 1000L;
		if (server_pid <= 0 && GetCurrentTimestamp() >= start_at)
			start_server();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kSuperviseIntervalMs,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
