/* SQLite connections with their statement caches, the pool of read-only
 * connections, and conversions between SQLite values and JSON. */
#include "store/sqlite/sqlite.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/json_num.h"

#define BUSY_TIMEOUT_MS 5000

/* Runs a pragma on a fresh connection (not cached: used once). */
static int pragma(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    eg_errorf("store: %s: %s", sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

/* Switches the database to write-ahead logging (kept in the file). */
static int use_wal(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
        return eg_errorf("store: journal_mode: %s", sqlite3_errmsg(db));
    int ok = sqlite3_step(st) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (!ok) return eg_errorf("store: cannot switch the database to WAL mode");
    return 0;
}

/* Whether the database at path can be written: the file when it exists,
 * and the folder it lies in, where SQLite keeps the -wal and -shm files
 * (and creates the database). Says which one cannot, and why. */
static int check_writable(const char *path)
{
    if (access(path, F_OK) == 0 && access(path, W_OK) != 0)
        return eg_errorf("store: the database %s is not writable: %s", path, strerror(errno));
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return eg_errorf("store: database path too long");
    const char *dir = dirname(buf);
    if (access(dir, W_OK) != 0)
        return eg_errorf("store: the folder %s holding the database is not writable: %s "
                         "(the database's -wal and -shm files are written beside it)",
                         dir, strerror(errno));
    return 0;
}

int eg_conn_open(const char *path, int readonly, eg_conn **out)
{
    *out = NULL;
    if (!readonly) EG_TRY(check_writable(path));
    eg_conn *c = calloc(1, sizeof *c);
    if (!c) return eg_errorf("store: out of memory");
    int flags = readonly ? SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
                         : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        eg_errorf("store: cannot open %s: %s", path,
                  c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    if (sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS) != SQLITE_OK) {
        eg_conn_fail(c, "busy_timeout");
        goto fail;
    }
    if (!readonly && (use_wal(c->db) != 0 || pragma(c->db, "PRAGMA synchronous=NORMAL") != 0 ||
                      pragma(c->db, "PRAGMA foreign_keys=ON") != 0))
        goto fail;
    *out = c;
    return 0;
fail:
    sqlite3_close(c->db);
    free(c);
    return -1;
}

void eg_conn_close(eg_conn *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) sqlite3_finalize(c->cache[i].st);
    sqlite3_close(c->db);
    free(c);
}

sqlite3_stmt *eg_conn_stmt(eg_conn *c, const char *sql)
{
    for (int i = 0; i < c->n; i++) {
        if (c->cache[i].sql != sql) continue;
        sqlite3_stmt *st = c->cache[i].st;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    if (c->n == EG_STMT_CACHE) {
        eg_errorf("store: more than %d cached statements", EG_STMT_CACHE);
        return NULL;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        eg_conn_fail(c, "prepare");
        return NULL;
    }
    c->cache[c->n].sql = sql;
    c->cache[c->n].st = st;
    c->n++;
    return st;
}

int eg_conn_exec(eg_conn *c, const char *sql)
{
    sqlite3_stmt *st = eg_conn_stmt(c, sql);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return eg_conn_fail(c, sql);
    return 0;
}

int eg_conn_page(eg_conn *c, sqlite3_stmt *st, int limit, json_t *(*row)(sqlite3_stmt *),
                 json_t *arr, json_t **next_after, const char *what)
{
    *next_after = NULL;
    int64_t last = 0;
    int more = 0, n = 0, rc = 0, src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++ == limit) {
            more = 1;
            break;
        }
        last = sqlite3_column_int64(st, 0);
        if (json_array_append_new(arr, row(st)) != 0) {
            rc = eg_errorf("store: out of memory");
            break;
        }
    }
    if (rc == 0 && !more && src != SQLITE_DONE) rc = eg_conn_fail(c, what);
    sqlite3_reset(st);
    if (rc == 0 && !(*next_after = more ? json_integer(last) : json_null()))
        rc = eg_errorf("store: out of memory");
    return rc;
}

int eg_conn_fail(eg_conn *c, const char *what)
{
    int full = sqlite3_errcode(c->db) == SQLITE_FULL;
    eg_store_note_failure(full);
    if (full)
        return eg_errorf("store: %s: the disk is full (%s)", what, sqlite3_errmsg(c->db));
    return eg_errorf("store: %s: %s", what, sqlite3_errmsg(c->db));
}

void eg_conn_read_end(eg_conn *c)
{
    if (sqlite3_get_autocommit(c->db)) return;
    if (eg_conn_exec(c, "COMMIT") != 0) eg_conn_exec(c, "ROLLBACK");
}

eg_conn *eg_reader_get(eg_sqlite *s)
{
    pthread_mutex_lock(&s->rlock);
    eg_conn *c = s->idle;
    if (c) s->idle = c->next;
    pthread_mutex_unlock(&s->rlock);
    if (c) {
        c->next = NULL;
        return c;
    }
    if (eg_conn_open(s->path, 1, &c) != 0) return NULL;
    return c;
}

void eg_reader_put(eg_sqlite *s, eg_conn *c)
{
    if (!c) return;
    /* A read transaction left open would pin the WAL: end it. */
    eg_conn_read_end(c);
    pthread_mutex_lock(&s->rlock);
    c->next = s->idle;
    s->idle = c;
    pthread_mutex_unlock(&s->rlock);
}

int eg_write_begin(eg_sqlite *s)
{
    eg_store_note_failure(0);
    pthread_mutex_lock(&s->wlock);
    if (eg_conn_exec(s->w, "BEGIN IMMEDIATE") != 0) {
        pthread_mutex_unlock(&s->wlock);
        return -1;
    }
    return 0;
}

int eg_write_end(eg_sqlite *s, int rc)
{
    if (rc == 0 && eg_conn_exec(s->w, "COMMIT") != 0) rc = -1;
    if (rc != 0 && !sqlite3_get_autocommit(s->w->db)) {
        /* Keep the first error's message. */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", eg_last_error());
        eg_conn_exec(s->w, "ROLLBACK");
        eg_errorf("%s", msg);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int eg_bind_real(sqlite3_stmt *st, int i, double x)
{
    return isfinite(x) ? sqlite3_bind_double(st, i, x) : sqlite3_bind_null(st, i);
}

json_t *eg_col_real(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return json_null();
    double x = sqlite3_column_double(st, i);
    return isfinite(x) ? json_real(x) : json_null();
}

json_t *eg_col_f32(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return json_null();
    return eg_json_f32((float)sqlite3_column_double(st, i));
}

json_t *eg_col_int(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return json_null();
    return json_integer(sqlite3_column_int64(st, i));
}

json_t *eg_col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t) return json_null();
    json_t *v = json_string((const char *)t);
    return v ? v : json_null(); /* text that is not UTF-8 */
}

json_t *eg_col_json(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    if (!t) return json_null();
    json_t *v = json_loads(t, JSON_DECODE_ANY, NULL);
    return v ? v : json_null();
}
