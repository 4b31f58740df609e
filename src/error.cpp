/*
 * The error boundary's out-of-line halves: turning a caught PostgreSQL error
 * into a C++ exception and a C++ exception back into ereport(ERROR).
 */
#include "error.hpp"

#include <cstring>
#include <new>

namespace querator {

void
throw_caught_pg_error(MemoryContext caller_context, ErrorOrigin origin)
{
	/* Copy the error out of ErrorContext before flushing it. */
	MemoryContextSwitchTo(caller_context);
	ErrorData *data = CopyErrorData();
	FlushErrorState();
	throw PgError(data, origin);
}

void
report_notice(const std::string &message)
{
	const char *text = message.c_str();
	pg_guard([&] { ereport(NOTICE, (errmsg_internal("%s", text))); });
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
		pending->internal_sql = e.origin() == ErrorOrigin::internal_sql;
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

namespace {

/*
 * What the client is told about an error of querator's own SQL. PostgreSQL's
 * messages for these SQLSTATEs name no object, and clients match on them
 * (retry on 40001, statement_timeout's 57014): they pass unchanged. Every
 * other message may name an internal table or constraint, so querator says
 * what happened in its own words.
 */
struct ClientText
{
	const char *message;
	const char *hint;
	int sqlstate = 0; /* 0: the original's */
};

ClientText
client_text(const ErrorData *original)
{
	switch (original->sqlerrcode)
	{
		case ERRCODE_QUERY_CANCELED:
		case ERRCODE_T_R_SERIALIZATION_FAILURE:
		case ERRCODE_T_R_DEADLOCK_DETECTED:
		case ERRCODE_LOCK_NOT_AVAILABLE:
		case ERRCODE_ADMIN_SHUTDOWN:
		case ERRCODE_CRASH_SHUTDOWN:
			return {original->message, nullptr};
		case ERRCODE_UNDEFINED_TABLE:
			/*
			 * Our statements name only our own tables: one is gone because a
			 * queues_delete or a shrink committed while this call waited for
			 * its lock. Nothing was done; the call can simply be retried.
			 */
			return {"queue changed during the call; a concurrent queues_delete or queues_update removed "
					"the storage it was using",
					"Retry the call.", ERRCODE_T_R_SERIALIZATION_FAILURE};
		case ERRCODE_READ_ONLY_SQL_TRANSACTION:
			return {"read-only transaction; querator cannot change queues or items in a read-only transaction",
					"Call it in a read-write transaction on the primary server."};
	}
	/* Data exceptions (timestamp out of range, ...) describe a value, not a table. */
	if (ERRCODE_TO_CATEGORY(original->sqlerrcode) == ERRCODE_DATA_EXCEPTION)
		return {original->message, nullptr};
	if (ERRCODE_TO_CATEGORY(original->sqlerrcode) == ERRCODE_INSUFFICIENT_RESOURCES)
		return {"insufficient resources; querator's statement could not complete",
				"The server log has the details (\"querator: internal statement failed\")."};
	return {"internal error; querator's statement failed",
			"The server log has the details (\"querator: internal statement failed\")."};
}

/* Logs an internal statement's error in full for the server only, then raises querator's own. */
[[noreturn]] void
raise_internal_sql_error(ErrorData *original)
{
	ClientText text = client_text(original);
	const int sqlstate = text.sqlstate ? text.sqlstate : original->sqlerrcode;
	const char *message = text.message ? pstrdup(text.message) : "internal error";
	original->elevel = LOG_SERVER_ONLY;
	original->message = psprintf("querator: internal statement failed: %s", original->message ? original->message : "");
	/* The original context already holds the caller's frames: report it as it was. */
	ErrorContextCallback *callers = error_context_stack;
	error_context_stack = nullptr;
	ThrowErrorData(original);
	error_context_stack = callers;
	ereport(ERROR, (errcode(sqlstate), errmsg_internal("%s", message), text.hint ? errhint("%s", text.hint) : 0));
	pg_unreachable();
}

} // namespace

void
raise_pending_error(const PendingError *pending)
{
	if (pending->pg_data && pending->internal_sql)
		raise_internal_sql_error(pending->pg_data);
	if (pending->pg_data)
		ReThrowError(pending->pg_data);
	ereport(ERROR,
			(errcode(pending->sqlstate),
			 errmsg_internal("%s", pending->message),
			 pending->hint[0] ? errhint("%s", pending->hint) : 0));
	pg_unreachable();
}

} // namespace querator
