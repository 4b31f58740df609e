/* SQL entry points for items: queue_produce / lease / complete / retry / extend. */
#include "access.hpp"
#include "arguments.hpp"
#include "catalog.hpp"
#include "error.hpp"
#include "queue_ops.hpp"
#include "settings.hpp"
#include "spi.hpp"
#include "time_math.hpp"
#include "validation.hpp"
#include "waiters.hpp"

extern "C" {
#include "mb/pg_wchar.h"
#include "utils/jsonb.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

/* From libpq/libpq.h, whose backend headers pull in GSSAPI headers we do not need. */
extern bool pq_check_connection(void);
}

#include <algorithm>

namespace querator {

namespace {

/* A retry_at this close to now is a retry now (Querator's rule). */
constexpr int64 kRetryNowWindowUsec = 100 * 1000;

/*
 * The payloads as bytea[]: a text[], json[] or jsonb[] (the other forms of
 * queue_produce and the queue_produce_*_batch names, declared on this same
 * function) becomes the UTF-8 bytes of each element, as convert_to(p, 'UTF8')
 * would give. NULL elements stay NULL. In a UTF-8 database a text or json
 * element (json is its text, as given) already is those bytes, in the layout
 * of a bytea: the array is relabelled, not rebuilt; a jsonb element is
 * rendered straight into its bytea (produce-100's profile had the copies at
 * a third of the conversion).
 */
Datum
payloads_as_bytea(Datum payloads)
{
	return pg_guard([&] {
		ArrayType *array = DatumGetArrayTypeP(payloads);
		Oid type = ARR_ELEMTYPE(array);
		if (type == BYTEAOID)
			return payloads;
		const bool utf8_database = GetDatabaseEncoding() == PG_UTF8;
		if ((type == TEXTOID || type == JSONOID) && utf8_database)
		{
			ArrayType *relabelled = static_cast<ArrayType *>(palloc(VARSIZE(array)));
			memcpy(relabelled, array, VARSIZE(array));
			relabelled->elemtype = BYTEAOID;
			return PointerGetDatum(relabelled);
		}
		Datum *elems = nullptr;
		bool *nulls = nullptr;
		int count = 0;
		deconstruct_array(array, type, -1, false, TYPALIGN_INT, &elems, &nulls, &count);
		for (int i = 0; i < count; i++)
		{
			if (nulls[i])
				continue;
			if (type == JSONBOID && utf8_database)
			{
				Jsonb *json = DatumGetJsonbP(elems[i]);
				StringInfoData bytes;
				initStringInfo(&bytes);
				appendStringInfoSpaces(&bytes, VARHDRSZ); /* the bytea header, set below */
				(void) JsonbToCString(&bytes, &json->root, VARSIZE(json));
				SET_VARSIZE(bytes.data, bytes.len);
				elems[i] = PointerGetDatum(bytes.data);
				continue;
			}
			const char *data;
			int len;
			if (type == JSONBOID)
			{
				data = DatumGetCString(DirectFunctionCall1(jsonb_out, elems[i]));
				len = static_cast<int>(strlen(data));
			}
			else
			{
				text *t = DatumGetTextPP(elems[i]);
				data = VARDATA_ANY(t);
				len = static_cast<int>(VARSIZE_ANY_EXHDR(t));
			}
			const char *utf8 = pg_server_to_any(data, len, PG_UTF8);
			if (utf8 != data)
				len = static_cast<int>(strlen(utf8));
			bytea *bytes = static_cast<bytea *>(palloc(VARHDRSZ + len));
			SET_VARSIZE(bytes, VARHDRSZ + len);
			memcpy(VARDATA(bytes), utf8, len);
			elems[i] = PointerGetDatum(bytes);
		}
		int dims[1] = {count};
		int lbs[1] = {1};
		return PointerGetDatum(construct_md_array(elems, nulls, count > 0 ? 1 : 0, dims, lbs, BYTEAOID, -1, false,
												  TYPALIGN_INT));
	});
}

/*
 * The encoding an item gets when the call gives none (NULL included), by the
 * payload type of the array form called, as the SQL declarations' defaults
 * say (queue_produce_json_batch has no encoding argument: always this one).
 * The single forms are SQL wrappers over the array forms: they pass their
 * encoding argument on as it is.
 */
const char *
default_encoding(Datum payloads)
{
	switch (ARR_ELEMTYPE(reinterpret_cast<ArrayType *>(DatumGetPointer(payloads)))) /* detoasted by arg_array */
	{
		case TEXTOID:
			return "text/plain";
		case JSONOID:
		case JSONBOID:
			return "application/json";
		default:
			return "application/octet-stream";
	}
}

/* Checks each payload (non-null, within max_payload_size); returns their count. */
int
validate_payloads(Datum payloads)
{
	Datum *elems = nullptr;
	bool *nulls = nullptr;
	int count = 0;
	pg_guard([&] {
		deconstruct_array(DatumGetArrayTypeP(payloads), BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &count);
	});
	validate_batch_count(count, "items");
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED,
						"items is invalid; payload of item " + std::to_string(i + 1) + " is null");
		Datum e = elems[i];
		int64 size = pg_guard([&] { return static_cast<int64>(VARSIZE_ANY_EXHDR(DatumGetPointer(e))); });
		if (size > max_payload_size)
			throw Error(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
						"payload is invalid; max_payload_size is " + std::to_string(max_payload_size) +
							" bytes but item " + std::to_string(i + 1) + " has " + std::to_string(size));
	}
	return count;
}

