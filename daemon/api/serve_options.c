/* The options of `evogradd serve` as one table (name, default, bounds,
 * validator, help), set from a config file and then from the command
 * line. */
#include "api/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "nn/device.h"

#define FIELD(f) offsetof(eg_serve_opts, f), sizeof(((eg_serve_opts *)0)->f)

/* Where the option's field lives in o. */
static void *field_of(const eg_option *opt, eg_serve_opts *o)
{
    return (char *)o + opt->offset;
}

/* ---- validators ---- */

/* Copies a non-empty value into the option's char field. */
static int set_text(const eg_option *opt, const char *value, eg_serve_opts *o)
{
    if (!*value) return eg_errorf("must not be empty");
    if (strlen(value) >= opt->size)
        return eg_errorf("is %zu bytes long, at most %zu allowed", strlen(value), opt->size - 1);
    strcpy(field_of(opt, o), value);
    return 0;
}

/* The data roots: ':'-separated folders that exist; "" for none. */
static int set_roots(const eg_option *opt, const char *value, eg_serve_opts *o)
{
    if (strlen(value) >= opt->size)
        return eg_errorf("is %zu bytes long, at most %zu allowed", strlen(value), opt->size - 1);
    EG_TRY(eg_data_roots_parse(value, &o->data_roots));
    strcpy(field_of(opt, o), value);
    o->data_dir_set = 1;
    return 0;
}

static int set_long(const eg_option *opt, const char *value, eg_serve_opts *o)
{
    long long v;
    if (eg_parse_int(value, opt->lo, opt->hi, &v) != 0)
        return eg_errorf("must be an integer in [%lld, %lld], not \"%.64s\"", opt->lo, opt->hi,
                         value);
    *(long *)field_of(opt, o) = (long)v;
    return 0;
}

static int set_level(const eg_option *opt, const char *value, eg_serve_opts *o)
{
    if (eg_log_parse_level(value, &o->level) != 0)
        return eg_errorf("must be one of debug, info, warn, error, not \"%.64s\"", value);
    return set_text(opt, value, o);
}

/* host:port with a numeric IPv4 host or a bracketed IPv6 one. */
static int set_listen(const eg_option *opt, const char *value, eg_serve_opts *o)
{
    char host[64];
    const char *port;
    if (value[0] == '[') {
        const char *end = strchr(value, ']');
        if (!end || end[1] != ':') return eg_errorf("\"%.64s\" is not [IPv6]:PORT", value);
        if ((size_t)(end - value - 1) >= sizeof host)
            return eg_errorf("\"%.64s\": host too long", value);
        memcpy(host, value + 1, end - value - 1);
        host[end - value - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(value, ':');
        if (!colon) return eg_errorf("\"%.64s\" is not HOST:PORT", value);
        if ((size_t)(colon - value) >= sizeof host)
            return eg_errorf("\"%.64s\": host too long", value);
        memcpy(host, value, colon - value);
        host[colon - value] = '\0';
        if (strchr(host, ':'))
            return eg_errorf("\"%.64s\": write an IPv6 address in brackets, [::1]:8080", value);
        port = colon + 1;
    }
    long long p;
    if (eg_parse_int(port, 1, 65535, &p) != 0)
        return eg_errorf("\"%.64s\": the port must be an integer in [1, 65535]", value);
    memset(&o->addr, 0, sizeof o->addr);
    if (value[0] == '[') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&o->addr;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)p);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return eg_errorf("\"%.64s\": \"%s\" is not an IPv6 address", value, host);
        o->addr_len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&o->addr;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)p);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            return eg_errorf("\"%.64s\": \"%s\" is not an IPv4 address (numeric, like "
                             "127.0.0.1)", value, host);
        o->addr_len = sizeof *a;
    }
    return set_text(opt, value, o);
}

/* Appends device `name` to names[*n] unless it is there already. */
static int add_device(char names[][16], int *n, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(names[i], name) == 0) return eg_errorf("\"%s\" listed twice", name);
    if (*n == EG_OPT_MAX_DEVICES) return eg_errorf("at most %d devices", EG_OPT_MAX_DEVICES);
    snprintf(names[(*n)++], 16, "%s", name);
    return 0;
}

/* Appends every GPU (cuda:0, cuda:1, ...) of this machine. */
static int add_gpus(char names[][16], int *n, int gpus)
{
    for (int g = 0; g < gpus && g < EG_OPT_MAX_DEVICES; g++) {
        char name[16];
        snprintf(name, sizeof name, "cuda:%d", g);
        EG_TRY(add_device(names, n, name));
    }
    return 0;
}

