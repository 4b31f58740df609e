/*
 * Input validation shared by every SQL entry point. Each check throws
 * querator::Error with Querator's "<constant part>; <detail>" message and a
 * SQLSTATE, before anything is changed.
 */
#pragma once

#include "catalog.hpp"
#include "pg_prelude.hpp"

#include <string>

namespace querator {

void validate_queue_name(const std::string &name, const char *field = "queue name");
void validate_text_field(const std::string &value, const char *field, bool allow_empty);
void validate_positive_interval(const Interval &value, const char *field);
void validate_lease_within_expire(const Interval &lease_timeout, const Interval *expire_timeout);
void validate_max_attempts(int32 value);
void validate_partitions(int32 value);
void validate_batch_count(int64 count, const char *field);
void validate_list_limit(int32 limit);
/* url, timeout, concurrency and backoff of a queue's webhook (headers: validate_webhook_headers). */
void validate_webhook(const Webhook &webhook);

/* Formats an interval the way PostgreSQL prints it, e.g. 01:00:00. */
std::string interval_text(const Interval &value);
int interval_compare(const Interval &a, const Interval &b);
TimestampTz timestamp_plus(TimestampTz t, const Interval &value);
/* Milliseconds from now until `t`, at least 0. */
long ms_until(TimestampTz t);

} // namespace querator
