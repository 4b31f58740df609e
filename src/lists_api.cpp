/* SQL entry points for the read-only storage lists: items, scheduled items, dead letters. */
#include "access.hpp"
#include "arguments.hpp"
#include "catalog.hpp"
#include "error.hpp"
#include "spi.hpp"
#include "storage.hpp"
#include "validation.hpp"

namespace querator {

namespace {

enum class ListKind
{
	items,
	scheduled,
	dead
};

Datum
storage_list(FunctionCallInfo fcinfo, ListKind kind)
{
	std::string name = arg_queue_name(fcinfo, 0);
	int64 pivot = arg_int64(fcinfo, 1).value_or(0);
	int32 limit = arg_int32(fcinfo, 2).value_or(100);
	validate_list_limit(limit);

	ReturnSetInfo *out = begin_set_result(fcinfo);
	SpiConnection spi;
	QueueDef queue = catalog_get(name);
	/* Lists show payloads: for consumers and admins only. */
	require_privilege(queue, Privilege::consume);
	/* last_error can hold what a webhook's network answered: admins only (README "Security"). */
	bool with_errors = holds_privilege(queue, Privilege::admin);
	switch (kind)
	{
		case ListKind::items:
			storage_list_items(out, queue.id, queue.partitions, pivot, limit, with_errors);
			break;
		case ListKind::scheduled:
			storage_list_scheduled(out, queue.id, queue.partitions, pivot, limit, with_errors);
			break;
		case ListKind::dead:
			storage_list_dead(out, queue.id, pivot, limit, with_errors);
			break;
	}
	spi.finish();
	return (Datum) 0;
}

} // namespace

} // namespace querator

QUERATOR_SQL_FUNCTION(querator_storage_items_list, querator::storage_list(fcinfo, querator::ListKind::items));
QUERATOR_SQL_FUNCTION(querator_storage_scheduled_list, querator::storage_list(fcinfo, querator::ListKind::scheduled));
QUERATOR_SQL_FUNCTION(querator_storage_dead_list, querator::storage_list(fcinfo, querator::ListKind::dead));
