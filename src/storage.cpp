/* Item storage; the table layout and its SQL live only here (see storage.hpp). */
#include "storage.hpp"
#include "commit_effects.hpp"
#include "error.hpp"
#include "spi.hpp"
#include "partition_head.hpp"
#include "storage_am.hpp"
#include "storage_segments.hpp"
#include "storage_sql.hpp"
#include "settings.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <utility>

namespace querator {


int
partition_of_id(int64 id)
{
	return id < 0 ? -1 : static_cast<int>(id >> kPartitionShift);
}

/* ---------------------------------------------------------------- tables */

namespace {

/*
 * The definitions of a queue's tables are templates in querator_data, which
 * the upgrade scripts own (docs/design.md, "How a release is made"). Before
 * ALTER EXTENSION querator UPDATE has created them, the library refuses to
 * create tables rather than fail on a missing relation.
 */
void
require_templates()
{
	const bool present = pg_guard([] {
		Oid schema = get_namespace_oid("querator_data", false);
		return OidIsValid(get_relname_relid("items_template", schema));
	});
	if (!present)
		throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					"queue tables cannot be created; the schema of the extension querator is older than its "
					"library (" QUERATOR_VERSION ")",
					"Run ALTER EXTENSION querator UPDATE in this database.");
}

/* CREATE TABLE {table} as a clone of querator_data.{kind}_template. */
std::string
clone_template(const std::string &table, const char *kind)
{
	return "CREATE TABLE " + table + " (LIKE querator_data." + kind + "_template INCLUDING ALL);";
}

void
create_partition_tables(int32 queue_id, int from, int to)
{
	for (int p = from; p < to; p++)
		spi_exec_utility(segments_create_sql(queue_id, p, segments_per_partition) +
						 clone_template(partition_table(queue_id, p, "scheduled"), "scheduled"));
}

} // namespace

void
storage_create_queue(int32 queue_id, int partitions)
{
	require_templates();
	/* Not a template: a sequence has no LIKE, and its range is the id layout (kPartitionShift), the library's. */
	constexpr int64 kMaxItemSequence = (int64{1} << kPartitionShift) - 1;
	spi_exec_utility("CREATE SEQUENCE " + data_object_name(queue_prefix(queue_id) + "_seq") + " AS bigint MAXVALUE " +
					 std::to_string(kMaxItemSequence) + ";" +
					 clone_template(data_object_name(queue_prefix(queue_id) + "_dead"), "dead"));
	create_partition_tables(queue_id, 0, partitions);
}

void
storage_create_partitions(int32 queue_id, int from, int to)
{
	require_templates();
	create_partition_tables(queue_id, from, to);
}

void
storage_drop_partitions(int32 queue_id, int from, int to)
{
	for (int p = from; p < to; p++)
		spi_exec_utility(render_partition("DROP TABLE " + segments_drop_list(queue_id, p) + ", {scheduled}", queue_id, p));
}

void
storage_drop_queue(int32 queue_id, int partitions)
{
	storage_drop_partitions(queue_id, 0, partitions);
	spi_exec_utility(render("DROP TABLE {dead}; DROP SEQUENCE {seq_name}",
							{{"dead", data_object_name(queue_prefix(queue_id) + "_dead")},
							 {"seq_name", data_object_name(queue_prefix(queue_id) + "_seq")}}));
}

namespace {

/* Locks querator_data.relname without waiting; false if it is busy or does not exist (any more). */
bool
try_lock_data_relation(Oid schema, const std::string &relname)
{
	const char *name = relname.c_str();
	return pg_guard([&] {
		Oid relid = get_relname_relid(name, schema);
		if (!OidIsValid(relid) || !ConditionalLockRelationOid(relid, RowExclusiveLock))
			return false;
		/* Dropped by a transaction that committed while we looked it up: the lock guards nothing. */
		return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid));
	});
}

} // namespace

