/* The queue catalog; see catalog.hpp. */
#include "catalog.hpp"
#include "catalog_cache.hpp"
#include "error.hpp"
#include "spi.hpp"

namespace querator {

namespace {

/* The columns def_from_row reads, for SELECT and RETURNING. */
#define QUERATOR_DEF_COLUMNS                                                                                   \
	"id, name, lease_timeout, expire_timeout, max_attempts, coalesce(dead_queue, ''), reference, partitions, " \
	"  paused, owner, coalesce(webhook_url, ''), webhook_headers::text, webhook_timeout, webhook_concurrency, " \
	"  webhook_backoff, webhook_backoff_max "

const char *const kSelectColumns = "SELECT " QUERATOR_DEF_COLUMNS "FROM querator.queues ";

/*
 * The SQL twin of may_see (access.cpp) for the queue row `alias`, with $3 =
 * the caller is a superuser and $4 = the caller's role: the caller owns the
 * queue (or has its owner's privileges) or holds a grant on it.
 */
std::string
visible_sql(const std::string &alias)
{
	return "($3 OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = " + alias + ".owner "
		   "     AND pg_catalog.pg_has_role($4, r.oid, 'USAGE')) "
		   "  OR EXISTS (SELECT 1 FROM querator.queue_grants g JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name "
		   "     WHERE g.queue_name = " + alias + ".name AND pg_catalog.pg_has_role($4, r.oid, 'USAGE')))";
}

/*
 * The rows of queues_list / queues_info: the queues `where` selects (with $1,
 * up to $2 of them) that the caller may see. Their dead_queue shows only when
 * the caller may see that queue too, else NULL: the name alone would tell
 * that it exists. The check runs once per distinct dead queue of the page.
 */
std::string
list_sql(const std::string &where)
{
	return "WITH page AS (SELECT * FROM querator.queues q WHERE " + where + " AND " + visible_sql("q") +
		   "    ORDER BY name COLLATE \"C\" LIMIT $2), "
		   "  shown_dead AS (SELECT d.name FROM querator.queues d "
		   "    WHERE d.name IN (SELECT dead_queue FROM page) AND " + visible_sql("d") + ") "
		   "SELECT name, lease_timeout, expire_timeout, max_attempts, "
		   "  CASE WHEN dead_queue IN (SELECT name FROM shown_dead) THEN dead_queue END AS dead_queue, "
		   "  reference, partitions, paused, owner, webhook_url, created_at, updated_at "
		   "FROM page ORDER BY name COLLATE \"C\"";
}

std::vector<SqlParam>
list_params(SqlParam key, int32 limit, Oid role, bool all)
{
	return {key, param_int32(limit), param_bool(all), param_datum(OIDOID, ObjectIdGetDatum(role), false)};
}

QueueDef
def_from_row(uint64 row)
{
	QueueDef def;
	def.id = spi_get_int32(row, 1);
	def.name = spi_get_text(row, 2);
	def.lease_timeout = spi_get_interval(row, 3);
	if (!spi_is_null(row, 4))
		def.expire_timeout = spi_get_interval(row, 4);
	def.max_attempts = spi_get_int32(row, 5);
	def.dead_queue = spi_get_text(row, 6);
	def.reference = spi_get_text(row, 7);
	def.partitions = spi_get_int32(row, 8);
	def.paused = spi_get_bool(row, 9);
	def.owner = spi_get_text(row, 10);
	def.webhook.url = spi_get_text(row, 11);
	def.webhook.headers_json = spi_get_text(row, 12);
	def.webhook.timeout = spi_get_interval(row, 13);
	def.webhook.concurrency = spi_get_int32(row, 14);
	def.webhook.backoff = spi_get_interval(row, 15);
	def.webhook.backoff_max = spi_get_interval(row, 16);
	return def;
}

/* The definitions of the first `n` rows of the last SPI result, in their order. */
std::vector<QueueDef>
defs_from_rows(uint64 n)
{
	std::vector<QueueDef> defs;
	defs.reserve(n);
	for (uint64 i = 0; i < n; i++)
		defs.push_back(def_from_row(i));
	return defs;
}

std::vector<SqlParam>
definition_params(const QueueDef &def)
{
	const Interval *expire = def.expire_timeout ? &*def.expire_timeout : nullptr;
	SqlParam dead = def.dead_queue.empty() ? param_datum(TEXTOID, 0, true) : param_text(def.dead_queue);
	SqlParam url = def.webhook.url.empty() ? param_datum(TEXTOID, 0, true) : param_text(def.webhook.url);
	return {param_text(def.name), param_interval(&def.lease_timeout), param_interval(expire),
			param_int32(def.max_attempts), dead, param_text(def.reference), param_int32(def.partitions),
			param_bool(def.paused), param_text(def.owner), url, param_text(def.webhook.headers_json),
			param_interval(&def.webhook.timeout), param_int32(def.webhook.concurrency),
			param_interval(&def.webhook.backoff), param_interval(&def.webhook.backoff_max)};
}

} // namespace

std::optional<QueueDef>
catalog_find(const std::string &name, bool lock_for_update)
{
	uint64 version = 0;
	if (!lock_for_update)
		if (std::optional<QueueDef> cached = catalog_cache_lookup(name, &version))
			return cached;
	std::string sql = std::string(kSelectColumns) + "WHERE name = $1" + (lock_for_update ? " FOR UPDATE" : "");
	/* Not read-only: a fresh snapshot, so a waiting lease sees a pause or resume that committed meanwhile. */
	if (spi_run(sql, {param_text(name)}, false) == 0)
		return std::nullopt;
	QueueDef def = def_from_row(0);
	if (!lock_for_update)
		catalog_cache_store(def, version);
	return def;
}

Error
no_such_queue(const std::string &name, const char *field)
{
	return Error(ERRCODE_UNDEFINED_OBJECT, std::string(field) + " does not exist; no such queue named '" + name + "'");
}

QueueDef
catalog_get(const std::string &name, bool lock_for_update, const char *field)
{
	std::optional<QueueDef> def = catalog_find(name, lock_for_update);
	if (!def)
		throw no_such_queue(name, field);
	return *def;
}

std::optional<QueueDef>
catalog_find_by_id(int32 queue_id)
{
	if (spi_run(std::string(kSelectColumns) + "WHERE id = $1", {param_int32(queue_id)}, true) == 0)
		return std::nullopt;
	return def_from_row(0);
}

std::vector<QueueDef>
catalog_all()
{
	uint64 n = spi_run(std::string(kSelectColumns) + "ORDER BY name", {}, true);
	return defs_from_rows(n);
}

std::vector<QueueDef>
catalog_webhook_queues(const std::vector<int32> &also)
{
	const std::vector<int64> ids(also.begin(), also.end());
	uint64 n = spi_run(std::string(kSelectColumns) +
						   "WHERE webhook_url IS NOT NULL OR id = ANY ($1) OR name IN "
						   "(SELECT dead_queue FROM querator.queues WHERE webhook_url IS NOT NULL OR id = ANY ($1)) "
						   "ORDER BY name",
					   {param_int64_array(ids)}, true);
	return defs_from_rows(n);
}

std::optional<int32>
catalog_insert(const QueueDef &def)
{
	uint64 inserted = spi_run("INSERT INTO querator.queues (name, lease_timeout, expire_timeout, max_attempts, dead_queue, "
			"reference, partitions, paused, owner, webhook_url, webhook_headers, webhook_timeout, "
			"webhook_concurrency, webhook_backoff, webhook_backoff_max) "
			"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14, $15) "
			"ON CONFLICT (name) DO NOTHING RETURNING id",
			definition_params(def));
	if (inserted == 0)
		return std::nullopt;
	return spi_get_int32(0, 1);
}

void
catalog_update(const QueueDef &def)
{
	std::vector<SqlParam> params = definition_params(def);
	params.push_back(param_int32(def.id));
	spi_run("UPDATE querator.queues SET name = $1, lease_timeout = $2, expire_timeout = $3, max_attempts = $4, "
			"dead_queue = $5, reference = $6, partitions = $7, paused = $8, owner = $9, webhook_url = $10, "
			"webhook_headers = $11::jsonb, webhook_timeout = $12, webhook_concurrency = $13, webhook_backoff = $14, "
			"webhook_backoff_max = $15, updated_at = now() WHERE id = $16",
			params);
}

void
catalog_delete(int32 queue_id)
{
	spi_run("DELETE FROM querator.queue_grants WHERE queue_name = (SELECT name FROM querator.queues WHERE id = $1)",
			{param_int32(queue_id)});
	spi_run("DELETE FROM querator.queues WHERE id = $1", {param_int32(queue_id)});
}

std::vector<QueueDef>
catalog_queues_using_dead_queue(const std::string &name)
{
	uint64 n = spi_run(std::string(kSelectColumns) + "WHERE dead_queue = $1 ORDER BY name", {param_text(name)}, true);
	return defs_from_rows(n);
}

std::vector<QueueDef>
catalog_clear_dead_queue(const std::string &name)
{
	uint64 n = spi_run("UPDATE querator.queues SET dead_queue = NULL, updated_at = now() WHERE dead_queue = $1 "
					   "RETURNING " QUERATOR_DEF_COLUMNS,
					   {param_text(name)});
	return defs_from_rows(n);
}

void
catalog_list_to(ReturnSetInfo *rsinfo, const std::string *pivot, int32 limit, Oid role, bool all)
{
	SqlParam pivot_param = pivot ? param_text(*pivot) : param_datum(TEXTOID, 0, true);
	spi_run(list_sql("($1 IS NULL OR name COLLATE \"C\" >= $1)"), list_params(pivot_param, limit, role, all), true);
	spi_copy_result_to(rsinfo);
}

void
catalog_info_to(ReturnSetInfo *rsinfo, const std::string &name, Oid role, bool all)
{
	if (spi_run(list_sql("name = $1"), list_params(param_text(name), 1, role, all), true) == 0)
		throw no_such_queue(name);
	spi_copy_result_to(rsinfo);
}

} // namespace querator
