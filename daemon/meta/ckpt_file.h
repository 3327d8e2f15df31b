/* The checkpoint file: a run's items (util/ckpt.h) in one file.
 *
 *   "EGCKPT2\0"                      magic, 8 bytes
 *   int32 count                      items
 *   count x { uint32 len, name[len], uint64 bytes, payload[bytes] }
 *   uint32 crc32                     zlib's CRC-32 of everything before it
 *
 * All integers little-endian (the host's order on the machines we run on).
 * Files of the first format (magic "EGCKPT1", no checksum) are still read. */
#ifndef EG_CKPT_FILE_H
#define EG_CKPT_FILE_H

#include "nn/backend.h"
#include "util/ckpt.h"

/* Writes items[0..n) (device items downloaded through be) to path.tmp,
 * flushes it to disk and renames it over path, so path is always either
 * the old file or the whole new one. 0, or -1 with eg_errorf naming the
 * file and the cause (a full disk says "No space left on device"). */
int eg_ckpt_file_write(eg_backend *be, const char *path, const eg_ckpt_item *items, int n);

/* Reads path into items[0..n) (device items uploaded through be), after
 * checking the whole file: its magic, that it holds exactly these items by
 * name and size ("... holds X where this job has Y"), that no item runs
 * past the end ("... is truncated") and the checksum ("... is corrupted").
 * Nothing is written to the items unless every check passed. */
int eg_ckpt_file_read(eg_backend *be, const char *path, const eg_ckpt_item *items, int n);

/* Removes path and the path.tmp a write may have left (a kill inside
 * eg_ckpt_file_write); files that are not there are no error. 0, or -1
 * with eg_errorf naming the first that could not be removed. */
int eg_ckpt_file_remove(const char *path);

#endif