bool
storage_try_lock_partition(int32 queue_id, int partition)
{
	const Oid schema = pg_guard([] { return get_namespace_oid("querator_data", false); });
	/* Statements on a partition's items and leases reach every segment: they are locked too. */
	std::vector<std::string> relnames;
	for (const char *kind : {"items", "leases"})
	{
		relnames.push_back(partition_relname(queue_id, partition, kind));
		for (const std::string &segment : segment_relnames(queue_id, partition, kind))
			if (segment != relnames.back())
				relnames.push_back(segment);
	}
	for (const std::string &relname :
		 {partition_relname(queue_id, partition, "scheduled"), dead_relname(queue_id), queue_prefix(queue_id) + "_seq"})
		relnames.push_back(relname);
	for (const std::string &relname : relnames)
		if (!try_lock_data_relation(schema, relname))
			return false;
	return true;
}

void
storage_lock_for_drop(int32 queue_id, int from, int to, bool dead)
{
	for (int p = from; p < to; p++)
		spi_exec_utility(
			render_partition("LOCK TABLE {items}, {leases}, {scheduled} IN ACCESS EXCLUSIVE MODE", queue_id, p));
	if (dead)
		spi_exec_utility(render_partition("LOCK TABLE {dead} IN ACCESS EXCLUSIVE MODE", queue_id, 0));
}

/*
 * Not read-only: a read-only SPI call runs in the calling statement's
 * snapshot, taken before storage_lock_for_drop waited; a fresh one (READ
 * COMMITTED) sees what committed meanwhile.
 */
bool
storage_partitions_hold_items(int32 queue_id, int from, int to)
{
	for (int p = from; p < to; p++)
	{
		spi_run(render_partition("SELECT EXISTS (SELECT 1 FROM {items}) OR EXISTS (SELECT 1 FROM {scheduled})",
								 queue_id, p),
				{}, false);
		if (spi_get_bool(0, 1))
			return true;
	}
	return false;
}

bool
storage_has_dead_letters(int32 queue_id)
{
	spi_run(render_partition("SELECT EXISTS (SELECT 1 FROM {dead})", queue_id, 0), {}, false); /* fresh snapshot, as above */
	return spi_get_bool(0, 1);
}

/* ---------------------------------------------------------------- items */

std::vector<int64>
storage_produce(int32 queue_id, int partition, const ProduceBatch &batch)
{
	if (batch.enqueue_at)
		return insert_items(queue_id, partition, partition_relname(queue_id, partition, "scheduled"), batch.payloads,
							batch.count, batch.kinds, batch.references, batch.encoding, batch.enqueue_at,
							batch.expire_timeout);
	/* Registered: new ids may commit after later ones were consumed; and the registration names the segment. */
	const int segment = writer_segment(queue_id, partition);
	std::vector<int64> ids = insert_items(queue_id, partition, segment_relname(queue_id, partition, "items", segment),
										  batch.payloads, batch.count, batch.kinds, batch.references, batch.encoding,
										  std::nullopt, batch.expire_timeout);
	note_inserted(queue_id, partition, ids.size());
	return ids;
}

uint64
storage_promote_due(int32 queue_id, int partition, int32 limit)
{
	/* ARRAY(...) keeps the claim an initplan: plan-proof against a generic-plan seq scan. */
	const char *sql =
		"WITH due AS ("
		"  DELETE FROM {scheduled} WHERE id = ANY (ARRAY("
		"    SELECT id FROM {scheduled} WHERE enqueue_at <= clock_timestamp()"
		"    ORDER BY enqueue_at, id LIMIT $2 FOR UPDATE SKIP LOCKED))"
		"  RETURNING *, coalesce(origin_id, id) AS first_id) "
		"INSERT INTO {segment} (id, {columns}) "
		"SELECT $1 | nextval({seq}), {moved_columns} FROM due ORDER BY enqueue_at, id";
	const bool registered_before = head_registered(queue_id, partition);
	const std::string segment = insert_target(queue_id, partition);
	/* The item keeps the id it was first given (origin_id) under its new one. */
	std::string moved = kItemColumns;
	moved.replace(moved.find("origin_id"), std::strlen("origin_id"), "first_id");
	uint64 promoted = spi_run(
		render_partition(render(sql, {{"columns", kItemColumns}, {"moved_columns", moved}, {"segment", segment}}),
						 queue_id, partition),
		{param_int64(partition_bits(partition)), param_int32(limit)});
	if (promoted == 0 && !registered_before)
		head_unregister(queue_id, partition); /* inserted nothing: nothing can appear below the head */
	note_inserted(queue_id, partition, promoted);
	return promoted;
}

