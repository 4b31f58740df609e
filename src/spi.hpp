/*
 * SPI access for C++ code: one connection per SQL call, typed parameters,
 * plans prepared once per backend and kept, every PostgreSQL call guarded.
 */
#pragma once

#include "pg_prelude.hpp"

#include <string>
#include <vector>

namespace querator {

struct SqlParam
{
	Oid type;
	Datum value;
	bool is_null;
};

SqlParam param_int32(int32 v);
SqlParam param_int64(int64 v);
SqlParam param_bool(bool v);
SqlParam param_text(const std::string &v);
SqlParam param_interval(const Interval *v); /* nullptr = NULL */
SqlParam param_timestamptz(const TimestampTz *v); /* nullptr = NULL */
SqlParam param_int64_array(const std::vector<int64> &v);
SqlParam param_text_array(const std::vector<std::string> &v);
SqlParam param_datum(Oid type, Datum value, bool is_null);

/*
 * SPI_connect for the lifetime of one SQL entry point, running as the owner
 * of querator's schemas: roles reach queue tables only through querator's
 * functions, which check their per-queue privileges first (access.hpp).
 * Its statements resolve names in pg_catalog only, whatever the caller's
 * search_path (spi.cpp, own_search_path). finish() must be called on success; on an error the transaction (or
 * subtransaction) abort releases the connection and restores the user, so
 * the destructor does nothing.
 */
class SpiConnection
{
public:
	SpiConnection();
	SpiConnection(const SpiConnection &) = delete;
	SpiConnection &operator=(const SpiConnection &) = delete;
	void finish();

private:
	Oid saved_user_;
	int saved_context_;
};

/* From _PG_init: the planner settings of querator's own statements (spi.cpp). */
void spi_install_planner_hook();

/*
 * Called once by each background process of querator (launcher, worker)
 * right after it connects: its SQL then resolves names in pg_catalog only,
 * whatever ALTER DATABASE / ROLE ... SET search_path says, and runs as a
 * security-restricted operation (as VACUUM runs index functions), so code
 * it reaches cannot change the session (SET ROLE, temporary objects, ...).
 */
void restrict_background_process();

/* The role that called querator's function (before the switch to the owner). */
Oid invoking_role();

/* Runs sql through a saved plan (prepared on first use); returns rows processed. */
uint64 spi_run(const std::string &sql, const std::vector<SqlParam> &params, bool read_only = false);

/* Runs utility SQL (DDL) once, without keeping a plan. */
void spi_exec_utility(const std::string &sql);

/* Accessors for row `row`, column `col` (1-based) of the last result. */
bool spi_is_null(uint64 row, int col);
int64 spi_get_int64(uint64 row, int col);
int32 spi_get_int32(uint64 row, int col);
bool spi_get_bool(uint64 row, int col);
std::string spi_get_text(uint64 row, int col);
Interval spi_get_interval(uint64 row, int col);

/* Appends every row of the last result to a materialized SRF result. */
void spi_copy_result_to(ReturnSetInfo *rsinfo);

/* Appends one row (values and nulls of every column of rsinfo->setDesc) to a materialized SRF result. */
void put_result_row(ReturnSetInfo *rsinfo, const Datum *values, const bool *nulls);

} // namespace querator
