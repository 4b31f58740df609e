/*
 * Unit test of the webhook client's descriptor accounting
 * (src/webhook_http.cpp, pure C++): against a fake budget, that every
 * descriptor curl holds is reserved before it exists (the process's open
 * descriptors, read from /proc/self/fd, never exceed the baseline plus the
 * reservations), that make_room admits only what the budget grants, that
 * idle kept-alive connections do not starve admission, and that everything is
 * given back. Built and run by test/t/057_webhook_descriptor_accounting.pl
 * with the url of a loopback sink (test/http_sink.py); prints TAP lines.
 */
#include "webhook_http.hpp"
#include "tap.hpp"

#include <dirent.h>

#include <cstdio>
#include <memory>
#include <string>

namespace {

using tap::check;

int
open_descriptors()
{
	int n = 0;
	DIR *dir = opendir("/proc/self/fd");
	while (readdir(dir) != nullptr)
		n++;
	closedir(dir);
	return n;
}

/* Grants try_reserve() up to `cap`; reserve() always. Checks the invariant at every call. */
class FakeBudget final : public querator::http::DescriptorBudget
{
public:
	int cap = 0;
	int held = 0;
	int forced = 0;    /* reservations made past the cap by reserve() */
	int worst = 0;     /* most descriptors seen open beyond the baseline and the reservations */
	int baseline = 0;

	bool try_reserve() noexcept override
	{
		observe();
		if (held >= cap)
			return false;
		held++;
		return true;
	}
	void reserve() noexcept override
	{
		observe();
		if (held >= cap)
			forced++;
		held++;
	}
	void release() noexcept override
	{
		held--;
		observe();
	}
	void observe() noexcept
	{
		int unreserved = open_descriptors() - baseline - held;
		if (unreserved > worst)
			worst = unreserved;
	}
};

/* Starts `urls`, drives them to the end; returns how many were delivered. */
int
run(querator::http::Client &client, FakeBudget &budget, const std::vector<std::string> &urls)
{
	for (const std::string &url : urls)
	{
		querator::http::Request r;
		r.url = url;
		r.body = "{}";
		r.timeout_ms = 10000;
		client.start(std::move(r));
	}
	int delivered = 0;
	size_t finished = 0;
	while (finished < urls.size())
	{
		client.wait(50);
		for (const querator::http::Response &response : client.drive())
		{
			finished++;
			delivered += response.delivered() ? 1 : 0;
		}
		budget.observe();
	}
	return delivered;
}

} // namespace

int
main(int argc, char **argv)
{
	if (argc < 3)
	{
		std::fprintf(stderr, "usage: %s http://127.0.0.1:PORT http://localhost:PORT\n", argv[0]);
		return 2;
	}
	const std::string numeric = argv[1], named = argv[2];
	querator::http::global_init(); /* its own descriptors, if any, before the baseline */
	FakeBudget budget;
	budget.cap = 10;
	budget.baseline = open_descriptors();
	{
		querator::http::Client client("descriptor-test", budget);
		client.set_address_policy(std::make_shared<const querator::http::AddressPolicy>(
			querator::http::parse_cidr_list("127.0.0.1/32, ::1/128")));
		check(budget.held == 2, "the multi handle's socket pair is reserved", std::to_string(budget.held));

		size_t room = client.make_room(20);
		check(room == 8, "make_room admits what the budget grants beyond the pair (8 of 20)", std::to_string(room));
		std::vector<std::string> slow(room, numeric + "/slow/200");
		check(run(client, budget, slow) == 8, "the admitted transfers are delivered");
		check(budget.forced == 0, "no reservation past the cap for transfers to an address",
			  std::to_string(budget.forced));

		/* Their connections stay open, idle: admission reuses their reservations. */
		room = client.make_room(8);
		check(room == 8, "idle connections do not hold back admission", std::to_string(room));
		/* localhost: a name lookup and (::1 and 127.0.0.1) two connection attempts; the sink listens on IPv4. */
		std::vector<std::string> named_urls(room, named + "/ok");
		check(run(client, budget, named_urls) == 8, "transfers to a name are delivered");

		room = client.make_room(1);
		check(room == 1, "room for one more", std::to_string(room));
		std::vector<std::string> refused{"http://127.0.0.1:1/"};
		check(run(client, budget, refused) == 0, "a refused connection fails as the endpoint's failure");
		client.make_room(0);
		budget.observe();
		check(budget.worst <= 0, "curl never held a descriptor that was not reserved",
			  std::to_string(budget.worst) + " unreserved");
	}
	check(budget.held == 0, "everything is given back when the client goes", std::to_string(budget.held));
	check(open_descriptors() == budget.baseline, "no descriptor is left open",
		  std::to_string(open_descriptors() - budget.baseline));
	return tap::finish();
}