namespace {

/*
 * The claims this process has started: one per partition a lease tries
 * (queue_lease in a backend, a webhook lease in the worker), whichever
 * instantiation of run_claim runs it. Every kHeadEvery-th starts at the
 * head. At file scope: a static inside the template would be one counter
 * per instantiation.
 */
uint32 claims_in_process = 0;

/*
 * Runs the claim until batch_size items are granted or a pass loses no race;
 * calls on_granted(row) for each granted row of the current SPI result.
 * Registers as a leaser first, so the head cannot pass items this
 * transaction locks and might release by rolling back.
 */
template <typename OnGranted>
uint64
run_claim(int32 queue_id, int partition, const std::string &client_id, int32 batch_size,
		  const Interval &lease_timeout, OnGranted on_granted, TimestampTz *earliest_deadline)
{
	*earliest_deadline = DT_NOEND;
	const bool registered_before = head_registered(queue_id, partition);
	(void) writer_segment(queue_id, partition, HeadRole::leaser);
	/*
	 * Most claims start at the cursor, past the items other leases hold
	 * right now; every kHeadEvery-th claim of a process, and any pass after
	 * one that came back short, starts at the head, so an item below the
	 * cursor that became leasable again is taken within a few leases.
	 */
	constexpr uint32 kHeadEvery = 8;
	bool from_cursor = claims_in_process++ % kHeadEvery != 0;
	uint64 total = 0;
	constexpr int kMaxPasses = 4;
	for (int pass = 0; pass < kMaxPasses && total < static_cast<uint64>(batch_size); pass++)
	{
		const HeadView head = head_read(queue_id, partition);
		const int64 start = from_cursor ? head.cursor : head.head;
		const int32 wanted = batch_size - static_cast<int32>(total);
		/* The segments as the head read saw them (the first use after a restart reads them from the tables). */
		const RingView ring = head.ring.count > 0 ? head.ring : segment_ring(queue_id, partition);
		const ClaimPass claimed =
			claim_pass(segments_from(ring, queue_id, partition, start), start, wanted, lease_timeout, client_id);
		if (claimed.locked > 0)
		{
			/* Items are locked in id order: from the head, the first is the first unleased item. */
			if (start == head.head)
				head_advance(queue_id, partition, head, claimed.proven_below);
			head_claimed(queue_id, partition, claimed.last_locked);
		}
		else if (start == head.head)
		{
			/*
			 * Nothing leasable from the head on: move the head up to the
			 * cursor (every id below it was given out before this scan), so
			 * consumers polling a drained queue do not walk every consumed
			 * item's index entry again on each poll.
			 */
			head_advance(queue_id, partition, head, head.cursor);
		}
		for (uint64 row = 0; row < claimed.granted_count; row++)
		{
			*earliest_deadline = std::min(*earliest_deadline, claimed.granted[row].lease_deadline);
			on_granted(claimed.granted[row]);
		}
		total += claimed.granted_count;
		const bool short_from_cursor = start > head.head && claimed.locked < static_cast<uint64>(wanted);
		if (claimed.granted_count == claimed.locked && !short_from_cursor)
			break; /* no race lost, and the walk began at the head: what is missing is not there */
		from_cursor = false;
	}
	/* Nothing leased, nothing to bring back on rollback: do not hold the head (a waiting lease sleeps next). */
	if (total == 0 && !registered_before)
		head_unregister(queue_id, partition);
	return total;
}

} // namespace

uint64
storage_lease(int32 queue_id, int partition, const std::string &client_id, int32 batch_size,
			  const Interval &lease_timeout, ReturnSetInfo *out, TimestampTz *earliest_deadline)
{
	return run_claim(
		queue_id, partition, client_id, batch_size, lease_timeout,
		[&](const GrantedLease &lease) {
			/* queue_lease's columns: id, partition, kind, reference, encoding, payload, attempts, lease_deadline, created_at */
			const Datum values[] = {Int64GetDatum(lease.id),        Int32GetDatum(partition),
									lease.kind,                      lease.reference,
									lease.encoding,                  lease.payload,
									Int32GetDatum(lease.attempts),   TimestampTzGetDatum(lease.lease_deadline),
									TimestampTzGetDatum(lease.created_at)};
			const bool nulls[std::size(values)] = {};
			put_result_row(out, values, nulls);
		},
		earliest_deadline);
}