/* Checks an optional per-item text array (kinds, references) against the item count. */
void
validate_item_texts(const std::optional<Datum> &array, int items, const char *field)
{
	if (!array)
		return;
	Datum *elems = nullptr;
	bool *nulls = nullptr;
	int count = 0;
	Datum a = *array;
	pg_guard([&] { deconstruct_array(DatumGetArrayTypeP(a), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &count); });
	if (count != items)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					std::string(field) + " is invalid; has " + std::to_string(count) + " elements but there are " +
						std::to_string(items) + " items");
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			continue; /* NULL means '', for kinds and references alike (README) */
		const text *t = reinterpret_cast<const text *>(DatumGetPointer(elems[i]));
		/* Messages are built only on failure: this runs for every item of every produce. */
		auto element = [&] { return std::string(field) + " is invalid; element " + std::to_string(i + 1); };
		if (text_characters(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) > kMaxTextFieldLength)
			throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
						element() + " cannot be greater than " + std::to_string(kMaxTextFieldLength) + " characters");
		if (has_control_character(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)))
			throw Error(ERRCODE_INVALID_PARAMETER_VALUE, element() + " " + kNoControlCharacters);
	}
}

/*
 * Sleeps on the latch until items are dealt to this waiter (see waiters.hpp)
 * or `deadline`, then leases up to what was dealt. Uses no CPU while asleep:
 * it wakes once a second only to notice a vanished client, and re-tries a
 * lease every querator.wait_recheck_interval in case a wake-up was missed
 * (for example items freed by a rolled-back lease, which wakes nobody).
 */
