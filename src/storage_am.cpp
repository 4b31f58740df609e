/* Produce, the claim and complete over the access methods (storage_am.hpp). */
#include "storage_am.hpp"
#include "error.hpp"
#include "storage_sql.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_index.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
}

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <utility>
#include <vector>

namespace querator {

namespace {

/*
 * A write as SPI runs a writing statement: refused in a read-only
 * transaction, on a standby and in parallel mode; it sees what earlier
 * statements of the transaction did, under a fresh snapshot (READ
 * COMMITTED: each statement's own; REPEATABLE READ: the transaction's), and
 * later statements see its writes. An error inside it names, in the server
 * log's context, the operation, the write and its table, in place of the
 * statement text an SPI statement's error carried; the client never sees
 * that (error.cpp keeps internals out).
 */
struct Write
{
	ErrorContextCallback callback;
	const char *operation; /* "produce", "lease", "complete" */
	const char *command;   /* "INSERT" or "DELETE" */
	const char *table;
};

void
report_write_context(void *arg)
{
	const Write *write = static_cast<const Write *>(arg);
	errcontext("querator %s: %s %s querator_data.%s", write->operation, write->command,
			   strcmp(write->command, "INSERT") == 0 ? "INTO" : "FROM", write->table);
}

/* Until end_write; on an error, pg_guard's PG_TRY restores the context stack and the (sub)transaction's abort pops the snapshot. */
Snapshot
begin_write(Write *write, const char *operation, const char *command, const char *table)
{
	*write = {{error_context_stack, report_write_context, write}, operation, command, table};
	error_context_stack = &write->callback;
	PreventCommandIfReadOnly(command);
	PreventCommandIfParallelMode(command);
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	return GetActiveSnapshot();
}

void
end_write(const Write *write)
{
	PopActiveSnapshot();
	CommandCounterIncrement();
	error_context_stack = write->callback.previous;
}

/* Opens querator_data.<relname>, locked as a statement naming it would lock it. */
Relation
open_table(const char *relname, LOCKMODE mode)
{
	RangeVar *rv = makeRangeVar(const_cast<char *>("querator_data"), const_cast<char *>(relname), -1);
	return table_open(RangeVarGetRelid(rv, mode, false), NoLock);
}

/* A partition's items and leases with their primary keys, open for the rest of a write. */
struct PartitionTables
{
	Relation items;
	Relation leases;
	Relation items_pkey;
	Relation leases_pkey;
};

/* `items_lock`: RowShareLock to lock rows, RowExclusiveLock to delete them; the leases are always written. */
PartitionTables
open_partition(const char *items_name, LOCKMODE items_lock, const char *leases_name)
{
	PartitionTables t;
	t.items = open_table(items_name, items_lock);
	t.leases = open_table(leases_name, RowExclusiveLock);
	t.items_pkey = index_open(RelationGetPrimaryKeyIndex(t.items), AccessShareLock);
	t.leases_pkey = index_open(RelationGetPrimaryKeyIndex(t.leases), AccessShareLock);
	return t;
}

/* Locks stay until the transaction ends, as a statement's do. */
void
close_partition(const PartitionTables &t)
{
	index_close(t.items_pkey, NoLock);
	index_close(t.leases_pkey, NoLock);
	table_close(t.items, NoLock);
	table_close(t.leases, NoLock);
}

/* The item columns a claim reads. */
struct ItemColumns
{
	AttrNumber id, attempts, created_at, expire_deadline, origin_id, kind, reference, encoding, payload;
};

ItemColumns
item_columns(Relation items)
{
	return {column_number(items, "id"),        column_number(items, "attempts"),  column_number(items, "created_at"),
			column_number(items, "expire_deadline"), column_number(items, "origin_id"), column_number(items, "kind"),
			column_number(items, "reference"), column_number(items, "encoding"),  column_number(items, "payload")};
}

/* Fetches into `slot` the row with this id that `snapshot` sees, through the table's primary key `pkey`. */
bool
fetch_by_id(Relation rel, Relation pkey, Snapshot snapshot, TupleTableSlot *slot, int64 id)
{
	ScanKeyData key;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
	IndexScanDesc scan = index_beginscan(rel, pkey, snapshot, 1, 0);
	index_rescan(scan, &key, 1, nullptr, 0);
	const bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	return found;
}

/*
 * A row another transaction changed after the snapshot: passed over under
 * READ COMMITTED (false), a serialization failure under REPEATABLE READ and
 * SERIALIZABLE, as the executor decides for locks and deletes.
 */
bool
changed_since_snapshot()
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE), errmsg("could not serialize access due to concurrent update")));
	return false;
}