/*
 * Lock order, everywhere: the item row first, then its lease row. A lease
 * locks the item and then inserts the lease; complete deletes the item
 * (which locks it) and then the lease; retry and expiry lock the items (the
 * "candidates" CTE), then delete the leases, then the items; a destructive
 * clear deletes the items before the leases (storage_admin.cpp); extend
 * touches lease rows only. Any other order deadlocks a lease against a
 * complete of the same item. See docs/design.md, "Lock order".
 */
const char *const kLockRequestedItems =
	"SELECT id FROM {items} WHERE id = ANY ($1) ORDER BY id FOR UPDATE";

std::vector<int64>
storage_complete(int32 queue_id, int partition, const std::vector<int64> &ids)
{
	return complete_leased(segments_all(segment_ring(queue_id, partition), queue_id, partition), ids);
}

namespace {

/*
 * The dead-letter INSERT fed by a CTE named "taken" (item columns plus
 * dead_reason): into the queue's own dead table, or as new items of the
 * dead queue (source_id = old id, source_queue = this queue, attempts 0).
 * Parameters $6..$8 and $11 (see ReleaseParams).
 */
std::string
dead_letter_insert(const DeadLetterTarget &target, const std::string &dead_queue_segment)
{
	if (!target.to_dead_queue)
		return std::string("INSERT INTO {dead} (id, partition, ") + kItemColumns + ", dead_at, reason) "
			   "SELECT id, $6, " + kItemColumns + ", clock_timestamp(), dead_reason FROM taken "
			   "WHERE dead_reason IS NOT NULL ORDER BY id RETURNING 1";
	return render("INSERT INTO {dq_items} (id, attempts, created_at, expire_deadline, source_id, source_queue,"
				  "  last_error, kind, reference, encoding, payload) "
				  "SELECT $7 | nextval({dq_seq}), 0, now(), now() + $8, id, $11, last_error, kind, reference,"
				  "  encoding, payload "
				  "FROM taken WHERE dead_reason IS NOT NULL ORDER BY id RETURNING 1",
				  {{"dq_items", dead_queue_segment},
				   {"dq_seq", sequence_literal(target.queue_id)}});
}

/* The parameters every statement that moves items shares, $1..$11. */
struct ReleaseParams
{
	std::vector<int64> ids;                 /* $1 */
	bool dead = false;                      /* $2 dead-letter all (retry dead) */
	int32 max_attempts = 0;                 /* $3 */
	std::optional<TimestampTz> retry_at;    /* $5 scheduled until, or the tail */
	int32 limit = 0;                        /* $9 */
	std::optional<std::string> last_error;  /* $10 kept with the item (webhook delivery) */
};

std::vector<SqlParam>
release_params(int32 queue_id, int partition, const DeadLetterTarget &target, const ReleaseParams &p)
{
	const Interval *dq_expire = target.expire_timeout ? &*target.expire_timeout : nullptr;
	const TimestampTz *at = p.retry_at ? &*p.retry_at : nullptr;
	return {param_int64_array(p.ids), param_bool(p.dead), param_int32(p.max_attempts),
			param_int64(partition_bits(partition)), param_timestamptz(at), param_int32(partition),
			param_int64(partition_bits(target.partition)), param_interval(dq_expire), param_int32(p.limit),
			p.last_error ? param_text(*p.last_error) : param_datum(TEXTOID, 0, true), param_int32(queue_id)};
}

/*
 * Ends the leases of the items `candidates_cte` locks (a SELECT ... FOR
 * UPDATE on {items}; lease rows that fail `lease_condition` are kept) and
 * moves their items: dead-lettered when
 * dead_reason is set, otherwise to the tail with a new id ($5 NULL) or
 * scheduled until $5. One statement, so it all commits or not at all.
 */
RetryOutcome
release_leases(int32 queue_id, int partition, const char *candidates_cte, const char *lease_condition,
			   const DeadLetterTarget &target, const ReleaseParams &params)
{
	const std::string segment = insert_target(queue_id, partition);
	const std::string dead_queue_segment = target.to_dead_queue ? insert_target(target.queue_id, target.partition) : "";
	std::string sql = std::string("WITH candidates AS MATERIALIZED (") + candidates_cte + "), released AS ("
		"  DELETE FROM {leases} l WHERE l.id = ANY (ARRAY(SELECT id FROM candidates)) " + lease_condition +
		"  RETURNING l.id, l.attempts"
		"), taken AS ("
		"  DELETE FROM {items} i USING released r WHERE i.id = r.id"
		"  RETURNING i.id, r.attempts, i.created_at, i.expire_deadline, i.source_id, i.source_queue,"
		"    coalesce($10, i.last_error) AS last_error, coalesce(i.origin_id, i.id) AS origin_id, i.kind,"
		"    i.reference, i.encoding, i.payload,"
		"    CASE WHEN $2 THEN 'retry' WHEN i.expire_deadline <= clock_timestamp() THEN 'expired'"
		"         WHEN $3 > 0 AND r.attempts >= $3 THEN 'max_attempts' END AS dead_reason"
		"), requeued AS ("
		"  INSERT INTO " + segment + " (id, " + kItemColumns + ")"
		"  SELECT $4 | nextval({seq}), " + kItemColumns + " FROM taken"
		"  WHERE dead_reason IS NULL AND $5::timestamptz IS NULL ORDER BY id RETURNING 1"
		"), rescheduled AS ("
		"  INSERT INTO {scheduled} (id, enqueue_at, " + kItemColumns + ")"
		"  SELECT $4 | nextval({seq}), $5, " + kItemColumns + " FROM taken"
		"  WHERE dead_reason IS NULL AND $5 IS NOT NULL ORDER BY id RETURNING 1"
		"), buried AS (" + dead_letter_insert(target, dead_queue_segment) + ") "
		"SELECT id, dead_reason IS NOT NULL FROM taken ORDER BY id";
	spi_run(render_partition(sql, queue_id, partition), release_params(queue_id, partition, target, params));
	RetryOutcome outcome;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		outcome.taken_ids.push_back(spi_get_int64(i, 1));
		if (spi_get_bool(i, 2))
			outcome.dead++;
		else if (params.retry_at)
			outcome.scheduled++;
		else
			outcome.requeued++;
	}
	note_inserted(queue_id, partition, outcome.requeued);
	if (target.to_dead_queue)
		note_inserted(target.queue_id, target.partition, outcome.dead);
	return outcome;
}

} // namespace

