/*
 * The queue catalog (querator.queues): queue definitions by name. Every
 * access to the catalog table goes through here. Requires an open
 * SpiConnection.
 */
#pragma once

#include "pg_prelude.hpp"

#include <optional>
#include <string>
#include <vector>

namespace querator {

struct QueueDef
{
	int32 id = 0;                  /* internal id; names the queue's tables */
	std::string name;
	Interval lease_timeout{};
	std::optional<Interval> expire_timeout; /* empty = never */
	int32 max_attempts = 0;        /* 0 = unlimited */
	std::string dead_queue;        /* empty = own dead-letter table */
	std::string reference;
	int32 partitions = 1;
};

/* The queue named `name`; lock_for_update serializes with other definition changes. */
std::optional<QueueDef> catalog_find(const std::string &name, bool lock_for_update = false);

/* Like catalog_find, but a missing queue is an error (42704) naming `field`. */
QueueDef catalog_get(const std::string &name, bool lock_for_update = false, const char *field = "queue");

/* Every queue of this database, by name. */
std::vector<QueueDef> catalog_all();

/* Inserts a definition (its id is assigned) and returns the id. */
int32 catalog_insert(const QueueDef &def);
void catalog_update(const QueueDef &def);
void catalog_delete(int32 queue_id);

/* Names of queues whose dead_queue is `name`. */
std::vector<std::string> catalog_queues_using_dead_queue(const std::string &name);

/* Puts the catalog rows of queues_list / queues_info into a materialized SRF result. */
void catalog_list_to(ReturnSetInfo *rsinfo, const std::string *pivot, int32 limit);
void catalog_info_to(ReturnSetInfo *rsinfo, const std::string &name);

} // namespace querator
