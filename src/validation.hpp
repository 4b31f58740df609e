/*
 * Input validation shared by every SQL entry point. Each check throws
 * querator::Error with Querator's "<constant part>; <detail>" message and a
 * SQLSTATE, before anything is changed.
 */
#pragma once

#include "pg_prelude.hpp"
#include "queue_definition.hpp"

#include <optional>
#include <string>

namespace querator {

void validate_queue_name(const std::string &name, const char *field = "queue name");
/*
 * The name of a queue being created: validate_queue_name, and no Unicode
 * whitespace or invisible format character (U+00A0, U+200B, U+FEFF, ...).
 * Only at creation, so queues that 0.1.0 created with one stay reachable.
 */
void validate_new_queue_name(const std::string &name);
/*
 * A caller's text (encoding, kind, reference, client id): not empty unless
 * allow_empty, at most kMaxTextFieldLength characters, and no control
 * characters unless allow_control (kinds and references travel in webhook
 * headers, and every such text in listings and logs).
 */
void validate_text_field(const std::string &value, const char *field, bool allow_empty, bool allow_control = false);
/* True if the text holds a control character (0x00-0x1F, 0x7F). */
bool has_control_character(const char *data, size_t bytes);
/* The rule has_control_character checks, as error messages state it. */
constexpr const char *kNoControlCharacters = "cannot contain control characters (0x00-0x1F, 0x7F)";
/* Length of a text in characters of the server encoding (every documented length limit counts these). */
int64 text_characters(const char *data, size_t bytes);

/*
 * A duration within (0, max], or [0, max] with allow_zero, with no negative
 * part ('1 day -1 hour' is refused: added to a time it could go backwards).
 * Every duration argument goes through here, so now + any of them stays far
 * from the end of the timestamp range.
 */
void validate_duration(const Interval &value, const char *field, const Interval &max, bool allow_zero = false);
void validate_lease_timeout(const Interval &value);
void validate_expire_timeout(const Interval &value);
void validate_wait(const Interval &value);
void validate_lease_within_expire(const Interval &lease_timeout, const Interval *expire_timeout);
/*
 * enqueue_at / retry_at: never +infinity (never delivered), at most
 * kMaxExpireTimeoutYears ahead, and before `expires_at` when given (the
 * item would be dead-lettered before it is ever delivered).
 */
void validate_schedule_time(TimestampTz t, const char *field, std::optional<TimestampTz> expires_at = std::nullopt);
void validate_max_attempts(int32 value);
void validate_partitions(int32 value);
void validate_batch_count(int64 count, const char *field);
void validate_list_limit(int32 limit);
/*
 * url, timeout, concurrency and backoff of a queue's webhook (headers:
 * validate_webhook_headers). With `before` (an update), only the values that
 * differ from it, and backoff against backoff max when either changed.
 */
void validate_webhook(const Webhook &webhook, const Webhook *before = nullptr);

} // namespace querator
