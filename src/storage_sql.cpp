/* Names and SQL text helpers of the storage modules; see storage_sql.hpp. */
#include "storage_sql.hpp"
#include "error.hpp"
#include "spi.hpp"

#include <unordered_map>

namespace querator {

std::string
data_object_name(const std::string &name)
{
	const char *n = name.c_str();
	const char *qualified = pg_guard([&] { return quote_qualified_identifier("querator_data", n); });
	return std::string(qualified);
}

std::string
queue_prefix(int32 queue_id)
{
	return "q" + std::to_string(queue_id);
}

std::string
partition_relname(int32 queue_id, int partition, const char *kind)
{
	return queue_prefix(queue_id) + "_p" + std::to_string(partition) + "_" + kind;
}

std::string
segment_relname(int32 queue_id, int partition, const char *kind, int segment)
{
	const std::string table = partition_relname(queue_id, partition, kind);
	return segment < 0 ? table : table + "_s" + std::to_string(segment);
}

std::string
dead_relname(int32 queue_id)
{
	return queue_prefix(queue_id) + "_dead";
}

std::string
partition_table(int32 queue_id, int partition, const char *kind)
{
	return data_object_name(partition_relname(queue_id, partition, kind));
}

std::string
sequence_literal(int32 queue_id)
{
	/* Only digits vary, but quote anyway: the name ends up inside a string literal. */
	std::string name = data_object_name(queue_prefix(queue_id) + "_seq");
	const char *n = name.c_str();
	const char *lit = pg_guard([&] { return static_cast<const char *>(quote_literal_cstr(n)); });
	return std::string(lit) + "::regclass";
}

int64
partition_bits(int partition)
{
	return static_cast<int64>(partition) << kPartitionShift;
}

/* Replaces each {key} in sql with its value. */
std::string
render(std::string sql, std::initializer_list<std::pair<const char *, std::string>> names)
{
	for (const auto &entry : names)
	{
		const std::string key = std::string("{") + entry.first + "}";
		for (size_t at = sql.find(key); at != std::string::npos; at = sql.find(key, at + entry.second.size()))
			sql.replace(at, key.size(), entry.second);
	}
	return sql;
}

/* The table names of one partition, ready for render(). */
/* Text and JSON payloads, readable (src/preview.cpp). */
const char *const kPayloadPreview = "querator.payload_preview(payload, encoding)";

std::string
render_partition(const std::string &sql, int32 queue_id, int partition)
{
	/*
	 * Rendered once per backend: names depend only on (queue id, partition),
	 * and queue ids are never reused. Quoting the five names on every call
	 * was a few percent of a one-item produce.
	 */
	static std::unordered_map<std::string, std::string> rendered;
	constexpr size_t kMaxRendered = 4096;
	std::string key = std::to_string(queue_id) + ":" + std::to_string(partition) + ":" + sql;
	if (auto found = rendered.find(key); found != rendered.end())
		return found->second;
	if (rendered.size() >= kMaxRendered)
		rendered.clear();
	std::string text = render(sql, {{"items", partition_table(queue_id, partition, "items")},
									{"leases", partition_table(queue_id, partition, "leases")},
									{"scheduled", partition_table(queue_id, partition, "scheduled")},
									{"dead", data_object_name(dead_relname(queue_id))},
									{"seq", sequence_literal(queue_id)},
									{"preview", kPayloadPreview}});
	rendered.emplace(std::move(key), text);
	return text;
}

/* Columns every stored item carries, in table order after id. */
const char *const kItemColumns =
	"attempts, created_at, expire_deadline, source_id, source_queue, last_error, origin_id, kind, reference, encoding, "
	"payload";

std::vector<int64>
collect_int64_column()
{
	std::vector<int64> values;
	for (uint64 i = 0; i < SPI_processed; i++)
		values.push_back(spi_get_int64(i, 1));
	return values;
}

} // namespace querator
