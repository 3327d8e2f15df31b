#include "ctl_table.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

void ctl_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_row(ctl_table *t, const char *const *cells)
{
    for (int i = 0; i < t->ncols; i++) {
        if (i) fputc(',', t->f);
        ctl_csv_field(t->f, cells[i] ? cells[i] : "");
    }
    fputc('\n', t->f);
}

/* Display width of a UTF-8 string: one column per code point. */
static size_t columns(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* Display width of a cell as written: in Markdown, '|' becomes "\\|". */
static size_t cell_width(const ctl_table *t, const char *s)
{
    size_t n = columns(s);
    if (t->markdown)
        for (; *s; s++) n += *s == '|';
    return n;
}

int ctl_table_init(ctl_table *t, FILE *f, int format, int ncols, const char *const *head)
{
    *t = (ctl_table){.f = f, .csv = format == CTL_TABLE_CSV,
                     .markdown = format == CTL_TABLE_MARKDOWN, .ncols = ncols, .head = head};
    int csv = t->csv;
    if (ncols < 1 || ncols > CTL_TABLE_MAX_COLS)
        return eg_errorf("a table has 1 to %d columns", CTL_TABLE_MAX_COLS);
    if (csv) return 0;
    t->width = calloc((size_t)ncols, sizeof *t->width);
    if (!t->width) return eg_errorf("out of memory");
    for (int i = 0; i < ncols; i++) {
        t->width[i] = cell_width(t, head[i]);
        if (t->markdown && t->width[i] < 3) t->width[i] = 3;
    }
    return 0;
}

int ctl_table_row(ctl_table *t, const char *const *cells)
{
    if (t->csv) {
        if (!t->rows) csv_row(t, t->head);
        csv_row(t, cells);
        t->rows = 1; /* the header is out */
        return 0;
    }
    if (t->rows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        char **p = realloc(t->cells, cap * (size_t)t->ncols * sizeof *p);
        if (!p) {
            t->failed = 1;
            return eg_errorf("out of memory");
        }
        t->cells = p;
        t->cap = cap;
    }
    char **row = t->cells + t->rows * (size_t)t->ncols;
    for (int i = 0; i < t->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "");
        if (!row[i]) {
            for (int j = 0; j < i; j++) free(row[j]);
            t->failed = 1;
            return eg_errorf("out of memory");
        }
        size_t w = cell_width(t, row[i]);
        if (w > t->width[i]) t->width[i] = w;
    }
    t->rows++;
    return 0;
}

/* Whether a cell reads as a number, or a mean ± std (right-aligned). */
static int numeric(const char *s)
{
    if (!*s || strcmp(s, "-") == 0) return 1;
    char *end;
    strtod(s, &end);
    if (end != s && strncmp(end, " ± ", strlen(" ± ")) == 0) {
        const char *rest = end + strlen(" ± ");
        strtod(rest, &end);
        return end != rest && *end == '\0';
    }
    return end != s && (*end == '\0' || *end == '%');
}

static void put_cell(const ctl_table *t, const char *s)
{
    for (; *s; s++) {
        if (t->markdown && *s == '|') fputc('\\', t->f);
        fputc(*s, t->f);
    }
}

/* Prints one row; right[i]: column i holds numbers (right-aligned). */
static void print_row(ctl_table *t, const char *const *cells, const char *right)
{
    for (int i = 0; i < t->ncols; i++) {
        const char *s = cells[i];
        size_t pad = t->width[i] - cell_width(t, s);
        if (t->markdown) fputs(i ? " | " : "| ", t->f);
        else if (i) fputs("  ", t->f);
        if (right[i]) fprintf(t->f, "%*s", (int)pad, "");
        put_cell(t, s);
        if (!right[i] && (t->markdown || i + 1 < t->ncols)) fprintf(t->f, "%*s", (int)pad, "");
    }
    if (t->markdown) fputs(" |", t->f);
    fputc('\n', t->f);
}

/* The Markdown line under the header: dashes, a colon on the right of
 * number columns. */
static void print_rule(ctl_table *t, const char *right)
{
    for (int i = 0; i < t->ncols; i++) {
        fputs(i ? " | " : "| ", t->f);
        size_t w = t->width[i] < 3 ? 3 : t->width[i];
        for (size_t k = 0; k + 1 < w; k++) fputc('-', t->f);
        fputc(right[i] ? ':' : '-', t->f);
    }
    fputs(" |\n", t->f);
}

int ctl_table_finish(ctl_table *t, int print)
{
    if (t->csv && print && !t->rows) csv_row(t, t->head);
    if (t->csv) t->rows = 0;
    if (!t->csv && print) {
        char right[CTL_TABLE_MAX_COLS];
        for (int i = 0; i < t->ncols; i++) {
            right[i] = t->rows > 0;
            for (size_t r = 0; r < t->rows && right[i]; r++)
                right[i] = (char)numeric(t->cells[r * (size_t)t->ncols + (size_t)i]);
        }
        print_row(t, t->head, right);
        if (t->markdown) print_rule(t, right);
        for (size_t r = 0; r < t->rows; r++)
            print_row(t, (const char *const *)(t->cells + r * (size_t)t->ncols), right);
    }
    for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    free(t->width);
    int failed = t->failed;
    *t = (ctl_table){0};
    return failed ? -1 : 0;
}
