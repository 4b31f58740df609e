/*
 * The error boundary's out-of-line halves: turning a caught PostgreSQL error
 * into a C++ exception and a C++ exception back into ereport(ERROR).
 */
#include "error.hpp"

#include <cstring>
#include <new>

namespace querator {

void
throw_caught_pg_error(MemoryContext caller_context)
{
	/* Copy the error out of ErrorContext before flushing it. */
	MemoryContextSwitchTo(caller_context);
	ErrorData *data = CopyErrorData();
	FlushErrorState();
	throw PgError(data);
}

static void
copy_text(char *dest, size_t size, const char *src)
{
	std::strncpy(dest, src, size - 1);
	dest[size - 1] = '\0';
}

void
capture_exception(PendingError *pending) noexcept
{
	try
	{
		throw;
	}
	catch (const PgError &e)
	{
		pending->pg_data = e.data();
	}
	catch (const Error &e)
	{
		pending->sqlstate = e.sqlstate();
		copy_text(pending->message, sizeof(pending->message), e.what());
		copy_text(pending->hint, sizeof(pending->hint), e.hint().c_str());
	}
	catch (const std::bad_alloc &)
	{
		pending->sqlstate = ERRCODE_OUT_OF_MEMORY;
		copy_text(pending->message, sizeof(pending->message), "out of memory");
		pending->hint[0] = '\0';
	}
	catch (const std::exception &e)
	{
		pending->sqlstate = ERRCODE_INTERNAL_ERROR;
		copy_text(pending->message, sizeof(pending->message), e.what());
		pending->hint[0] = '\0';
	}
	catch (...)
	{
		pending->sqlstate = ERRCODE_INTERNAL_ERROR;
		copy_text(pending->message, sizeof(pending->message), "unknown C++ exception");
		pending->hint[0] = '\0';
	}
}

void
raise_pending_error(const PendingError *pending)
{
	if (pending->pg_data)
		ReThrowError(pending->pg_data);
	ereport(ERROR,
			(errcode(pending->sqlstate),
			 errmsg_internal("%s", pending->message),
			 pending->hint[0] ? errhint("%s", pending->hint) : 0));
	pg_unreachable();
}

} // namespace querator
