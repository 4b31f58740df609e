/*
 * The one way PostgreSQL headers enter querator's C++ code: inside
 * extern "C", with postgres.h first, so every translation unit sees the
 * same declarations and linkage.
 */
#pragma once

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

/* PostgreSQL's headers define these as macros; they collide with the C++ library. */
#undef snprintf
#undef vsnprintf
#undef printf
#undef sprintf
