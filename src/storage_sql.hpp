/*
 * Shared by the storage modules (storage.cpp: the item path; storage_admin.cpp:
 * operations): table names built from internal ids only, quoted, and the
 * {placeholder} rendering of SQL text. Nothing outside the storage modules
 * includes this.
 */
#pragma once

#include "pg_prelude.hpp"

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace querator {

/* An item id is (partition << kPartitionShift) | nextval(qQ_seq), so it names its partition. */
constexpr int kPartitionShift = 48;

/* Quoted, schema-qualified name of an object in querator_data. */
std::string data_object_name(const std::string &name);
std::string queue_prefix(int32 queue_id);
/* Unqualified, unquoted names of a queue's tables: qQ_pP_<kind> (items, leases, scheduled) and qQ_dead. */
std::string partition_relname(int32 queue_id, int partition, const char *kind);
/* Segment `segment` of a partition's items or leases: qQ_pP_<kind>_sK; -1 names the partition's table itself. */
std::string segment_relname(int32 queue_id, int partition, const char *kind, int segment);
std::string dead_relname(int32 queue_id);
/* The same, quoted and qualified. */
std::string partition_table(int32 queue_id, int partition, const char *kind);
/* 'querator_data.qQ_seq'::regclass */
std::string sequence_literal(int32 queue_id);
int64 partition_bits(int partition);

/* Replaces each {key} in sql with its value. */
std::string render(std::string sql, std::initializer_list<std::pair<const char *, std::string>> names);
/* Renders {items}, {leases}, {scheduled}, {dead}, {seq} of one partition, and {preview} (payload_preview). */
std::string render_partition(const std::string &sql, int32 queue_id, int partition);

/* Columns every stored item carries, in table order after id. */
extern const char *const kItemColumns;

/* Column 1 of every row of the last SPI result. */
std::vector<int64> collect_int64_column();

} // namespace querator
