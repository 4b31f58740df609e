/* SQL entry points for queue definitions: queues_create / update / delete / list / info. */
#include "access.hpp"
#include "arguments.hpp"
#include "catalog.hpp"
#include "commit_effects.hpp"
#include "error.hpp"
#include "queue_ops.hpp"
#include "settings.hpp"
#include "spi.hpp"
#include "time_math.hpp"
#include "validation.hpp"
#include "webhook_delivery.hpp"
#include "webhook_state.hpp"

#include <algorithm>

extern "C" {
#include "commands/trigger.h"
}

namespace querator {

namespace {

/*
 * Checks the option values of a definition, alone and together. On update
 * (`before`: the stored definition) only the values the call changes, and
 * lease against expire timeout when either changed: a value stored under
 * older rules (fixed by the upgrade script where it can be) never makes a
 * call fail that does not touch it.
 */
void
validate_definition(const QueueDef &def, const QueueDef *before = nullptr)
{
	const bool lease_changed = before == nullptr || !interval_identical(def.lease_timeout, before->lease_timeout);
	const bool expire_changed =
		before == nullptr || def.expire_timeout.has_value() != before->expire_timeout.has_value() ||
		(def.expire_timeout && !interval_identical(*def.expire_timeout, *before->expire_timeout));
	if (lease_changed)
		validate_lease_timeout(def.lease_timeout);
	if (def.expire_timeout && expire_changed)
		validate_expire_timeout(*def.expire_timeout);
	if (lease_changed || expire_changed)
		validate_lease_within_expire(def.lease_timeout, def.expire_timeout ? &*def.expire_timeout : nullptr);
	if (before == nullptr || def.max_attempts != before->max_attempts)
		validate_max_attempts(def.max_attempts);
	if (before == nullptr || def.partitions != before->partitions)
		validate_partitions(def.partitions);
	if (before == nullptr || def.reference != before->reference)
		validate_text_field(def.reference, "reference", true);
	validate_webhook(def.webhook, before != nullptr ? &before->webhook : nullptr);
}

/* Reads the webhook options (arguments first..first+5); NULL leaves a value unchanged, url '' removes it. */
void
read_webhook_options(FunctionCallInfo fcinfo, int first, Webhook &webhook)
{
	if (auto v = arg_text(fcinfo, first))
		webhook.url = *v;
	if (auto v = arg_jsonb_text(fcinfo, first + 1))
		webhook.headers_json = *v;
	if (auto v = arg_interval(fcinfo, first + 2))
		webhook.timeout = *v;
	if (auto v = arg_int32(fcinfo, first + 3))
		webhook.concurrency = *v;
	if (auto v = arg_interval(fcinfo, first + 4))
		webhook.backoff = *v;
	if (auto v = arg_interval(fcinfo, first + 5))
		webhook.backoff_max = *v;
}

/* Extra request headers: a JSON object of header names to string values that may be sent. */
void
validate_webhook_headers(const Webhook &webhook)
{
	for (const http::Header &h : webhook_headers_parse(webhook.headers_json))
		if (std::string problem = http::header_problem(h.name, h.value); !problem.empty())
			throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "webhook headers is invalid; " + problem);
}

/* Where a queue's requests go and what they carry is for webhook admins; removing the url is not. */
void
require_webhook_change_allowed(const Webhook &before, const Webhook &after)
{
	if (!after.url.empty() && after.url != before.url)
		require_webhook_admin("webhook_url");
	if (after.headers_json != before.headers_json)
		require_webhook_admin("webhook_headers");
}

/*
 * An emptiness check before a drop must see what committed while the drop
 * waited for its locks: a READ COMMITTED statement does, a REPEATABLE READ or
 * SERIALIZABLE transaction keeps its older snapshot and would drop items it
 * cannot see.
 */
void
require_fresh_snapshots(const char *what)
{
	if (IsolationUsesXactSnapshot())
		throw Error(ERRCODE_INVALID_TRANSACTION_STATE,
					std::string("transaction isolation is invalid; ") + what +
						" needs READ COMMITTED, so that it sees items committed while it waited",
					"Run it in a READ COMMITTED transaction (the default).");
}

Error
queue_exists(const std::string &name)
{
	return Error(ERRCODE_DUPLICATE_OBJECT, "invalid queue; '" + name + "' already exists");
}

/*
 * How a message names one of `queues`: the first the caller may see, or none at
 * all, so that an error or notice never tells a role of a queue it holds
 * nothing on.
 */
std::string
queue_for_message(const std::vector<QueueDef> &queues)
{
	for (const QueueDef &q : queues)
		if (may_see(q))
			return "'" + q.name + "'";
	return "another queue";
}

/*
 * Checks that def.dead_queue may receive def's dead letters: no self, no
 * chains, and when the call names it (`named`), the caller's produce
 * privilege on it, since its dead letters become that queue's items.
 */
void
validate_dead_queue(const QueueDef &def, bool named)
{
	if (def.dead_queue.empty())
		return;
	validate_queue_name(def.dead_queue, "dead queue");
	if (def.dead_queue == def.name)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "dead queue is invalid; dead_queue cannot reference itself");
	QueueDef target = catalog_get(def.dead_queue, true, "dead queue");
	if (named)
		require_privilege(target, Privilege::produce, "dead queue");
	if (!target.dead_queue.empty())
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"dead queue is invalid; '" + def.dead_queue +
						"' has a dead_queue of its own and dead queues cannot be chained");
	std::vector<QueueDef> feeders = catalog_queues_using_dead_queue(def.name);
	if (!feeders.empty())
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"dead queue is invalid; '" + def.name + "' is the dead_queue of " + queue_for_message(feeders) +
						" and dead queues cannot be chained");
}

