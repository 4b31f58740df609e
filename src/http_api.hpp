/*
 * The HTTP/JSON API's endpoints (Querator's wire contract): each turns a
 * request body into SQL statements of querator's API, with every value a
 * parameter, and their results into the reply. Runs in the HTTP server
 * process (http_server.cpp), which calls no PostgreSQL backend function:
 * this file uses only libpq's result accessors, the JSON library and the
 * standard library.
 */
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <libpq-fe.h>
#include <nlohmann/json_fwd.hpp>

namespace querator::http {

/* HTTP statuses of Querator's API. */
constexpr int kOk = 200;
constexpr int kBadRequest = 400;
constexpr int kUnauthorized = 401;
constexpr int kForbidden = 403;
constexpr int kNotImplemented = 501;
constexpr int kInternal = 500;
constexpr int kRequestFailed = 453; /* do not retry */
constexpr int kRetryRequest = 454;  /* retry later */

/* A JSON reply: the status and the body. */
struct Reply
{
	int status = kOk;
	std::string body;
	const char *content_type = "application/json";
};

/* {"code": N, "code_text": ..., "message": ...} */
Reply error_reply(int status, std::string_view message);

/* One SQL statement with its text-format parameters (nullopt: NULL). */
struct Statement
{
	const char *sql;
	std::vector<std::optional<std::string>> params;
};

struct Endpoint;

/* What a request runs: its statements, in one transaction, after http_begin. */
struct Plan
{
	const Endpoint *endpoint = nullptr;
	std::vector<Statement> statements;
	int statement_timeout_ms = 0; /* 0: none (a long poll bounds itself) */
	std::string queue_name;       /* echoed by some replies */
	std::string echo;             /* the request's items, for a reply that returns them (import) */
};

struct Endpoint
{
	const char *path;
	std::size_t body_limit; /* Querator's per-endpoint limit, bytes */
	void (*plan)(const nlohmann::json &request, Plan &plan); /* throws ApiError; queue_name is set */
	Reply (*reply)(const Plan &plan, const std::vector<PGresult *> &results);
};

/* The endpoint serving POST PATH, or nullptr. */
const Endpoint *find_endpoint(std::string_view path);

/* GET /metrics: Prometheus text of the queues the caller may see. */
extern const Endpoint kMetrics;

/* Parses and checks a body: a Plan, or the error reply (400) to send. */
struct Planned
{
	Plan plan;
	std::optional<Reply> refused;
};
Planned plan_request(const Endpoint &endpoint, std::string_view body);

/* The reply for a statement that failed with SQLSTATE and message (the SQLSTATE table, README "HTTP API"). */
Reply reply_for_sql_error(const char *sqlstate, const char *message);

/* Go duration strings (Querator's durations), in microseconds. */
std::optional<long long> parse_go_duration(std::string_view text);
std::string format_go_duration(long long microseconds);

/* A timestamptz printed with DateStyle ISO and TimeZone UTC, as RFC 3339. */
std::string rfc3339(std::string_view iso);

/* The first SQL statement of every request (querator.http_begin). */
extern const char *const kBeginSql;

} // namespace querator::http
