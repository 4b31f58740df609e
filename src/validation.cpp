/* Validation of names, durations and limits; see validation.hpp. */
#include "validation.hpp"
#include "error.hpp"
#include "settings.hpp"
#include "time_math.hpp"
#include "webhook_http.hpp"

extern "C" {
#include "mb/pg_wchar.h"
}

namespace querator {

namespace {

std::string
quoted(const std::string &value)
{
	return "'" + value + "'";
}

Interval
hours(int n)
{
	return Interval{n * USECS_PER_HOUR, 0, 0};
}

Interval
years(int n)
{
	return Interval{0, 0, n * MONTHS_PER_YEAR};
}

std::string
timestamp_text(TimestampTz t)
{
	const char *text = pg_guard([&] { return timestamptz_to_str(t); });
	return std::string(text);
}

/*
 * Unicode whitespace and invisible format characters: a queue name made
 * with them shows like another name, or like nothing, in every listing.
 */
bool
invisible_code_point(pg_wchar c)
{
	static const pg_wchar ranges[][2] = {
		{0x0080, 0x00A0}, /* C1 controls (NEL), no-break space */
		{0x00AD, 0x00AD}, /* soft hyphen */
		{0x061C, 0x061C}, /* Arabic letter mark */
		{0x1680, 0x1680}, /* ogham space mark */
		{0x180E, 0x180E}, /* Mongolian vowel separator */
		{0x2000, 0x200F}, /* en quad .. hair space, zero-width space and joiners, direction marks */
		{0x2028, 0x202F}, /* line and paragraph separators, direction embeddings, narrow no-break space */
		{0x205F, 0x206F}, /* medium mathematical space, word joiner, invisible operators, direction isolates */
		{0x3000, 0x3000}, /* ideographic space */
		{0xFEFF, 0xFEFF}, /* zero-width no-break space (byte order mark) */
		{0xFFF9, 0xFFFB}, /* interlinear annotation */
		{0xE0000, 0xE007F}, /* tags */
	};
	for (const auto &r : ranges)
		if (c >= r[0] && c <= r[1])
			return true;
	return false;
}

/* The first invisible code point of a name (see invisible_code_point), or 0. */
pg_wchar
first_invisible_code_point(const std::string &name)
{
	bool ascii = true;
	for (unsigned char c : name)
		ascii = ascii && c < 0x80;
	/* ASCII has none of them; SQL_ASCII gives bytes past 0x7f no meaning to judge. */
	if (ascii || GetDatabaseEncoding() == PG_SQL_ASCII)
		return 0;
	const char *data = name.data();
	const int bytes = static_cast<int>(name.size());
	const char *utf8 = pg_guard([&] { return static_cast<const char *>(pg_server_to_any(data, bytes, PG_UTF8)); });
	const auto *p = reinterpret_cast<const unsigned char *>(utf8);
	const auto *end = p + (utf8 == data ? bytes : strlen(utf8));
	while (p < end)
	{
		pg_wchar c = utf8_to_unicode(p);
		if (invisible_code_point(c))
			return c;
		p += pg_utf_mblen(p);
	}
	return 0;
}

} // namespace

void
validate_queue_name(const std::string &name, const char *field)
{
	const std::string prefix = std::string(field) + " is invalid; ";
	bool blank = true;
	for (unsigned char c : name)
		if (!isspace(c))
			blank = false;
	if (blank)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE, prefix + field + " cannot be empty");
	if (text_characters(name.data(), name.size()) > kMaxQueueNameLength)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					prefix + field + " cannot be greater than " + std::to_string(kMaxQueueNameLength) + " characters");
	for (unsigned char c : name)
	{
		if (isspace(c) || c < 0x20 || c == 0x7f)
			throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
						prefix + quoted(name) + " cannot contain whitespace or control characters");
		if (c == '~')
			throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
						prefix + quoted(name) + " cannot contain '~' (reserved)");
	}
}

void
validate_new_queue_name(const std::string &name)
{
	validate_queue_name(name);
	if (pg_wchar c = first_invisible_code_point(name))
	{
		char code[16];
		snprintf(code, sizeof(code), "U+%04X", static_cast<unsigned>(c));
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"queue name is invalid; " + quoted(name) +
						" cannot contain Unicode whitespace or invisible characters, found " + code);
	}
}

void
validate_text_field(const std::string &value, const char *field, bool allow_empty, bool allow_control)
{
	if (!allow_empty && value.find_first_not_of(" \t\r\n") == std::string::npos)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					std::string(field) + " is invalid; " + field + " cannot be empty");
	int64 characters = text_characters(value.data(), value.size());
	if (characters > kMaxTextFieldLength)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					std::string(field) + " is invalid; cannot be greater than " +
						std::to_string(kMaxTextFieldLength) + " characters, received " + std::to_string(characters));
	if (!allow_control && has_control_character(value.data(), value.size()))
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					std::string(field) + " is invalid; " + kNoControlCharacters);
}

