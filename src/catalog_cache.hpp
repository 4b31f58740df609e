/*
 * A backend-local cache of queue definitions, so produce / lease / complete
 * do not read querator.queues on every call. A version counter in shared
 * memory is bumped at the commit of every change to the catalog (create,
 * update, pause, delete; CREATE / DROP EXTENSION); a backend trusts its cache
 * only while the version it read before filling it is still current, and
 * never inside a transaction that changed the catalog itself.
 */
#pragma once

#include "queue_definition.hpp"

#include <optional>
#include <string>

namespace querator {

void catalog_cache_request_shmem();
void catalog_cache_startup_shmem();

/* The cached definition of `name`, if still valid; otherwise nothing, and *version is what to store with. */
std::optional<QueueDef> catalog_cache_lookup(const std::string &name, uint64 *version);
void catalog_cache_store(const QueueDef &def, uint64 version);

/*
 * A transaction that changes the catalog (catalog_cache_changed,
 * commit_effects.hpp) bypasses the cache from then on, and its end tells
 * the cache what became of the change: committed (the version moves, so
 * every backend's entries are stale) or rolled back (nothing to publish).
 */
void catalog_cache_bypass();
/* The shared version: moves at the commit of every catalog change (0 before shared memory exists). */
uint64 catalog_version();
void catalog_cache_publish_change();
void catalog_cache_discard_change();

} // namespace querator

