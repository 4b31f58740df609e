/*
 * A payload read as what its encoding says, for people and drivers:
 *  - payload_preview(payload, encoding): the first 200 bytes of a text or JSON
 *    payload as readable text. Valid UTF-8 is shown as it is (cut at a
 *    character boundary); anything else falls back to PostgreSQL's escape form.
 *  - payload_json(payload, encoding): a JSON payload as json, byte-for-byte,
 *    so a driver hands it over parsed; NULL for other encodings and for bytes
 *    that are not JSON, never an error (it runs inside consumers' leases).
 * Both classify the encoding here, in one place.
 */
#include "error.hpp"

extern "C" {
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
}

#include <cctype>
#include <string>

namespace querator {

namespace {

constexpr int kPreviewBytes = 200;

/* An encoding's media type: lower case, without its parameters (";charset=...") and blanks around it. */
std::string
media_type(const char *encoding)
{
	std::string type(encoding, strcspn(encoding, ";"));
	for (char &c : type)
		c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	const char *blanks = " \t";
	size_t first = type.find_first_not_of(blanks);
	if (first == std::string::npos)
		return {};
	return type.substr(first, type.find_last_not_of(blanks) - first + 1);
}

/* application/json, or any structured type with the +json suffix (RFC 6839: application/cloudevents+json). */
bool
is_json(const std::string &type)
{
	const std::string suffix = "+json";
	return type == "application/json" ||
		   (type.size() > suffix.size() && type.compare(type.size() - suffix.size(), suffix.size(), suffix) == 0);
}

bool
is_textual(const std::string &type)
{
	if (type.rfind("text/", 0) == 0 || is_json(type))
		return true;
	return type.rfind("application/", 0) == 0 &&
		   (type.find("json") != std::string::npos || type.find("xml") != std::string::npos);
}

/* The encoding argument's media type. */
std::string
arg_media_type(FunctionCallInfo fcinfo, int n)
{
	Datum encoding_datum = PG_GETARG_DATUM(n);
	return media_type(pg_guard([&] { return static_cast<const char *>(TextDatumGetCString(encoding_datum)); }));
}

/* Printable ASCII as it is, every other byte (and backslash) as \ooo, as encode(..., 'escape') does. */
std::string
escaped(const char *data, int len)
{
	std::string out;
	for (int i = 0; i < len; i++)
	{
		unsigned char c = static_cast<unsigned char>(data[i]);
		if (c == '\\')
			out += "\\\\";
		else if (c >= 0x20 && c < 0x7f)
			out += static_cast<char>(c);
		else
		{
			char buf[5];
			snprintf(buf, sizeof(buf), "\\%03o", c);
			out += buf;
		}
	}
	return out;
}

Datum
payload_preview(FunctionCallInfo fcinfo)
{
	Datum payload_datum = PG_GETARG_DATUM(0);
	if (!is_textual(arg_media_type(fcinfo, 1)))
		PG_RETURN_NULL();
	/* Only the first bytes are detoasted, even for a large payload. */
	bytea *slice = pg_guard([&] { return DatumGetByteaPSlice(payload_datum, 0, kPreviewBytes + 4); });
	const char *data = VARDATA_ANY(slice);
	int len = std::min(static_cast<int>(VARSIZE_ANY_EXHDR(slice)), kPreviewBytes);
	int valid = pg_guard([&] { return pg_encoding_verifymbstr(PG_UTF8, data, len); });
	/* Valid, or valid but for a character cut by the 200-byte limit. */
	bool utf8 = valid == len || (len == kPreviewBytes && len - valid < 4);
	std::string text = utf8 ? std::string(data, valid) : escaped(data, len);
	const char *in = text.c_str();
	int in_len = static_cast<int>(text.size());
	Datum result = pg_guard([&] {
		/* Payload bytes are UTF-8; show them in the database's encoding. */
		char *converted = utf8 ? pg_any_to_server(in, in_len, PG_UTF8) : const_cast<char *>(in);
		return PointerGetDatum(cstring_to_text(converted));
	});
	return result;
}

/*
 * The payload's bytes as json when json_in would accept them: valid UTF-8
 * (payloads are UTF-8), convertible to the database encoding, and JSON by the
 * same parser json_in runs, which here reports instead of raising. A json
 * value is its text, so in a UTF-8 database the payload is returned as it is.
 */
Datum
payload_json(FunctionCallInfo fcinfo)
{
	Datum payload_datum = PG_GETARG_DATUM(0);
	if (!is_json(arg_media_type(fcinfo, 1)))
		PG_RETURN_NULL();
	text *payload = pg_guard([&] { return DatumGetTextPP(payload_datum); });
	const char *data = VARDATA_ANY(payload);
	int len = static_cast<int>(VARSIZE_ANY_EXHDR(payload));
	/* Stops at a zero byte too, which no text may hold. */
	if (pg_guard([&] { return pg_encoding_verifymbstr(PG_UTF8, data, len); }) != len)
		PG_RETURN_NULL();
	text *json = payload;
	if (GetDatabaseEncoding() != PG_UTF8)
	{
		try
		{
			json = pg_guard([&] {
				char *converted = pg_any_to_server(data, len, PG_UTF8);
				return converted == data ? payload : cstring_to_text(converted);
			});
		}
		catch (const PgError &e)
		{
			/* A character the database encoding has no room for. */
			if (e.data()->sqlerrcode != ERRCODE_UNTRANSLATABLE_CHARACTER)
				throw;
			PG_RETURN_NULL();
		}
	}
	JsonParseErrorType parsed = pg_guard([&] {
		JsonLexContext *lex = makeJsonLexContextCstringLen(VARDATA_ANY(json), static_cast<int>(VARSIZE_ANY_EXHDR(json)),
														   GetDatabaseEncoding(), false);
		return pg_parse_json(lex, &nullSemAction);
	});
	if (parsed != JSON_SUCCESS)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(json);
}

} // namespace

} // namespace querator

QUERATOR_SQL_FUNCTION(querator_payload_preview, querator::payload_preview(fcinfo));
QUERATOR_SQL_FUNCTION(querator_payload_json, querator::payload_json(fcinfo));