/*
 * Deletes the row at `tid` as DELETE does, waiting for a transaction that
 * holds it: true when deleted here. A row another transaction deleted
 * first is left (a serialization failure under REPEATABLE READ and
 * SERIALIZABLE); one it updated (an extend of a lease row) is deleted in
 * its newest version, as DELETE's recheck does under READ COMMITTED.
 */
bool
delete_row(Relation rel, ItemPointerData tid, CommandId cid)
{
	for (;;)
	{
		TM_FailureData failure;
		switch (table_tuple_delete(rel, &tid, cid, InvalidSnapshot, InvalidSnapshot, true, &failure, false))
		{
			case TM_Ok:
				return true;
			case TM_SelfModified:
				return false;
			case TM_Updated:
				if (IsolationUsesXactSnapshot())
					return changed_since_snapshot();
				tid = failure.ctid;
				continue;
			case TM_Deleted:
				return changed_since_snapshot();
			case TM_Invisible:
			case TM_BeingModified:
			case TM_WouldBlock:
				break;
		}
		elog(ERROR, "querator: unexpected result deleting a row of \"%s\"", RelationGetRelationName(rel));
	}
}

/*
 * After the item's lock: true when a lease of it committed after the
 * snapshot (its leaser held the item until then), so the item is not ours.
 * What ON CONFLICT DO NOTHING did in the statement, including its wait for
 * a transaction still inserting or deleting a conflicting row: querator's
 * own writers of lease rows hold the item's lock, so that wait only meets
 * a row written directly (as an isolation test does).
 */
bool
lease_committed_meanwhile(Relation leases, Relation leases_pkey, Snapshot dirty, TupleTableSlot *slot, int64 id)
{
	while (fetch_by_id(leases, leases_pkey, dirty, slot, id))
	{
		const TransactionId writer = TransactionIdIsValid(dirty->xmin) ? dirty->xmin : dirty->xmax;
		if (!TransactionIdIsValid(writer))
			return true;
		XactLockTableWait(writer, leases, &slot->tts_tid, XLTW_InsertIndex);
	}
	return false;
}

/*
 * Locks the item in `slot` FOR UPDATE SKIP LOCKED, as ExecLockRows does:
 * true when locked. An item another transaction holds is skipped; one that
 * was deleted (completed, retried, expired) since the snapshot is skipped
 * under READ COMMITTED and is a serialization failure under REPEATABLE READ
 * and SERIALIZABLE. Item rows are never updated, only deleted.
 */
bool
lock_item(Relation items, TupleTableSlot *slot, Snapshot snapshot, CommandId cid, TupleTableSlot *locked)
{
	TM_FailureData failure;
	switch (table_tuple_lock(items, &slot->tts_tid, snapshot, locked, cid, LockTupleExclusive, LockWaitSkip, 0,
							 &failure))
	{
		case TM_Ok:
			return true;
		case TM_WouldBlock:
		case TM_SelfModified:
			return false;
		case TM_Updated:
		case TM_Deleted:
			return changed_since_snapshot();
		case TM_Invisible:
		case TM_BeingModified:
			break;
	}
	elog(ERROR, "querator: unexpected result locking an item of \"%s\"", RelationGetRelationName(items));
	return false; /* not reached */
}

/* Copies a varlena column of `slot` into the current memory context, detoasted. */
Datum
copied_varlena(TupleTableSlot *slot, AttrNumber attnum)
{
	bool is_null = false;
	Datum value = slot_getattr(slot, attnum, &is_null);
	Assert(!is_null);
	return PointerGetDatum(PG_DETOAST_DATUM_COPY(value));
}

/* A lease row for `granted` in the open `leases`, its indexes maintained as INSERT maintains them. */
struct LeaseWriter
{
	EState *estate;
	ResultRelInfo *target;
	TupleTableSlot *row;
	AttrNumber id, deadline, attempts, client;
};

LeaseWriter
open_lease_writer(Relation leases)
{
	LeaseWriter w;
	w.estate = CreateExecutorState();
	w.target = makeNode(ResultRelInfo);
	InitResultRelInfo(w.target, leases, 1, nullptr, 0);
	ExecOpenIndices(w.target, false);
	w.row = table_slot_create(leases, nullptr);
	w.id = column_number(leases, "id");
	w.deadline = column_number(leases, "lease_deadline");
	w.attempts = column_number(leases, "attempts");
	w.client = column_number(leases, "client_id");
	return w;
}

