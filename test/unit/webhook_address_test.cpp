/*
 * Unit test of the webhook destination policy (src/webhook_address.cpp),
 * which is pure C++: every refused range, its IPv4-mapped / translated /
 * NAT64 / 6to4 forms, what querator.webhook_allowed_cidrs lets through, and the list
 * parser's errors. Built and run by test/t/055_webhook_address_policy.pl;
 * prints one "ok N - ..." / "not ok N - ..." line per case (TAP).
 */
#include "webhook_address.hpp"
#include "tap.hpp"

#include <cstdio>
#include <stdexcept>
#include <string>

namespace {

using tap::check;

using querator::http::AddressPolicy;
using querator::http::parse_cidr_list;

void
refused(const AddressPolicy &policy, const std::string &address, const std::string &why)
{
	std::string r = policy.refusal(address);
	check(r == "destination " + address + " is not allowed by querator.webhook_allowed_cidrs (" + why + " address)",
		  address + " refused as " + why, r);
}

void
allowed(const AddressPolicy &policy, const std::string &address)
{
	std::string r = policy.refusal(address);
	check(r.empty(), address + " allowed", r);
}

void
bad_list(const std::string &list, const std::string &message)
{
	try
	{
		parse_cidr_list(list);
		check(false, "'" + list + "' refused", "accepted");
	}
	catch (const std::invalid_argument &e)
	{
		check(e.what() == message, "'" + list + "' refused: " + message, e.what());
	}
}

} // namespace