void
wait_and_lease(const QueueDef &queue, const std::string &client_id, int32 batch_size, TimestampTz deadline,
			   ReturnSetInfo *out)
{
	TimestampTz next_recheck = GetCurrentTimestamp() + static_cast<int64>(wait_recheck_interval) * USECS_PER_SEC;
	for (;;)
	{
		long ms = std::min({ms_until(deadline), ms_until(next_recheck), 1000L});
		if (ms_until(deadline) <= 0)
			return;
		pg_guard([&] {
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			/* A client that went away ends the wait (and the backend), as PostgreSQL itself does. */
			if (MyProcPort != nullptr && !pq_check_connection())
			{
				ClientConnectionLost = true;
				InterruptPending = true;
			}
			CHECK_FOR_INTERRUPTS();
		});
		/* Before the lease: its tables may be what the DDL waits to drop. */
		waiter_check_ended(queue.name);
		int32 allowance = waiter_take_allowance();
		bool recheck = GetCurrentTimestamp() >= next_recheck;
		if (allowance == 0 && !recheck)
			continue;
		if (recheck)
			next_recheck = GetCurrentTimestamp() + static_cast<int64>(wait_recheck_interval) * USECS_PER_SEC;
		/*
		 * Items were dealt to us, but a lease can come back empty when it
		 * loses a race for the same rows (a lease committed after our
		 * snapshot); try again at once rather than sleeping until the recheck.
		 */
		for (int attempt = 0; attempt < (allowance > 0 ? 3 : 1); attempt++)
		{
			SpiConnection spi;
			/* Re-read: the queue may have been paused, resumed or changed meanwhile. */
			QueueDef current = catalog_get(queue.name);
			uint64 leased = lease_items(current, client_id, allowance > 0 ? allowance : batch_size, out);
			spi.finish();
			if (leased > 0)
				return;
		}
	}
}

Datum
queue_produce(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	std::optional<Datum> payloads = arg_array(fcinfo, 1, "items");
	if (!payloads)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "items is invalid; cannot be empty");
	const char *encoding = default_encoding(*payloads);
	payloads = payloads_as_bytea(*payloads);
	int count = validate_payloads(*payloads);

	ProduceBatch batch;
	batch.payloads = *payloads;
	batch.count = count;
	batch.kinds = arg_array(fcinfo, 2, "kinds");
	batch.references = arg_array(fcinfo, 3, "references");
	validate_item_texts(batch.kinds, count, "kinds");
	validate_item_texts(batch.references, count, "references");
	std::optional<TimestampTz> enqueue_at = arg_timestamptz(fcinfo, 4);
	/* queue_produce_json_batch declares no encoding: JSON in, JSON labelled. */
	const bool has_encoding = PG_NARGS() > 5;
	batch.encoding = (has_encoding ? arg_text(fcinfo, 5) : std::nullopt).value_or(encoding);
	validate_text_field(batch.encoding, "encoding", false);

	SpiConnection spi;
	QueueDef queue = catalog_get(name);
	require_privilege(queue, Privilege::produce);
	if (enqueue_at)
	{
		std::optional<TimestampTz> expires_at;
		if (queue.expire_timeout) /* the items' expire_deadline: now() + expire_timeout */
			expires_at = timestamp_plus(GetCurrentTransactionStartTimestamp(), *queue.expire_timeout);
		validate_schedule_time(*enqueue_at, "enqueue at", expires_at);
		if (*enqueue_at > GetCurrentTimestamp())
			batch.enqueue_at = enqueue_at; /* future: scheduled; past or now: ready at once */
	}
	std::vector<int64> ids = produce_items(queue, batch);
	spi.finish();
	return make_int64_array(ids);
}

/*
 * queue_lease and queue_complete_and_lease: completes `complete_ids` (all or
 * none, as queue_complete: an error leases nothing), then leases up to
 * batch_size items, waiting up to `wait` for them. Arguments at the given
 * positions of the calling form.
 */
struct LeaseArgs
{
	int client_id, batch_size, wait;
	std::optional<int> complete_ids;
};

