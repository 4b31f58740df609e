/* SPI wrappers; see spi.hpp. */
#include "spi.hpp"
#include "arguments.hpp"
#include "error.hpp"
#include "settings.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "jit/jit.h"
#include "optimizer/cost.h"
#include "optimizer/planner.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/syscache.h"
}

#include <list>
#include <unordered_map>

namespace querator {

namespace {

/*
 * The planner settings of querator's own statements, applied by a planner
 * hook while one of them is planned (inside spi_run), and only then: plans
 * are made (and re-made after an invalidation) under them, and a call pays
 * no GUC nest level for them.
 *
 * - enable_seqscan off: every statement of querator is driven by an index
 *   on id or a deadline. A sequential scan is only ever chosen for a table
 *   that was small when its plan was cached (an emptied lease table after
 *   ANALYZE) and then runs once per probed row while the table bloats under
 *   churn: a lease probing 65,000 rows took 63 s that way.
 * - jit off: a generic plan's estimate is that of a whole-table walk (its
 *   LIMIT is a parameter), above jit_above_cost: JIT would compile every
 *   statement on every call (16 ms for a lease of one item).
 *
 * The hook sets the variables behind the two settings directly and restores
 * them before it returns, error or not; nothing else runs in between.
 */
int own_statements_running = 0;
planner_hook_type previous_planner_hook = nullptr;

PlannedStmt *
plan_statement(Query *parse, const char *query_string, int cursor_options, ParamListInfo bound_params)
{
	planner_hook_type next = previous_planner_hook ? previous_planner_hook : standard_planner;
	if (own_statements_running == 0)
		return next(parse, query_string, cursor_options, bound_params);
	const bool saved_seqscan = enable_seqscan;
	const bool saved_jit = jit_enabled;
	PlannedStmt *planned = nullptr;
	PG_TRY();
	{
		enable_seqscan = false;
		jit_enabled = false;
		planned = next(parse, query_string, cursor_options, bound_params);
	}
	PG_FINALLY();
	{
		enable_seqscan = saved_seqscan;
		jit_enabled = saved_jit;
	}
	PG_END_TRY();
	return planned;
}

/* Marks the statement spi_run prepares or executes as querator's own, for plan_statement. */
class OwnStatement
{
public:
	OwnStatement() { own_statements_running++; }
	~OwnStatement() { own_statements_running--; }
	OwnStatement(const OwnStatement &) = delete;
	OwnStatement &operator=(const OwnStatement &) = delete;
};

/*
 * Plans are keyed by their SQL text, which names the tables, so a dropped and
 * re-created table simply gets revalidated by the plan cache. A statement on a
 * queue's tables is one plan per partition, about 100 KB of memory each
 * (measured: 100 queues used through produce, lease, extend, retry and
 * complete left 501 plans in 50 MB), so the cache keeps the
 * querator.max_cached_plans most recently used and frees the rest: a backend's
 * memory is bounded whatever the number of queues it touches, and a plan
 * evicted is prepared again on its next use (docs/design.md, "Plans").
 */
struct SavedPlan
{
	SPIPlanPtr plan;
	std::list<const std::string *>::iterator use; /* its place in plans_by_use */
};
std::unordered_map<std::string, SavedPlan> saved_plans;
std::list<const std::string *> plans_by_use; /* keys of saved_plans, most recently used first */

void
forget_least_recently_used_plan()
{
	auto found = saved_plans.find(*plans_by_use.back());
	SPIPlanPtr plan = found->second.plan;
	plans_by_use.pop_back();
	saved_plans.erase(found);
	pg_guard([&] { SPI_freeplan(plan); });
}

SPIPlanPtr
plan_for(const std::string &sql, const std::vector<Oid> &types)
{
	auto found = saved_plans.find(sql);
	if (found != saved_plans.end())
	{
		plans_by_use.splice(plans_by_use.begin(), plans_by_use, found->second.use);
		return found->second.plan;
	}
	while (!saved_plans.empty() && saved_plans.size() >= static_cast<size_t>(max_cached_plans))
		forget_least_recently_used_plan();
	const char *text = sql.c_str();
	int nargs = static_cast<int>(types.size());
	const Oid *argtypes = types.data();
	OwnStatement own;
	SPIPlanPtr plan = pg_guard([&] {
		/*
		 * Generic plans only: every statement is written to run well with
		 * any parameter values (index walks bounded by LIMIT, per-row probes).
		 * The plan cache would otherwise keep re-planning per call, since a
		 * generic plan's estimate (LIMIT $1 read as 10% of the table) never
		 * beats a custom plan's: planning was a quarter of a lease's CPU time.
		 */
		SPIPlanPtr p = SPI_prepare_cursor(text, nargs, const_cast<Oid *>(argtypes), CURSOR_OPT_GENERIC_PLAN);
		if (p == nullptr)
			elog(ERROR, "querator: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "querator: SPI_keepplan failed");
		return p;
	}, ErrorOrigin::internal_sql);
	auto inserted = saved_plans.emplace(sql, SavedPlan{plan, {}}).first;
	plans_by_use.push_front(&inserted->first);
	inserted->second.use = plans_by_use.begin();
	return plan;
}

Datum
value_at(uint64 row, int col, bool *is_null)
{
	return pg_guard([&] {
		if (SPI_tuptable == nullptr || row >= SPI_processed)
			elog(ERROR, "querator: SPI result row %lu out of range", (unsigned long) row);
		return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, is_null);
	});
}

} // namespace

SqlParam
param_datum(Oid type, Datum value, bool is_null)
{
	return SqlParam{type, value, is_null};
}

SqlParam
param_int32(int32 v)
{
	return SqlParam{INT4OID, Int32GetDatum(v), false};
}

SqlParam
param_int64(int64 v)
{
	return SqlParam{INT8OID, Int64GetDatum(v), false};
}

SqlParam
param_bool(bool v)
{
	return SqlParam{BOOLOID, BoolGetDatum(v), false};
}

SqlParam
param_text(const std::string &v)
{
	const char *s = v.c_str();
	int len = static_cast<int>(v.size());
	Datum d = pg_guard([&] { return PointerGetDatum(cstring_to_text_with_len(s, len)); });
	return SqlParam{TEXTOID, d, false};
}

SqlParam
param_interval(const Interval *v)
{
	if (v == nullptr)
		return SqlParam{INTERVALOID, (Datum) 0, true};
	Datum d = pg_guard([&] {
		Interval *copy = static_cast<Interval *>(palloc(sizeof(Interval)));
		*copy = *v;
		return IntervalPGetDatum(copy);
	});
	return SqlParam{INTERVALOID, d, false};
}

SqlParam
param_timestamptz(const TimestampTz *v)
{
	if (v == nullptr)
		return SqlParam{TIMESTAMPTZOID, (Datum) 0, true};
	return SqlParam{TIMESTAMPTZOID, TimestampTzGetDatum(*v), false};
}

SqlParam
param_int64_array(const std::vector<int64> &v)
{
	return SqlParam{INT8ARRAYOID, make_int64_array(v), false};
}

namespace {

Oid current_invoker = InvalidOid;

/*
 * Owner of the querator_data schema (the role that created the extension),
 * looked up once and forgotten whenever any schema changes (a new owner, a
 * DROP and CREATE EXTENSION), as the catalog caches themselves are.
 */
Oid cached_storage_owner = InvalidOid;

void
forget_storage_owner(Datum, int, uint32)
{
	cached_storage_owner = InvalidOid;
}

Oid
storage_owner()
{
	if (OidIsValid(cached_storage_owner))
		return cached_storage_owner;
	cached_storage_owner = pg_guard([] {
		static bool callback_registered = false;
		if (!callback_registered)
		{
			CacheRegisterSyscacheCallback(NAMESPACEOID, forget_storage_owner, (Datum) 0);
			callback_registered = true;
		}
		Oid schema = get_namespace_oid("querator_data", false);
		HeapTuple tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(schema));
		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "querator: cache lookup failed for schema %u", schema);
		Oid owner = reinterpret_cast<Form_pg_namespace>(GETSTRUCT(tuple))->nspowner;
		ReleaseSysCache(tuple);
		return owner;
	});
	return cached_storage_owner;
}

