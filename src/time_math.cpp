/* Interval and timestamp arithmetic; see time_math.hpp. */
#include "time_math.hpp"
#include "error.hpp"

extern "C" {
#include "utils/datetime.h"
}

namespace querator {

std::string
interval_text(const Interval &value)
{
	/* Always PostgreSQL style (01:00:00), whatever the session's IntervalStyle: messages stay stable. */
	char buffer[MAXDATELEN + 1];
	char *out = buffer;
	Interval copy = value;
	pg_guard([&] {
		struct pg_itm itm;
		interval2itm(copy, &itm);
		EncodeInterval(&itm, INTSTYLE_POSTGRES, out);
	});
	return std::string(buffer);
}

bool
interval_identical(const Interval &a, const Interval &b)
{
	return a.time == b.time && a.day == b.day && a.month == b.month;
}

int
interval_compare(const Interval &a, const Interval &b)
{
	Interval x = a, y = b;
	return pg_guard([&] {
		return DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(&x), IntervalPGetDatum(&y)));
	});
}

long
ms_until(TimestampTz t)
{
	long secs = 0;
	int usecs = 0;
	TimestampDifference(GetCurrentTimestamp(), t, &secs, &usecs);
	return secs * 1000L + (usecs + 999) / 1000;
}

TimestampTz
timestamp_plus(TimestampTz t, const Interval &value)
{
	Interval copy = value;
	return pg_guard([&] {
		return DatumGetTimestampTz(
			DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(t), IntervalPGetDatum(&copy)));
	});
}

} // namespace querator
