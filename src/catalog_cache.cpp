/* Backend cache of queue definitions; see catalog_cache.hpp. */
#include "catalog_cache.hpp"

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
bool bypassed = false; /* the running transaction changed the catalog */

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

uint64
catalog_version()
{
	return shared_version ? pg_atomic_read_u64(shared_version) : 0;
}

std::optional<QueueDef>
catalog_cache_lookup(const std::string &name, uint64 *version)
{
	/* Read before the catalog query that may fill the cache: a change committed after it invalidates the entry. */
	*version = shared_version ? pg_atomic_read_u64(shared_version) : 0;
	if (shared_version == nullptr || bypassed)
		return std::nullopt;
	auto found = cache.find(name);
	if (found == cache.end() || found->second.version != *version)
		return std::nullopt;
	return found->second.def;
}

void
catalog_cache_store(const QueueDef &def, uint64 version)
{
	if (shared_version == nullptr || bypassed)
		return;
	if (cache.size() >= kMaxCached)
		cache.clear();
	cache[def.name] = CachedQueue{def, version};
}

void
catalog_cache_bypass()
{
	bypassed = true;
	cache.clear();
}

void
catalog_cache_publish_change()
{
	if (shared_version != nullptr)
		pg_atomic_fetch_add_u64(shared_version, 1);
	catalog_cache_discard_change();
}

void
catalog_cache_discard_change()
{
	bypassed = false;
	cache.clear();
}

} // namespace querator
