-- querator 0.3.0 -> 0.4.0.
-- 0.3.0 is released: its scripts are frozen. Every schema change after it goes
-- here, under a header naming its area; CREATE EXTENSION of 0.4.0 runs
-- querator--0.1.0.sql, the upgrade scripts up to 0.3.0 and then this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.4.0'" to load this file. \quit
