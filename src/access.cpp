/* Per-queue privileges; see access.hpp. */
#include "access.hpp"
#include "error.hpp"
#include "spi.hpp"

extern "C" {
#include "utils/acl.h"
}

namespace querator {

const char *
privilege_name(Privilege privilege)
{
	switch (privilege)
	{
		case Privilege::produce:
			return "produce";
		case Privilege::consume:
			return "consume";
		case Privilege::admin:
			return "admin";
	}
	return "?";
}

Privilege
parse_privilege(const std::string &text)
{
	for (Privilege p : {Privilege::produce, Privilege::consume, Privilege::admin})
		if (text == privilege_name(p))
			return p;
	throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
				"privilege is invalid; must be 'produce', 'consume' or 'admin', received '" + text + "'");
}

std::string
invoking_role_name()
{
	Oid role = invoking_role();
	const char *name = pg_guard([&] { return static_cast<const char *>(GetUserNameFromId(role, false)); });
	return std::string(name);
}

bool
invoker_is_superuser()
{
	Oid role = invoking_role();
	return pg_guard([&] { return superuser_arg(role); });
}

namespace {

/* True if the invoking role owns the queue, is a superuser, or was granted one of `privileges` (or admin). */
bool
holds(const QueueDef &queue, const std::vector<std::string> &privileges)
{
	if (invoker_is_superuser())
		return true;
	Oid role = invoking_role();
	/* The owner, or a member of the owner role. */
	const char *owner = queue.owner.c_str();
	bool is_owner = pg_guard([&] {
		Oid owner_id = get_role_oid(owner, true);
		return OidIsValid(owner_id) && has_privs_of_role(role, owner_id);
	});
	if (is_owner)
		return true;
	spi_run("SELECT EXISTS (SELECT 1 FROM querator.queue_grants g JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name "
			"WHERE g.queue_name = $1 AND (g.privilege = ANY ($2) OR g.privilege = 'admin') "
			"AND pg_catalog.pg_has_role($3, r.oid, 'USAGE'))",
			{param_text(queue.name), param_text_array(privileges), param_datum(OIDOID, ObjectIdGetDatum(role), false)},
			true);
	return spi_get_bool(0, 1);
}

} // namespace

bool
holds_privilege(const QueueDef &queue, Privilege privilege)
{
	return holds(queue, {privilege_name(privilege)});
}

bool
may_see(const QueueDef &queue)
{
	return holds(queue, {"produce", "consume", "admin"});
}

void
require_privilege(const QueueDef &queue, Privilege privilege, const char *field)
{
	if (holds_privilege(queue, privilege))
		return;
	if (!may_see(queue))
		throw no_such_queue(queue.name, field);
	throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
				"permission denied for queue; role '" + invoking_role_name() + "' lacks the " +
					privilege_name(privilege) + " privilege on '" + queue.name + "'",
				std::string("A queue admin can grant it: SELECT querator.queue_grant('") + queue.name + "', '" +
					invoking_role_name() + "', '" + privilege_name(privilege) + "');");
}

void
require_visibility(const QueueDef &queue)
{
	if (!may_see(queue))
		throw no_such_queue(queue.name);
}

void
require_webhook_admin(const char *option)
{
	if (invoker_is_superuser())
		return;
	Oid role = invoking_role();
	bool member = pg_guard([&] {
		Oid admin = get_role_oid(kWebhookAdminRole, true);
		return OidIsValid(admin) && has_privs_of_role(role, admin);
	});
	if (member)
		return;
	const std::string name = invoking_role_name();
	const char *raw = name.c_str();
	const std::string quoted = pg_guard([&] { return static_cast<const char *>(quote_identifier(raw)); });
	throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
				std::string("permission denied for ") + option + "; role '" + name + "' is not a member of " +
					kWebhookAdminRole,
				std::string("A superuser can allow it: GRANT ") + kWebhookAdminRole + " TO " + quoted + ";");
}

void
grant_privilege(const QueueDef &queue, const std::string &role, Privilege privilege)
{
	const char *name = role.c_str();
	bool exists = pg_guard([&] { return OidIsValid(get_role_oid(name, true)); });
	if (!exists)
		throw Error(ERRCODE_UNDEFINED_OBJECT, "role does not exist; no such role '" + role + "'");
	spi_run("INSERT INTO querator.queue_grants (queue_name, role_name, privilege) VALUES ($1, $2, $3) "
			"ON CONFLICT DO NOTHING",
			{param_text(queue.name), param_text(role), param_text(privilege_name(privilege))});
}

void
revoke_privilege(const QueueDef &queue, const std::string &role, Privilege privilege)
{
	spi_run("DELETE FROM querator.queue_grants WHERE queue_name = $1 AND role_name = $2 AND privilege = $3",
			{param_text(queue.name), param_text(role), param_text(privilege_name(privilege))});
}

} // namespace querator
