/*
 * Where webhook transfers may connect: the destination policy behind
 * querator.webhook_allowed_cidrs. Public addresses are allowed; loopback,
 * private, link-local, CGNAT, multicast, unspecified, broadcast, reserved
 * and cloud metadata addresses (and their IPv4-mapped, IPv4-translated, NAT64
 * and 6to4 IPv6 forms; IPv4-compatible and Teredo addresses altogether) are refused unless a listed CIDR contains them. Pure C++ (libc
 * only, no curl, no PostgreSQL), so the setting's check hook and a unit test
 * can use it as well as the HTTP client, which applies it to the resolved
 * address of every connection (see webhook_http.cpp).
 */
#pragma once

#include <string>
#include <vector>

struct sockaddr;

namespace querator::http {

struct Cidr
{
	bool v6 = false;
	unsigned char bytes[16] = {};
	int prefix = 0;
};

/*
 * Parses a comma-separated list of CIDRs ("127.0.0.0/8, ::1"; an address
 * alone is a single host). Throws std::invalid_argument naming the bad entry.
 */
std::vector<Cidr> parse_cidr_list(const std::string &text);

class AddressPolicy
{
public:
	explicit AddressPolicy(std::vector<Cidr> allowed = {}) : allowed_(std::move(allowed)) {}

	/* Empty when a connection may be opened; otherwise the reason, as stored in last_error. */
	std::string refusal(const sockaddr *address) const;
	/* The same for a numeric address text (IPv4 or IPv6); a text that is not one is refused. */
	std::string refusal(const std::string &numeric) const;

private:
	std::vector<Cidr> allowed_;
};

} // namespace querator::http
