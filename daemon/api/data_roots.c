/* The daemon's data roots: the only folders a job's data may come from. */
#include "api/api.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int eg_data_roots_parse(const char *list, eg_data_roots *out)
{
    memset(out, 0, sizeof *out);
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ":");
        if (n) {
            if (out->n == EG_MAX_DATA_ROOTS)
                return eg_errorf("at most %d folders", EG_MAX_DATA_ROOTS);
            char one[PATH_MAX];
            if (n >= sizeof one) return eg_errorf("a folder name is longer than %zu bytes",
                                                  sizeof one - 1);
            memcpy(one, p, n);
            one[n] = '\0';
            char real[PATH_MAX];
            if (!realpath(one, real)) return eg_errorf("%s: %s", one, strerror(errno));
            if (!is_dir(real)) return eg_errorf("%s: not a folder", one);
            if (strlen(real) >= sizeof out->path[0])
                return eg_errorf("%s: longer than %zu bytes", real, sizeof out->path[0] - 1);
            strcpy(out->path[out->n++], real);
        }
        p += n;
        if (*p == ':') p++;
    }
    return 0;
}

/* Whether real (a resolved path) is root or lies below it. */
static int under(const char *real, const char *root)
{
    size_t n = strlen(root);
    if (strncmp(real, root, n) != 0) return 0;
    return real[n] == '\0' || real[n] == '/' || (n == 1 && root[0] == '/');
}

/* The roots as "a, b" for messages. */
static void roots_text(const eg_data_roots *r, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < r->n && o < cap; i++)
        o += snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", r->path[i]);
    if (!r->n) snprintf(buf, cap, "none: start the daemon with --data-dir");
}

/* Resolves a path the job gave for field: an absolute one as it is, a
 * relative one against each root in turn (the first that exists); then it
 * must lie inside a root once ".." and links are resolved, and be a folder
 * when want_dir (else a folder or a file). */
static int resolve_given(const eg_data_roots *r, const char *field, char *path, size_t cap,
                         int want_dir)
{
    char roots[1024], real[PATH_MAX];
    roots_text(r, roots, sizeof roots);
    const char *found = NULL;
    char joined[PATH_MAX];
    if (path[0] == '/') {
        if (realpath(path, real)) found = path;
    } else {
        for (int i = 0; i < r->n && !found; i++) {
            if (snprintf(joined, sizeof joined, "%s/%s", r->path[i], path) >= (int)sizeof joined)
                continue;
            if (realpath(joined, real)) found = joined;
        }
    }
    if (!found)
        return eg_errorf("%s: %s does not exist%s%s%s", field, path,
                         path[0] == '/' ? "" : " in any of the daemon's data folders (",
                         path[0] == '/' ? "" : roots, path[0] == '/' ? "" : ")");
    int inside = 0;
    for (int i = 0; i < r->n && !inside; i++) inside = under(real, r->path[i]);
    if (!inside)
        return eg_errorf("%s: %s is outside the daemon's data folders (%s)", field, path, roots);
    if (want_dir && !is_dir(real)) return eg_errorf("%s: %s is not a folder", field, path);
    if (strlen(real) >= cap)
        return eg_errorf("%s: %s is longer than %zu bytes", field, real, cap - 1);
    strcpy(path, real);
    return 0;
}

/* Resolves the folder of dataset `name` for field: the path given, else
 * root/NAME, else a root holding the files itself. */
static int resolve_dataset(const eg_data_roots *r, const char *field, const char *name,
                           char *path, size_t cap)
{
    if (path[0]) return resolve_given(r, field, path, cap, 1);
    for (int i = 0; i < r->n; i++) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", r->path[i], name);
        const char *cand[2] = {sub, r->path[i]};
        for (int c = 0; c < 2; c++) {
            if (!is_dir(cand[c]) || !eg_dataset_present(name, cand[c])) continue;
            char real[PATH_MAX];
            if (!realpath(cand[c], real) || !under(real, r->path[i])) continue;
            if (strlen(real) >= cap) continue;
            strcpy(path, real);
            return 0;
        }
    }
    char roots[1024];
    roots_text(r, roots, sizeof roots);
    return eg_errorf("%s: no folder of the daemon's data folders (%s) holds %s; put it in "
                     "NAME/ under one of them or give %s", field, roots, name, field);
}

/* The resolver a task's own paths go through (meta/task_def.h). */
static _Thread_local char failed_field[128];

static int resolve_task_path(void *ctx, const char *field, const char *dataset, char *path,
                             size_t cap)
{
    snprintf(failed_field, sizeof failed_field, "%s", field);
    const eg_data_roots *r = ctx;
    return dataset ? resolve_dataset(r, field, dataset, path, cap)
                   : resolve_given(r, field, path, cap, 0);
}

int eg_data_roots_resolve(const eg_data_roots *r, eg_job *job, const char **field)
{
    *field = "dataset.path";
    if (!(job->task->flags & EG_TASKF_NO_DATASET) && strcmp(job->dataset.name, "none") != 0)
        EG_TRY(resolve_dataset(r, "dataset.path", job->dataset.name, job->dataset.path,
                               sizeof job->dataset.path));
    if (!job->task->paths) return 0;
    int rc = job->task->paths(job, resolve_task_path, (void *)r);
    *field = failed_field;
    return rc;
}
