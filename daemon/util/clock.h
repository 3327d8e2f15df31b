/* Time for step and request timings. */
#ifndef EG_CLOCK_H
#define EG_CLOCK_H

/* Milliseconds on the monotonic clock. */
double eg_now_ms(void);

#endif