RetryOutcome
storage_retry(int32 queue_id, int partition, const std::vector<int64> &ids, std::optional<TimestampTz> retry_at,
			  bool dead, int32 max_attempts, const DeadLetterTarget &target, std::optional<std::string> last_error)
{
	ReleaseParams params;
	params.ids = ids;
	params.retry_at = retry_at;
	params.dead = dead;
	params.max_attempts = max_attempts;
	params.last_error = last_error;
	return release_leases(queue_id, partition, kLockRequestedItems, "", target, params);
}

RetryOutcome
storage_expire_leases(int32 queue_id, int partition, int32 max_attempts, const DeadLetterTarget &target, int32 limit)
{
	/*
	 * The worker never waits for a row lock: an item being completed or
	 * retried right now is left to that call, and so is a lease row another
	 * transaction holds (an extend not committed yet). Waiting for that row
	 * while holding the item row deadlocked with a transaction that extends
	 * and then completes: it holds the lease row and waits for the item row.
	 * Both rows are locked SKIP LOCKED, the item first as everywhere. The
	 * deadline is checked again on the lease row itself, as an extend
	 * committed since the snapshot may have moved it.
	 */
	RetryOutcome outcome = release_leases(
		queue_id, partition,
		"SELECT i.id FROM {items} i WHERE i.id = ANY (ARRAY("
		"  SELECT id FROM {leases} WHERE lease_deadline <= clock_timestamp() ORDER BY lease_deadline LIMIT $9))"
		"  ORDER BY i.id FOR UPDATE OF i SKIP LOCKED",
		"AND l.lease_deadline <= clock_timestamp() AND l.id = ANY (ARRAY("
		"  SELECT k.id FROM {leases} k WHERE k.id = ANY (ARRAY(SELECT id FROM candidates))"
		"  ORDER BY k.id FOR UPDATE OF k SKIP LOCKED))",
		target, ReleaseParams{{}, false, max_attempts, {}, limit, {}});
	/*
	 * A lease whose item is gone (expired as unleased by a worker whose
	 * snapshot predates the lease) has nothing to return; drop it so it does
	 * not hold the next deadline. SKIP LOCKED for the same reason.
	 */
	spi_run(render_partition("DELETE FROM {leases} l WHERE l.id = ANY (ARRAY("
							 "  SELECT id FROM {leases} WHERE lease_deadline <= clock_timestamp()"
							 "  ORDER BY lease_deadline LIMIT $1 FOR UPDATE SKIP LOCKED))"
							 "AND NOT EXISTS (SELECT 1 FROM {items} i WHERE i.id = l.id)",
							 queue_id, partition),
			{param_int32(limit)});
	return outcome;
}

