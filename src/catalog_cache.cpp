/* Backend cache of queue definitions; see catalog_cache.hpp. */
#include "catalog_cache.hpp"
#include "transaction_guard.hpp"

extern "C" {
#include "port/atomics.h"
}

#include <unordered_map>

namespace querator {

namespace {

pg_atomic_uint64 *shared_version = nullptr;

struct CachedQueue
{
	QueueDef def;
	uint64 version;
};

std::unordered_map<std::string, CachedQueue> cache;
constexpr size_t kMaxCached = 1024;
bool changed_in_transaction = false;

void
on_xact_event(XactEvent event, void *)
{
	if (!changed_in_transaction)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		pg_atomic_fetch_add_u64(shared_version, 1);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_ABORT)
	{
		changed_in_transaction = false;
		cache.clear();
	}
}

} // namespace

void
catalog_cache_request_shmem()
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(pg_atomic_uint64)));
}

void
catalog_cache_startup_shmem()
{
	bool found = false;
	shared_version = static_cast<pg_atomic_uint64 *>(
		ShmemInitStruct("querator catalog version", sizeof(pg_atomic_uint64), &found));
	if (!found)
		pg_atomic_init_u64(shared_version, 1);
}

void
catalog_cache_register_xact_callback()
{
	RegisterXactCallback(on_xact_event, nullptr);
}

std::optional<QueueDef>
catalog_cache_lookup(const std::string &name, uint64 *version)
{
	/* Read before the catalog query that may fill the cache: a change committed after it invalidates the entry. */
	*version = shared_version ? pg_atomic_read_u64(shared_version) : 0;
	if (shared_version == nullptr || changed_in_transaction)
		return std::nullopt;
	auto found = cache.find(name);
	if (found == cache.end() || found->second.version != *version)
		return std::nullopt;
	return found->second.def;
}

void
catalog_cache_store(const QueueDef &def, uint64 version)
{
	if (shared_version == nullptr || changed_in_transaction)
		return;
	if (cache.size() >= kMaxCached)
		cache.clear();
	cache[def.name] = CachedQueue{def, version};
}

void
catalog_cache_changed()
{
	changed_in_transaction = true;
	transaction_guard_note("a queue catalog change");
	cache.clear();
}

} // namespace querator
