/*
 * util.h — small helpers shared by common/ and relay/.
 */
#ifndef IL_UTIL_H
#define IL_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock, milliseconds since the Unix epoch. */
int64_t util_now_ms(void);
/* Monotonic clock, milliseconds. */
int64_t util_mono_ms(void);

/* ms since the epoch as RFC 3339 UTC with milliseconds,
 * "2026-11-24T02:13:03.651Z" (24 characters and a NUL). */
void util_time_str(int64_t ms, char out[32]);
/* The exact inverse, for n bytes at s: 0, or -1 if s is not that form (or
 * not a real date). */
int util_time_parse(const char *s, size_t n, int64_t *ms);

/* Read a whole file (at most max bytes; IL_ETOOLARGE past that) into a
 * malloc'd buffer with a NUL after the data. */
int util_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len);

/* Read all of fd (at most max bytes) the same way. On IL_ETOOLARGE,
 * *out_len is how much was read (more than max; the rest is unread). */
int util_read_fd(int fd, size_t max, uint8_t **out, size_t *out_len);

/* mkdir -p with mode for created folders. */
int util_mkdirs(const char *path, unsigned mode);

/* fsync a directory (after a rename into it). */
int util_fsync_dir(const char *path);

/*
 * Before binding a unix socket at path: refuse (-EADDRINUSE) if something
 * listens there (another daemon), refuse (-EEXIST) if it is not a socket,
 * and remove a stale socket file. err gets "WHAT PATH: reason".
 */
int util_claim_unix_path(const char *path, const char *what, char *err, size_t errlen);

/* Random bytes from the OS. */
int util_random(void *buf, size_t len);

/* Big-endian integer helpers for wire formats. */
static inline void util_put_u16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static inline void util_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static inline void util_put_u64(uint8_t *p, uint64_t v)
{
	util_put_u32(p, (uint32_t)(v >> 32));
	util_put_u32(p + 4, (uint32_t)v);
}
static inline uint16_t util_get_u16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t util_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t util_get_u64(const uint8_t *p)
{
	return (uint64_t)util_get_u32(p) << 32 | util_get_u32(p + 4);
}

#endif
