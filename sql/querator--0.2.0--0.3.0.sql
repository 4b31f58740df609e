-- querator 0.2.0 -> 0.3.0: the consumer cycle (issue 13).
-- 0.2.0 is released: its scripts are frozen. Every schema change after it goes
-- here, under a header naming its area; CREATE EXTENSION of 0.3.0 runs
-- querator--0.1.0.sql, querator--0.1.0--0.2.0.sql and then this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.3.0'" to load this file. \quit

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
