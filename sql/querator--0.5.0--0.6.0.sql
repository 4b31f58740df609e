-- querator 0.5.0 -> 0.6.0.
-- 0.5.0 is released: its scripts are frozen. Every schema change after it goes
-- here, under a header naming its area; CREATE EXTENSION of 0.6.0 runs
-- querator--0.1.0.sql, the upgrade scripts up to 0.5.0 and then this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.6.0'" to load this file. \quit

---------------------------------------------------------------- segments (issue 14)
-- A partition's items and leases now live in a ring of segments: child
-- tables qQ_pP_items_s0 .. _sN-1 (and _leases_) that inherit from the
-- partition's tables, clones of the templates like every queue table. A
-- drained segment is emptied with TRUNCATE, which needs no VACUUM and
-- ignores the xmin horizon (docs/design.md, "Segments"). Existing partitions
-- get their segments here, and their items and leases move into segment 0,
-- ids and every attribute kept; the partition's own tables stay empty.
-- Time and WAL in proportion to the items queued at the update. A partition
-- that has its segments already (made by the 0.6.0 library before this
-- update ran) is left as it is.
DO $$
DECLARE
    q record;
    p integer;
    s integer;
    kind text;
    parent text;
    child text;
    columns text;
    segments integer := least(8, greatest(2, coalesce(nullif(pg_catalog.current_setting('querator.segments', true), ''), '3')::integer));
BEGIN
    FOR q IN SELECT id, partitions FROM querator.queues ORDER BY id LOOP
        FOR p IN 0 .. q.partitions - 1 LOOP
            FOREACH kind IN ARRAY ARRAY['items', 'leases'] LOOP
                parent := 'q' || q.id || '_p' || p || '_' || kind;
                CONTINUE WHEN pg_catalog.to_regclass(pg_catalog.format('querator_data.%I', parent || '_s0')) IS NOT NULL;
                FOR s IN 0 .. segments - 1 LOOP
                    child := parent || '_s' || s;
                    EXECUTE pg_catalog.format('CREATE TABLE querator_data.%I (LIKE querator_data.%I INCLUDING ALL)',
                                              child, kind || '_template');
                    EXECUTE pg_catalog.format('ALTER TABLE querator_data.%I INHERIT querator_data.%I', child, parent);
                    -- a queue's table, not the extension's: pg_dump dumps it with its rows, DROP EXTENSION leaves it
                    EXECUTE pg_catalog.format('ALTER EXTENSION querator DROP TABLE querator_data.%I', child);
                END LOOP;
                SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
                  FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = pg_catalog.format('querator_data.%I', parent)::regclass
                   AND a.attnum > 0 AND NOT a.attisdropped;
                EXECUTE pg_catalog.format('INSERT INTO querator_data.%I (%s) SELECT %s FROM ONLY querator_data.%I',
                                          parent || '_s0', columns, columns, parent);
                EXECUTE pg_catalog.format('TRUNCATE ONLY querator_data.%I', parent);
            END LOOP;
        END LOOP;
    END LOOP;
END $$;
