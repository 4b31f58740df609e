# querator: PGXS build. EXTVERSION lives here and in querator.control only
# (default_version); the build stops when the two disagree.
EXTENSION  = querator querator_router
EXTVERSION = 0.6.0

MODULE_big = querator
OBJS       = $(patsubst %.cpp,%.o,$(sort $(wildcard src/*.cpp)))
# The released base script (frozen) and every upgrade script after it:
# CREATE EXTENSION runs the base script and then the upgrades up to EXTVERSION.
DATA       = $(sort $(wildcard sql/querator--*.sql))
# The router (docs/scaling.md): SQL only, installed beside querator, created in
# a router database that has plproxy and no querator.
DATA      += $(sort $(wildcard sql/querator_router--*.sql))

CONTROL_VERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" querator.control)
ifneq ($(CONTROL_VERSION),$(EXTVERSION))
$(error querator.control says default_version '$(CONTROL_VERSION)' but the Makefile says EXTVERSION $(EXTVERSION))
endif

# pg_regress files, one per area (sql/NAME.sql, expected/NAME.out)
REGRESS      = setup queues items lease_complete drivers plans retry lists errors random_ops operations stats_many security dead_queue_access error_exposure webhook_security inputs
# `make installcheck` runs these layers the PGXS way against a running server
# that preloads querator (shared_preload_libraries = 'querator'); the TAP tests
# start their own clusters. scripts/test.sh runs all three on a fresh machine.
ISOLATION      = $(sort $(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test/isolation
TAP_TESTS      = 1
PROVE_TESTS    = test/t/*.pl

PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register -fno-strict-aliasing
ifdef WERROR
PG_CXXFLAGS += -Werror
endif
# Rebuild objects when a header they include changes (PGXS does not track C++ headers).
PG_CXXFLAGS += -MMD -MP
EXTRA_CLEAN = src/*.d
# libpq and libmicrohttpd: the HTTP API's server process (src/http_server.cpp).
SHLIB_LINK  = -lstdc++ -lcurl -lpq -lmicrohttpd
# The user agent of webhook requests names the version.
PG_CPPFLAGS += -DQUERATOR_VERSION='"$(EXTVERSION)"'
# libpq-fe.h lives beside, not under, the server headers.
PG_CPPFLAGS += -I$(shell $(PG_CONFIG) --includedir)
# No LLVM bitcode for C++ sources: the JIT inlining gains nothing here.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
# After PGXS, which resets PROVE_FLAGS: the TAP tests' own helper modules.
PG_PROVE_FLAGS += -I test/perl

-include $(OBJS:.o=.d)