/*
 * The name resolution of querator's own statements: pg_catalog only (and no
 * temporary schema, which would otherwise be searched first for tables and
 * types). Pushed for the life of an SpiConnection, so a statement is parsed
 * (and re-parsed by the plan cache, which re-analyses a statement when the
 * search_path differs from its last use) under it whatever the caller set:
 * objects of the caller's schemas cannot stand in for the ones querator
 * uses. Cheaper than a SET on every function: no GUC nest level, no parsing
 * of the setting per call.
 */
OverrideSearchPath own_search_path = {NIL, true, false, 0};

} // namespace

SqlParam
param_text_array(const std::vector<std::string> &v)
{
	std::vector<Datum> texts;
	for (const std::string &t : v)
		texts.push_back(param_text(t).value);
	Datum *elems = texts.data();
	int n = static_cast<int>(texts.size());
	Datum d = pg_guard([&] { return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT)); });
	return SqlParam{TEXTARRAYOID, d, false};
}

SpiConnection::SpiConnection()
{
	GetUserIdAndSecContext(&saved_user_, &saved_context_);
	current_invoker = saved_user_;
	Oid owner = storage_owner();
	const int context = saved_context_ | SECURITY_LOCAL_USERID_CHANGE;
	pg_guard([&] {
		SetUserIdAndSecContext(owner, context);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "querator: SPI_connect failed");
		PushOverrideSearchPath(&own_search_path);
	});
}

