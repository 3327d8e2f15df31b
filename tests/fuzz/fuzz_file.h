/* For the file readers' harnesses: the fuzzer's input as a file. */
#ifndef EG_FUZZ_FILE_H
#define EG_FUZZ_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Writes data to a file of this process (under $TMPDIR or /tmp, named by
 * `tag`) and returns its path (static); NULL when it cannot. */
const char *fuzz_file(const char *tag, const uint8_t *data, size_t size);

#endif