Datum
lease_call(FunctionCallInfo fcinfo, const LeaseArgs &at)
{
	std::string name = arg_queue_name(fcinfo, 0);
	std::string client_id = arg_text(fcinfo, at.client_id).value_or("");
	validate_text_field(client_id, "client id", false);
	int32 batch_size = arg_int32(fcinfo, at.batch_size).value_or(0);
	if (batch_size <= 0)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"batch size is invalid; must be greater than 0, received " + std::to_string(batch_size));
	validate_batch_count(batch_size, "batch size");
	Interval wait = arg_interval(fcinfo, at.wait).value_or(Interval{});
	validate_wait(wait);
	if (interval_compare(wait, Interval{}) > 0 && IsolationUsesXactSnapshot())
		throw Error(ERRCODE_INVALID_TRANSACTION_STATE,
					"wait is invalid; a waiting lease cannot see new items under REPEATABLE READ or SERIALIZABLE",
					"Use READ COMMITTED, or wait => '0'.");
	/* NULL or empty: nothing to complete (the loop's first call). */
	const std::vector<int64> complete_ids =
		at.complete_ids ? *arg_ids(fcinfo, *at.complete_ids, "complete ids", NullIds::none) : std::vector<int64>{};

	ReturnSetInfo *out = begin_set_result(fcinfo);
	SpiConnection spi;
	QueueDef queue = catalog_get(name);
	require_privilege(queue, Privilege::consume);
	if (!complete_ids.empty())
		complete_items(queue, complete_ids);
	const bool waiting = interval_compare(wait, Interval{}) > 0;
	/* Registered before the first try, so an item committed in between still wakes us. */
	if (waiting)
		waiter_register(queue.id, queue.name, client_id, batch_size);
	uint64 leased = lease_items(queue, client_id, batch_size, out);
	spi.finish();
	if (waiting && leased == 0)
		wait_and_lease(queue, client_id, batch_size, timestamp_plus(GetCurrentTimestamp(), wait), out);
	if (waiting)
		waiter_unregister();
	return (Datum) 0;
}

/* queue_lease(queue_name, client_id, batch_size, wait) */
Datum
queue_lease(FunctionCallInfo fcinfo)
{
	return lease_call(fcinfo, LeaseArgs{1, 2, 3, std::nullopt});
}

/* queue_complete_and_lease(queue_name, client_id, complete_ids, batch_size, wait): the consumer loop's call */
Datum
queue_complete_and_lease(FunctionCallInfo fcinfo)
{
	return lease_call(fcinfo, LeaseArgs{1, 3, 4, 2});
}

Datum
queue_complete(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	std::vector<int64> ids = *arg_ids(fcinfo, 1, "ids", NullIds::refused);
	SpiConnection spi;
	QueueDef queue = catalog_get(name);
	require_privilege(queue, Privilege::consume);
	uint64 n = complete_items(queue, ids);
	spi.finish();
	PG_RETURN_INT32(static_cast<int32>(n));
}

Datum
queue_retry(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	std::vector<int64> ids = *arg_ids(fcinfo, 1, "ids", NullIds::refused);
	std::optional<TimestampTz> retry_at = arg_timestamptz(fcinfo, 2);
	if (retry_at)
		validate_schedule_time(*retry_at, "retry at");
	if (retry_at && *retry_at <= GetCurrentTimestamp() + kRetryNowWindowUsec)
		retry_at.reset();
	bool dead = arg_bool(fcinfo, 3).value_or(false);

	SpiConnection spi;
	QueueDef queue = catalog_get(name);
	require_privilege(queue, Privilege::consume);
	uint64 n = retry_items(queue, ids, retry_at, dead);
	spi.finish();
	PG_RETURN_INT32(static_cast<int32>(n));
}

Datum
queue_extend(FunctionCallInfo fcinfo)
{
	std::string name = arg_queue_name(fcinfo, 0);
	std::vector<int64> ids = *arg_ids(fcinfo, 1, "ids", NullIds::refused);
	std::optional<Interval> lease_timeout = arg_interval(fcinfo, 2);
	if (lease_timeout)
		validate_lease_timeout(*lease_timeout);

	SpiConnection spi;
	QueueDef queue = catalog_get(name);
	require_privilege(queue, Privilege::consume);
	uint64 n = extend_leases(queue, ids, lease_timeout.value_or(queue.lease_timeout));
	spi.finish();
	PG_RETURN_INT32(static_cast<int32>(n));
}

} // namespace

} // namespace querator

QUERATOR_SQL_FUNCTION(querator_queue_produce, querator::queue_produce(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queue_lease, querator::queue_lease(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queue_complete_and_lease, querator::queue_complete_and_lease(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queue_complete, querator::queue_complete(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queue_retry, querator::queue_retry(fcinfo));
QUERATOR_SQL_FUNCTION(querator_queue_extend, querator::queue_extend(fcinfo));