void
write_lease(const LeaseWriter &w, Relation leases, CommandId cid, const GrantedLease &granted, Datum client)
{
	TupleTableSlot *lease = w.row;
	ExecClearTuple(lease);
	for (int i = 0; i < lease->tts_tupleDescriptor->natts; i++)
		lease->tts_isnull[i] = true;
	lease->tts_values[w.id - 1] = Int64GetDatum(granted.id);
	lease->tts_values[w.deadline - 1] = TimestampTzGetDatum(granted.lease_deadline);
	lease->tts_values[w.attempts - 1] = Int32GetDatum(granted.attempts);
	lease->tts_values[w.client - 1] = client;
	for (AttrNumber a : {w.id, w.deadline, w.attempts, w.client})
		lease->tts_isnull[a - 1] = false;
	ExecStoreVirtualTuple(lease);
	table_tuple_insert(leases, lease, cid, 0, nullptr);
	ExecInsertIndexTuples(w.target, lease, w.estate, false, false, nullptr, NIL);
}

void
close_lease_writer(const LeaseWriter &w)
{
	ExecDropSingleTupleTableSlot(w.row);
	ExecCloseIndices(w.target);
	FreeExecutorState(w.estate);
}

/* The walk of one segment from `start`; PostgreSQL calls only. */
void
walk_segment(const SegmentTables &segment, Snapshot snapshot, CommandId cid, int64 start, int32 wanted,
			 TimestampTz timeout_deadline, Datum client, ClaimPass *out)
{
	const PartitionTables t = open_partition(segment.items.c_str(), RowShareLock, segment.leases.c_str());
	const ItemColumns ic = item_columns(t.items);
	const LeaseWriter writer = open_lease_writer(t.leases);
	TupleTableSlot *item = table_slot_create(t.items, nullptr);
	TupleTableSlot *locked = table_slot_create(t.items, nullptr);
	TupleTableSlot *probe = table_slot_create(t.leases, nullptr);
	SnapshotData dirty;
	InitDirtySnapshot(dirty);

	ScanKeyData from;
	ScanKeyInit(&from, 1, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(start));
	IndexScanDesc walk = index_beginscan(t.items, t.items_pkey, snapshot, 1, 0);
	index_rescan(walk, &from, 1, nullptr, 0);
	while (out->locked < static_cast<uint64>(wanted) && index_getnext_slot(walk, ForwardScanDirection, item))
	{
		CHECK_FOR_INTERRUPTS(); /* a walk from the head can pass many leased items */
		bool is_null = false;
		const int64 id = DatumGetInt64(slot_getattr(item, ic.id, &is_null));
		/* Leased as the snapshot sees it: skipped without locking (a lock writes WAL). */
		if (fetch_by_id(t.leases, t.leases_pkey, snapshot, probe, id) || !lock_item(t.items, item, snapshot, cid, locked))
			continue;
		if (out->locked++ == 0)
			out->first_locked = id;
		out->last_locked = id;
		if (lease_committed_meanwhile(t.leases, t.leases_pkey, &dirty, probe, id))
			continue;

		GrantedLease &granted = out->granted[out->granted_count++];
		granted.id = id;
		granted.attempts = DatumGetInt32(slot_getattr(locked, ic.attempts, &is_null)) + 1;
		granted.created_at = DatumGetTimestampTz(slot_getattr(locked, ic.created_at, &is_null));
		const Datum origin = slot_getattr(locked, ic.origin_id, &is_null);
		granted.origin_id = is_null ? id : DatumGetInt64(origin);
		const Datum expire = slot_getattr(locked, ic.expire_deadline, &is_null);
		granted.lease_deadline = is_null ? timeout_deadline : std::min(timeout_deadline, DatumGetTimestampTz(expire));
		granted.kind = copied_varlena(locked, ic.kind);
		granted.reference = copied_varlena(locked, ic.reference);
		granted.encoding = copied_varlena(locked, ic.encoding);
		granted.payload = copied_varlena(locked, ic.payload);
		write_lease(writer, t.leases, cid, granted, client);
	}
	index_endscan(walk);

	ExecDropSingleTupleTableSlot(item);
	ExecDropSingleTupleTableSlot(locked);
	ExecDropSingleTupleTableSlot(probe);
	close_lease_writer(writer);
	close_partition(t);
}

