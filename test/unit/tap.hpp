/* The TAP output of the unit tests in test/unit/: one "ok N - ..." / "not ok N - ..." line per case. */
#pragma once

#include <cstdio>
#include <string>

namespace tap {

inline int cases = 0;
inline int failures = 0;

inline void
check(bool passed, const std::string &what, const std::string &got = "")
{
	cases++;
	if (!passed)
		failures++;
	std::printf("%sok %d - %s%s\n", passed ? "" : "not ", cases, what.c_str(),
				passed || got.empty() ? "" : (" (got: " + got + ")").c_str());
}

/* The plan line, and the exit status: 0 when every case passed. */
inline int
finish()
{
	std::printf("1..%d\n", cases);
	return failures == 0 ? 0 : 1;
}

} // namespace tap
