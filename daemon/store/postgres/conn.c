/* PostgreSQL connections: prepared statements by the address of their
 * SQL, the pool, retrying on a new connection, and result columns as
 * JSON. */
#include "store/postgres/pg.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util/err.h"
#include "util/json_num.h"
#include "util/log.h"

/* The server's notices (a table that already exists, ...) are not ours to
 * print. */
static void quiet(void *arg, const char *message) {}

/* The first line of the connection's last error, without its newline. */
static const char *pg_msg(PGconn *pg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", pg ? PQerrorMessage(pg) : "out of memory");
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

pg_conn *pg_connect(const char *conninfo)
{
    pg_conn *c = calloc(1, sizeof *c);
    if (!c) {
        eg_errorf("store: out of memory");
        return NULL;
    }
    /* Defaults a conninfo of the user's overrides (it comes after them):
     * a server that does not answer, or a network that drops packets,
     * shows as a failed call within half a minute instead of the TCP
     * stack's many minutes, and the patient callers connect again. */
    static const char *const keys[] = {"connect_timeout",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "tcp_user_timeout",
                                       "application_name",
                                       "dbname",
                                       NULL};
    const char *values[] = {"10", "15", "5", "3", "30000", "evogradd", conninfo, NULL};
    c->pg = PQconnectdbParams(keys, values, 1);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        char m[512];
        eg_errorf("store: cannot connect to the PostgreSQL database: %s",
                  pg_msg(c->pg, m, sizeof m));
        pg_close(c);
        return NULL;
    }
    PQsetNoticeProcessor(c->pg, quiet, NULL);
    PGresult *r = PQexec(c->pg, "SET TIME ZONE 'UTC'");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        char m[512];
        eg_errorf("store: setting up a connection: %s", pg_msg(c->pg, m, sizeof m));
        pg_close(c);
        return NULL;
    }
    return c;
}

void pg_close(pg_conn *c)
{
    if (!c) return;
    PQfinish(c->pg);
    free(c);
}

/* The name of sql's statement on c, preparing it at first use; NULL after
 * eg_errorf. */
static const char *stmt(pg_conn *c, const char *sql, int n, char name[16], const char *what)
{
    int i = 0;
    while (i < c->n && c->sql[i] != sql) i++;
    snprintf(name, 16, "s%d", i);
    if (i < c->n) return name;
    if (c->n == EG_PG_STMTS) {
        eg_errorf("store: more than %d prepared statements", EG_PG_STMTS);
        return NULL;
    }
    PGresult *r = PQprepare(c->pg, name, sql, n, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        char m[512];
        eg_errorf("store: %s: preparing: %s", what, pg_msg(c->pg, m, sizeof m));
        return NULL;
    }
    c->sql[c->n++] = sql;
    return name;
}

PGresult *pg_q(pg_conn *c, const char *sql, int n, const char *const *params, const char *what)
{
    char name[16];
    if (!stmt(c, sql, n, name, what)) return NULL;
    PGresult *r = PQexecPrepared(c->pg, name, n, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) return r;
    char m[512];
    const char *msg = r ? PQresultErrorMessage(r) : NULL;
    snprintf(m, sizeof m, "%s", msg && *msg ? msg : PQerrorMessage(c->pg));
    m[strcspn(m, "\n")] = '\0';
    /* A full disk on the server: the job ends as it would with SQLite. */
    const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    int full = code && strcmp(code, "53100") == 0;
    eg_store_note_failure(full);
    PQclear(r);
    eg_errorf("store: %s: %s%s", what, full ? "the disk is full: " : "", m);
    return NULL;
}

int pg_x(pg_conn *c, const char *sql, int n, const char *const *params, const char *what,
         long *changed)
{
    PGresult *r = pg_q(c, sql, n, params, what);
    if (!r) return -1;
    if (changed) *changed = atol(PQcmdTuples(r));
    PQclear(r);
    return 0;
}

static const char SQL_BEGIN[] = "BEGIN";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

int pg_begin(pg_conn *c)
{
    return pg_x(c, SQL_BEGIN, 0, NULL, "BEGIN", NULL);
}

int pg_end(pg_conn *c, int rc)
{
    if (rc == 0) return pg_x(c, SQL_COMMIT, 0, NULL, "COMMIT", NULL);
    if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", eg_last_error());
        pg_x(c, SQL_ROLLBACK, 0, NULL, "ROLLBACK", NULL);
        eg_errorf("%s", msg);
    }
    return rc;
}

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Whether a retry may run after this many tries. */
static int may_retry(const pg_retry *r)
{
    return r->patient ? mono_s() - r->t0 < EG_PG_PATIENCE_S : r->tries < 2;
}