void
SpiConnection::finish()
{
	const Oid user = saved_user_;
	const int context = saved_context_;
	pg_guard([&] {
		PopOverrideSearchPath();
		SPI_finish();
		SetUserIdAndSecContext(user, context);
	});
}

void
spi_install_planner_hook()
{
	previous_planner_hook = planner_hook;
	planner_hook = plan_statement;
}

void
restrict_background_process()
{
	/*
	 * PGC_S_OVERRIDE outranks the database and role settings applied at
	 * connection and the configuration file on reload, and becomes the
	 * reset value too: nothing can move it for the life of the process.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	Oid user = InvalidOid;
	int context = 0;
	GetUserIdAndSecContext(&user, &context);
	/* Transaction starts save this context and aborts restore it: it holds for every transaction. */
	SetUserIdAndSecContext(user, context | SECURITY_RESTRICTED_OPERATION);
}

Oid
invoking_role()
{
	return current_invoker;
}

uint64
spi_run(const std::string &sql, const std::vector<SqlParam> &params, bool read_only)
{
	std::vector<Oid> types;
	std::vector<Datum> values;
	std::vector<char> nulls;
	for (const SqlParam &p : params)
	{
		types.push_back(p.type);
		values.push_back(p.value);
		nulls.push_back(p.is_null ? 'n' : ' ');
	}
	SPIPlanPtr plan = plan_for(sql, types);
	Datum *value_data = values.data();
	const char *null_data = nulls.data();
	const char *text = sql.c_str();
	OwnStatement own; /* a plan is made at the first execution, and again after an invalidation */
	return pg_guard([&] {
		int rc = SPI_execute_plan(plan, value_data, null_data, read_only, 0);
		if (rc < 0)
			elog(ERROR, "querator: SPI_execute_plan failed (%s): %s", SPI_result_code_string(rc), text);
		return SPI_processed;
	}, ErrorOrigin::internal_sql);
}

void
spi_exec_utility(const std::string &sql)
{
	const char *text = sql.c_str();
	OwnStatement own;
	pg_guard([&] {
		int rc = SPI_execute(text, false, 0);
		if (rc < 0)
			elog(ERROR, "querator: SPI_execute failed (%s): %s", SPI_result_code_string(rc), text);
	}, ErrorOrigin::internal_sql);
}

bool
spi_is_null(uint64 row, int col)
{
	bool is_null = false;
	value_at(row, col, &is_null);
	return is_null;
}

int64
spi_get_int64(uint64 row, int col)
{
	bool is_null = false;
	Datum d = value_at(row, col, &is_null);
	return is_null ? 0 : DatumGetInt64(d);
}

int32
spi_get_int32(uint64 row, int col)
{
	bool is_null = false;
	Datum d = value_at(row, col, &is_null);
	return is_null ? 0 : DatumGetInt32(d);
}

bool
spi_get_bool(uint64 row, int col)
{
	bool is_null = false;
	Datum d = value_at(row, col, &is_null);
	return is_null ? false : DatumGetBool(d);
}

std::string
spi_get_text(uint64 row, int col)
{
	bool is_null = false;
	Datum d = value_at(row, col, &is_null);
	if (is_null)
		return std::string();
	const char *s = pg_guard([&] { return static_cast<const char *>(TextDatumGetCString(d)); });
	return std::string(s);
}

Interval
spi_get_interval(uint64 row, int col)
{
	bool is_null = false;
	Datum d = value_at(row, col, &is_null);
	Interval result{};
	if (!is_null)
		result = *DatumGetIntervalP(d);
	return result;
}

void
spi_copy_result_to(ReturnSetInfo *rsinfo)
{
	pg_guard([&] {
		MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
		for (uint64 i = 0; i < SPI_processed; i++)
			tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
		MemoryContextSwitchTo(old);
	});
}

void
put_result_row(ReturnSetInfo *rsinfo, const Datum *values, const bool *nulls)
{
	/* The tuplestore copies the row into its own memory. */
	pg_guard([&] {
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, const_cast<Datum *>(values),
							 const_cast<bool *>(nulls));
	});
}

} // namespace querator
