/* The workers table: each daemon's heartbeat, and the listing of
 * GET /v1/workers. */
#include "store/sqlite/sqlite.h"

#include <stdlib.h>

#include "util/err.h"

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

static const char SQL_BEAT[] =
    "INSERT INTO workers (name, host, listen, devices) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (name) DO UPDATE SET host = excluded.host, listen = excluded.listen, "
    "devices = excluded.devices, heartbeat_at = " NOW;

/* Daemons not heard from for a day are gone for good. */
static const char SQL_PRUNE[] =
    "DELETE FROM workers WHERE julianday('now') - julianday(heartbeat_at) > 1";

int eg_sq_worker_beat(eg_store *base, const eg_store_worker *w)
{
    eg_sqlite *s = (eg_sqlite *)base;
    EG_TRY(eg_write_begin(s));
    sqlite3_stmt *st = eg_conn_stmt(s->w, SQL_BEAT);
    int rc = st ? 0 : -1;
    if (rc == 0) {
        sqlite3_bind_text(st, 1, w->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, w->host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, w->listen, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, w->devices_json, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) rc = eg_conn_fail(s->w, "recording a heartbeat");
        sqlite3_reset(st);
    }
    if (rc == 0) rc = eg_conn_exec(s->w, SQL_PRUNE);
    return eg_write_end(s, rc);
}

static const char SQL_WORKERS[] =
    "SELECT w.name, w.host, w.listen, w.devices, w.started_at, w.heartbeat_at, "
    "(julianday('now') - julianday(w.heartbeat_at)) * 86400.0 <= ?1, "
    "(SELECT json_group_array(j.id) FROM (SELECT id FROM jobs WHERE worker = w.name AND "
    "state = 'running' ORDER BY id) j) FROM workers w ORDER BY w.name";

int eg_sq_workers(eg_store *base, double alive_s, json_t **out)
{
    eg_sqlite *s = (eg_sqlite *)base;
    *out = NULL;
    eg_conn *c = eg_reader_get(s);
    if (!c) return -1;
    json_t *arr = json_array();
    sqlite3_stmt *st = arr ? eg_conn_stmt(c, SQL_WORKERS) : NULL;
    int rc = st ? 0 : arr ? -1 : eg_errorf("store: out of memory");
    if (rc == 0) {
        sqlite3_bind_double(st, 1, alive_s);
        int src;
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o}", "name",
                                  eg_col_text(st, 0), "host", eg_col_text(st, 1), "listen",
                                  eg_col_text(st, 2), "devices", eg_col_json(st, 3), "started_at",
                                  eg_col_text(st, 4), "last_heartbeat", eg_col_text(st, 5), "alive",
                                  sqlite3_column_int(st, 6), "running", eg_col_json(st, 7));
            if (json_array_append_new(arr, o) != 0) {
                rc = eg_errorf("store: out of memory");
                break;
            }
        }
        if (rc == 0 && src != SQLITE_DONE) rc = eg_conn_fail(c, "listing workers");
        sqlite3_reset(st);
    }
    eg_reader_put(s, c);
    if (rc == 0 && !(*out = json_pack("{s:o}", "workers", arr)))
        rc = eg_errorf("store: out of memory");
    else if (rc != 0)
        json_decref(arr);
    return rc;
}