/* The whole pass; PostgreSQL calls only (run under pg_guard). */
void
run_pass(const std::vector<SegmentTables> &segments, int64 start, int32 wanted, const Interval *lease_timeout,
		 const char *client_id, ClaimPass *out)
{
	Write write;
	const Snapshot snapshot = begin_write(&write, "lease", "INSERT", segments.front().leases.c_str());
	const CommandId cid = GetCurrentCommandId(true);
	const Datum client = CStringGetTextDatum(client_id);
	const TimestampTz timeout_deadline = DatumGetTimestampTz(DirectFunctionCall2(
		timestamptz_pl_interval, TimestampTzGetDatum(GetCurrentTimestamp()), IntervalPGetDatum(lease_timeout)));
	out->granted = static_cast<GrantedLease *>(palloc(sizeof(GrantedLease) * wanted));
	for (size_t i = 0; i < segments.size() && out->locked < static_cast<uint64>(wanted); i++)
	{
		const bool found_before = out->locked > 0;
		write.table = segments[i].leases.c_str();
		walk_segment(segments[i], snapshot, cid, start, wanted, timeout_deadline, client, out);
		if (!found_before && out->locked > 0)
		{
			/* The segments walked before had nothing leasable; those after are bounded by their lowest id. */
			out->proven_below = out->first_locked;
			for (size_t later = i + 1; later < segments.size(); later++)
				out->proven_below = std::min(out->proven_below, segments[later].lower);
		}
	}
	end_write(&write);
}

/* complete_leased; PostgreSQL calls only (run under pg_guard). `ids` sorted, without duplicates. */
void
run_complete(const std::vector<SegmentTables> &segments, const int64 *ids, size_t count, int64 *done,
			 size_t *done_count)
{
	Write write;
	const Snapshot snapshot = begin_write(&write, "complete", "DELETE", segments.front().items.c_str());
	const CommandId cid = GetCurrentCommandId(true);
	/* Opened when an id first needs the segment; most calls need one. palloc'd: an error longjmps out of here. */
	PartitionTables *open = static_cast<PartitionTables *>(palloc0(sizeof(PartitionTables) * segments.size()));
	TupleTableSlot *item = nullptr;
	TupleTableSlot *lease = nullptr;
	for (size_t i = 0; i < count; i++)
		for (size_t s = 0; s < segments.size(); s++)
		{
			if (ids[i] < segments[s].lower || ids[i] >= segments[s].upper)
				continue;
			if (open[s].items == nullptr)
			{
				write.table = segments[s].items.c_str();
				open[s] = open_partition(segments[s].items.c_str(), RowExclusiveLock, segments[s].leases.c_str());
			}
			const PartitionTables &t = open[s];
			if (item == nullptr)
			{
				/* Every segment is a clone of the same templates: one slot type fits them all. */
				item = table_slot_create(t.items, nullptr);
				lease = table_slot_create(t.leases, nullptr);
			}
			/* Leased as the snapshot sees it; then the item's delete takes its lock (item first, as everywhere). */
			if (!fetch_by_id(t.items, t.items_pkey, snapshot, item, ids[i]))
				continue; /* perhaps in another segment whose range overlaps this one's */
			if (fetch_by_id(t.leases, t.leases_pkey, snapshot, lease, ids[i]) && delete_row(t.items, item->tts_tid, cid) &&
				delete_row(t.leases, lease->tts_tid, cid))
				done[(*done_count)++] = ids[i]; /* a lease row exists exactly while its item is leased */
			break;
		}
	if (item != nullptr)
	{
		ExecDropSingleTupleTableSlot(item);
		ExecDropSingleTupleTableSlot(lease);
	}
	for (size_t s = 0; s < segments.size(); s++)
		if (open[s].items != nullptr)
			close_partition(open[s]);
	pfree(open);
	end_write(&write);
}

/* insert_items' arguments as plain values, for the part under pg_guard. */
struct NewItems
{
	const char *table;
	const char *sequence;
	int64 id_bits;
	Datum payloads;
	int count;
	const Datum *kinds;      /* nullptr: all '' */
	const Datum *references; /* nullptr: all '' */
	const char *encoding;
	const TimestampTz *enqueue_at; /* nullptr: ready items */
	const Interval *expire_timeout; /* nullptr: no expiry */
	int64 *ids;              /* out: count ids */
};

