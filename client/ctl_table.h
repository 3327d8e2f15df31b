/* Tables on stdout: aligned columns for people, CSV (RFC 4180) for
 * programs, or a Markdown (GitHub) table for notes and papers. An aligned
 * or Markdown table is printed once all its rows are in (the widths depend
 * on every row); CSV rows are written as they come. */
#ifndef CTL_TABLE_H
#define CTL_TABLE_H

#include <stdio.h>

#define CTL_TABLE_MAX_COLS 32

/* The formats; 0 and 1 are what a --csv flag holds. */
typedef enum { CTL_TABLE_ALIGNED = 0, CTL_TABLE_CSV = 1, CTL_TABLE_MARKDOWN = 2 } ctl_table_format;

typedef struct ctl_table {
    FILE *f;
    int csv;
    int markdown;
    int ncols;
    const char *const *head;
    char **cells;        /* aligned: rows x ncols copies */
    size_t rows, cap;
    size_t *width;       /* (ncols) */
    int failed;          /* out of memory: rows were lost */
} ctl_table;

/* Starts a table in format (a ctl_table_format) with ncols
 * (1..CTL_TABLE_MAX_COLS) columns named head[] (kept, not copied).
 * Returns 0, or -1 with eg_errorf. */
int ctl_table_init(ctl_table *t, FILE *f, int format, int ncols, const char *const *head);

/* Adds a row of ncols cells (copied); CSV writes it at once, after the
 * header when it is the first. Returns 0, or -1 with eg_errorf. */
int ctl_table_row(ctl_table *t, const char *const *cells);

/* When print is set, prints an aligned or Markdown table (columns of
 * numbers right-aligned; in Markdown, '|' in a cell escaped) or, for CSV
 * without rows, the header; then frees the table. Returns 0, or -1 when rows were lost. */
int ctl_table_finish(ctl_table *t, int print);

/* Writes one CSV field, quoted when it holds a comma, quote or line end. */
void ctl_csv_field(FILE *f, const char *s);

#endif
