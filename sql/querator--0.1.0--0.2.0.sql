-- querator 0.1.0 -> 0.2.0: the security release (issue 11).
-- Released scripts are frozen: every schema change after 0.1.0 goes here, and
-- CREATE EXTENSION of 0.2.0 runs querator--0.1.0.sql followed by this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------- webhook SSRF (issue 11, section 3)
-- Pointing a queue at a webhook url (queues_create / queues_update with webhook_url or
-- webhook_headers) needs superuser or membership in querator_webhook_admin. Roles are
-- cluster-wide: another database may have created it already, and DROP EXTENSION leaves it
-- (it may serve other databases); DROP ROLE it by hand once no database uses querator.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'querator_webhook_admin') THEN
		CREATE ROLE querator_webhook_admin NOLOGIN;
	END IF;
END
$$;
COMMENT ON ROLE querator_webhook_admin IS 'querator: members may set webhook_url and webhook_headers of queues they administer';