uint64
storage_expire_items(int32 queue_id, int partition, const DeadLetterTarget &target, int32 limit)
{
	/*
	 * Unleased items past expire_deadline, ready or scheduled. Leased ones
	 * are handled by lease expiry: a lease never outlives its item's
	 * expire_deadline.
	 */
	const char *sql_template =
		"WITH taken AS ("
		"  DELETE FROM {table} WHERE id = ANY (ARRAY("
		"    SELECT t.id FROM {table} t WHERE t.expire_deadline <= clock_timestamp() {unleased}"
		"    ORDER BY t.expire_deadline LIMIT $9 FOR UPDATE SKIP LOCKED))"
		"  RETURNING id, {columns}, 'expired'::text AS dead_reason"
		"), buried AS ({bury}) "
		"SELECT count(*) FROM taken";
	/* It deletes unleased items: if it rolled back, they would be leasable again. So it registers. */
	(void) writer_segment(queue_id, partition);
	const std::string dead_queue_segment = target.to_dead_queue ? insert_target(target.queue_id, target.partition) : "";
	uint64 total = 0;
	for (bool scheduled : {false, true})
	{
		std::string sql = render(sql_template,
								 {{"table", scheduled ? "{scheduled}" : "{items}"},
								  {"unleased", scheduled ? "" : "AND NOT EXISTS (SELECT 1 FROM {leases} l WHERE l.id = t.id OFFSET 0)"},
								  {"bury", dead_letter_insert(target, dead_queue_segment)},
								  {"columns", kItemColumns}});
		ReleaseParams params;
		params.limit = limit;
		spi_run(render_partition(sql, queue_id, partition), release_params(queue_id, partition, target, params));
		total += static_cast<uint64>(spi_get_int64(0, 1));
	}
	if (target.to_dead_queue)
		note_inserted(target.queue_id, target.partition, total);
	return total;
}

std::optional<TimestampTz>
storage_next_deadline(int32 queue_id, int partition)
{
	return earliest_item_deadline(segment_relnames(queue_id, partition, "items"),
								  partition_relname(queue_id, partition, "scheduled"));
}

std::optional<TimestampTz>
storage_earliest_lease_deadline(int32 queue_id, int partition)
{
	return earliest_lease_deadline(segment_relnames(queue_id, partition, "leases"));
}

std::vector<std::pair<int32, int32>>
storage_segments_flagged()
{
	return head_ring_take_attention();
}

bool
storage_segments_upkeep(int32 queue_id, int partition)
{
	return segments_upkeep(queue_id, partition);
}

std::vector<int64>
storage_extend(int32 queue_id, int partition, const std::vector<int64> &ids, const Interval &lease_timeout)
{
	/* A lease never outlives its item: capped at expire_deadline. */
	spi_run(render_partition("UPDATE {leases} l SET lease_deadline = least(clock_timestamp() + $2,"
							 "  (SELECT i.expire_deadline FROM {items} i WHERE i.id = l.id)) "
							 "WHERE l.id = ANY ($1) RETURNING l.id",
							 queue_id, partition),
			{param_int64_array(ids), param_interval(&lease_timeout)});
	return collect_int64_column();
}