/* After a forced delete of `name`: tells of the queues that now keep their dead letters themselves. */
void
report_detached_feeders(const std::string &name, std::vector<QueueDef> detached)
{
	std::sort(detached.begin(), detached.end(), [](const QueueDef &a, const QueueDef &b) { return a.name < b.name; });
	int unseen = 0;
	for (const QueueDef &feeder : detached)
	{
		if (may_see(feeder))
			report_notice("dead_queue removed; '" + feeder.name + "' no longer sends its dead letters to '" + name +
						  "' and keeps them in its own dead-letter table");
		else
			unseen++;
	}
	if (unseen > 0)
		report_notice("dead_queue removed; " + std::to_string(unseen) +
					  " other queue(s) no longer send their dead letters to '" + name +
					  "' and keep them in their own dead-letter table");
}

Datum
queues_create(FunctionCallInfo fcinfo)
{
	QueueDef def;
	def.name = arg_queue_name(fcinfo, 0);
	validate_new_queue_name(def.name);
	def.lease_timeout = arg_interval(fcinfo, 1).value_or(Interval{USECS_PER_MINUTE, 0, 0});
	def.expire_timeout = arg_interval(fcinfo, 2);
	def.max_attempts = arg_int32(fcinfo, 3).value_or(0);
	def.dead_queue = arg_text(fcinfo, 4).value_or("");
	def.reference = arg_text(fcinfo, 5).value_or("");
	def.partitions = arg_int32(fcinfo, 6).value_or(1);
	read_webhook_options(fcinfo, 7, def.webhook);
	validate_definition(def);

	SpiConnection spi;
	def.owner = invoking_role_name();
	require_webhook_change_allowed(Webhook{}, def.webhook);
	validate_webhook_headers(def.webhook);
	if (catalog_find(def.name))
		throw queue_exists(def.name);
	validate_dead_queue(def, true);
	/* Taken meanwhile by a concurrent create that committed: the same error, not a unique violation. */
	if (!create_queue(def))
		throw queue_exists(def.name);
	spi.finish();
	PG_RETURN_VOID();
}

Datum
queues_update(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	SpiConnection spi;
	QueueDef def = catalog_get(name, true);
	require_privilege(def, Privilege::admin);
	const QueueDef stored = def;

	if (auto v = arg_interval(fcinfo, 1))
		def.lease_timeout = *v;
	if (auto v = arg_interval(fcinfo, 2))
	{
		/* '0' removes the expire timeout: items never expire. */
		if (interval_compare(*v, Interval{}) == 0)
			def.expire_timeout.reset();
		else
			def.expire_timeout = *v;
	}
	if (auto v = arg_int32(fcinfo, 3))
		def.max_attempts = *v;
	std::optional<std::string> dead_queue = arg_text(fcinfo, 4);
	if (dead_queue)
		def.dead_queue = *dead_queue; /* '' removes it */
	if (auto v = arg_text(fcinfo, 5))
		def.reference = *v;
	if (auto v = arg_int32(fcinfo, 6))
		def.partitions = *v;
	read_webhook_options(fcinfo, 7, def.webhook);
	require_webhook_change_allowed(stored.webhook, def.webhook);
	validate_definition(def, &stored);
	if (def.webhook.headers_json != stored.webhook.headers_json)
		validate_webhook_headers(def.webhook);
	validate_dead_queue(def, dead_queue.has_value());

	if (def.partitions < stored.partitions)
		require_fresh_snapshots("queues_update(..., partitions => fewer)");
	update_queue(def, stored);
	spi.finish();
	PG_RETURN_VOID();
}