int
main()
{
	const AddressPolicy public_only;
	/* The addresses of the issue, and every range the policy refuses. */
	refused(public_only, "169.254.169.254", "link-local");
	refused(public_only, "127.0.0.1", "loopback");
	refused(public_only, "127.255.255.254", "loopback");
	refused(public_only, "::1", "loopback");
	refused(public_only, "0.0.0.0", "unspecified");
	refused(public_only, "::", "unspecified");
	refused(public_only, "10.0.0.1", "private");
	refused(public_only, "172.16.0.1", "private");
	refused(public_only, "172.31.255.255", "private");
	refused(public_only, "192.168.1.1", "private");
	refused(public_only, "100.64.0.1", "shared (CGNAT)");
	refused(public_only, "100.100.100.200", "shared (CGNAT)");
	refused(public_only, "168.63.129.16", "cloud metadata");
	refused(public_only, "192.0.0.192", "reserved");
	refused(public_only, "198.18.0.1", "reserved");
	refused(public_only, "224.0.0.1", "multicast");
	refused(public_only, "239.255.255.250", "multicast");
	refused(public_only, "255.255.255.255", "reserved or broadcast");
	refused(public_only, "240.0.0.1", "reserved or broadcast");
	refused(public_only, "fc00::1", "private");
	refused(public_only, "fd00:ec2::254", "private");
	refused(public_only, "fe80::1", "link-local");
	refused(public_only, "fec0::1", "private");
	refused(public_only, "ff02::1", "multicast");
	refused(public_only, "::7f00:1", "reserved");
	refused(public_only, "100::1", "reserved");
	refused(public_only, "64:ff9b:1::a00:1", "reserved");
	/* IPv4 in IPv6 clothing: mapped, NAT64, 6to4. */
	refused(public_only, "::ffff:127.0.0.1", "loopback");
	refused(public_only, "::ffff:169.254.169.254", "link-local");
	refused(public_only, "::ffff:a9fe:a9fe", "link-local");
	refused(public_only, "::ffff:10.1.2.3", "private");
	refused(public_only, "64:ff9b::10.0.0.1", "private");
	refused(public_only, "64:ff9b::a9fe:a9fe", "link-local");
	refused(public_only, "2002:7f00:1::", "loopback");
	refused(public_only, "2002:c0a8:101::1", "private");
	/* IPv4-translated (SIIT, ::ffff:0:0:0/96): judged as its IPv4 address, like the mapped form. */
	refused(public_only, "::ffff:0:7f00:1", "loopback");
	refused(public_only, "::ffff:0:127.0.0.1", "loopback");
	refused(public_only, "::ffff:0:a9fe:a9fe", "link-local");
	refused(public_only, "::ffff:0:10.0.0.1", "private");
	refused(public_only, "::ffff:0:0:0", "unspecified");
	/* IPv4-compatible (::/96) and Teredo (2001::/32) are refused whatever they embed. */
	refused(public_only, "::127.0.0.1", "reserved");
	refused(public_only, "::93.184.216.34", "reserved");
	refused(public_only, "2001:0:4136:e378:8000:63bf:3fff:fdd2", "reserved");
	refused(public_only, "2001::ffff:80ff:fffe", "reserved");
	refused(public_only, "2001:db8::1", "reserved");
	/* Public addresses pass, next to the ranges' edges. */
	allowed(public_only, "93.184.216.34");
	allowed(public_only, "1.1.1.1");
	allowed(public_only, "172.32.0.1");
	allowed(public_only, "100.128.0.1");
	allowed(public_only, "11.0.0.1");
	allowed(public_only, "169.253.255.255");
	allowed(public_only, "223.255.255.255");
	allowed(public_only, "::ffff:93.184.216.34");
	allowed(public_only, "64:ff9b::5db8:d822");
	allowed(public_only, "2002:5db8:d822::1");
	allowed(public_only, "::ffff:0:5db8:d822");
	allowed(public_only, "2001:4860:4860::8888");
	allowed(public_only, "2001:1::1");
	allowed(public_only, "2606:2800:220:1:248:1893:25c8:1946");
	check(public_only.refusal("localhost") == "destination 'localhost' is not an IP address", "a name is refused");

	/* The setting lets listed ranges through, and nothing next to them. */
	const AddressPolicy loopback4(parse_cidr_list("127.0.0.1/32"));
	allowed(loopback4, "127.0.0.1");
	allowed(loopback4, "::ffff:127.0.0.1");
	allowed(loopback4, "::ffff:0:127.0.0.1");
	refused(loopback4, "127.0.0.2", "loopback");
	refused(loopback4, "::1", "loopback");
	refused(loopback4, "169.254.169.254", "link-local");
	const AddressPolicy several(parse_cidr_list(" 10.0.0.0/8 , ::1, fd00::/8,192.168.1.0/24 "));
	allowed(several, "10.200.0.1");
	allowed(several, "::ffff:10.0.0.1");
	allowed(several, "64:ff9b::10.0.0.1");
	allowed(several, "::1");
	allowed(several, "fd12:3456::1");
	allowed(several, "192.168.1.77");
	refused(several, "192.168.2.1", "private");
	refused(several, "fc00::1", "private");
	refused(several, "127.0.0.1", "loopback");
	const AddressPolicy mapped_cidr(parse_cidr_list("::ffff:169.254.0.0/112"));
	allowed(mapped_cidr, "169.254.169.254");
	const AddressPolicy everything(parse_cidr_list("0.0.0.0/0, ::/0"));
	allowed(everything, "127.0.0.1");
	allowed(everything, "fe80::1");

	/* The list parser (the setting's check hook reports these). */
	check(parse_cidr_list("").empty() && parse_cidr_list("  ").empty(), "an empty list allows nothing extra");
	bad_list("10.0.0.1/8", "'10.0.0.1/8' has bits set to the right of its /8 prefix");
	bad_list("localhost", "'localhost' is not an IPv4 or IPv6 address or CIDR");
	bad_list("10.0.0.0/33", "'10.0.0.0/33' has a prefix length outside 0..32");
	bad_list("::/129", "'::/129' has a prefix length outside 0..128");
	bad_list("10.0.0.0/", "'10.0.0.0/' has an invalid prefix length");
	bad_list("10.0.0.0/-1", "'10.0.0.0/-1' has an invalid prefix length");
	bad_list("10.0.0.0/8,,::1", "empty entry in the list");
	bad_list("10.0.0.0/8;127.0.0.1", "'10.0.0.0/8;127.0.0.1' has an invalid prefix length");
	bad_list("fe80::1%eth0", "'fe80::1%eth0' is not an IPv4 or IPv6 address or CIDR");

	return tap::finish();
}
