/*
 * The HTTP server process (see http_server.hpp): one thread, one poll() loop
 * over libmicrohttpd's epoll descriptor, the pool's libpq sockets and a
 * self-pipe for signals. A request is read whole (up to its endpoint's
 * limit), planned (http_api.cpp), then its connection is suspended while the
 * plan runs on a pooled connection as one pipeline: http_begin, the
 * endpoint's statements, Sync (one implicit transaction, one round trip).
 * The result resumes the connection with its reply. Idle HTTP connections
 * (keep-alive) hold no pooled connection; requests beyond the pool wait in
 * line.
 */
#include "http_server.hpp"

#include "http_api.hpp"

#include <libpq-fe.h>
#include <microhttpd.h>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <unordered_map>
#include <sstream>
#include <vector>

namespace querator::http {

bool
ServerConfig::operator==(const ServerConfig &o) const
{
	return listen_addresses == o.listen_addresses && port == o.port && tls_cert_file == o.tls_cert_file &&
		   tls_key_file == o.tls_key_file && pg_host == o.pg_host && pg_port == o.pg_port &&
		   database == o.database && user == o.user && max_requests == o.max_requests &&
		   max_body_size == o.max_body_size && anonymous_role == o.anonymous_role && metrics_role == o.metrics_role;
}

namespace {

using Clock = std::chrono::steady_clock;

/* How long a stopping server keeps sending the replies it owes (453) before it closes. */
constexpr auto kStopGrace = std::chrono::milliseconds(500);
/* Idle keep-alive connections close after this. */
constexpr unsigned int kIdleConnectionSeconds = 120;
/* Requests waiting for a pooled connection, per pooled connection, before 454 "overloaded". */
constexpr std::size_t kWaitingPerConnection = 64;

volatile sig_atomic_t stop_requested = 0;
int signal_pipe[2] = {-1, -1};

void
on_stop_signal(int)
{
	const int saved_errno = errno;
	stop_requested = 1;
	if (write(signal_pipe[1], "x", 1) < 0)
	{
		/* The pipe is full: a wake-up is pending already. */
	}
	errno = saved_errno;
}

/* The server log: PostgreSQL's stderr (the logging collector or pg_ctl's log file). No elog here: not a backend. */
__attribute__((format(printf, 1, 2))) void
log_line(const char *format, ...)
{
	char line[2048];
	va_list args;
	va_start(args, format);
	vsnprintf(line, sizeof(line), format, args);
	va_end(args);
	fprintf(stderr, "querator http server[%d]: %s\n", static_cast<int>(getpid()), line);
	fflush(stderr);
}

__attribute__((format(printf, 2, 0))) void
log_mhd(void *, const char *format, va_list args)
{
	char line[1024];
	vsnprintf(line, sizeof(line), format, args);
	line[strcspn(line, "\n")] = '\0';
	log_line("libmicrohttpd: %s", line);
}

struct Request
{
	MHD_Connection *connection;
	const Endpoint *endpoint = nullptr;
	std::size_t body_limit = 0;
	std::string body;
	std::optional<std::string> api_key;
	const std::string *anonymous_role = nullptr; /* the role a request without a key acts as ("": none) */
	Plan plan;
	std::optional<Reply> reply;
	bool dispatched = false;
};

/* What one message of a request's pipeline answers. */
struct Step
{
	enum Kind
	{
		prepare,   /* the first use of a statement on this connection */
		begin,     /* http_begin */
		statement, /* one of the plan's statements: its result goes to the reply */
	} kind;
	const char *sql;
};

struct PooledConnection
{
	PGconn *conn = nullptr;
	Request *request = nullptr;     /* in flight on this connection */
	/* The statements this session has prepared, by their text (static strings of http_api.cpp). */
	std::unordered_map<const char *, std::string> prepared;
	std::vector<Step> steps;        /* what the pipeline in flight will answer, in order */
	std::size_t results_seen = 0;   /* steps answered so far */
	std::vector<PGresult *> results; /* the plan's statements' results */
	std::optional<Reply> error;     /* the first statement that failed */
	bool want_write = false;
	bool connecting = false;        /* PQconnectPoll has not said OK yet; request waits for it */
	bool broken = false;
};

class Server
{
public:
	explicit Server(const ServerConfig &config) : config_(config) {}
	int run();

private:
	static MHD_Result on_request(void *cls, MHD_Connection *connection, const char *url, const char *method,
								 const char *version, const char *upload_data, std::size_t *upload_data_size,
								 void **con_cls);
	static void on_completed(void *cls, MHD_Connection *connection, void **con_cls, MHD_RequestTerminationCode);