std::vector<int64>
storage_existing_ids(int32 queue_id, int partition, const std::vector<int64> &ids)
{
	/* Not read-only: a fresh snapshot sees what a concurrent complete or retry we waited for did. */
	spi_run(render_partition("SELECT id FROM {items} WHERE id = ANY ($1) "
							 "UNION ALL SELECT id FROM {scheduled} WHERE id = ANY ($1)",
							 queue_id, partition),
			{param_int64_array(ids)}, false);
	return collect_int64_column();
}

/* ---------------------------------------------------------------- lists */

namespace {

/* Runs a per-partition list query from the pivot's partition on until `limit` rows are out. */
void
list_partitions(ReturnSetInfo *out, const std::string &sql, int32 queue_id, int partitions, int64 pivot, int32 limit)
{
	int64 remaining = limit;
	for (int p = std::max(0, partition_of_id(pivot)); p < partitions && remaining > 0; p++)
	{
		remaining -= static_cast<int64>(
			spi_run(render_partition(sql, queue_id, p),
					{param_int64(pivot), param_int64(remaining), param_int32(p)}, true));
		spi_copy_result_to(out);
	}
}

} // namespace

void
storage_list_items(ReturnSetInfo *out, int32 queue_id, int partitions, int64 pivot, int32 limit, bool with_errors)
{
	list_partitions(out,
					"SELECT i.id, $3::integer, i.kind, i.reference, i.encoding, i.payload,"
					"  coalesce(l.attempts, i.attempts), i.created_at, i.expire_deadline, i.source_id,"
					"  l.id IS NOT NULL, l.lease_deadline, l.client_id, " +
						std::string(with_errors ? "i.last_error" : "NULL::text") + ", {preview} "
					"FROM {items} i LEFT JOIN {leases} l ON l.id = i.id "
					"WHERE i.id >= $1 ORDER BY i.id LIMIT $2",
					queue_id, partitions, pivot, limit);
}

void
storage_list_scheduled(ReturnSetInfo *out, int32 queue_id, int partitions, int64 pivot, int32 limit, bool with_errors)
{
	list_partitions(out,
					"SELECT id, $3::integer, kind, reference, encoding, payload, attempts, created_at,"
					"  expire_deadline, source_id, enqueue_at, " +
						std::string(with_errors ? "last_error" : "NULL::text") + ", {preview} "
					"FROM {scheduled} WHERE id >= $1 ORDER BY id LIMIT $2",
					queue_id, partitions, pivot, limit);
}

void
storage_list_dead(ReturnSetInfo *out, int32 queue_id, int64 pivot, int32 limit, bool with_errors)
{
	spi_run(render_partition("SELECT id, partition, kind, reference, encoding, payload, attempts, created_at,"
							 "  expire_deadline, source_id, dead_at, reason, " +
								 std::string(with_errors ? "last_error" : "NULL::text") + ", {preview} "
							 "FROM {dead} WHERE id >= $1 ORDER BY id LIMIT $2",
							 queue_id, 0),
			{param_int64(pivot), param_int32(limit)}, true);
	spi_copy_result_to(out);
}

/* ---------------------------------------------------------------- webhook delivery */

std::vector<LeasedItem>
storage_lease_items(int32 queue_id, int partition, const std::string &client_id, int32 batch_size,
					const Interval &lease_timeout)
{
	std::vector<LeasedItem> items;
	TimestampTz earliest_deadline = DT_NOEND; /* the items carry their deadlines */
	run_claim(queue_id, partition, client_id, batch_size, lease_timeout, [&](const GrantedLease &lease) {
		LeasedItem item;
		item.id = lease.id;
		item.origin_id = lease.origin_id;
		item.partition = partition;
		item.attempts = lease.attempts;
		item.lease_deadline = lease.lease_deadline;
		/* The Datums are detoasted copies: reading them calls nothing of PostgreSQL's. */
		auto bytes = [](Datum d) {
			const varlena *v = reinterpret_cast<const varlena *>(DatumGetPointer(d));
			return std::string(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
		};
		item.kind = bytes(lease.kind);
		item.reference = bytes(lease.reference);
		item.encoding = bytes(lease.encoding);
		item.payload = bytes(lease.payload);
		items.push_back(std::move(item));
	}, &earliest_deadline);
	return items;
}

} // namespace querator
