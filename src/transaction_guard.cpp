/* Refusing PREPARE TRANSACTION of a transaction that holds querator state; see transaction_guard.hpp. */
#include "transaction_guard.hpp"

namespace querator {

namespace {

const char *first_state = nullptr; /* nullptr: the transaction holds no querator state */

void
on_xact_event(XactEvent event, void *)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			/* Raised before anything is prepared: the abort that follows runs every module's abort path. */
			if (first_state != nullptr)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("querator does not support PREPARE TRANSACTION"),
						 errdetail("This transaction changed queues or items through querator (%s); "
								   "only COMMIT or ROLLBACK can settle that.",
								   first_state),
						 errhint("Call querator functions outside two-phase transactions, "
								 "or commit them in a transaction of their own.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			first_state = nullptr;
			break;
		default:
			break;
	}
}

} // namespace

void
transaction_guard_register_xact_callback()
{
	RegisterXactCallback(on_xact_event, nullptr);
}

void
transaction_guard_note(const char *what)
{
	if (first_state == nullptr)
		first_state = what;
}

} // namespace querator
