/*
 * Webhook delivery, the worker's PostgreSQL side (see docs/design.md,
 * "Webhook delivery"). In one short transaction it records the results of
 * finished transfers (complete on 2xx, retry with backoff otherwise) and
 * leases the next items of webhook queues up to their free concurrency;
 * after the commit it starts their POSTs (webhook_http.hpp). No transaction
 * is open and no row lock is held while HTTP runs.
 *
 * Called only by the worker, outside a transaction, behind its error
 * boundary. The transfers in flight live in static storage, so they survive
 * an error in a cycle (whose results are then lost: the leases expire and
 * the items are delivered again).
 */
#pragma once

#include "pg_prelude.hpp"
#include "webhook_http.hpp"

#include <optional>
#include <string>
#include <vector>

namespace querator {

/*
 * Moves finished transfers to their results and ready items to new
 * transfers; returns the earliest deadline it created (a lease's end or a
 * retry's due time), which the worker must wake for.
 */
std::optional<TimestampTz> webhook_cycle();

/*
 * After a maintenance round: look at every webhook queue (items may have
 * become ready unannounced), if there is any, or if the round read the
 * catalog again (a webhook queue may have come by other means than the API,
 * a restore). With none, no transaction: with thousands of queues and no
 * webhook, reading the catalog after every round was most of the worker's CPU.
 */
void webhook_after_round(bool catalog_read);

/*
 * A queue's webhook_headers (jsonb text) as name/value pairs, by name;
 * 22023 unless it is a JSON object of string values. Needs SPI. Whether
 * each header may be sent is http::header_problem's call.
 */
std::vector<http::Header> webhook_headers_parse(const std::string &json);

/* Transfers in flight. */
size_t webhook_in_flight();

/* Waits up to timeout_ms for network activity of the transfers in flight (no PostgreSQL call). */
void webhook_wait(int timeout_ms);

} // namespace querator
