/*
 * The one place that knows whether the running transaction holds querator
 * state that only its commit or abort settles (partition head registrations,
 * pending estimates and counters, worker wake-ups, catalog-cache and webhook
 * flags). Each module that keeps such state reports it here when it records
 * it; PREPARE TRANSACTION of such a transaction is refused, because the
 * state would stay with this backend (and be applied at its next commit)
 * while COMMIT PREPARED may run anywhere, later: a produced item's head
 * registration would end before its ids became visible, stranding them.
 */
#pragma once

#include "pg_prelude.hpp"

namespace querator {

void transaction_guard_register_xact_callback();

/* The running transaction now holds querator state of kind `what` (a string literal, named in the error). */
void transaction_guard_note(const char *what);

} // namespace querator