/* The elements of a one-dimensional array of a varlena type; NULL elements become NULL pointers. */
Datum *
array_elements(Datum array, int expected)
{
	ArrayType *a = DatumGetArrayTypeP(array);
	Datum *values = nullptr;
	bool *nulls = nullptr;
	int count = 0;
	deconstruct_array(a, ARR_ELEMTYPE(a), -1, false, TYPALIGN_INT, &values, &nulls, &count);
	if (count != expected)
		elog(ERROR, "querator: array of %d elements for %d items", count, expected);
	for (int i = 0; i < count; i++)
		if (nulls[i])
			values[i] = PointerGetDatum(nullptr);
	return values;
}

/* insert_items; PostgreSQL calls only (run under pg_guard). */
void
run_insert(const NewItems *in)
{
	Write write;
	begin_write(&write, "produce", "INSERT", in->table);
	const CommandId cid = GetCurrentCommandId(true);
	Relation table = open_table(in->table, RowExclusiveLock);
	RangeVar *seq_name = makeRangeVar(const_cast<char *>("querator_data"), const_cast<char *>(in->sequence), -1);
	const Oid sequence = RangeVarGetRelid(seq_name, NoLock, false); /* nextval locks it */
	const AttrNumber id = column_number(table, "id"), attempts = column_number(table, "attempts"),
					 created_at = column_number(table, "created_at"), expire_deadline = column_number(table, "expire_deadline"),
					 kind = column_number(table, "kind"), reference = column_number(table, "reference"),
					 encoding = column_number(table, "encoding"), payload = column_number(table, "payload");
	const AttrNumber enqueue_at = in->enqueue_at ? column_number(table, "enqueue_at") : InvalidAttrNumber;

	EState *estate = CreateExecutorState();
	ResultRelInfo *target = makeNode(ResultRelInfo);
	InitResultRelInfo(target, table, 1, nullptr, 0);
	ExecOpenIndices(target, false);

	const Datum *payloads = array_elements(in->payloads, in->count);
	const Datum *kinds = in->kinds ? array_elements(*in->kinds, in->count) : nullptr;
	const Datum *references = in->references ? array_elements(*in->references, in->count) : nullptr;
	const Datum empty = CStringGetTextDatum("");
	const Datum encoding_value = CStringGetTextDatum(in->encoding);
	const TimestampTz now = GetCurrentTransactionStartTimestamp();
	const Datum expires = in->expire_timeout ? DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(now),
																	IntervalPGetDatum(in->expire_timeout))
											 : 0;
	auto or_empty = [&](const Datum *values, int i) {
		return values && DatumGetPointer(values[i]) ? values[i] : empty;
	};
	TupleTableSlot **slots = static_cast<TupleTableSlot **>(palloc(sizeof(TupleTableSlot *) * in->count));
	for (int i = 0; i < in->count; i++)
	{
		if (!DatumGetPointer(payloads[i]))
			elog(ERROR, "querator: NULL payload reached storage");
		TupleTableSlot *slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(table), table_slot_callbacks(table));
		ExecClearTuple(slot);
		for (int a = 0; a < slot->tts_tupleDescriptor->natts; a++)
			slot->tts_isnull[a] = true;
		in->ids[i] = in->id_bits | nextval_internal(sequence, false);
		auto set = [&](AttrNumber attnum, Datum value) {
			slot->tts_values[attnum - 1] = value;
			slot->tts_isnull[attnum - 1] = false;
		};
		set(id, Int64GetDatum(in->ids[i]));
		set(attempts, Int32GetDatum(0));
		set(created_at, TimestampTzGetDatum(now));
		if (in->expire_timeout)
			set(expire_deadline, expires);
		set(kind, or_empty(kinds, i));
		set(reference, or_empty(references, i));
		set(encoding, encoding_value);
		set(payload, payloads[i]);
		if (in->enqueue_at)
			set(enqueue_at, TimestampTzGetDatum(*in->enqueue_at));
		ExecStoreVirtualTuple(slot);
		slots[i] = slot;
	}
	if (in->count == 1)
		table_tuple_insert(table, slots[0], cid, 0, nullptr);
	else
		table_multi_insert(table, slots, in->count, cid, 0, nullptr);
	for (int i = 0; i < in->count; i++)
		ExecInsertIndexTuples(target, slots[i], estate, false, false, nullptr, NIL);

	ExecResetTupleTable(estate->es_tupleTable, false);
	ExecCloseIndices(target);
	FreeExecutorState(estate);
	table_close(table, NoLock);
	end_write(&write);
}

