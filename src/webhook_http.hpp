/*
 * The HTTP side of webhook delivery: concurrent POSTs through one libcurl
 * multi handle, and the retry backoff policy. Pure C++: no PostgreSQL call
 * and no PostgreSQL header, so nothing here can longjmp; failures are C++
 * exceptions. The worker (webhook_delivery.cpp) passes plain structs in and
 * gets plain structs back.
 */
#pragma once

#include "webhook_address.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace querator::http {

/* Once per process, before the first Client; never in the postmaster (curl may start threads). */
void global_init();

struct Header
{
	std::string name;
	std::string value;
};

struct Request
{
	uint64_t tag = 0;         /* the caller's key, returned with the response */
	std::string url;
	std::vector<Header> headers;
	std::string body;
	long timeout_ms = 10000;  /* the whole transfer: connect, send, wait, receive */
};

struct Response
{
	uint64_t tag = 0;
	long status = 0;          /* HTTP status; 0 when no response arrived */
	std::string error;        /* empty when delivered: "HTTP 500", curl's error text, or url_problem() */
	bool delivered() const { return error.empty(); }
};

/*
 * The process's count of its open descriptors, kept by whoever owns the
 * process (in the worker, PostgreSQL's: webhook_delivery.cpp). The client
 * holds one reservation for every descriptor curl may have open. None of the
 * three may throw: they are called from inside curl's callbacks.
 */
class DescriptorBudget
{
public:
	virtual ~DescriptorBudget() = default;
	/* One more descriptor if the owner has room for it; false: not now (the caller waits). */
	virtual bool try_reserve() noexcept = 0;
	/* One more descriptor the caller cannot do without; the owner makes room (closes its own cached files). */
	virtual void reserve() noexcept = 0;
	virtual void release() noexcept = 0;
};

/*
 * Transfers in flight. start() only queues a request; drive() moves every
 * transfer as far as it can without blocking and returns the finished ones;
 * wait() blocks until some socket is ready or timeout_ms passed.
 *
 * Descriptors: every descriptor curl may hold is reserved in `budget` before
 * curl opens it and released when curl closes it (see docs/design.md,
 * "Webhook delivery", Descriptors). make_room() is the only place a
 * reservation may be refused, so the caller takes work (leases items) only
 * for transfers that can run; once started, a transfer never fails for want
 * of a descriptor.
 */
class Client
{
public:
	/* `budget` outlives the client. */
	Client(std::string user_agent, DescriptorBudget &budget);
	~Client();
	Client(const Client &) = delete;
	Client &operator=(const Client &) = delete;

	/* Applies to transfers started from now on; until called, public addresses only. */
	void set_address_policy(std::shared_ptr<const AddressPolicy> policy) { policy_ = std::move(policy); }
	/*
	 * Reserves what `new_transfers` more transfers need and returns how many
	 * of them fit (fewer when the budget refuses). The room is held for the
	 * next start() calls until the next make_room(), which replaces it
	 * (make_room(0) gives back what was not used).
	 */
	size_t make_room(size_t new_transfers);
	void start(Request request);
	std::vector<Response> drive();
	void wait(int timeout_ms);
	size_t in_flight() const { return transfers_.size(); }

private:
	struct MultiDeleter
	{
		void operator()(void *multi) const;
	};
	struct Transfer;

	size_t descriptors_needed(size_t transfers) const;
	void settle_reservations();
	void limit_connections();
	void lookup_ended(Transfer &transfer);

	std::unique_ptr<void, MultiDeleter> multi_; /* CURLM; declared first, destroyed last */
	std::map<void *, std::unique_ptr<Transfer>> transfers_; /* by CURL easy handle */
	std::vector<Response> refused_; /* requests never sent (url_problem), returned by the next drive() */
	std::string user_agent_;
	std::shared_ptr<const AddressPolicy> policy_ = std::make_shared<const AddressPolicy>();

	DescriptorBudget &budget_;
	size_t reserved_ = 0;  /* reservations held in budget_ */
	size_t sockets_ = 0;   /* sockets curl has open (its open and close hooks) */
	size_t resolving_ = 0; /* transfers whose name lookup may be running */
	size_t room_ = 0;      /* transfers make_room() admitted that start() has not yet started */
};

/*
 * Delay before retry number `attempt` (1 = after the first failed delivery):
 * base * 2^(attempt-1), capped at max, then scaled by a random factor in
 * [0.8, 1.0] so retries of many items spread out. Microseconds.
 */
int64_t backoff_delay_us(int64_t base_us, int64_t max_us, int attempt);

/* A header value as it may be sent: control characters (CR, LF, ...) become spaces. */
std::string header_safe(const std::string &value);

/*
 * Why a webhook url is unacceptable, as the message "webhook url is invalid;
 * ...", parsed by curl's own URL parser (so no other parser's reading can
 * differ from what is sent): empty when it is an http or https url of at most
 * 2048 characters, without whitespace, with a host and no user name, password
 * or options. The API refuses such a url (22023) and Client::start refuses to
 * send to one, so a url stored before a rule existed is never used either.
 */
std::string url_problem(const std::string &url);

/*
 * Why an extra request header is unacceptable, empty when it may be sent:
 * the name must be an HTTP token; headers that frame the request or steer
 * its routing (Host, Content-Length, Transfer-Encoding, Connection, ...)
 * belong to curl; a value that is not empty or blank and has no control
 * characters.
 */
std::string header_problem(const std::string &name, const std::string &value);

} // namespace querator::http