/* A comma list of devices to run jobs on: "cpu", "cuda:N", "cuda" (every
 * GPU) or "auto" (every GPU, or the CPU when there is none). GPUs must
 * exist when the daemon starts. */
static int set_devices(const eg_option *opt, const char *value, eg_serve_opts *o)
{
    if (strlen(value) >= sizeof o->devices)
        return eg_errorf("is %zu bytes long, at most %zu allowed", strlen(value),
                         sizeof o->devices - 1);
    char names[EG_OPT_MAX_DEVICES][16];
    int n = 0, gpus = eg_gpu_count();
    const char *p = value;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t')) trimmed--;
        if (trimmed == 0) return eg_errorf("\"%.64s\": an empty device name", value);
        char name[16];
        if (trimmed >= sizeof name) return eg_errorf("\"%.*s\": unknown device", (int)trimmed, p);
        memcpy(name, p, trimmed);
        name[trimmed] = '\0';
        int ordinal;
        if (eg_device_parse(name, &ordinal) != 0)
            return eg_errorf("\"%s\": unknown device (known: cpu, cuda, cuda:N, auto)", name);
        if (strcmp(name, "auto") == 0) {
            EG_TRY(gpus ? add_gpus(names, &n, gpus) : add_device(names, &n, "cpu"));
        } else if (ordinal >= 0 && ordinal >= gpus) {
            return eg_errorf("\"%s\": %s", name,
                             gpus ? "there is no such GPU on this machine"
                                  : "this machine has no usable GPU (no CUDA backend, driver or "
                                    "device); use \"cpu\" or \"auto\"");
        } else if (strcmp(name, "cuda") == 0) {
            EG_TRY(add_gpus(names, &n, gpus));
        } else {
            EG_TRY(add_device(names, &n, name));
        }
        p += len;
        if (*p != ',') break;
        p++;
    }
    memcpy(o->device_names, names, sizeof names);
    for (int i = 0; i < n; i++) o->device_list[i] = o->device_names[i];
    o->device_list[n] = NULL;
    return set_text(opt, value, o);
}

/* A file whose first line is the bearer token. */
static int set_token_file(const eg_option *opt, const char *value, eg_serve_opts *o)
{
    if (!*value) return eg_errorf("must not be empty");
    FILE *f = fopen(value, "r");
    if (!f) return eg_errorf("%s: %s", value, strerror(errno));
    char line[sizeof o->token + 1];
    int got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    size_t len = got ? strcspn(line, "\r\n") : 0;
    while (len && (line[len - 1] == ' ' || line[len - 1] == '\t')) len--;
    size_t start = 0;
    while (start < len && (line[start] == ' ' || line[start] == '\t')) start++;
    if (start == len) return eg_errorf("%s: the first line (the token) is empty", value);
    if (len - start >= sizeof o->token)
        return eg_errorf("%s: the token is longer than %zu bytes", value, sizeof o->token - 1);
    for (size_t i = start; i < len; i++)
        if ((unsigned char)line[i] < 0x21 || (unsigned char)line[i] == 0x7f)
            return eg_errorf("%s: the token holds a space or control character", value);
    EG_TRY(set_text(opt, value, o));
    memcpy(o->token, line + start, len - start);
    o->token[len - start] = '\0';
    return 0;
}