pg_conn *pg_take(eg_pg *s, pg_retry *r)
{
    if (r->tries == 0) {
        r->t0 = mono_s();
        eg_store_note_unreachable(0);
    }
    for (;;) {
        pthread_mutex_lock(&s->lock);
        pg_conn *c = s->idle;
        if (c) s->idle = c->next;
        pthread_mutex_unlock(&s->lock);
        if (c) {
            c->next = NULL;
            r->tries++;
            return c;
        }
        if ((c = pg_connect(s->conninfo))) {
            r->tries++;
            return c;
        }
        r->tries++;
        if (!may_retry(r)) {
            eg_store_note_unreachable(1);
            return NULL;
        }
        nanosleep(&(struct timespec){0, 500 * 1000000L}, NULL);
    }
}

int pg_give(eg_pg *s, pg_conn *c, pg_retry *r, int rc)
{
    if (PQstatus(c->pg) != CONNECTION_OK) {
        /* The server went away (restarted, or the network): this
         * connection is done, and so are the pool's, most likely. */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", eg_last_error());
        pg_close(c);
        pthread_mutex_lock(&s->lock);
        pg_conn *idle = s->idle;
        s->idle = NULL;
        pthread_mutex_unlock(&s->lock);
        while (idle) {
            pg_conn *next = idle->next;
            pg_close(idle);
            idle = next;
        }
        if (rc < 0 && may_retry(r)) {
            if (r->tries > 1) nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
            return 0;
        }
        if (rc < 0) {
            eg_errorf("%s", msg);
            eg_store_note_unreachable(1);
        }
        return 1;
    }
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) pg_end(c, -1);
    pthread_mutex_lock(&s->lock);
    c->next = s->idle;
    s->idle = c;
    pthread_mutex_unlock(&s->lock);
    return 1;
}

void pg_submit_key(char out[33])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    if (got < sizeof b) { /* no entropy source: time and address, unique enough here */
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        snprintf((char *)b, sizeof b, "%lx%lx", (long)t.tv_nsec ^ (long)(intptr_t)out,
                 (long)t.tv_sec);
    }
    for (size_t i = 0; i < sizeof b; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

const char *pg_i64(pg_num *n, long long v)
{
    snprintf(n->b, sizeof n->b, "%lld", v);
    return n->b;
}

const char *pg_f64(pg_num *n, double v)
{
    if (!isfinite(v)) return NULL;
    snprintf(n->b, sizeof n->b, "%.17g", v);
    return n->b;
}

long long pg_get_i64(const PGresult *r, int i, int j)
{
    return atoll(PQgetvalue(r, i, j));
}

json_t *pg_col_int(const PGresult *r, int i, int j)
{
    return PQgetisnull(r, i, j) ? json_null() : json_integer(pg_get_i64(r, i, j));
}

json_t *pg_col_real(const PGresult *r, int i, int j)
{
    if (PQgetisnull(r, i, j)) return json_null();
    double x = strtod(PQgetvalue(r, i, j), NULL);
    return isfinite(x) ? json_real(x) : json_null();
}

json_t *pg_col_f32(const PGresult *r, int i, int j)
{
    if (PQgetisnull(r, i, j)) return json_null();
    return eg_json_f32((float)strtod(PQgetvalue(r, i, j), NULL));
}

json_t *pg_col_text(const PGresult *r, int i, int j)
{
    if (PQgetisnull(r, i, j)) return json_null();
    json_t *v = json_string(PQgetvalue(r, i, j));
    return v ? v : json_null();
}

json_t *pg_col_json(const PGresult *r, int i, int j)
{
    if (PQgetisnull(r, i, j)) return json_null();
    json_t *v = json_loads(PQgetvalue(r, i, j), JSON_DECODE_ANY, NULL);
    return v ? v : json_null();
}

json_t *pg_col_bool(const PGresult *r, int i, int j)
{
    if (PQgetisnull(r, i, j)) return json_null();
    return json_boolean(PQgetvalue(r, i, j)[0] == 't');
}

int pg_page(const PGresult *r, int limit, json_t *(*row)(const PGresult *, int), json_t *arr,
            json_t **next_after)
{
    int n = PQntuples(r), more = n > limit;
    if (more) n = limit;
    for (int i = 0; i < n; i++)
        if (json_array_append_new(arr, row(r, i)) != 0) return eg_errorf("store: out of memory");
    *next_after = more ? json_integer(pg_get_i64(r, n - 1, 0)) : json_null();
    return *next_after ? 0 : eg_errorf("store: out of memory");
}
