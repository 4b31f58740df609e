/* The webhook destination policy; see webhook_address.hpp. No PostgreSQL and no curl here. */
#include "webhook_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <stdexcept>

namespace querator::http {

namespace {

/* An address as compared: IPv4 in bytes[0..3]; IPv4-mapped IPv6 (::ffff:a.b.c.d) is stored as IPv4. */
struct Address
{
	bool v6 = false;
	unsigned char bytes[16] = {};
};

struct Range
{
	Cidr cidr;
	const char *what;
};

const unsigned char kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool
contains(const Cidr &cidr, const Address &a)
{
	if (cidr.v6 != a.v6)
		return false;
	int whole = cidr.prefix / 8;
	if (std::memcmp(cidr.bytes, a.bytes, whole) != 0)
		return false;
	int rest = cidr.prefix % 8;
	if (rest == 0)
		return true;
	unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
	return (cidr.bytes[whole] & mask) == (a.bytes[whole] & mask);
}

/* Parses one address; IPv4-mapped IPv6 becomes IPv4, so one IPv4 rule covers both forms. */
std::optional<Address>
parse_address(const std::string &text)
{
	Address a;
	if (inet_pton(AF_INET, text.c_str(), a.bytes) == 1)
		return a;
	if (inet_pton(AF_INET6, text.c_str(), a.bytes) != 1)
		return std::nullopt;
	a.v6 = true;
	if (std::memcmp(a.bytes, kMappedPrefix, sizeof(kMappedPrefix)) == 0)
	{
		std::memmove(a.bytes, a.bytes + 12, 4);
		std::memset(a.bytes + 4, 0, 12);
		a.v6 = false;
	}
	return a;
}

Cidr
cidr(const char *text)
{
	std::vector<Cidr> parsed = parse_cidr_list(text);
	return parsed.front();
}

/* Not public: refused unless listed. Order matters only for the name reported. */
const std::vector<Range> &
special_ranges()
{
	static const std::vector<Range> ranges = {
		{cidr("0.0.0.0/8"), "unspecified"},
		{cidr("10.0.0.0/8"), "private"},
		{cidr("100.64.0.0/10"), "shared (CGNAT)"}, /* also Alibaba's metadata 100.100.100.200 */
		{cidr("127.0.0.0/8"), "loopback"},
		{cidr("169.254.0.0/16"), "link-local"}, /* the metadata address 169.254.169.254 */
		{cidr("168.63.129.16/32"), "cloud metadata"}, /* Azure's host endpoint, a public-looking address */
		{cidr("172.16.0.0/12"), "private"},
		{cidr("192.0.0.0/24"), "reserved"}, /* Oracle's metadata 192.0.0.192 */
		{cidr("192.168.0.0/16"), "private"},
		{cidr("198.18.0.0/15"), "reserved"},
		{cidr("224.0.0.0/4"), "multicast"},
		{cidr("240.0.0.0/4"), "reserved or broadcast"},
		{cidr("::/128"), "unspecified"},
		{cidr("::1/128"), "loopback"},
		{cidr("::/96"), "reserved"}, /* IPv4-compatible, deprecated: never routed */
		{cidr("64:ff9b:1::/48"), "reserved"}, /* local-use NAT64 */
		{cidr("100::/64"), "reserved"},
		{cidr("2001::/32"), "reserved"}, /* Teredo: the embedded addresses are a relay's and an obfuscated client's */
		{cidr("2001:db8::/32"), "reserved"}, /* documentation */
		{cidr("fc00::/7"), "private"}, /* also AWS's metadata fd00:ec2::254 */
		{cidr("fe80::/10"), "link-local"},
		{cidr("fec0::/10"), "private"},
		{cidr("ff00::/8"), "multicast"},
	};
	return ranges;
}

/*
 * The IPv4 address an IPv4-translated (::ffff:0:0:0/96, SIIT), NAT64
 * (64:ff9b::/96) or 6to4 (2002::/16) address leads to: a translator or the
 * kernel may deliver it there, so it is judged as that IPv4 address.
 */
std::optional<Address>
embedded_v4(const Address &a)
{
	static const Cidr translated = cidr("::ffff:0:0:0/96");
	static const Cidr nat64 = cidr("64:ff9b::/96");
	static const Cidr six_to_four = cidr("2002::/16");
	Address v4;
	if (contains(translated, a) || contains(nat64, a))
		std::memcpy(v4.bytes, a.bytes + 12, 4);
	else if (contains(six_to_four, a))
		std::memcpy(v4.bytes, a.bytes + 2, 4);
	else
		return std::nullopt;
	return v4;
}

const char *
special_range(const Address &a)
{
	for (const Range &r : special_ranges())
		if (contains(r.cidr, a))
			return r.what;
	if (std::optional<Address> v4 = embedded_v4(a))
		return special_range(*v4);
	return nullptr;
}

std::string
trimmed(const std::string &s)
{
	size_t begin = s.find_first_not_of(" \t\n\r");
	if (begin == std::string::npos)
		return "";
	return s.substr(begin, s.find_last_not_of(" \t\n\r") - begin + 1);
}

Cidr
parse_cidr(const std::string &entry)
{
	size_t slash = entry.find('/');
	std::optional<Address> a = parse_address(entry.substr(0, slash));
	if (!a)
		throw std::invalid_argument("'" + entry + "' is not an IPv4 or IPv6 address or CIDR");
	const bool was_mapped = !a->v6 && entry.find(':') < slash;
	const int max = a->v6 ? 128 : 32;
	int prefix = max;
	if (slash != std::string::npos)
	{
		std::string digits = entry.substr(slash + 1);
		if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos)
			throw std::invalid_argument("'" + entry + "' has an invalid prefix length");
		prefix = std::stoi(digits) - (was_mapped ? 96 : 0);
		if (prefix < 0 || prefix > max)
			throw std::invalid_argument("'" + entry + "' has a prefix length outside 0.." +
										std::to_string(was_mapped ? 128 : max));
	}
	Cidr c;
	c.v6 = a->v6;
	std::memcpy(c.bytes, a->bytes, sizeof(c.bytes));
	c.prefix = prefix;
	Address network;
	network.v6 = c.v6;
	for (int i = 0; i < 16; i++)
	{
		int bits = std::min(8, std::max(0, prefix - i * 8));
		network.bytes[i] = static_cast<unsigned char>(c.bytes[i] & (0xff00 >> bits));
	}
	if (std::memcmp(network.bytes, c.bytes, sizeof(c.bytes)) != 0)
		throw std::invalid_argument("'" + entry + "' has bits set to the right of its /" + std::to_string(prefix) +
									" prefix");
	return c;
}

std::string
refusal_of(const Address &a, const std::string &shown, const std::vector<Cidr> &allowed)
{
	const char *what = special_range(a);
	if (what == nullptr)
		return "";
	std::optional<Address> v4 = embedded_v4(a);
	for (const Cidr &c : allowed)
		if (contains(c, a) || (v4 && contains(c, *v4)))
			return "";
	return "destination " + shown + " is not allowed by querator.webhook_allowed_cidrs (" + what + " address)";
}

} // namespace

std::vector<Cidr>
parse_cidr_list(const std::string &text)
{
	std::vector<Cidr> result;
	if (trimmed(text).empty())
		return result;
	size_t start = 0;
	while (true)
	{
		size_t comma = text.find(',', start);
		std::string entry = trimmed(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
		if (entry.empty())
			throw std::invalid_argument("empty entry in the list");
		result.push_back(parse_cidr(entry));
		if (comma == std::string::npos)
			break;
		start = comma + 1;
	}
	return result;
}

std::string
AddressPolicy::refusal(const sockaddr *address) const
{
	char shown[INET6_ADDRSTRLEN] = {};
	if (address->sa_family == AF_INET)
		inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in *>(address)->sin_addr, shown, sizeof(shown));
	else if (address->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6 *>(address)->sin6_addr, shown, sizeof(shown));
	else
		return "destination of address family " + std::to_string(address->sa_family) + " is not allowed";
	return refusal(std::string(shown));
}

std::string
AddressPolicy::refusal(const std::string &numeric) const
{
	std::optional<Address> a = parse_address(numeric);
	if (!a)
		return "destination '" + numeric + "' is not an IP address";
	return refusal_of(*a, numeric, allowed_);
}

} // namespace querator::http
