/*
 * Per-queue privileges: produce, consume (lease, complete, retry, extend) and
 * admin (update, delete, clear, pause, redrive, grant). The queue's owner
 * (its creator) and superusers hold all of them; other roles need a grant
 * (querator.queue_grants), directly or through a role they are a member of.
 * Requires an open SpiConnection.
 */
#pragma once

#include "catalog.hpp"

#include <string>
#include <vector>

namespace querator {

enum class Privilege
{
	produce,
	consume,
	admin
};

const char *privilege_name(Privilege privilege);
/* Parses 'produce' | 'consume' | 'admin'; 22023 otherwise. */
Privilege parse_privilege(const std::string &text);

/*
 * Throws unless the invoking role holds `privilege` on the queue (admin implies
 * all): 42501 for a role that holds some other privilege on it, and for a role
 * that holds none the very error of a missing queue (42704, naming `field`), so
 * that such a role cannot tell whether the queue exists.
 */
void require_privilege(const QueueDef &queue, Privilege privilege, const char *field = "queue");

/* True if the invoking role holds `privilege` on the queue (admin implies all). */
bool holds_privilege(const QueueDef &queue, Privilege privilege);

/* True if the invoking role holds some privilege on the queue: it may see it. */
bool may_see(const QueueDef &queue);

/* Throws the error of a missing queue (42704) unless the invoking role may see the queue. */
void require_visibility(const QueueDef &queue);

/* The invoking role's name, recorded as owner of the queues it creates. */
std::string invoking_role_name();

/* True if the invoking role bypasses per-queue checks (superuser). */
bool invoker_is_superuser();

/* Members of this role (and superusers) may point queues at webhook urls; created by the install script. */
constexpr const char *kWebhookAdminRole = "querator_webhook_admin";

/*
 * Throws 42501 naming `option` unless the invoking role is a superuser or
 * has the privileges of kWebhookAdminRole (only superusers while the role
 * does not exist, e.g. in a database still at 0.1.0).
 */
void require_webhook_admin(const char *option);

void grant_privilege(const QueueDef &queue, const std::string &role, Privilege privilege);
void revoke_privilege(const QueueDef &queue, const std::string &role, Privilege privilege);

} // namespace querator