Datum
queues_delete(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	bool force = arg_bool(fcinfo, 1).value_or(false);
	SpiConnection spi;
	QueueDef def = catalog_get(name, true);
	require_privilege(def, Privilege::admin);
	std::vector<QueueDef> feeders = catalog_queues_using_dead_queue(name);
	if (!feeders.empty() && !force)
		throw Error(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
					"queue is in use; '" + name + "' is the dead_queue of " + queue_for_message(feeders),
					"Remove it from that queue with queues_update(..., dead_queue => ''), or use force => true, which "
					"removes it from every queue that names it.");
	if (!force)
		require_fresh_snapshots("queues_delete without force");
	std::vector<QueueDef> detached = delete_queue(def, force, !feeders.empty());
	if (!detached.empty())
		report_detached_feeders(name, std::move(detached));
	spi.finish();
	PG_RETURN_VOID();
}

Datum
queues_list(FunctionCallInfo fcinfo)
{
	std::optional<std::string> pivot = arg_text(fcinfo, 0);
	int32 limit = arg_int32(fcinfo, 1).value_or(1000);
	validate_list_limit(limit);
	ReturnSetInfo *out = begin_set_result(fcinfo);
	SpiConnection spi;
	catalog_list_to(out, pivot ? &*pivot : nullptr, limit, invoking_role(), invoker_is_superuser());
	spi.finish();
	return (Datum) 0;
}

Datum
queues_info(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	ReturnSetInfo *out = begin_set_result(fcinfo);
	SpiConnection spi;
	require_visibility(catalog_get(name));
	catalog_info_to(out, name, invoking_role(), invoker_is_superuser());
	spi.finish();
	return (Datum) 0;
}

Datum
set_paused(FunctionCallInfo fcinfo, bool paused)
{
	std::string name = arg_queue_name(fcinfo, 0);
	SpiConnection spi;
	QueueDef def = catalog_get(name, true);
	require_privilege(def, Privilege::admin);
	set_queue_paused(def, paused);
	spi.finish();
	PG_RETURN_VOID();
}

Datum
change_grant(FunctionCallInfo fcinfo, bool grant)
{
	std::string name = arg_queue_name(fcinfo, 0);
	std::string role = arg_text(fcinfo, 1).value_or("");
	validate_text_field(role, "role", false, true); /* a role's name is PostgreSQL's to judge */
	Privilege privilege = parse_privilege(arg_text(fcinfo, 2).value_or(""));
	SpiConnection spi;
	QueueDef def = catalog_get(name, true);
	require_privilege(def, Privilege::admin);
	if (grant)
		grant_privilege(def, role, privilege);
	else
		revoke_privilege(def, role, privilege);
	spi.finish();
	PG_RETURN_VOID();
}

/*
 * The trigger on querator.queues, after every statement that changes it: a
 * change made outside the API (a restore's COPY, a superuser's UPDATE, an
 * upgrade script) moves the catalog version at commit as the API's own
 * changes do, so every backend's cached definitions and the worker's queue
 * list follow it (docs/design.md, "Deadline floors": the worker reads the
 * catalog only when it changed).
 */
Datum
queues_changed(FunctionCallInfo fcinfo)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "queues_changed is a trigger function");
	catalog_cache_changed();
	return PointerGetDatum(nullptr);
}

} // namespace

} // namespace querator

QUERATOR_SQL_FUNCTION(querator_queues_changed, querator::queues_changed(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queue_pause, querator::set_paused(fcinfo, true));
QUERATOR_SQL_FUNCTION(querator_queue_resume, querator::set_paused(fcinfo, false));
QUERATOR_SQL_FUNCTION(querator_queue_grant, querator::change_grant(fcinfo, true));
QUERATOR_SQL_FUNCTION(querator_queue_revoke, querator::change_grant(fcinfo, false));
QUERATOR_SQL_FUNCTION(querator_queues_create, querator::queues_create(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queues_update, querator::queues_update(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queues_delete, querator::queues_delete(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queues_list, querator::queues_list(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queues_info, querator::queues_info(fcinfo));