const eg_option eg_serve_options[] = {
    {"listen", "127.0.0.1:8080", 0, 0, FIELD(listen), set_listen,
     "address to serve the API on: IPV4:PORT or [IPV6]:PORT"},
    {"db", NULL, 0, 0, FIELD(db), set_text,
     "the store: an SQLite database file (default ./var/evograd.db; "
     "$STATE_DIRECTORY/evograd.db under systemd), or a PostgreSQL database shared by the "
     "daemons of many boxes: postgresql://USER@HOST/DB or a libpq conninfo string "
     "(\"host=... dbname=...\")"},
    {"data-dir", NULL, 0, 0, FIELD(data_dir), set_roots,
     "the folders jobs may read data from, ':'-separated: a job's dataset.path must lie "
     "inside one (a relative one is looked for under each), and a job without one reads "
     "the first NAME/ subfolder (or folder) holding its dataset (default: "
     EG_DEFAULT_DATA_ROOT " when it exists)"},
    {"devices", "auto", 0, 0, FIELD(devices), set_devices,
     "comma list of devices to run jobs on: cpu, cuda:N, cuda (every GPU) or auto (every "
     "GPU, or the cpu when there is none)"},
    {"token-file", NULL, 0, 0, FIELD(token_file), set_token_file,
     "file whose first line is the bearer token every request but /healthz must carry "
     "(default: none, no authentication)"},
    {"checkpoint-dir", NULL, 0, 0, FIELD(checkpoint_dir), set_text,
     "folder of job checkpoints (default: \"checkpoints\" next to an SQLite db; with a "
     "PostgreSQL db it must be given: a folder every box mounts at the same path, so that "
     "another box can resume a job)"},
    {"worker-name", NULL, 0, 0, FIELD(worker_name), set_text,
     "this daemon's name among those sharing the store, unique (default HOST:PORT)"},
    {"lease-seconds", "30", 1, 3600, FIELD(lease_seconds), set_long,
     "lease of a running job: a daemon that has not renewed it for this long (dead, "
     "stalled or cut off) loses the job, and another daemon queues it again"},
    {"max-lost-leases", "3", 1, 100, FIELD(max_lost_leases), set_long,
     "leases a job may lose before it fails instead of being queued again"},
    {"checkpoint-every", "200", 1, 1000000, FIELD(checkpoint_every), set_long,
     "steps between checkpoints of a running job"},
    {"log-level", "info", 0, 0, FIELD(log_level), set_level, "debug, info, warn or error"},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL},
};

static const eg_option *find_option(const char *name, size_t len)
{
    for (const eg_option *opt = eg_serve_options; opt->name; opt++)
        if (strlen(opt->name) == len && strncmp(opt->name, name, len) == 0) return opt;
    return NULL;
}

void eg_serve_opts_init(eg_serve_opts *o)
{
    memset(o, 0, sizeof *o);
    for (const eg_option *opt = eg_serve_options; opt->name; opt++)
        if (opt->def && opt->set(opt, opt->def, o) != 0)
            EG_LOG(ERROR, "serve: the default of %s is refused: %s", opt->name,
                   eg_last_error());
}

int eg_serve_opts_set(eg_serve_opts *o, const char *name, const char *value)
{
    const eg_option *opt = find_option(name, strlen(name));
    if (!opt) {
        if (strcmp(name, "config") == 0)
            return eg_errorf("config: only given on the command line (--config FILE)");
        return eg_errorf("unknown option \"%.64s\"", name);
    }
    if (opt->set(opt, value, o) != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", eg_last_error());
        return eg_errorf("%s: %s", opt->name, why);
    }
    return 0;
}

/* Trims blanks and the line end from both sides of s in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int eg_serve_opts_load_file(eg_serve_opts *o, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return eg_errorf("config: %s: %s", path, strerror(errno));
    char line[4096];
    int rc = 0, lineno = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = eg_errorf("%s:%d: line longer than %zu bytes", path, lineno, sizeof line - 2);
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = eg_errorf("%s:%d: expected \"name = value\", not \"%.64s\"", path, lineno, s);
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        size_t n = strlen(value);
        if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
            value[n - 1] = '\0';
            value++;
        }
        if (eg_serve_opts_set(o, name, value) != 0) {
            char why[512];
            snprintf(why, sizeof why, "%s", eg_last_error());
            rc = eg_errorf("%s:%d: %s", path, lineno, why);
        }
    }
    if (rc == 0 && ferror(f)) rc = eg_errorf("config: %s: read error", path);
    fclose(f);
    return rc;
}

/* Splits argv[*i] into an option name and value ("--name=value" or
 * "--name value", advancing *i); -1 for anything else. */
static int split_flag(int argc, char **argv, int *i, const char **name, size_t *name_len,
                      const char **value)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0 || !a[2]) return eg_errorf("unexpected argument \"%.64s\"", a);
    a += 2;
    const char *eq = strchr(a, '=');
    *name = a;
    if (eq) {
        *name_len = eq - a;
        *value = eq + 1;
        return 0;
    }
    *name_len = strlen(a);
    if (*name_len == 4 && strncmp(a, "help", 4) == 0) {
        *value = NULL;
        return 0;
    }
    if (!find_option(a, *name_len) && strcmp(a, "config") != 0)
        return eg_errorf("unknown option --%.64s", a);
    if (*i + 1 >= argc) return eg_errorf("--%.64s: needs a value", a);
    *value = argv[++*i];
    return 0;
}

