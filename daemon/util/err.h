/* Error reporting below main: functions return 0 on success or -1 on
 * failure after recording a message with eg_errorf(); callers pass the -1
 * up and whoever handles it reads eg_last_error(). The message is
 * per-thread, so a failing job never garbles another thread's error. */
#ifndef EG_ERR_H
#define EG_ERR_H

#if defined(__GNUC__)
#define EG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EG_PRINTF(a, b)
#endif

/* Records a formatted message for this thread and returns -1. The
 * arguments may include eg_last_error(), to wrap the previous message. */
int eg_errorf(const char *fmt, ...) EG_PRINTF(1, 2);

/* The last message recorded on this thread ("" if none). */
const char *eg_last_error(void);

/* Clears this thread's message. */
void eg_clear_error(void);

/* Evaluates an int expression and returns -1 from the caller if it failed. */
#define EG_TRY(expr)                                                           \
    do {                                                                       \
        if ((expr) != 0) return -1;                                            \
    } while (0)

#endif