/*
 * A btree index of `rel` whose first column is `attnum`, ascending, open; or
 * nullptr. A partial one is fine: the only partial indexes of these tables
 * leave out rows where that column is NULL, which min() ignores anyway.
 */
Relation
open_index_leading_with(Relation rel, AttrNumber attnum)
{
	List *indexes = RelationGetIndexList(rel);
	ListCell *cell;
	foreach (cell, indexes)
	{
		Relation index = index_open(lfirst_oid(cell), AccessShareLock);
		if (index->rd_rel->relam == BTREE_AM_OID && index->rd_index->indkey.values[0] == attnum &&
			(index->rd_indoption[0] & INDOPTION_DESC) == 0)
		{
			list_free(indexes);
			return index;
		}
		index_close(index, AccessShareLock);
	}
	list_free(indexes);
	return nullptr;
}

/*
 * min(column) over querator_data.<table>, NULLs ignored, as `snapshot` sees
 * it: the first entry of an index leading with the column (the visible row
 * an index scan meets first holds the smallest visible value), else a walk
 * of the heap (lease rows: few, and their deadline has no index).
 */
void
earliest_value(const char *table, const char *column, Snapshot snapshot, bool *found, TimestampTz *earliest)
{
	Relation rel = open_table(table, AccessShareLock);
	const AttrNumber attnum = column_number(rel, column);
	TupleTableSlot *slot = table_slot_create(rel, nullptr);
	bool isnull = true;
	if (Relation index = open_index_leading_with(rel, attnum))
	{
		ScanKeyData not_null;
		ScanKeyEntryInitialize(&not_null, SK_ISNULL | SK_SEARCHNOTNULL, 1, InvalidStrategy, InvalidOid, InvalidOid,
							   InvalidOid, (Datum) 0);
		IndexScanDesc scan = index_beginscan(rel, index, snapshot, 1, 0);
		index_rescan(scan, &not_null, 1, nullptr, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			const Datum value = slot_getattr(slot, attnum, &isnull);
			if (!isnull)
				*earliest = DatumGetTimestampTz(value);
		}
		index_endscan(scan);
		index_close(index, NoLock);
	}
	else
	{
		TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			bool null_here = true;
			const TimestampTz value = DatumGetTimestampTz(slot_getattr(slot, attnum, &null_here));
			if (!null_here && (isnull || value < *earliest))
				*earliest = value;
			isnull = isnull && null_here;
		}
		table_endscan(scan);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	*found = !isnull;
}

/* The earliest of (table, column) pairs, under one snapshot that sees the transaction's own writes. */
std::optional<TimestampTz>
earliest_of(const std::vector<std::pair<std::string, const char *>> &columns)
{
	bool any = false;
	TimestampTz earliest = DT_NOEND;
	pg_guard([&] {
		CommandCounterIncrement();
		PushActiveSnapshot(GetTransactionSnapshot());
		for (const auto &[table, column] : columns)
		{
			bool found = false;
			TimestampTz value = 0;
			earliest_value(table.c_str(), column, GetActiveSnapshot(), &found, &value);
			if (found && value < earliest)
				earliest = value;
			any = any || found;
		}
		PopActiveSnapshot();
	}, ErrorOrigin::internal_sql);
	return any ? std::optional<TimestampTz>(earliest) : std::nullopt;
}

} // namespace

std::optional<TimestampTz>
earliest_lease_deadline(const std::vector<std::string> &lease_tables)
{
	std::vector<std::pair<std::string, const char *>> columns;
	for (const std::string &table : lease_tables)
		columns.emplace_back(table, "lease_deadline");
	return earliest_of(columns);
}

std::optional<TimestampTz>
earliest_item_deadline(const std::vector<std::string> &item_tables, const std::string &scheduled_table)
{
	std::vector<std::pair<std::string, const char *>> columns{{scheduled_table, "enqueue_at"},
															  {scheduled_table, "expire_deadline"}};
	for (const std::string &table : item_tables)
		columns.emplace_back(table, "expire_deadline");
	return earliest_of(columns);
}

