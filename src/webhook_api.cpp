/* SQL entry point of webhook delivery: querator.webhook_status(). */
#include "access.hpp"
#include "arguments.hpp"
#include "catalog.hpp"
#include "error.hpp"
#include "spi.hpp"
#include "webhook_state.hpp"

#include <map>

namespace querator {

namespace {

/* Counters since server start of the webhook queues of this database that the caller may see. */
Datum
webhook_status(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *out = begin_set_result(fcinfo);
	std::vector<WebhookStatus> slots = webhook_status_read();
	SpiConnection spi;
	std::map<int32, QueueDef> queues;
	for (QueueDef &q : catalog_all())
		queues.emplace(q.id, std::move(q));
	/* The queues shown, by name; last_error only to admins (it can hold what the network answered). */
	std::map<std::string, std::pair<const WebhookStatus *, bool>> by_name;
	for (const WebhookStatus &s : slots)
	{
		auto found = queues.find(s.queue_id);
		if (found == queues.end())
			continue; /* deleted since the worker last looked */
		if (!may_see(found->second))
			continue; /* no privilege on the queue: not shown */
		by_name.emplace(found->second.name, std::make_pair(&s, holds_privilege(found->second, Privilege::admin)));
	}
	for (const auto &[name, shown] : by_name)
	{
		const auto &[s, with_error] = shown;
		Datum values[7];
		bool nulls[7] = {};
		const char *queue_name = name.c_str();
		const char *error = s->last_error.c_str();
		values[0] = pg_guard([&] { return CStringGetTextDatum(queue_name); });
		values[1] = Int64GetDatum(static_cast<int64>(s->deliveries));
		values[2] = Int64GetDatum(static_cast<int64>(s->failures));
		values[3] = Int32GetDatum(s->last_status);
		nulls[3] = s->last_status == 0;
		values[4] = pg_guard([&] { return CStringGetTextDatum(error); });
		nulls[4] = s->last_error.empty() || !with_error;
		values[5] = TimestampTzGetDatum(s->last_delivery_at);
		nulls[5] = s->last_delivery_at == 0;
		values[6] = Int32GetDatum(s->in_flight);
		put_result_row(out, values, nulls);
	}
	spi.finish();
	return (Datum) 0;
}

} // namespace

} // namespace querator

QUERATOR_SQL_FUNCTION(querator_webhook_status, querator::webhook_status(fcinfo));
