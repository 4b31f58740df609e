-- querator 0.1.0 -> 0.2.0: the security release (issue 11).
-- Released scripts are frozen: every schema change after 0.1.0 goes here, and
-- CREATE EXTENSION of 0.2.0 runs querator--0.1.0.sql followed by this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.2.0'" to load this file. \quit

-- Errors and visibility (issue 11, section 5): worker_status() lists the databases
-- querator serves and their counters; like pg_stat_activity's details, it is for
-- monitoring roles only (pg_monitor members; superusers and the extension owner
-- hold EXECUTE anyway).
REVOKE EXECUTE ON FUNCTION querator.worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION querator.worker_status() TO pg_monitor;
