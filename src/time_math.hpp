/*
 * Interval and timestamp arithmetic and formatting, with every PostgreSQL
 * call guarded. A ground-floor module: the checks of validation.hpp, the
 * SQL entry points and the worker's sleep all use it, so it knows none of
 * them.
 */
#pragma once

#include "pg_prelude.hpp"

#include <string>

namespace querator {

/* Formats an interval the way PostgreSQL prints it, e.g. 01:00:00. */
std::string interval_text(const Interval &value);
int interval_compare(const Interval &a, const Interval &b);
/* The same fields ('1 day' and '24:00:00' compare equal but are not identical). */
bool interval_identical(const Interval &a, const Interval &b);
TimestampTz timestamp_plus(TimestampTz t, const Interval &value);
/* Milliseconds from now until `t`, at least 0. */
long ms_until(TimestampTz t);

} // namespace querator
