/* Reading SQL function arguments into C++ values, with every PostgreSQL call guarded. */
#pragma once

#include "pg_prelude.hpp"

#include <optional>
#include <string>
#include <vector>

namespace querator {

std::optional<std::string> arg_text(FunctionCallInfo fcinfo, int n);
/* A queue name argument, validated (NULL counts as empty: 22023). */
std::string arg_queue_name(FunctionCallInfo fcinfo, int n);
std::optional<int32> arg_int32(FunctionCallInfo fcinfo, int n);
std::optional<int64> arg_int64(FunctionCallInfo fcinfo, int n);
std::optional<bool> arg_bool(FunctionCallInfo fcinfo, int n);
std::optional<Interval> arg_interval(FunctionCallInfo fcinfo, int n);
std::optional<TimestampTz> arg_timestamptz(FunctionCallInfo fcinfo, int n);
/* A jsonb argument as its text form. */
std::optional<std::string> arg_jsonb_text(FunctionCallInfo fcinfo, int n);
/* A detoasted array argument, or nothing for NULL; anything but a 1-D (or empty) array is 22023 naming `field`. */
std::optional<Datum> arg_array(FunctionCallInfo fcinfo, int n, const char *field);
/* What a NULL id list means to a call. */
enum class NullIds
{
	refused, /* 22004 (complete, retry, extend) */
	none,    /* no ids (a lease's complete_ids: the loop's first call) */
	all      /* nothing returned: no filter (redrive) */
};
/*
 * The id list argument `n` (complete, retry, extend, redrive): distinct, in
 * the caller's order, at most max_batch_size. An empty array is a list of no
 * ids, and the call acts on nothing (as DELETE ... WHERE id = ANY ('{}')
 * does), so a list built by a query works when the query finds nothing.
 */
std::optional<std::vector<int64>> arg_ids(FunctionCallInfo fcinfo, int n, const char *field, NullIds if_null);

/* Builds a bigint[] in the current memory context. */
Datum make_int64_array(const std::vector<int64> &values);

/* Prepares a materialized set-returning result; returns where rows go. */
ReturnSetInfo *begin_set_result(FunctionCallInfo fcinfo);

} // namespace querator
