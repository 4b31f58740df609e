-- querator 0.2.0 -> 0.3.0: the consumer cycle (issue 13).
-- 0.2.0 is released: its scripts are frozen. Every schema change after it goes
-- here, under a header naming its area; CREATE EXTENSION of 0.3.0 runs
-- querator--0.1.0.sql, querator--0.1.0--0.2.0.sql and then this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.3.0'" to load this file. \quit
