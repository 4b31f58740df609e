/*
 * The C++ / PostgreSQL error boundary, one wrapper in each direction.
 *
 *  - pg_guard(f): C++ calling PostgreSQL. Runs f (PostgreSQL calls only, no
 *    RAII objects) under PG_TRY; an ereport(ERROR) is caught, its ErrorData
 *    copied, the error state flushed and a PgError thrown, so C++ unwinding
 *    runs destructors normally. spi.cpp marks the errors of querator's own
 *    statements (ErrorOrigin::internal_sql).
 *  - sql_entry(fcinfo, f): PostgreSQL calling C++. Every SQL-callable
 *    function's body runs inside it; any exception is caught, its data moved
 *    to trivially destructible storage, and the PostgreSQL error is raised
 *    only after the catch block has ended. An error of an internal statement
 *    goes to the server log in full and reaches the client with its SQLSTATE
 *    and querator's own message only (no statement text, table names, detail
 *    or context).
 */
#pragma once

#include "pg_prelude.hpp"

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace querator {

/* An error querator raises itself: SQLSTATE, "<constant part>; <detail>" message, optional hint. */
class Error : public std::exception
{
public:
	Error(int sqlstate, std::string message, std::string hint = {})
		: sqlstate_(sqlstate), message_(std::move(message)), hint_(std::move(hint))
	{
	}
	const char *what() const noexcept override { return message_.c_str(); }
	int sqlstate() const { return sqlstate_; }
	const std::string &hint() const { return hint_; }

private:
	int sqlstate_;
	std::string message_;
	std::string hint_;
};

/* Where a PostgreSQL error came from: a call made for the caller, or one of querator's own SQL statements. */
enum class ErrorOrigin
{
	call,
	internal_sql
};

/*
 * A PostgreSQL error caught by pg_guard; owns nothing. Its ErrorData is copied
 * into the memory context that was current when pg_guard was entered, and it
 * survives the unwinding to sql_entry because nothing on the way frees that
 * context: SpiConnection has no destructor that calls SPI_finish (an error
 * leaves SPI to the transaction abort, which cleans it up after sql_entry has
 * raised the error), so even a copy made in SPI's procedure context lives
 * until PostgreSQL's own error handling is done with it.
 */
class PgError : public std::exception
{
public:
	PgError(ErrorData *data, ErrorOrigin origin) : data_(data), origin_(origin) {}
	const char *what() const noexcept override { return data_->message ? data_->message : "postgres error"; }
	ErrorData *data() const { return data_; }
	ErrorOrigin origin() const { return origin_; }

private:
	ErrorData *data_;
	ErrorOrigin origin_;
};

/* Throws the PgError for the error caught in the current PG_CATCH; defined in error.cpp. */
[[noreturn]] void throw_caught_pg_error(MemoryContext caller_context, ErrorOrigin origin);

template <typename F>
auto
pg_guard(F &&f, ErrorOrigin origin = ErrorOrigin::call) -> decltype(f())
{
	using Result = decltype(f());
	MemoryContext caller_context = CurrentMemoryContext;
	volatile bool failed = false;

	if constexpr (std::is_void_v<Result>)
	{
		PG_TRY();
		{
			f();
		}
		PG_CATCH();
		{
			failed = true;
		}
		PG_END_TRY();
		if (failed)
			throw_caught_pg_error(caller_context, origin);
	}
	else
	{
		static_assert(std::is_trivially_copyable_v<Result>, "pg_guard returns plain values only");
		/* Written through a pointer so the value lives in memory across the setjmp. */
		Result result{};
		Result *volatile out = &result;
		PG_TRY();
		{
			*out = f();
		}
		PG_CATCH();
		{
			failed = true;
		}
		PG_END_TRY();
		if (failed)
			throw_caught_pg_error(caller_context, origin);
		return result;
	}
}

/* Sends a NOTICE to the client. */
void report_notice(const std::string &message);

/* Raises the error an exception described; never returns. Called outside any catch block. */
struct PendingError
{
	ErrorData *pg_data;        /* set for PgError */
	bool internal_sql;         /* pg_data came from querator's own SQL */
	int sqlstate;              /* otherwise these */
	char message[1024];
	char hint[512];
};
[[noreturn]] void raise_pending_error(const PendingError *pending);
void capture_exception(PendingError *pending) noexcept;

template <typename F>
Datum
sql_entry(F &&f)
{
	PendingError pending;
	pending.pg_data = nullptr;
	pending.internal_sql = false;
	pending.sqlstate = 0;
	try
	{
		return f();
	}
	catch (...)
	{
		capture_exception(&pending);
	}
	raise_pending_error(&pending);
}

} // namespace querator

/*
 * Defines the SQL-callable C function `name` that the install script names
 * (`AS 'MODULE_PATHNAME', 'name'`): its PG_FUNCTION_INFO_V1 record and an
 * extern "C" trampoline that evaluates the C++ expression after `name`
 * (a Datum; `fcinfo` is in scope) inside sql_entry, so no exception leaves
 * it and a PostgreSQL error is raised only after every destructor has run.
 * The model is pg_duckdb's DECLARE_PG_FUNCTION; the boundary is sql_entry's.
 *
 *   QUERATOR_SQL_FUNCTION(querator_queue_pause, querator::set_paused(fcinfo, true));
 */
#define QUERATOR_SQL_FUNCTION(name, ...)                            \
	extern "C" {                                                    \
	PG_FUNCTION_INFO_V1(name);                                      \
	Datum name(PG_FUNCTION_ARGS)                                    \
	{                                                               \
		return querator::sql_entry([&] { return __VA_ARGS__; });    \
	}                                                               \
	}                                                               \
	extern "C" int no_such_variable /* takes the caller's semicolon, as PG_FUNCTION_INFO_V1 does */
