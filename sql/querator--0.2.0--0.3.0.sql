-- querator 0.2.0 -> 0.3.0: the consumer cycle (issue 13).
-- 0.2.0 is released: its scripts are frozen. Every schema change after it goes
-- here, under a header naming its area; CREATE EXTENSION of 0.3.0 runs
-- querator--0.1.0.sql, querator--0.1.0--0.2.0.sql and then this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.3.0'" to load this file. \quit

---------------------------------------------------------------- the one-call consumer loop (issue 13)
-- Completes the previous batch (all or none, as queue_complete) and leases the
-- next in the same call: one round trip and one commit per batch. complete_ids
-- NULL or empty completes nothing (the loop's first call). Its own name rather
-- than a parameter added to queue_lease: adding one means DROP FUNCTION (which
-- fails on the user's objects that depend on it, and loses their GRANTs), and
-- a second queue_lease form would make calls with untyped parameters
-- ambiguous.
CREATE FUNCTION querator.queue_complete_and_lease(
    queue_name   text,
    client_id    text,
    complete_ids bigint[],
    batch_size   integer  DEFAULT 1,
    wait         interval DEFAULT '0')
RETURNS TABLE(id bigint, partition integer, kind text, reference text, encoding text,
              payload bytea, attempts integer, lease_deadline timestamptz, created_at timestamptz)
LANGUAGE c
AS 'MODULE_PATHNAME', 'querator_queue_complete_and_lease';

---------------------------------------------------------------- the function frame (issue 13)
-- Until 0.3.0 every C function carried SET search_path = pg_catalog, pg_temp,
-- which costs each call a GUC nest level and a parse of the setting. The
-- library now pins the name resolution of its own statements itself, for the
-- whole time it runs SQL (an override search path of pg_catalog alone, pushed
-- with its SPI connection: spi.cpp), and the C functions resolve no name
-- outside it. The rule of the security release holds: nothing of querator's
-- resolves a name through the caller's search_path (sql/security.sql proves it
-- with a caller whose own schema comes before pg_catalog).
DO $$
DECLARE f pg_catalog.regprocedure;
BEGIN
    FOR f IN SELECT p.oid
               FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'querator'::pg_catalog.regnamespace
                AND l.lanname OPERATOR(pg_catalog.=) 'c'
                AND p.proconfig IS NOT NULL
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s RESET search_path', f);
    END LOOP;
END
$$;

---------------------------------------------------------------- a lighter lease write (issue 13)
-- Lease deadlines lose their index: every lease wrote one more btree entry
-- (one WAL record, 64 bytes) only so that the worker could find due leases.
-- The worker now keeps a lower bound of each partition's lease deadlines in
-- shared memory, lowered by every lease and extend at commit, and scans a
-- partition's lease table only when that bound is due (docs/design.md, "Lease
-- deadlines"). Dropped on the template and on every existing queue's lease
-- tables; a 0.2.0 schema that still has the index works with the new library
-- (the index is only maintained, never needed).
DROP INDEX querator_data.leases_template_lease_deadline_idx;
DO $$
DECLARE
    q record;
    p integer;
    idx text;
BEGIN
    FOR q IN SELECT id, partitions FROM querator.queues LOOP
        FOR p IN 0 .. q.partitions - 1 LOOP
            -- By what it indexes, not by name: the one index of the table that is not its primary key.
            FOR idx IN SELECT c.relname
                         FROM pg_catalog.pg_index i
                         JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
                        WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.format('querator_data.%I', 'q' || q.id || '_p' || p || '_leases')::pg_catalog.regclass
                          AND NOT i.indisprimary
            LOOP
                EXECUTE pg_catalog.format('DROP INDEX querator_data.%I', idx);
            END LOOP;
        END LOOP;
    END LOOP;
END $$;

---------------------------------------------------------------- the runbook (issue 18)
-- The tables of a queue, named from its name: internal ids (q<ID>_...) are
-- not something an operator can guess, and VACUUM of q1_p0_items hit
-- whichever queue had id 1. Rows for the queues the caller may see (any
-- privilege), as queue_stats: a name is no secret from who may use the queue,
-- and VACUUM itself still needs the tables' owner or a superuser.
--   SELECT format('VACUUM (ANALYZE) %s', table_name) FROM querator.queue_tables('emails') \gexec
CREATE FUNCTION querator.queue_tables(queue_name text)
RETURNS TABLE(partition integer, kind text, table_name regclass)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'querator_queue_tables';