int eg_serve_opts_parse(eg_serve_opts *o, int argc, char **argv)
{
    eg_serve_opts_init(o);
    /* First pass: syntax, --help and --config. */
    for (int i = 1; i < argc; i++) {
        const char *name, *value;
        size_t len;
        EG_TRY(split_flag(argc, argv, &i, &name, &len, &value));
        if (len == 4 && strncmp(name, "help", 4) == 0) {
            if (value) return eg_errorf("--help takes no value");
            return 1;
        }
        if (len == 6 && strncmp(name, "config", 6) == 0) {
            if (!*value) return eg_errorf("config: must not be empty");
            if (strlen(value) >= sizeof o->config)
                return eg_errorf("config: path longer than %zu bytes", sizeof o->config - 1);
            strcpy(o->config, value);
        } else if (!find_option(name, len)) {
            return eg_errorf("unknown option --%.*s", (int)(len < 64 ? len : 64), name);
        }
    }
    if (o->config[0]) EG_TRY(eg_serve_opts_load_file(o, o->config));
    /* Second pass: the command line over the file. */
    for (int i = 1; i < argc; i++) {
        const char *name, *value;
        size_t len;
        EG_TRY(split_flag(argc, argv, &i, &name, &len, &value));
        if (len == 6 && strncmp(name, "config", 6) == 0) continue;
        const eg_option *opt = find_option(name, len);
        EG_TRY(eg_serve_opts_set(o, opt->name, value));
    }
    return eg_serve_opts_finish(o);
}

int eg_serve_opts_finish(eg_serve_opts *o)
{
    struct stat st;
    if (!o->data_dir_set && stat(EG_DEFAULT_DATA_ROOT, &st) == 0 && S_ISDIR(st.st_mode))
        EG_TRY(eg_serve_opts_set(o, "data-dir", EG_DEFAULT_DATA_ROOT));
    if (!o->db[0]) {
        const char *state = getenv("STATE_DIRECTORY");
        char db[EG_OPT_PATH + 16];
        if (state && *state) {
            /* systemd lists one folder per StateDirectory=, ':'-separated. */
            size_t len = strcspn(state, ":");
            snprintf(db, sizeof db, "%.*s/evograd.db", (int)len, state);
        } else {
            snprintf(db, sizeof db, "./var/evograd.db");
        }
        EG_TRY(eg_serve_opts_set(o, "db", db));
    }
    if (!o->worker_name[0]) {
        char host[256] = "localhost", name[EG_OPT_PATH];
        gethostname(host, sizeof host - 1);
        const char *port = strrchr(o->listen, ':');
        snprintf(name, sizeof name, "%s:%s", host, port ? port + 1 : o->listen);
        EG_TRY(eg_serve_opts_set(o, "worker-name", name));
    }
    if (!o->checkpoint_dir[0] && eg_store_db_is_postgres(o->db))
        return eg_errorf("checkpoint-dir: must be given with a PostgreSQL db: a folder every "
                         "box mounts at the same path");
    if (!o->checkpoint_dir[0]) {
        char dir[EG_OPT_PATH + 16];
        const char *slash = strrchr(o->db, '/');
        if (!slash) snprintf(dir, sizeof dir, "checkpoints");
        else if (slash == o->db) snprintf(dir, sizeof dir, "/checkpoints");
        else snprintf(dir, sizeof dir, "%.*s/checkpoints", (int)(slash - o->db), o->db);
        EG_TRY(eg_serve_opts_set(o, "checkpoint-dir", dir));
    }
    return 0;
}

void eg_serve_opts_usage(FILE *f)
{
    fprintf(f, "usage: evogradd serve [--config FILE] [--NAME=VALUE | --NAME VALUE]...\n"
               "  --config FILE            options from FILE: lines \"name = value\", # comments;\n"
               "                           the command line overrides the file\n");
    for (const eg_option *opt = eg_serve_options; opt->name; opt++) {
        char bounds[64] = "";
        if (opt->lo || opt->hi) snprintf(bounds, sizeof bounds, " [%lld, %lld]", opt->lo, opt->hi);
        fprintf(f, "  --%-22s %s%s%s%s\n", opt->name, opt->help, bounds,
                opt->def ? "; default " : "", opt->def ? opt->def : "");
    }
}