	bool start_daemons();
	MHD_Daemon *start_daemon(unsigned int flags, const sockaddr *address);
	MHD_Result handle(Request *request, const char *url, const char *method, const char *upload_data,
					  std::size_t *upload_data_size, bool first_call);
	void refuse_early(Request *request, const char *url, const char *method);
	MHD_Result send_reply(Request *request);
	void dispatch(Request *request);
	void finish(Request *request, Reply reply);
	PooledConnection *idle_connection();
	void start_connecting(PooledConnection &pooled);
	void continue_connecting(PooledConnection &pooled);
	void start_on(PooledConnection &pooled, Request *request);
	void send_request(PooledConnection &pooled);
	bool send(PooledConnection &pooled, Step::Kind kind, const char *sql, const std::vector<const char *> &params);
	void flush(PooledConnection &pooled);
	void service(PooledConnection &pooled, short revents);
	void read_results(PooledConnection &pooled);
	void complete(PooledConnection &pooled);
	void drop(PooledConnection &pooled, const char *why);
	void begin_stop();

	const ServerConfig &config_;
	std::vector<MHD_Daemon *> daemons_;
	std::vector<std::unique_ptr<PooledConnection>> pool_;
	std::deque<Request *> waiting_;
	std::string tls_cert_, tls_key_;
	bool stopping_ = false;
	Clock::time_point stop_deadline_;
};

MHD_Result
Server::on_request(void *cls, MHD_Connection *connection, const char *url, const char *method, const char *,
				   const char *upload_data, std::size_t *upload_data_size, void **con_cls)
{
	auto *server = static_cast<Server *>(cls);
	auto *request = static_cast<Request *>(*con_cls);
	const bool first_call = request == nullptr;
	if (first_call)
	{
		request = new Request{connection};
		*con_cls = request;
	}
	return server->handle(request, url, method, upload_data, upload_data_size, first_call);
}

void
Server::on_completed(void *, MHD_Connection *, void **con_cls, MHD_RequestTerminationCode)
{
	delete static_cast<Request *>(*con_cls);
	*con_cls = nullptr;
}

/* Method, path, key and declared size, checked before any of the body is read. */
void
Server::refuse_early(Request *request, const char *url, const char *method)
{
	const std::string path(url);
	if (path == "/health" && strcmp(method, "GET") == 0)
	{
		request->reply = Reply{kOk, R"({"code":200})"};
		return;
	}
	request->anonymous_role = &config_.anonymous_role;
	if (path == kMetrics.path && strcmp(method, "GET") == 0)
	{
		request->endpoint = &kMetrics;
		request->anonymous_role = &config_.metrics_role;
	}
	else if (strcmp(method, "POST") != 0)
	{
		request->reply = error_reply(kBadRequest, std::string("http method '") + method + "' not allowed; only POST");
		return;
	}
	else
		request->endpoint = find_endpoint(path);
	if (request->endpoint == nullptr)
	{
		request->reply = error_reply(kNotImplemented, "no such method; " + path);
		return;
	}
	const char *authorization = MHD_lookup_connection_value(request->connection, MHD_HEADER_KIND, "Authorization");
	if (authorization != nullptr && strncasecmp(authorization, "Bearer ", 7) == 0)
		request->api_key = std::string(authorization + 7);
	else if (request->anonymous_role->empty())
	{
		request->reply = error_reply(kUnauthorized, "unauthenticated; no api key (Authorization: Bearer <key>)");
		return;
	}
	request->body_limit = std::min(request->endpoint->body_limit, config_.max_body_size);
	const char *length = MHD_lookup_connection_value(request->connection, MHD_HEADER_KIND, "Content-Length");
	if (length != nullptr && std::strtoull(length, nullptr, 10) > request->body_limit)
		request->reply = error_reply(kBadRequest, "request body is too large; " + path + " takes at most " +
													  std::to_string(request->body_limit) + " bytes but received " +
													  length);
}

MHD_Result
Server::handle(Request *request, const char *url, const char *method, const char *upload_data,
			   std::size_t *upload_data_size, bool first_call)
{
	if (first_call)
	{
		refuse_early(request, url, method);
		/* A refusal goes out before the body is read; libmicrohttpd then closes the connection. */
		return request->reply ? send_reply(request) : MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		if (!request->reply)
		{
			/* A chunked body declares no length: counted as it comes. */
			if (request->body.size() + *upload_data_size > request->body_limit)
				request->reply = error_reply(kBadRequest, std::string("request body is too large; ") + url +
															  " takes at most " + std::to_string(request->body_limit) +
															  " bytes");
			else
				request->body.append(upload_data, *upload_data_size);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (request->reply)
		return send_reply(request); /* refused, or resumed with its result */
	if (request->dispatched)
		return MHD_YES;
	Planned planned = plan_request(*request->endpoint, request->body);
	std::string().swap(request->body);
	if (planned.refused)
	{
		request->reply = std::move(planned.refused);
		return send_reply(request);
	}
	request->plan = std::move(planned.plan);
	request->dispatched = true;
	MHD_suspend_connection(request->connection);
	dispatch(request);
	return MHD_YES;
}

MHD_Result
Server::send_reply(Request *request)
{
	const Reply &reply = *request->reply;
	MHD_Response *response = MHD_create_response_from_buffer(reply.body.size(), const_cast<char *>(reply.body.data()),
															 MHD_RESPMEM_MUST_COPY);
	if (response == nullptr)
		return MHD_NO;
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type);
	MHD_Result queued = MHD_queue_response(request->connection, static_cast<unsigned int>(reply.status), response);
	MHD_destroy_response(response);
	return queued;
}

/* The request leaves the pool and the line with its reply; libmicrohttpd calls handle() again to send it. */
void
Server::finish(Request *request, Reply reply)
{
	request->reply = std::move(reply);
	MHD_resume_connection(request->connection);
}

void
Server::dispatch(Request *request)
{
	if (stopping_)
		return finish(request, error_reply(kRequestFailed, "service is shutting down; try another server"));
	if (PooledConnection *pooled = idle_connection())
		return start_on(*pooled, request);
	if (waiting_.size() >= kWaitingPerConnection * static_cast<std::size_t>(config_.max_requests))
		return finish(request, error_reply(kRetryRequest, "queue is overloaded; try again later"));
	waiting_.push_back(request);
}

PooledConnection *
Server::idle_connection()
{
	for (auto &pooled : pool_)
		if (pooled->request == nullptr && !pooled->broken)
			return pooled.get();
	if (pool_.size() >= static_cast<std::size_t>(config_.max_requests))
		return nullptr;
	pool_.push_back(std::make_unique<PooledConnection>());
	return pool_.back().get();
}

/*
 * A new pooled connection is made without blocking the loop (PQconnectStart,
 * then PQconnectPoll as its socket allows): a blocking connect stalled every
 * request in flight for its duration. Every session of the pool pins
 * search_path (as every process of querator that runs SQL) and prints times
 * in UTC, ISO style, for the replies.
 */
void
Server::start_connecting(PooledConnection &pooled)
{
	const std::string port = std::to_string(config_.pg_port);
	const char *keywords[] = {"host", "port", "dbname", "user", "application_name", "client_encoding", "options", nullptr};
	const char *values[] = {config_.pg_host.c_str(), port.c_str(), config_.database.c_str(), config_.user.c_str(),
							"querator http", "UTF8",
							"-c search_path=pg_catalog,pg_temp -c TimeZone=UTC -c DateStyle=ISO,YMD "
							"-c IntervalStyle=postgres -c extra_float_digits=3",
							nullptr};
	pooled.conn = PQconnectStartParams(keywords, values, 0);
	pooled.connecting = true;
	pooled.want_write = true; /* libpq: poll for writing first */
	if (pooled.conn == nullptr || PQstatus(pooled.conn) == CONNECTION_BAD)
		continue_connecting(pooled); /* reports the failure */
}

void
Server::continue_connecting(PooledConnection &pooled)
{
	const PostgresPollingStatusType status = pooled.conn != nullptr ? PQconnectPoll(pooled.conn) : PGRES_POLLING_FAILED;
	if (status == PGRES_POLLING_READING || status == PGRES_POLLING_WRITING)
	{
		pooled.want_write = status == PGRES_POLLING_WRITING;
		return;
	}
	pooled.connecting = false;
	pooled.want_write = false;
	if (status == PGRES_POLLING_OK && PQsetnonblocking(pooled.conn, 1) == 0 && PQenterPipelineMode(pooled.conn) == 1)
		return send_request(pooled);
	log_line("cannot connect to database \"%s\" as \"%s\" at %s:%d: %s", config_.database.c_str(),
			 config_.user.c_str(), config_.pg_host.c_str(), config_.pg_port,
			 pooled.conn != nullptr ? PQerrorMessage(pooled.conn) : "out of memory");
	pooled.broken = true;
	Request *request = pooled.request;
	pooled.request = nullptr;
	finish(request, error_reply(kRetryRequest, "database is unavailable; try again later"));
}

/*
 * Each statement is prepared on a connection the first time it runs there
 * (in the same pipeline), then executed by name: the backend parses and
 * plans it once per session, as pgbench -M prepared does.
 */
bool
Server::send(PooledConnection &pooled, Step::Kind kind, const char *sql, const std::vector<const char *> &params)
{
	auto found = pooled.prepared.find(sql);
	if (found == pooled.prepared.end())
	{
		const std::string name = "querator_http_" + std::to_string(pooled.prepared.size());
		if (PQsendPrepare(pooled.conn, name.c_str(), sql, static_cast<int>(params.size()), nullptr) != 1)
			return false;
		pooled.steps.push_back({Step::prepare, sql});
		found = pooled.prepared.emplace(sql, name).first;
	}
	pooled.steps.push_back({kind, sql});
	return PQsendQueryPrepared(pooled.conn, found->second.c_str(), static_cast<int>(params.size()), params.data(),
							   nullptr, nullptr, 0) == 1;
}

void
Server::start_on(PooledConnection &pooled, Request *request)
{
	pooled.request = request;
	if (pooled.conn == nullptr)
		return start_connecting(pooled); /* the request goes out once connected */
	send_request(pooled);
}

/* The request's pipeline: http_begin, its statements, Sync. */
void
Server::send_request(PooledConnection &pooled)
{
	const Request *request = pooled.request;
	pooled.steps.clear();
	pooled.results_seen = 0;
	pooled.error.reset();
	const std::string timeout = std::to_string(request->plan.statement_timeout_ms);
	bool sent = send(pooled, Step::begin, kBeginSql,
					 {request->api_key ? request->api_key->c_str() : nullptr, request->anonymous_role->c_str(),
					  timeout.c_str()});
	for (const Statement &statement : request->plan.statements)
	{
		std::vector<const char *> params;
		for (const auto &param : statement.params)
			params.push_back(param ? param->c_str() : nullptr);
		sent = sent && send(pooled, Step::statement, statement.sql, params);
	}
	sent = sent && PQpipelineSync(pooled.conn) == 1;
	if (!sent)
		return drop(pooled, PQerrorMessage(pooled.conn));
	flush(pooled);
}

void
Server::flush(PooledConnection &pooled)
{
	const int pending = PQflush(pooled.conn);
	if (pending < 0)
		return drop(pooled, PQerrorMessage(pooled.conn));
	pooled.want_write = pending == 1;
}

void
Server::service(PooledConnection &pooled, short revents)
{
	if (pooled.broken)
		return;
	if (pooled.connecting)
		return continue_connecting(pooled);
	if (revents & POLLOUT)
		flush(pooled);
	if (!pooled.broken && (revents & (POLLIN | POLLERR | POLLHUP)))
	{
		if (PQconsumeInput(pooled.conn) == 0)
			return drop(pooled, PQerrorMessage(pooled.conn));
		read_results(pooled);
	}
}

void
Server::read_results(PooledConnection &pooled)
{
	while (pooled.request != nullptr && !PQisBusy(pooled.conn))
	{
		PGresult *result = PQgetResult(pooled.conn);
		if (result == nullptr)
			continue; /* the end of one statement's results in the pipeline */
		switch (PQresultStatus(result))
		{
			case PGRES_TUPLES_OK:
			case PGRES_COMMAND_OK:
				if (pooled.steps.at(pooled.results_seen++).kind == Step::statement)
				{
					pooled.results.push_back(result);
					continue;
				}
				break;
			case PGRES_FATAL_ERROR:
			{
				if (const Step &step = pooled.steps.at(pooled.results_seen++); step.kind == Step::prepare)
					pooled.prepared.erase(step.sql); /* prepared again next time */
				if (!pooled.error)
				{
					pooled.error = reply_for_sql_error(PQresultErrorField(result, PG_DIAG_SQLSTATE),
													   PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
					if (pooled.error->status == kInternal)
						log_line("request %s failed: %s", pooled.request->endpoint->path, PQresultErrorMessage(result));
				}
				break;
			}
			case PGRES_PIPELINE_ABORTED:
				/* Skipped after an error: a statement whose prepare was skipped is not prepared. */
				if (const Step &step = pooled.steps.at(pooled.results_seen++); step.kind == Step::prepare)
					pooled.prepared.erase(step.sql);
				break;
			case PGRES_PIPELINE_SYNC:
				PQclear(result);
				return complete(pooled);
			default:
				break;
		}
		PQclear(result);
	}
}

void
Server::complete(PooledConnection &pooled)
{
	Request *request = pooled.request;
	Reply reply = pooled.error ? *pooled.error : request->plan.endpoint->reply(request->plan, pooled.results);
	for (PGresult *result : pooled.results)
		PQclear(result);
	pooled.results.clear();
	pooled.request = nullptr;
	finish(request, std::move(reply));
	if (!waiting_.empty() && !stopping_)
	{
		Request *next = waiting_.front();
		waiting_.pop_front();
		start_on(pooled, next);
	}
}

/* A connection that failed: its request (if any) learns it, and the connection leaves the pool. */
void
Server::drop(PooledConnection &pooled, const char *why)
{
	log_line("database connection lost: %s", why);
	for (PGresult *result : pooled.results)
		PQclear(result);
	pooled.results.clear();
	pooled.broken = true;
	if (pooled.request != nullptr)
	{
		Request *request = pooled.request;
		pooled.request = nullptr;
		/* The transaction may or may not have committed: the client cannot tell, as after any lost connection. */
		finish(request, pooled.error ? *pooled.error : error_reply(kInternal, "internal error; see the server log"));
	}
}

/* SIGTERM: every request in flight or in line gets 453; waits end at once (cancelled, disconnected). */
void
Server::begin_stop()
{
	stopping_ = true;
	stop_deadline_ = Clock::now() + kStopGrace;
	const Reply shutting_down = error_reply(kRequestFailed, "service is shutting down; try another server");
	for (auto &pooled : pool_)
	{
		if (pooled->request != nullptr)
		{
			if (PGcancel *cancel = PQgetCancel(pooled->conn))
			{
				char ignored[256];
				(void) PQcancel(cancel, ignored, sizeof(ignored));
				PQfreeCancel(cancel);
			}
			Request *request = pooled->request;
			pooled->request = nullptr;
			finish(request, shutting_down);
		}
		pooled->broken = true;
	}
	for (Request *request : waiting_)
		finish(request, shutting_down);
	waiting_.clear();
}

MHD_Daemon *
Server::start_daemon(unsigned int flags, const sockaddr *address)
{
	/* The logger first: libmicrohttpd reports the options after it through it. */
	if (!tls_cert_.empty())
		return MHD_start_daemon(flags | MHD_USE_TLS, static_cast<uint16_t>(config_.port), nullptr, nullptr,
								&Server::on_request, this, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, nullptr,
								MHD_OPTION_NOTIFY_COMPLETED, &Server::on_completed, this, MHD_OPTION_CONNECTION_TIMEOUT,
								kIdleConnectionSeconds, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_SOCK_ADDR,
								address, MHD_OPTION_HTTPS_MEM_CERT, tls_cert_.c_str(), MHD_OPTION_HTTPS_MEM_KEY,
								tls_key_.c_str(), MHD_OPTION_END);
	return MHD_start_daemon(flags, static_cast<uint16_t>(config_.port), nullptr, nullptr, &Server::on_request, this,
							MHD_OPTION_EXTERNAL_LOGGER, log_mhd, nullptr, MHD_OPTION_NOTIFY_COMPLETED,
							&Server::on_completed, this, MHD_OPTION_CONNECTION_TIMEOUT, kIdleConnectionSeconds,
							MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_SOCK_ADDR, address, MHD_OPTION_END);
}

std::string
read_file(const std::string &path)
{
	std::ifstream in(path);
	std::stringstream content;
	content << in.rdbuf();
	return in ? content.str() : std::string();
}

/* One daemon per address a listed name resolves to (localhost: 127.0.0.1 and ::1); * = every address. */
bool
Server::start_daemons()
{
	if (!config_.tls_cert_file.empty() || !config_.tls_key_file.empty())
	{
		tls_cert_ = read_file(config_.tls_cert_file);
		tls_key_ = read_file(config_.tls_key_file);
		if (tls_cert_.empty() || tls_key_.empty())
		{
			log_line("cannot read querator.http_tls_cert_file \"%s\" or querator.http_tls_key_file \"%s\"",
					 config_.tls_cert_file.c_str(), config_.tls_key_file.c_str());
			return false;
		}
	}
	const unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	std::stringstream list(config_.listen_addresses);
	std::string host;
	while (std::getline(list, host, ','))
	{
		host.erase(0, host.find_first_not_of(" \t"));
		host.erase(host.find_last_not_of(" \t") + 1);
		if (host.empty())
			continue;
		if (host == "*")
		{
			sockaddr_in6 any = {};
			any.sin6_family = AF_INET6;
			any.sin6_port = htons(static_cast<uint16_t>(config_.port));
			any.sin6_addr = in6addr_any;
			if (MHD_Daemon *daemon = start_daemon(flags | MHD_USE_DUAL_STACK, reinterpret_cast<sockaddr *>(&any)))
				daemons_.push_back(daemon);
			continue;
		}
		addrinfo hints = {};
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		addrinfo *found = nullptr;
		const std::string port = std::to_string(config_.port);
		if (int failed = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); failed != 0)
		{
			log_line("cannot resolve \"%s\" of querator.http_listen_addresses: %s", host.c_str(), gai_strerror(failed));
			continue;
		}
		for (addrinfo *address = found; address != nullptr; address = address->ai_next)
		{
			unsigned int family = address->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0;
			if (MHD_Daemon *daemon = start_daemon(flags | family, address->ai_addr))
				daemons_.push_back(daemon);
			else
				log_line("cannot listen on an address of \"%s\" port %d", host.c_str(), config_.port);
		}
		freeaddrinfo(found);
	}
	return !daemons_.empty();
}

int
Server::run()
{
	if (!start_daemons())
	{
		log_line("listening on none of querator.http_listen_addresses \"%s\" port %d",
				 config_.listen_addresses.c_str(), config_.port);
		return 1;
	}
	log_line("listening on \"%s\" port %d%s", config_.listen_addresses.c_str(), config_.port,
			 tls_cert_.empty() ? "" : " (HTTPS)");
	std::vector<pollfd> fds;
	std::vector<PooledConnection *> polled;
	for (;;)
	{
		fds.clear();
		polled.clear();
		fds.push_back({signal_pipe[0], POLLIN, 0});
		for (MHD_Daemon *daemon : daemons_)
			fds.push_back({MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd, POLLIN, 0});
		for (auto &pooled : pool_)
			if (pooled->conn != nullptr && !pooled->broken)
			{
				fds.push_back({PQsocket(pooled->conn), static_cast<short>(POLLIN | (pooled->want_write ? POLLOUT : 0)), 0});
				polled.push_back(pooled.get());
			}
		int timeout_ms = 1000;
		for (MHD_Daemon *daemon : daemons_)
		{
			MHD_UNSIGNED_LONG_LONG mhd_timeout = 0;
			if (MHD_get_timeout(daemon, &mhd_timeout) == MHD_YES)
				timeout_ms = std::min<MHD_UNSIGNED_LONG_LONG>(timeout_ms, mhd_timeout);
		}
		if (stopping_)
			timeout_ms = std::min(timeout_ms, 10);
		if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR)
		{
			log_line("poll failed: %s", strerror(errno));
			return 1;
		}
		if (fds[0].revents & POLLIN)
		{
			char drained[64];
			while (read(signal_pipe[0], drained, sizeof(drained)) > 0)
			{
			}
		}
		if (stop_requested && !stopping_)
			begin_stop();
		const std::size_t first_pooled = 1 + daemons_.size();
		for (std::size_t i = 0; i < polled.size(); i++)
			if (fds[first_pooled + i].revents != 0)
				service(*polled[i], fds[first_pooled + i].revents);
		for (MHD_Daemon *daemon : daemons_)
			(void) MHD_run(daemon);
		for (auto it = pool_.begin(); it != pool_.end();)
		{
			if ((*it)->broken && (*it)->request == nullptr)
			{
				if ((*it)->conn != nullptr)
					PQfinish((*it)->conn);
				it = pool_.erase(it);
			}
			else
				++it;
		}
		/* Work that waited for a connection a failed one freed a place for. */
		while (!waiting_.empty() && !stopping_)
		{
			PooledConnection *pooled = idle_connection();
			if (pooled == nullptr)
				break;
			Request *next = waiting_.front();
			waiting_.pop_front();
			start_on(*pooled, next);
		}
		if (stopping_ && Clock::now() >= stop_deadline_)
			break;
	}
	for (MHD_Daemon *daemon : daemons_)
		MHD_stop_daemon(daemon);
	log_line("stopped");
	return 0;
}

/* The process is a fork of a background worker: PostgreSQL's signal handlers and mask must go first. */
void
take_signals()
{
	for (int signal : {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD, SIGURG})
		::signal(signal, SIG_DFL);
	::signal(SIGPIPE, SIG_IGN);
	struct sigaction stop = {};
	stop.sa_handler = on_stop_signal;
	sigemptyset(&stop.sa_mask);
	sigaction(SIGTERM, &stop, nullptr);
	sigaction(SIGINT, &stop, nullptr);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, nullptr);
}

} // namespace

int
serve(const ServerConfig &config)
{
	if (pipe2(signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		return 1;
	take_signals();
	/* The parent (the background worker) gone: stop as on SIGTERM. */
	(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* Told apart from its parent in ps and pgrep (the command line is the parent's). */
	(void) prctl(PR_SET_NAME, "querator-http");
	try
	{
		Server server(config);
		return server.run();
	}
	catch (const std::exception &e)
	{
		log_line("stopped by an error: %s", e.what());
		return 1;
	}
}

} // namespace querator::http