IdRange
id_range_of(const std::string &table)
{
	IdRange range;
	pg_guard([&] {
		Relation rel = open_table(table.c_str(), AccessShareLock);
		Relation pkey = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
		const AttrNumber id = column_number(rel, "id");
		TupleTableSlot *slot = table_slot_create(rel, nullptr);
		for (ScanDirection direction : {ForwardScanDirection, BackwardScanDirection})
		{
			/* SnapshotAny: every row the index points to, dead or in progress, bounds the segment. */
			IndexScanDesc scan = index_beginscan(rel, pkey, SnapshotAny, 0, 0);
			index_rescan(scan, nullptr, 0, nullptr, 0);
			if (index_getnext_slot(scan, direction, slot))
			{
				bool is_null = false;
				const int64 value = DatumGetInt64(slot_getattr(slot, id, &is_null));
				range.any = true;
				(direction == ForwardScanDirection ? range.lowest : range.highest) = value;
			}
			index_endscan(scan);
		}
		ExecDropSingleTupleTableSlot(slot);
		index_close(pkey, NoLock);
		table_close(rel, NoLock);
	}, ErrorOrigin::internal_sql);
	return range;
}

std::optional<int64>
first_live_id(const std::string &table, int64 from)
{
	bool found = false;
	int64 first = 0;
	pg_guard([&] {
		Relation rel = open_table(table.c_str(), AccessShareLock);
		Relation pkey = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
		const AttrNumber id = column_number(rel, "id");
		TupleTableSlot *slot = table_slot_create(rel, nullptr);
		const Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
		ScanKeyData key;
		ScanKeyInit(&key, 1, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(from));
		IndexScanDesc scan = index_beginscan(rel, pkey, snapshot, 1, 0);
		index_rescan(scan, &key, 1, nullptr, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool is_null = false;
			first = DatumGetInt64(slot_getattr(slot, id, &is_null));
			found = true;
		}
		index_endscan(scan);
		UnregisterSnapshot(snapshot);
		ExecDropSingleTupleTableSlot(slot);
		index_close(pkey, NoLock);
		table_close(rel, NoLock);
	}, ErrorOrigin::internal_sql);
	return found ? std::optional<int64>(first) : std::nullopt;
}

AttrNumber
column_number(Relation rel, const char *name)
{
	TupleDesc desc = RelationGetDescr(rel);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		if (!attr->attisdropped && strcmp(NameStr(attr->attname), name) == 0)
			return attr->attnum;
	}
	elog(ERROR, "querator: table \"%s\" has no column \"%s\"", RelationGetRelationName(rel), name);
	return InvalidAttrNumber; /* not reached */
}

ClaimPass
claim_pass(const std::vector<SegmentTables> &segments, int64 start, int32 wanted, const Interval &lease_timeout,
		   const std::string &client_id)
{
	ClaimPass pass{};
	if (segments.empty())
		return pass; /* cannot happen: the current segment is always walked */
	pg_guard([&] { run_pass(segments, start, wanted, &lease_timeout, client_id.c_str(), &pass); },
			 ErrorOrigin::internal_sql);
	return pass;
}

std::vector<int64>
complete_leased(const std::vector<SegmentTables> &segments, const std::vector<int64> &ids)
{
	std::vector<int64> sorted(ids);
	std::sort(sorted.begin(), sorted.end());
	sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
	std::vector<int64> done(sorted.size());
	size_t done_count = 0;
	if (segments.empty())
		return {};
	pg_guard([&] { run_complete(segments, sorted.data(), sorted.size(), done.data(), &done_count); },
			 ErrorOrigin::internal_sql);
	done.resize(done_count);
	return done;
}

std::vector<int64>
insert_items(int32 queue_id, int partition, const std::string &table, Datum payloads, int count,
			 std::optional<Datum> kinds, std::optional<Datum> references, const std::string &encoding,
			 std::optional<TimestampTz> enqueue_at, std::optional<Interval> expire_timeout)
{
	const std::string sequence = queue_prefix(queue_id) + "_seq";
	std::vector<int64> ids(count);
	const NewItems in{table.c_str(),
					  sequence.c_str(),
					  partition_bits(partition),
					  payloads,
					  count,
					  kinds ? &*kinds : nullptr,
					  references ? &*references : nullptr,
					  encoding.c_str(),
					  enqueue_at ? &*enqueue_at : nullptr,
					  expire_timeout ? &*expire_timeout : nullptr,
					  ids.data()};
	pg_guard([&] { run_insert(&in); }, ErrorOrigin::internal_sql);
	return ids;
}

} // namespace querator
