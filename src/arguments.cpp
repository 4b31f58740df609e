/* SQL argument access; see arguments.hpp. */
#include "arguments.hpp"
#include "error.hpp"
#include "validation.hpp"

#include <set>

namespace querator {

std::optional<std::string>
arg_text(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return std::nullopt;
	const char *s = pg_guard([&] { return static_cast<const char *>(text_to_cstring(PG_GETARG_TEXT_PP(n))); });
	return std::string(s);
}

std::string
arg_queue_name(FunctionCallInfo fcinfo, int n)
{
	std::string name = arg_text(fcinfo, n).value_or("");
	validate_queue_name(name);
	return name;
}

std::optional<int32>
arg_int32(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return std::nullopt;
	return PG_GETARG_INT32(n);
}

std::optional<int64>
arg_int64(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return std::nullopt;
	return PG_GETARG_INT64(n);
}

std::optional<bool>
arg_bool(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return std::nullopt;
	return PG_GETARG_BOOL(n);
}

std::optional<Interval>
arg_interval(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return std::nullopt;
	return *PG_GETARG_INTERVAL_P(n);
}

std::optional<TimestampTz>
arg_timestamptz(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return std::nullopt;
	return PG_GETARG_TIMESTAMPTZ(n);
}

std::optional<std::string>
arg_jsonb_text(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return std::nullopt;
	Datum d = PG_GETARG_DATUM(n);
	const char *s = pg_guard([&] { return static_cast<const char *>(DatumGetCString(DirectFunctionCall1(jsonb_out, d))); });
	return std::string(s);
}

std::optional<Datum>
arg_array(FunctionCallInfo fcinfo, int n, const char *field)
{
	if (PG_ARGISNULL(n))
		return std::nullopt;
	Datum array = pg_guard([&] { return PointerGetDatum(PG_DETOAST_DATUM(PG_GETARG_DATUM(n))); });
	/* deconstruct_array flattens any shape: '{{a,b},{c,d}}' would become four items. */
	int dimensions = ARR_NDIM(reinterpret_cast<ArrayType *>(DatumGetPointer(array)));
	if (dimensions > 1)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(field) +
														 " is invalid; must be a one-dimensional array, received " +
														 std::to_string(dimensions) + " dimensions");
	return array;
}

namespace {

/* Elements of a bigint[] argument; NULL elements are an error naming `field`. */
std::optional<std::vector<int64>>
arg_int64_array(FunctionCallInfo fcinfo, int n, const char *field)
{
	std::optional<Datum> array = arg_array(fcinfo, n, field);
	if (!array)
		return std::nullopt;
	Datum *elems = nullptr;
	bool *nulls = nullptr;
	int count = 0;
	Datum a = *array;
	pg_guard([&] {
		deconstruct_array(DatumGetArrayTypeP(a), INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems,
						  &nulls, &count);
	});
	std::vector<int64> values;
	values.reserve(count);
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED,
						std::string(field) + " is invalid; element " + std::to_string(i + 1) + " is null");
		values.push_back(DatumGetInt64(elems[i]));
	}
	return values;
}

} // namespace

std::optional<std::vector<int64>>
arg_ids(FunctionCallInfo fcinfo, int n, const char *field, NullIds if_null)
{
	std::optional<std::vector<int64>> given = arg_int64_array(fcinfo, n, field);
	if (!given)
	{
		if (if_null == NullIds::refused)
			throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, std::string(field) + " is invalid; cannot be null");
		if (if_null == NullIds::all)
			return std::nullopt;
		return std::vector<int64>{};
	}
	if (!given->empty())
		validate_batch_count(static_cast<int64>(given->size()), field);
	std::vector<int64> distinct;
	std::set<int64> seen;
	for (int64 id : *given)
		if (seen.insert(id).second)
			distinct.push_back(id);
	return distinct;
}

Datum
make_int64_array(const std::vector<int64> &values)
{
	const int64 *data = values.data();
	int n = static_cast<int>(values.size());
	return pg_guard([&] {
		Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
		for (int i = 0; i < n; i++)
			elems[i] = Int64GetDatum(data[i]);
		return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	});
}

ReturnSetInfo *
begin_set_result(FunctionCallInfo fcinfo)
{
	return pg_guard([&] {
		InitMaterializedSRF(fcinfo, 0);
		return reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	});
}

} // namespace querator
