/*
 * The HTTP/JSON API's endpoints: Querator's request and reply shapes over
 * querator's SQL API. Values reach SQL only as parameters; a batch travels
 * as one jsonb parameter that the statement unpacks, so a request is one
 * statement per call of the SQL API, all in the request's transaction.
 */
#include "http_api.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace querator::http {

using nlohmann::json;

namespace {

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;
constexpr long long kMicrosPerMs = 1000;
constexpr long long kMicrosPerMinute = 60 * 1000 * kMicrosPerMs;
/* Querator's request_timeout: more than 10 ms, at most 15 minutes, 1 minute when missing. */
constexpr long long kMinRequestTimeout = 10 * kMicrosPerMs;
constexpr long long kMaxRequestTimeout = 15 * kMicrosPerMinute;
constexpr long long kDefaultRequestTimeout = kMicrosPerMinute;

/* A request refused before it reaches SQL (always 400). */
struct ApiError : std::runtime_error
{
	using std::runtime_error::runtime_error;
};

const char *
status_text(int status)
{
	switch (status)
	{
		case kOk: return "OK";
		case kBadRequest: return "Bad Request";
		case kUnauthorized: return "Unauthorized";
		case kForbidden: return "Forbidden";
		case 413: return "Request Entity Too Large";
		case kRequestFailed: return "Request Failed";
		case kRetryRequest: return "Retry Request";
		case kNotImplemented: return "Not Implemented";
		default: return "Internal Server Error";
	}
}

/* ---------------------------------------------------------------- request fields */

const json *
field(const json &request, const char *name)
{
	auto it = request.find(name);
	return it == request.end() || it->is_null() ? nullptr : &*it;
}

std::string
field_label(const char *name)
{
	std::string label(name);
	for (char &c : label)
		if (c == '_')
			c = ' ';
	return label;
}

std::optional<std::string>
optional_string(const json &request, const char *name)
{
	const json *value = field(request, name);
	if (value == nullptr)
		return std::nullopt;
	if (!value->is_string())
		throw ApiError(field_label(name) + " is invalid; '" + name + "' must be a string");
	return value->get<std::string>();
}

std::string
queue_name(const json &request)
{
	/* Checked by SQL (empty, whitespace, length, ...) with querator's messages. */
	return optional_string(request, "queue_name").value_or("");
}

std::optional<long long>
optional_integer(const json &request, const char *name)
{
	const json *value = field(request, name);
	if (value == nullptr)
		return std::nullopt;
	if (value->is_number_integer())
		return value->get<long long>();
	/* proto3 JSON allows 64-bit integers as strings. */
	if (value->is_string())
	{
		const std::string &text = value->get_ref<const std::string &>();
		char *end = nullptr;
		errno = 0;
		long long parsed = std::strtoll(text.c_str(), &end, 10);
		if (!text.empty() && *end == '\0' && errno == 0)
			return parsed;
	}
	throw ApiError(field_label(name) + " is invalid; '" + name + "' must be an integer");
}

bool
optional_bool(const json &request, const char *name)
{
	const json *value = field(request, name);
	if (value == nullptr)
		return false;
	if (!value->is_boolean())
		throw ApiError(field_label(name) + " is invalid; '" + name + "' must be true or false");
	return value->get<bool>();
}

/* A Go duration field as an interval literal, or nullopt when missing. */
std::optional<std::string>
optional_duration(const json &request, const char *name)
{
	std::optional<std::string> text = optional_string(request, name);
	if (!text)
		return std::nullopt;
	std::optional<long long> micros = parse_go_duration(*text);
	if (!micros)
		throw ApiError(field_label(name) + " is invalid; '" + *text + "' is not a duration such as '90s' or '1h30m'");
	return std::to_string(*micros) + " microseconds";
}

/* request_timeout in microseconds, checked against Querator's bounds. */
long long
request_timeout(const json &request, bool strictly_below_max)
{
	std::optional<std::string> text = optional_string(request, "request_timeout");
	if (!text || text->empty())
		return kDefaultRequestTimeout;
	std::optional<long long> micros = parse_go_duration(*text);
	if (!micros)
		throw ApiError("request timeout is invalid; '" + *text + "' is not a duration such as '90s' or '1m'");
	if (*micros > kMaxRequestTimeout || (strictly_below_max && *micros == kMaxRequestTimeout))
		throw ApiError("request timeout is invalid; maximum timeout is '15m' but '" + format_go_duration(*micros) +
					   "' was requested");
	if (*micros <= kMinRequestTimeout)
		throw ApiError("request timeout is invalid; minimum timeout is '10ms' but '" + format_go_duration(*micros) +
					   "' was requested");
	return *micros;
}

int
timeout_ms(long long micros)
{
	return static_cast<int>((micros + kMicrosPerMs - 1) / kMicrosPerMs);
}

/* An id as Querator sends it (a decimal string; a number is accepted too), checked before it becomes a bigint. */
std::string
item_id(const json &value, const char *list)
{
	std::string text = value.is_string() ? value.get<std::string>() : value.is_number_integer() ? value.dump() : "";
	char *end = nullptr;
	errno = 0;
	(void) std::strtoll(text.c_str(), &end, 10);
	if (text.empty() || *end != '\0' || errno != 0)
		throw ApiError(std::string(list) + " is invalid; '" + (value.is_string() ? text : value.dump()) +
					   "' is not a valid id");
	return text;
}

const json &
required_array(const json &request, const char *name, const char *empty_message)
{
	const json *value = field(request, name);
	if (value != nullptr && !value->is_array())
		throw ApiError(std::string(name) + " is invalid; '" + name + "' must be a list");
	if (value == nullptr || value->empty())
		throw ApiError(empty_message);
	return *value;
}

std::optional<std::string>
text_param(const std::optional<long long> &value)
{
	std::optional<std::string> text;
	if (value.has_value())
		text = std::to_string(value.value());
	return text;
}

std::string
bool_param(bool value)
{
	return value ? "true" : "false";
}

json
parse_body(std::string_view body)
{
	json request;
	try
	{
		request = json::parse(body.begin(), body.end());
	}
	catch (const json::parse_error &e)
	{
		throw ApiError(std::string("invalid request body; ") + e.what());
	}
	if (!request.is_object())
		throw ApiError("invalid request body; expected a JSON object");
	return request;
}

/* ---------------------------------------------------------------- result values */

/* A column's text: "" for NULL, as libpq gives it (for columns that are never NULL). */
const char *
value(const PGresult *result, int row, int column)
{
	return PQgetvalue(result, row, column);
}

json
text_or_null(const PGresult *result, int row, int column)
{
	return PQgetisnull(result, row, column) ? json(nullptr) : json(value(result, row, column));
}

json
integer(const PGresult *result, int row, int column)
{
	return PQgetisnull(result, row, column) ? json(nullptr) : json(std::strtoll(value(result, row, column), nullptr, 10));
}

json
timestamp(const PGresult *result, int row, int column)
{
	return PQgetisnull(result, row, column) ? json(nullptr) : json(rfc3339(value(result, row, column)));
}

/* A column of whole microseconds (the statements print durations so) as a Go duration. */
json
duration(const PGresult *result, int row, int column)
{
	return PQgetisnull(result, row, column)
			   ? json(nullptr)
			   : json(format_go_duration(std::strtoll(value(result, row, column), nullptr, 10)));
}

Reply
ok_reply()
{
	return {kOk, R"({"code":200})"};
}

Reply
json_reply(const json &body)
{
	return {kOk, body.dump()};
}

/* ---------------------------------------------------------------- endpoints */

/*
 * Items of one call go to one partition in SQL; the jsonb parameter groups
 * them by the arguments SQL takes once per call (encoding, enqueue_at), and
 * the groups are produced in the order of their first item (the call is in
 * the outer query, over the ordered groups). The new ids come back with each
 * item's position.
 */
const char *const kProduceSql =
	"SELECT unnest(g.ns), unnest(querator.queue_produce_bytes_batch($1, g.payloads, g.kinds, g.refs, g.at, g.e))"
	" FROM (SELECT array_agg(n ORDER BY n) AS ns,"
	" array_agg(coalesce(decode(i->>'b', 'base64'), convert_to(i->>'u', 'UTF8')) ORDER BY n) AS payloads,"
	" array_agg(i->>'k' ORDER BY n) AS kinds, array_agg(i->>'r' ORDER BY n) AS refs,"
	" (i->>'at')::timestamptz AS at, i->>'e' AS e"
	" FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS t(i, n)"
	" GROUP BY i->>'at', i->>'e' ORDER BY min(n) OFFSET 0) g";

/* An item of queue.produce (payload in BASE64_FIELD or "utf8") as a row of kProduceSql's parameter. */
json
produce_row(const json &item, const char *base64_field)
{
	if (!item.is_object())
		throw ApiError("items is invalid; every item must be an object");
	json row = json::object();
	std::optional<std::string> bytes = optional_string(item, base64_field);
	if (bytes)
		row["b"] = *bytes;
	else
		row["u"] = optional_string(item, "utf8").value_or("");
	/* querator's encoding cannot be empty: the SQL default of the payload's type. */
	std::optional<std::string> encoding = optional_string(item, "encoding");
	row["e"] = encoding && !encoding->empty() ? *encoding : bytes ? "application/octet-stream" : "text/plain";
	row["k"] = optional_string(item, "kind").value_or("");
	row["r"] = optional_string(item, "reference").value_or("");
	if (std::optional<std::string> at = optional_string(item, "enqueue_at"); at && !at->empty())
		row["at"] = *at;
	return row;
}

void
plan_produce(const json &request, Plan &plan)
{
	plan.statement_timeout_ms = timeout_ms(request_timeout(request, true));
	const json &items = required_array(request, "items", "items cannot be empty; at least one item is required");
	json rows = json::array();
	for (const json &item : items)
		rows.push_back(produce_row(item, "bytes"));
	plan.statements.push_back({kProduceSql, {plan.queue_name, rows.dump()}});
}

/* storage/items.import: Querator's storage items, stored as new items (new ids; leases and attempts are not imported). */
void
plan_import(const json &request, Plan &plan)
{
	const json &items = required_array(request, "items", "items cannot be empty; at least one item is required");
	json rows = json::array();
	json echo = json::array();
	for (const json &item : items)
	{
		rows.push_back(produce_row(item, "payload"));
		echo.push_back(item);
		echo.back()["encoding"] = rows.back()["e"]; /* as stored */
	}
	plan.statements.push_back({kProduceSql, {plan.queue_name, rows.dump()}});
	plan.echo = echo.dump();
}

Reply
reply_import(const Plan &plan, const std::vector<PGresult *> &results)
{
	json items = json::parse(plan.echo);
	const PGresult *rows = results.at(0);
	for (int row = 0; row < PQntuples(rows); row++)
	{
		json &item = items.at(std::strtoll(value(rows, row, 0), nullptr, 10) - 1);
		item["id"] = value(rows, row, 1);
		item["attempts"] = 0;
		item["is_leased"] = false;
	}
	return json_reply({{"items", items}});
}

void
plan_lease(const json &request, Plan &plan)
{
	std::optional<long long> batch_size = optional_integer(request, "batch_size");
	if (!batch_size || *batch_size <= 0)
		throw ApiError("invalid batch size; must be greater than zero");
	std::string client_id = optional_string(request, "client_id").value_or("");
	if (client_id.empty())
		throw ApiError("invalid client id; cannot be empty");
	long long wait = request_timeout(request, false);
	/* The wait is the long poll; no statement timeout cuts it. */
	plan.statements.push_back(
		{"SELECT id, partition, kind, reference, encoding, translate(encode(payload, 'base64'), E'\\n', ''),"
		 " attempts, lease_deadline FROM querator.queue_lease($1, $2, $3::integer, $4::interval)",
		 {plan.queue_name, client_id, std::to_string(*batch_size), std::to_string(wait) + " microseconds"}});
}

Reply
reply_lease(const Plan &plan, const std::vector<PGresult *> &results)
{
	const PGresult *rows = results.at(0);
	if (PQntuples(rows) == 0)
		return error_reply(kRetryRequest, "request timeout; no items are in the queue, try again");
	json items = json::array();
	for (int row = 0; row < PQntuples(rows); row++)
		items.push_back({{"id", value(rows, row, 0)},
						 {"kind", value(rows, row, 2)},
						 {"reference", value(rows, row, 3)},
						 {"encoding", value(rows, row, 4)},
						 {"bytes", value(rows, row, 5)},
						 {"attempts", integer(rows, row, 6)},
						 {"lease_deadline", timestamp(rows, row, 7)}});
	return json_reply({{"queue_name", plan.queue_name}, {"partition", integer(rows, 0, 1)}, {"items", items}});
}

std::string
id_array(const json &ids, const char *list)
{
	std::string literal = "{";
	for (const json &id : ids)
	{
		if (literal.size() > 1)
			literal += ',';
		literal += item_id(id, list);
	}
	return literal + "}";
}

void
plan_complete(const json &request, Plan &plan)
{
	plan.statement_timeout_ms = timeout_ms(request_timeout(request, false));
	const json &ids = required_array(request, "ids", "ids is invalid; list of ids cannot be empty");
	plan.statements.push_back(
		{"SELECT querator.queue_complete_batch($1, $2::bigint[])", {plan.queue_name, id_array(ids, "ids")}});
}

void
plan_items_delete(const json &request, Plan &plan)
{
	const json &ids = required_array(request, "ids", "ids is invalid; list of ids cannot be empty");
	plan.statements.push_back(
		{"SELECT querator.storage_items_delete($1, $2::bigint[])", {plan.queue_name, id_array(ids, "ids")}});
}

void
plan_retry(const json &request, Plan &plan)
{
	const json &items = required_array(request, "items", "items is invalid; list of items cannot be empty");
	json rows = json::array();
	for (const json &item : items)
	{
		if (!item.is_object() || field(item, "id") == nullptr)
			throw ApiError("items is invalid; every item must be an object with an 'id'");
		json row = {{"id", item_id(item["id"], "items")}, {"dead", optional_bool(item, "dead")}};
		if (std::optional<std::string> at = optional_string(item, "retry_at"); at && !at->empty())
			row["at"] = *at;
		rows.push_back(std::move(row));
	}
	/* One call per (retry_at, dead); all in the request's transaction, so still all ids or none. */
	plan.statements.push_back(
		{"SELECT querator.queue_retry_batch($1, array_agg((i->>'id')::bigint ORDER BY n),"
		 " (i->>'at')::timestamptz, (i->>'dead')::boolean)"
		 " FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS t(i, n) GROUP BY i->>'at', i->>'dead'",
		 {plan.queue_name, rows.dump()}});
}

void
plan_stats(const json &request, Plan &plan)
{
	plan.statements.push_back(
		{"SELECT partition, total, total_leased, retried + lease_expired,"
		 " (extract(epoch FROM average_age) * 1000000)::bigint,"
		 " (extract(epoch FROM average_lease_remaining) * 1000000)::bigint, scheduled"
		 " FROM querator.queue_stats($1) ORDER BY partition",
		 {plan.queue_name}});
}

Reply
reply_stats(const Plan &plan, const std::vector<PGresult *> &results)
{
	const PGresult *rows = results.at(0);
	json partitions = json::array();
	for (int row = 0; row < PQntuples(rows); row++)
		partitions.push_back({{"partition", integer(rows, row, 0)},
							  {"total", integer(rows, row, 1)},
							  {"total_leased", integer(rows, row, 2)},
							  {"failures", integer(rows, row, 3)},
							  {"average_age", duration(rows, row, 4)},
							  {"average_leased_age", duration(rows, row, 5)},
							  {"scheduled", integer(rows, row, 6)}});
	json logical = {{"produce_waiting", 0}, {"lease_waiting", 0}, {"complete_waiting", 0},
					{"in_flight", 0}, {"partitions", partitions}};
	return json_reply({{"queue_name", plan.queue_name}, {"logical_queues", json::array({logical})}});
}

void
plan_clear(const json &request, Plan &plan)
{
	bool queue = optional_bool(request, "queue");
	bool scheduled = optional_bool(request, "scheduled");
	if (!queue && !scheduled)
		throw ApiError("invalid clear request; one of 'queue' or 'scheduled' must be true");
	plan.statements.push_back({"SELECT querator.queue_clear($1, $2::boolean, $3::boolean, $4::boolean)",
							   {plan.queue_name, bool_param(queue), bool_param(scheduled),
								bool_param(optional_bool(request, "destructive"))}});
}

/* queues.create and queues.update take the same fields; a missing one is NULL (the default / unchanged). */
Statement
queue_options_statement(const char *sql, const json &request)
{
	std::optional<long long> partitions = optional_integer(request, "requested_partitions");
	if (partitions && *partitions == 0)
		partitions.reset(); /* proto3's zero value: not given */
	return {sql,
			{queue_name(request), optional_duration(request, "lease_timeout"), optional_duration(request, "expire_timeout"),
			 text_param(optional_integer(request, "max_attempts")), optional_string(request, "dead_queue"),
			 optional_string(request, "reference"), text_param(partitions)}};
}

void
plan_queues_create(const json &request, Plan &plan)
{
	plan.statements.push_back(queue_options_statement(
		"SELECT querator.queues_create($1, $2::interval, $3::interval, $4::integer, nullif($5, ''), $6, $7::integer)",
		request));
}

void
plan_queues_update(const json &request, Plan &plan)
{
	plan.statements.push_back(queue_options_statement(
		"SELECT querator.queues_update($1, $2::interval, $3::interval, $4::integer, $5, $6, $7::integer)", request));
}

#define QUEUE_COLUMNS                                                                                           \
	"queue_name, (extract(epoch FROM lease_timeout) * 1000000)::bigint,"                                       \
	" (extract(epoch FROM expire_timeout) * 1000000)::bigint, max_attempts, dead_queue, reference, partitions," \
	" created_at, updated_at"

json
queue_json(const PGresult *rows, int row)
{
	json queue = {{"queue_name", value(rows, row, 0)},
				  {"lease_timeout", duration(rows, row, 1)},
				  {"max_attempts", integer(rows, row, 3)},
				  {"dead_queue", text_or_null(rows, row, 4)},
				  {"reference", value(rows, row, 5)},
				  {"requested_partitions", integer(rows, row, 6)},
				  {"partitions", integer(rows, row, 6)},
				  {"created_at", timestamp(rows, row, 7)},
				  {"updated_at", timestamp(rows, row, 8)}};
	/* NULL: items never expire (Querator always has an expire timeout). */
	if (!PQgetisnull(rows, row, 2))
		queue["expire_timeout"] = duration(rows, row, 2);
	return queue;
}

void
plan_queues_list(const json &request, Plan &plan)
{
	std::optional<long long> limit = optional_integer(request, "limit");
	if (limit && *limit == 0)
		limit.reset(); /* 0 = the default, 1000 */
	plan.statements.push_back({"SELECT " QUEUE_COLUMNS " FROM querator.queues_list(nullif($1, ''), coalesce($2::integer, 1000))",
							   {optional_string(request, "pivot"), text_param(limit)}});
}

Reply
reply_queues_list(const Plan &, const std::vector<PGresult *> &results)
{
	json items = json::array();
	for (int row = 0; row < PQntuples(results.at(0)); row++)
		items.push_back(queue_json(results.at(0), row));
	return json_reply({{"items", items}});
}

void
plan_queues_info(const json &request, Plan &plan)
{
	plan.statements.push_back({"SELECT " QUEUE_COLUMNS " FROM querator.queues_info($1)", {plan.queue_name}});
}

Reply
reply_queues_info(const Plan &plan, const std::vector<PGresult *> &results)
{
	if (PQntuples(results.at(0)) == 0)
		return error_reply(kBadRequest, "queue does not exist; no such queue named '" + plan.queue_name + "'");
	return json_reply(queue_json(results.at(0), 0));
}

void
plan_queues_delete(const json &request, Plan &plan)
{
	plan.statements.push_back({"SELECT querator.queues_delete($1, $2::boolean)",
							   {plan.queue_name, bool_param(optional_bool(request, "force"))}});
}

/* storage/items.list and storage/scheduled.list: the same paging over two lists. */
void
plan_storage_list(const json &request, Plan &plan, const char *sql)
{
	std::optional<std::string> pivot;
	if (const json *given = field(request, "pivot"); given != nullptr && !(given->is_string() && given->get<std::string>().empty()))
		pivot = item_id(*given, "pivot");
	std::optional<long long> limit = optional_integer(request, "limit");
	if (limit && *limit == 0)
		limit.reset();
	plan.statements.push_back({sql, {plan.queue_name, pivot, text_param(limit)}});
}

void
plan_items_list(const json &request, Plan &plan)
{
	plan_storage_list(
		request, plan, "SELECT l.id, l.source_id, l.leased, l.lease_deadline, l.expire_deadline, l.created_at, NULL,"
			  " l.attempts, q.max_attempts, l.reference, l.encoding, l.kind, translate(encode(l.payload, 'base64'), E'\\n', '')"
			  " FROM querator.storage_items_list($1, $2::bigint, coalesce($3::integer, 100)) l,"
			  " querator.queues_info($1) q");
}

void
plan_scheduled_list(const json &request, Plan &plan)
{
	plan_storage_list(
		request, plan, "SELECT l.id, l.source_id, false, NULL, l.expire_deadline, l.created_at, l.enqueue_at,"
			  " l.attempts, q.max_attempts, l.reference, l.encoding, l.kind, translate(encode(l.payload, 'base64'), E'\\n', '')"
			  " FROM querator.storage_scheduled_list($1, $2::bigint, coalesce($3::integer, 100)) l,"
			  " querator.queues_info($1) q");
}

Reply
reply_storage_list(const Plan &, const std::vector<PGresult *> &results)
{
	const PGresult *rows = results.at(0);
	json items = json::array();
	for (int row = 0; row < PQntuples(rows); row++)
	{
		json item = {{"id", value(rows, row, 0)},
					 {"source_id", text_or_null(rows, row, 1)},
					 {"is_leased", std::strcmp(value(rows, row, 2), "t") == 0},
					 {"lease_deadline", timestamp(rows, row, 3)},
					 {"expire_deadline", timestamp(rows, row, 4)},
					 {"created_at", timestamp(rows, row, 5)},
					 {"enqueue_at", timestamp(rows, row, 6)},
					 {"attempts", integer(rows, row, 7)},
					 {"max_attempts", integer(rows, row, 8)},
					 {"reference", value(rows, row, 9)},
					 {"encoding", value(rows, row, 10)},
					 {"kind", value(rows, row, 11)},
					 {"payload", value(rows, row, 12)}};
		items.push_back(std::move(item));
	}
	return json_reply({{"items", items}});
}

Reply
reply_ok(const Plan &, const std::vector<PGresult *> &)
{
	return ok_reply();
}

/* ---------------------------------------------------------------- metrics */

void
plan_metrics(const json &, Plan &plan)
{
	plan.statements.push_back(
		{"SELECT queue_name, partition, greatest(total - total_leased, 0), total_leased, scheduled, dead, produced, leased,"
		 " completed, retried, lease_expired, dead_lettered, expired FROM querator.stats ORDER BY queue_name, partition",
		 {}});
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
std::string
label(const char *text)
{
	std::string out;
	for (const char *c = text; *c != '\0'; c++)
	{
		if (*c == '\\' || *c == '"')
			out += '\\';
		if (*c == '\n')
			out += "\\n";
		else
			out += *c;
	}
	return out;
}

Reply
reply_metrics(const Plan &, const std::vector<PGresult *> &results)
{
	static const struct
	{
		const char *name, *type, *help;
	} kMetricColumns[] = {
		{"querator_queue_ready", "gauge", "Ready items not leased (planner estimate above 100,000 rows)."},
		{"querator_queue_leased", "gauge", "Leased items not yet completed, retried or expired."},
		{"querator_queue_scheduled", "gauge", "Items waiting for their enqueue_at or retry_at."},
		{"querator_queue_dead", "gauge", "Dead letters in the queue's own dead-letter table."},
		{"querator_queue_produced_total", "counter", "Items produced since the server started."},
		{"querator_queue_leased_total", "counter", "Items leased since the server started."},
		{"querator_queue_completed_total", "counter", "Items completed since the server started."},
		{"querator_queue_retried_total", "counter", "Items requeued by retry since the server started."},
		{"querator_queue_lease_expired_total", "counter", "Leases the worker ended since the server started."},
		{"querator_queue_dead_lettered_total", "counter", "Items dead-lettered since the server started."},
		{"querator_queue_expired_total", "counter", "Items past expire_timeout since the server started."},
	};
	const PGresult *rows = results.at(0);
	std::string text;
	int column = 2;
	for (const auto &metric : kMetricColumns)
	{
		text += std::string("# HELP ") + metric.name + " " + metric.help + "\n# TYPE " + metric.name + " " + metric.type + "\n";
		for (int row = 0; row < PQntuples(rows); row++)
			text += std::string(metric.name) + "{queue=\"" + label(value(rows, row, 0)) + "\",partition=\"" +
					value(rows, row, 1) + "\"} " + value(rows, row, column) + "\n";
		column++;
	}
	return {kOk, text, "text/plain; version=0.0.4"};
}

/* Querator's body limits: produce 5 MB, lease 512 bytes, stats/clear 512 bytes, update 512 KB, import 64 MB, others 256 KB. */
const Endpoint kEndpoints[] = {
	{"/v1/queue.produce", 5 * kMiB, plan_produce, reply_ok},
	{"/v1/queue.lease", 512, plan_lease, reply_lease},
	{"/v1/queue.complete", 256 * kKiB, plan_complete, reply_ok},
	{"/v1/queue.retry", 256 * kKiB, plan_retry, reply_ok},
	{"/v1/queue.stats", 512, plan_stats, reply_stats},
	{"/v1/queue.clear", 512, plan_clear, reply_ok},
	{"/v1/queues.create", 256 * kKiB, plan_queues_create, reply_ok},
	{"/v1/queues.update", 512 * kKiB, plan_queues_update, reply_ok},
	{"/v1/queues.list", 256 * kKiB, plan_queues_list, reply_queues_list},
	{"/v1/queues.info", 256 * kKiB, plan_queues_info, reply_queues_info},
	{"/v1/queues.delete", 256 * kKiB, plan_queues_delete, reply_ok},
	{"/v1/storage/items.list", 256 * kKiB, plan_items_list, reply_storage_list},
	{"/v1/storage/scheduled.list", 256 * kKiB, plan_scheduled_list, reply_storage_list},
	{"/v1/storage/items.import", 64 * kMiB, plan_import, reply_import},
	{"/v1/storage/items.delete", 256 * kKiB, plan_items_delete, reply_ok},
};

/* ---------------------------------------------------------------- SQLSTATE -> status */

struct StatusRule
{
	const char *sqlstate; /* a full SQLSTATE, or a two-character class */
	int status;
};

/*
 * The one SQLSTATE-to-status table (README, "HTTP API"). Full codes are
 * looked up before classes; anything else is 500 with the detail in the
 * server log only.
 */
const StatusRule kStatusRules[] = {
	{"28000", kUnauthorized}, /* http_begin: no, unknown or revoked key */
	{"42501", kForbidden},    /* the key's role lacks the privilege */
	{"42704", kBadRequest},   /* no such queue, invalid storage id */
	{"42710", kBadRequest},   /* queue exists */
	{"2BP01", kBadRequest},   /* queue is the dead_queue of another */
	{"55000", kBadRequest},   /* not leased, not empty (a queue being deleted: see below) */
	{"55006", kBadRequest},   /* duplicate client id */
	{"54000", kBadRequest},   /* batch or payload over the limit */
	{"0A000", kBadRequest},
	{"25006", kRequestFailed}, /* read-only: a standby */
	{"40001", kRetryRequest},  /* serialization failure; a queue changed during the call */
	{"40P01", kRetryRequest},  /* deadlock */
	{"55P03", kRetryRequest},  /* lock timeout */
	{"57014", kRetryRequest},  /* the request's statement timeout */
	{"22", kBadRequest},       /* data exceptions: invalid values */
	{"53", kRetryRequest},     /* insufficient resources: overload */
	{"57", kRequestFailed},    /* operator intervention: shutdown */
};

} // namespace

const char *const kBeginSql = "SELECT querator.http_begin($1, $2, $3::integer)";

const Endpoint kMetrics = {"/metrics", 0, plan_metrics, reply_metrics};

Reply
error_reply(int status, std::string_view message)
{
	json body = {{"code", status}, {"code_text", status_text(status)}, {"message", message}};
	return {status, body.dump()};
}

Reply
reply_for_sql_error(const char *sqlstate, const char *message)
{
	const std::string code = sqlstate != nullptr ? sqlstate : "";
	std::string text = message != nullptr ? message : "";
	while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
		text.pop_back();
	if (code == "55000" && (text.rfind("queue is being ", 0) == 0 || text.rfind("extension is being dropped", 0) == 0))
		return error_reply(kRequestFailed, text); /* the queue is going away: do not retry */
	if (code.rfind("57P", 0) == 0)
		return error_reply(kRequestFailed, "service is shutting down; " + text);
	for (const StatusRule &rule : kStatusRules)
		if (code == rule.sqlstate)
			return error_reply(rule.status, text);
	for (const StatusRule &rule : kStatusRules)
		if (std::strlen(rule.sqlstate) == 2 && code.rfind(rule.sqlstate, 0) == 0)
			return error_reply(rule.status, text);
	return error_reply(kInternal, "internal error; see the server log");
}

const Endpoint *
find_endpoint(std::string_view path)
{
	for (const Endpoint &endpoint : kEndpoints)
		if (path == endpoint.path)
			return &endpoint;
	return nullptr;
}

Planned
plan_request(const Endpoint &endpoint, std::string_view body)
{
	Planned planned;
	try
	{
		/* GET /metrics takes no body; every call takes a JSON object, most of them naming a queue. */
		const json request = endpoint.body_limit == 0 ? json::object() : parse_body(body);
		planned.plan.endpoint = &endpoint;
		planned.plan.queue_name = queue_name(request);
		endpoint.plan(request, planned.plan);
	}
	catch (const ApiError &e)
	{
		planned.refused = error_reply(kBadRequest, e.what());
	}
	catch (const json::exception &e)
	{
		planned.refused = error_reply(kBadRequest, std::string("invalid request body; ") + e.what());
	}
	return planned;
}

/* ---------------------------------------------------------------- values */

std::optional<long long>
parse_go_duration(std::string_view text)
{
	/* Go's time.ParseDuration: [-+]? ( decimal unit )+ , or "0". */
	static const std::pair<std::string_view, double> kUnits[] = {
		{"ns", 1e-3}, {"us", 1.0}, {"\xC2\xB5s", 1.0}, {"\xCE\xBCs", 1.0}, {"ms", 1e3}, {"s", 1e6}, {"m", 60e6}, {"h", 3600e6}};
	if (text == "0")
		return 0;
	bool negative = false;
	if (!text.empty() && (text[0] == '-' || text[0] == '+'))
	{
		negative = text[0] == '-';
		text.remove_prefix(1);
	}
	if (text.empty())
		return std::nullopt;
	double total = 0;
	while (!text.empty())
	{
		std::size_t digits = 0;
		while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.'))
			digits++;
		if (digits == 0 || (digits == 1 && text[0] == '.'))
			return std::nullopt;
		std::string number(text.substr(0, digits));
		if (std::count(number.begin(), number.end(), '.') > 1)
			return std::nullopt;
		text.remove_prefix(digits);
		const std::pair<std::string_view, double> *unit = nullptr;
		/* Longest match first: "ms" before "m". */
		for (const auto &candidate : kUnits)
			if (text.substr(0, candidate.first.size()) == candidate.first &&
				(unit == nullptr || candidate.first.size() > unit->first.size()))
				unit = &candidate;
		if (unit == nullptr)
			return std::nullopt;
		text.remove_prefix(unit->first.size());
		total += std::strtod(number.c_str(), nullptr) * unit->second;
		if (total > 9.2e18)
			return std::nullopt;
	}
	long long micros = std::llround(total);
	return negative ? -micros : micros;
}

std::string
format_go_duration(long long micros)
{
	/* Go's Duration.String at microsecond precision: "1h0m0s", "1m30s", "1.5s", "900ms", "0s". */
	if (micros == 0)
		return "0s";
	std::string sign = micros < 0 ? "-" : "";
	unsigned long long u = micros < 0 ? -static_cast<unsigned long long>(micros) : micros;
	auto fraction = [](unsigned long long value, unsigned long long scale) {
		std::string digits = std::to_string(value / scale);
		unsigned long long rest = value % scale;
		if (rest == 0)
			return digits;
		std::string frac = std::to_string(scale + rest).substr(1);
		while (frac.back() == '0')
			frac.pop_back();
		return digits + "." + frac;
	};
	if (u < 1000)
		return sign + std::to_string(u) + "\xC2\xB5s";
	if (u < 1000000)
		return sign + fraction(u, 1000) + "ms";
	unsigned long long hours = u / 3600000000ULL;
	unsigned long long minutes = (u / 60000000ULL) % 60;
	std::string seconds = fraction(u % 60000000ULL, 1000000) + "s";
	if (hours > 0)
		return sign + std::to_string(hours) + "h" + std::to_string(minutes) + "m" + seconds;
	if (minutes > 0)
		return sign + std::to_string(minutes) + "m" + seconds;
	return sign + seconds;
}

std::string
rfc3339(std::string_view iso)
{
	/* "2026-12-02 11:09:38.123456+00" -> "2026-12-02T11:09:38.123456Z" (the pool's TimeZone is UTC). */
	std::string out(iso);
	if (out.size() > 10 && out[10] == ' ')
		out[10] = 'T';
	if (out.size() > 3 && out.compare(out.size() - 3, 3, "+00") == 0)
		out.replace(out.size() - 3, 3, "Z");
	return out;
}

} // namespace querator::http
