/*
 * The queue catalog (querator.queues): queue definitions by name. Every
 * access to the catalog table goes through here. Requires an open
 * SpiConnection.
 */
#pragma once

#include "error.hpp"
#include "pg_prelude.hpp"
#include "queue_definition.hpp"

#include <optional>
#include <string>
#include <vector>

namespace querator {

/* The queue named `name`; lock_for_update serializes with other definition changes. */
std::optional<QueueDef> catalog_find(const std::string &name, bool lock_for_update = false);

/*
 * The error for a queue that does not exist (42704) naming `field`; also what a
 * role that holds no privilege on an existing queue is told (access.hpp).
 */
Error no_such_queue(const std::string &name, const char *field = "queue");

/* Like catalog_find, but a missing queue is an error (42704) naming `field`. */
QueueDef catalog_get(const std::string &name, bool lock_for_update = false, const char *field = "queue");

/* The queue with internal id `queue_id`. */
std::optional<QueueDef> catalog_find_by_id(int32 queue_id);

/* Every queue of this database, by name. */
std::vector<QueueDef> catalog_all();

/*
 * The webhook queues, the queues `also` (webhook queues until a moment ago:
 * their transfers' results are still recorded) and the dead queues all of
 * them name, by name: what a webhook cycle needs, not every queue.
 */
std::vector<QueueDef> catalog_webhook_queues(const std::vector<int32> &also);

/*
 * Writes: only through the operations layer (queue_ops.hpp), which records
 * what a catalog change owes at commit (the cache version, the worker's
 * webhook queues).
 *
 * Inserts a definition (its id is assigned) and returns the id, or nothing when
 * the name is taken, by a committed queue or by a concurrent create that then
 * commits (the insert waits for it).
 */
std::optional<int32> catalog_insert(const QueueDef &def);
void catalog_update(const QueueDef &def);
void catalog_delete(int32 queue_id);

/* Queues whose dead_queue is `name`, by name. */
std::vector<QueueDef> catalog_queues_using_dead_queue(const std::string &name);

/* Clears the dead_queue of every queue whose dead_queue is `name`; returns them. */
std::vector<QueueDef> catalog_clear_dead_queue(const std::string &name);

/*
 * Puts the catalog rows of queues_list / queues_info into a materialized SRF
 * result: only queues `role` may see (owner, any grant) unless `all` (a
 * superuser), and a dead_queue only if `role` may see that queue too (NULL
 * otherwise). info: a queue `role` may not see is missing (42704).
 */
void catalog_list_to(ReturnSetInfo *rsinfo, const std::string *pivot, int32 limit, Oid role, bool all);
void catalog_info_to(ReturnSetInfo *rsinfo, const std::string &name, Oid role, bool all);

} // namespace querator
