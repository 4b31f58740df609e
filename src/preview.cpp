/*
 * payload_preview(payload, encoding): the first 200 bytes of a text or JSON
 * payload as readable text. Valid UTF-8 is shown as it is (cut at a character
 * boundary); anything else falls back to PostgreSQL's escape form.
 */
#include "error.hpp"

extern "C" {
#include "mb/pg_wchar.h"
}

#include <cctype>
#include <string>

namespace querator {

namespace {

constexpr int kPreviewBytes = 200;

bool
is_textual(std::string encoding)
{
	for (char &c : encoding)
		c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
	if (encoding.rfind("text/", 0) == 0)
		return true;
	return encoding.rfind("application/", 0) == 0 &&
		   (encoding.find("json") != std::string::npos || encoding.find("xml") != std::string::npos);
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
	Datum encoding_datum = PG_GETARG_DATUM(1);
	const char *encoding = pg_guard([&] { return static_cast<const char *>(TextDatumGetCString(encoding_datum)); });
	if (!is_textual(encoding))
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

} // namespace

} // namespace querator

QUERATOR_SQL_FUNCTION(querator_payload_preview, querator::payload_preview(fcinfo));