bool
has_control_character(const char *data, size_t bytes)
{
	/* Server encodings are ASCII-safe: these bytes are never part of a multibyte character. */
	for (size_t i = 0; i < bytes; i++)
	{
		unsigned char c = static_cast<unsigned char>(data[i]);
		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

int64
text_characters(const char *data, size_t bytes)
{
	return pg_mbstrlen_with_len(data, static_cast<int>(bytes));
}

void
validate_duration(const Interval &value, const char *field, const Interval &max, bool allow_zero)
{
	/* Messages are built only on failure: the wait of every queue_lease comes through here. */
	auto fail = [&](const std::string &rule) {
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					std::string(field) + " is invalid; " + rule + ", received " + interval_text(value));
	};
	auto range = [&] { return "must be between " + interval_text(Interval{}) + " and " + interval_text(max); };
	int sign = interval_compare(value, Interval{});
	if (sign < 0 || (sign == 0 && !allow_zero))
		fail(allow_zero ? range() : "must be greater than " + interval_text(Interval{}));
	if (interval_compare(value, max) > 0)
		fail(allow_zero ? range() : "cannot be greater than " + interval_text(max));
	if (value.time < 0 || value.day < 0 || value.month < 0)
		fail("cannot have a negative part");
}

void
validate_lease_timeout(const Interval &value)
{
	validate_duration(value, "lease timeout", hours(kMaxLeaseTimeoutHours));
}

void
validate_expire_timeout(const Interval &value)
{
	validate_duration(value, "expire timeout", years(kMaxExpireTimeoutYears));
}

void
validate_wait(const Interval &value)
{
	validate_duration(value, "wait", Interval{kMaxWaitMinutes * USECS_PER_MINUTE, 0, 0}, true);
}

void
validate_schedule_time(TimestampTz t, const char *field, std::optional<TimestampTz> expires_at)
{
	const std::string prefix = std::string(field) + " is invalid; ";
	if (TIMESTAMP_IS_NOEND(t))
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					prefix + "cannot be infinity (the item would never be delivered)",
					"Use a time at most " + std::to_string(kMaxExpireTimeoutYears) + " years ahead.");
	if (TIMESTAMP_IS_NOBEGIN(t))
		return; /* -infinity: now */
	TimestampTz horizon = timestamp_plus(GetCurrentTimestamp(), years(kMaxExpireTimeoutYears));
	if (t > horizon)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE, prefix + "cannot be more than " +
														 interval_text(years(kMaxExpireTimeoutYears)) +
														 " ahead, received " + timestamp_text(t));
	if (expires_at && t >= *expires_at)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					prefix + "must be before the items expire (now + the queue's expire timeout), received " +
						timestamp_text(t),
					"Schedule the items earlier, or raise the queue's expire_timeout.");
}

void
validate_lease_within_expire(const Interval &lease_timeout, const Interval *expire_timeout)
{
	if (expire_timeout != nullptr && interval_compare(lease_timeout, *expire_timeout) > 0)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"lease timeout is too long; " + interval_text(lease_timeout) +
						" cannot be greater than the expire timeout " + interval_text(*expire_timeout));
}

void
validate_max_attempts(int32 value)
{
	if (value < 0)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "max attempts is invalid; cannot be negative number");
	if (value > kMaxAttemptsLimit)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"max attempts is invalid; cannot be greater than " + std::to_string(kMaxAttemptsLimit) +
						", received " + std::to_string(value));
}

void
validate_partitions(int32 value)
{
	if (value < 1 || value > kMaxPartitions)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"partitions is invalid; must be between 1 and " + std::to_string(kMaxPartitions) +
						", received " + std::to_string(value));
}

void
validate_batch_count(int64 count, const char *field)
{
	if (count <= 0)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(field) + " is invalid; cannot be empty");
	if (count > max_batch_size)
		throw Error(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
					std::string(field) + " is invalid; max_batch_size is " + std::to_string(max_batch_size) +
						" but received " + std::to_string(count));
}

void
validate_list_limit(int32 limit)
{
	if (limit < 1 || limit > kMaxListLimit)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"limit is invalid; must be between 1 and " + std::to_string(kMaxListLimit) +
						", received " + std::to_string(limit));
}

} // namespace querator

namespace querator {

void
validate_webhook(const Webhook &webhook, const Webhook *before)
{
	const bool url_changed = before == nullptr || webhook.url != before->url;
	const bool backoff_changed = before == nullptr || !interval_identical(webhook.backoff, before->backoff);
	const bool backoff_max_changed = before == nullptr || !interval_identical(webhook.backoff_max, before->backoff_max);
	/* The url's destination is checked at connect time (webhook_address.hpp); here only its form. */
	if (!webhook.url.empty() && url_changed)
		if (std::string problem = http::url_problem(webhook.url); !problem.empty())
			throw Error(ERRCODE_INVALID_PARAMETER_VALUE, problem);
	if (before == nullptr || !interval_identical(webhook.timeout, before->timeout))
		validate_duration(webhook.timeout, "webhook timeout", hours(kMaxWebhookTimeoutHours));
	if ((before == nullptr || webhook.concurrency != before->concurrency) &&
		(webhook.concurrency < 1 || webhook.concurrency > 256))
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "webhook concurrency is invalid; must be between 1 and 256, received " +
														 std::to_string(webhook.concurrency));
	if (backoff_changed)
		validate_duration(webhook.backoff, "webhook backoff", hours(kMaxWebhookBackoffHours));
	if (backoff_max_changed)
		validate_duration(webhook.backoff_max, "webhook backoff max", hours(kMaxWebhookBackoffHours));
	if ((backoff_changed || backoff_max_changed) && interval_compare(webhook.backoff_max, webhook.backoff) < 0)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "webhook backoff max is invalid; " +
														 interval_text(webhook.backoff_max) +
														 " cannot be less than the webhook backoff " +
														 interval_text(webhook.backoff));
}

} // namespace querator
