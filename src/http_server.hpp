/*
 * The HTTP server process of the HTTP/JSON API: an event loop
 * (libmicrohttpd in external epoll mode, connections suspended while their
 * SQL runs) over a pool of asynchronous libpq connections to the local
 * server. It is forked by the "querator http" background worker
 * (http_worker.cpp) and calls no PostgreSQL backend function: it is not a
 * backend, touches no shared memory, and exits with _exit, so a crash of it
 * (kill -9 included) is never a crash of PostgreSQL. See docs/design.md,
 * "The HTTP API".
 */
#pragma once

#include <string>

namespace querator::http {

/* Everything the server process needs, copied from the settings before the fork. */
struct ServerConfig
{
	std::string listen_addresses; /* comma-separated host names or addresses; * = all */
	int port = 0;
	std::string tls_cert_file;    /* both set: HTTPS */
	std::string tls_key_file;
	/* The pool's connections: the bootstrap superuser over the server's own socket. */
	std::string pg_host;          /* a unix socket directory, or a host */
	int pg_port = 0;
	std::string database;
	std::string user;
	int max_requests = 0;         /* pool size: requests running SQL at once */
	std::size_t max_body_size = 0;
	std::string anonymous_role;   /* empty: a key is required */
	std::string metrics_role;     /* GET /metrics without a key; empty: a key is required */

	bool operator==(const ServerConfig &other) const;
	bool operator!=(const ServerConfig &other) const { return !(*this == other); }
};

/* Runs the server until SIGTERM (or the parent's death); returns the process's exit status. */
int serve(const ServerConfig &config);

} // namespace querator::http
