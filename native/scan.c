/*
 * integ's scan of a batch of regular files and folders in one call (src/scan/native-scan.ts calls
 * it with koffi from the hash workers): for each file statx, openat, the reads (the first one with
 * RWF_NOWAIT: is the cache cold?), BLAKE3 (the official C implementation, vendored in
 * native/blake3/), fstat after the read, FS_IOC_GETFLAGS, flistxattr, close; for a folder statx,
 * and where flags or xattrs are asked open, fstat, the same two reads, close. A small packaged
 * file is read whole into an MD5 lane and gets dpkg's MD5 there, 32 files side by side
 * (md5x16.c), as md5-lanes.ts does. Each result is written where the worker's packed results want
 * it, compare text included (src/core/entry-cmp.ts). It does only what scan-entry.ts's hashFile,
 * dirMeta and hashInLanes do on their common path, the same calls in the same order. Anything else
 * (an error, a race, a change while reading, xattrs it does not encode, no room) leaves the job
 * undone, and the worker scans that job again the JavaScript way, which decides: this file never
 * reports a failure of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "blake3/blake3.h"

#define EXPORT __attribute__((visibility("default")))

/* take[i] on the way in: scan job i here (TAKE), with its xattrs (XATTRS) and flags (FLAGS) */
#define TAKE 1
#define XATTRS 2
#define FLAGS 4
/* and its MD5 in a lane (MD5) */
#define MD5 8
/* take[i] on the way out: job i's result is written (DONE), with its MD5 (HAS_MD5) */
#define DONE 0x80
#define HAS_MD5 0x40

/* opts */
#define ADVISE 1

/* packed result codes (pool-protocol.ts) */
#define STATUS_OK 1
#define X_ABSENT 0
#define X_TEXT 2

#define ADVISE_MAX (512 * 1024)
#define XATTR_INLINE_MAX 4096
#define LIST_MAX 4096

/* devices whose file system refused RWF_NOWAIT (scan-entry.ts asks the same once per device) */
static __thread dev_t refused[16];
static __thread int nrefused;

static int nowait_refused(dev_t d) {
  for (int i = 0; i < nrefused; i++)
    if (refused[i] == d) return 1;
  return 0;
}

static const char HEXD[] = "0123456789abcdef";

static char *put_u64(char *o, uint64_t v) {
  char t[24];
  int k = 0;
  do {
    t[k++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (k) *o++ = t[--k];
  return o;
}

static char *put_i64(char *o, int64_t v) {
  if (v < 0) {
    *o++ = '-';
    return put_u64(o, (uint64_t)0 - (uint64_t)v);
  }
  return put_u64(o, (uint64_t)v);
}

static char *put_str(char *o, const char *s) {
  while (*s) *o++ = *s++;
  return o;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *put_b64(char *o, const uint8_t *p, size_t n) {
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *o++ = B64[v >> 18];
    *o++ = B64[(v >> 12) & 63];
    *o++ = B64[(v >> 6) & 63];
    *o++ = B64[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    *o++ = B64[v >> 18];
    *o++ = B64[(v >> 12) & 63];
    *o++ = '=';
    *o++ = '=';
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    *o++ = B64[v >> 18];
    *o++ = B64[(v >> 12) & 63];
    *o++ = B64[(v >> 6) & 63];
    *o++ = '=';
  }
  return o;
}

/* nanoseconds since the epoch; 0 when it would not fit (the JavaScript way takes those) */
static int ns_of(int64_t sec, uint32_t nsec, int64_t *out) {
  if (sec > 9000000000LL || sec < -9000000000LL) return 0;
  *out = sec * 1000000000LL + (int64_t)nsec;
  return 1;
}

static int same_file(const struct statx *a, const struct statx *b) {
  return S_ISREG(a->stx_mode) && a->stx_ino == b->stx_ino && a->stx_dev_major == b->stx_dev_major &&
         a->stx_dev_minor == b->stx_dev_minor;
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The xattrs of an open file in the stored encoding (fsmeta.ts readXattrsFd): "[]" when it has
 * none, "unsupported" where the file system has none, else JSON pairs [name, base64 value]
 * sorted by name. Returns the end of what it wrote, or NULL where the JavaScript way must decide:
 * an error, a name that is not plain printable ASCII (JSON would escape it, or it is not UTF-8),
 * a value too large to inline, a list or encoding past the room left.
 */
static char *put_xattrs(char *o, char *end, int fd) {
  char list[LIST_MAX];
  ssize_t len = flistxattr(fd, list, sizeof list);
  if (len < 0) {
    if (errno == ENOTSUP || errno == ENOSYS) return end - o >= 11 ? put_str(o, "unsupported") : NULL;
    return NULL;
  }
  if (len == 0) return end - o >= 2 ? put_str(o, "[]") : NULL;
  const char *names[LIST_MAX / 2];
  int k = 0;
  for (ssize_t i = 0, s = 0; i < len; i++) {
    if (list[i] != 0) {
      unsigned char c = (unsigned char)list[i];
      if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return NULL;
      continue;
    }
    if (i > s) names[k++] = list + s;
    s = i + 1;
  }
  if (len > 0 && list[len - 1] != 0) return NULL;
  qsort(names, (size_t)k, sizeof names[0], name_cmp);
  uint8_t value[XATTR_INLINE_MAX];
  if (end - o < 2) return NULL;
  *o++ = '[';
  int first = 1;
  for (int i = 0; i < k; i++) {
    ssize_t v = fgetxattr(fd, names[i], value, sizeof value);
    if (v < 0) {
      if (errno == ENODATA) continue; /* removed between list and get: as readXattrsFd */
      return NULL;
    }
    size_t nl = strlen(names[i]);
    if ((size_t)(end - o) < nl + 4 * ((size_t)v / 3 + 1) + 8) return NULL;
    if (!first) *o++ = ',';
    first = 0;
    *o++ = '[';
    *o++ = '"';
    memcpy(o, names[i], nl);
    o += nl;
    *o++ = '"';
    *o++ = ',';
    *o++ = '"';
    o = put_b64(o, value, (size_t)v);
    *o++ = '"';
    *o++ = ']';
  }
  if (end - o < 1) return NULL;
  *o++ = ']';
  return o;
}

/* what the first pass found of a job: nothing to do here, a regular file or a directory */
enum kind { NONE, FILE_, DIR_ };

struct pre {
  enum kind kind;
  int fd; /* -1: none (a directory whose flags and xattrs are not asked is not opened) */
  struct statx st;
};

/*
 * Read an open regular file to its end and BLAKE3 it, as hashFile does: the first read does not
 * wait for the disk (so the cache's coldness is known), at most one buffer past lstat's size is
 * read, and after the read the descriptor must still be that file, with lstat's size and mtime,
 * all of it read. 1 with the digest, 0 where the JavaScript way must decide.
 */
static int read_hash(int fd, const struct statx *st, uint8_t *buf, uint32_t buflen, int keep,
                     const volatile int32_t *stop, double *stats, uint8_t *digest) {
  uint64_t expected = st->stx_size, pos = 0;
  blake3_hasher h;
  blake3_hasher_init(&h);
  int first = 1, timed = 0;
  struct timespec t0;
  ssize_t r;
  for (;;) {
    if (*stop) return 0;
    r = -1;
    if (first) {
      first = 0;
      dev_t dev = makedev(st->stx_dev_major, st->stx_dev_minor);
      if (!nowait_refused(dev)) {
        struct iovec v = {buf, buflen};
        do r = preadv2(fd, &v, 1, -1, RWF_NOWAIT);
        while (r < 0 && errno == EINTR);
        if (r < 0) {
          if (errno != EAGAIN) {
            /* refused by the file system, unless this is not that regular file any more */
            struct statx now;
            if ((errno == ENOTSUP || errno == EINVAL || errno == ENOSYS) &&
                statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &now) == 0 && S_ISREG(now.stx_mode) &&
                now.stx_dev_major == st->stx_dev_major && now.stx_dev_minor == st->stx_dev_minor && nrefused < 16)
              refused[nrefused++] = dev;
            return 0; /* the JavaScript way reads this one */
          }
          stats[0] += 1;
        } else if ((uint64_t)r < buflen && (uint64_t)r < expected)
          stats[0] += 1; /* only part of it was cached */
      } else {
        timed = 1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        stats[1] += 1;
        stats[2] += (double)expected;
      }
    }
    /* keep: the whole file stays in buf, read after read (a lane hashes its MD5 next) */
    uint8_t *at = keep ? buf + pos : buf;
    uint64_t want = keep ? buflen - pos : buflen;
    if (r < 0) {
      if (want == 0) break; /* a kept file past buflen: it changed (caught below) */
      do r = read(fd, at, want);
      while (r < 0 && errno == EINTR);
      if (r < 0) return 0;
    }
    if (r == 0) break;
    blake3_hasher_update(&h, at, (size_t)r);
    pos += (uint64_t)r;
    if (pos > expected || ((uint64_t)r < want && pos == expected)) break;
  }
  if (timed) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    stats[3] += (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  }
  struct statx now;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &now) != 0 || !same_file(&now, st)) return 0;
  if (now.stx_size != st->stx_size || now.stx_mtime.tv_sec != st->stx_mtime.tv_sec ||
      now.stx_mtime.tv_nsec != st->stx_mtime.tv_nsec || pos != expected)
    return 0;
  blake3_hasher_finalize(&h, digest, BLAKE3_OUT_LEN);
  return 1;
}

/* a directory's descriptor is still the directory lstat saw (scan-entry.ts dirMeta) */
static int same_dir(int fd, const struct statx *st) {
  struct statx now;
  return statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &now) == 0 && now.stx_ino == st->stx_ino &&
         now.stx_dev_major == st->stx_dev_major && now.stx_dev_minor == st->stx_dev_minor;
}

/* where results go: the packed results' fixed part, and the compare texts */
struct out {
  double *num;
  int64_t *big;
  uint64_t *ino;
  int32_t *tstart, *tend;
  uint8_t *status, *xstate;
  char *text;
  uint32_t textcap, to;
  uint32_t *textstart, *textend;
};

/*
 * Job i's result, from its lstat st and (for a regular file) its digest: flags and xattrs through
 * fd where asked, then the compare text and the numbers. 1 when written, 0 where the JavaScript
 * way must decide (an error, xattrs it does not encode, no room left).
 */
static int finish(struct out *out, uint32_t i, uint8_t take, int fd, const struct statx *st, int file,
                  const uint8_t *digest) {
  int64_t mtime, ctime, flags = 0;
  int has_flags = 0;
  if (!ns_of(st->stx_mtime.tv_sec, st->stx_mtime.tv_nsec, &mtime) ||
      !ns_of(st->stx_ctime.tv_sec, st->stx_ctime.tv_nsec, &ctime))
    return 0;
  char *o = out->text + out->to, *end = out->text + out->textcap;
  /* room for the fixed fields: 8 numbers of at most 20 characters, the digest, separators */
  if (end - o < 8 * 21 + 64 + 64) return 0;
  if (take & FLAGS) {
    int64_t v = 0; /* as fsmeta.ts readFlags: 8 bytes zeroed, the low 32 bits read */
    if (ioctl(fd, FS_IOC_GETFLAGS, &v) < 0) {
      if (errno != ENOTTY && errno != ENOTSUP && errno != EINVAL && errno != ENOSYS) return 0;
      flags = -1; /* FLAGS_UNSUPPORTED */
    } else
      flags = (int64_t)(uint32_t)v;
    has_flags = 1;
  }
  o = put_str(o, file ? "file " : "dir ");
  o = put_u64(o, st->stx_mode & 07777);
  *o++ = ' ';
  o = put_u64(o, st->stx_uid);
  *o++ = ' ';
  o = put_u64(o, st->stx_gid);
  *o++ = ' ';
  o = put_u64(o, st->stx_size);
  *o++ = ' ';
  o = put_i64(o, mtime);
  *o++ = ' ';
  o = put_i64(o, ctime);
  *o++ = ' ';
  o = put_i64(o, (int64_t)st->stx_ino);
  *o++ = ' ';
  o = put_u64(o, st->stx_nlink);
  o = put_str(o, " - "); /* no symlink target */
  if (file)
    for (int b = 0; b < BLAKE3_OUT_LEN; b++) {
      *o++ = HEXD[digest[b] >> 4];
      *o++ = HEXD[digest[b] & 15];
    }
  else
    *o++ = '-';
  o = put_str(o, " - "); /* no SHA-256 */
  if (has_flags)
    o = put_i64(o, flags);
  else
    *o++ = '-';
  *o++ = ' ';
  if (take & XATTRS) {
    *o++ = 'x';
    o = put_xattrs(o, end, fd);
    if (!o) return 0;
  } else
    *o++ = '-';
  out->num[i * 6] = file ? 0 : 1; /* pool-protocol.ts TYPES: file, dir */
  out->num[i * 6 + 1] = st->stx_mode & 07777;
  out->num[i * 6 + 2] = st->stx_uid;
  out->num[i * 6 + 3] = st->stx_gid;
  out->num[i * 6 + 4] = st->stx_nlink;
  out->num[i * 6 + 5] = has_flags ? (double)flags : __builtin_nan("");
  out->big[i * 3] = (int64_t)st->stx_size;
  out->big[i * 3 + 1] = mtime;
  out->big[i * 3 + 2] = ctime;
  out->ino[i] = st->stx_ino;
  out->tstart[i] = -1;
  out->tend[i] = -1;
  out->status[i] = STATUS_OK;
  out->xstate[i] = take & XATTRS ? X_TEXT : X_ABSENT;
  out->textstart[i] = out->to;
  out->textend[i] = (uint32_t)(o - out->text);
  out->to = out->textend[i];
  return 1;
}

/*
 * The MD5 lanes (md5x16.c): 32 files side by side. lanes: LANES_MEM bytes, the state of two sets of
 * 16 lanes (4 words x 16 lanes each, word-major) at 0, the lanes' 32 offsets at 512, lane l's file
 * at LANE_AT + l * LANE_STRIDE (a file of up to LANE_READ bytes and its padding).
 */
#define NLANES 32
#define LANE_READ (128 * 1024) /* md5-lanes.ts LANE_READ */
#define LANE_STRIDE (LANE_READ + 128)
#define LANE_AT 1024
#define LANES_MEM (LANE_AT + NLANES * LANE_STRIDE)

void integ_md5x32(uint8_t *mem, uint32_t state_off, uint32_t ptrs_off, int32_t n);
void integ_md5x1(uint8_t *mem, uint32_t state_off, uint32_t lane, uint32_t ptr, int32_t n);

static uint32_t *lane_word(uint8_t *lanes, int l, int w) {
  return (uint32_t *)(lanes + 256 * (l >> 4) + 64 * w + 4 * (l & 15));
}

/* lane l holds a whole file of len bytes: pad it as MD5 does and start its state; its block count */
static int32_t lane_start(uint8_t *lanes, int l, uint64_t len) {
  uint8_t *p = lanes + LANE_AT + (size_t)l * LANE_STRIDE;
  int32_t blocks = (int32_t)((len + 8) / 64 + 1);
  p[len] = 0x80;
  memset(p + len + 1, 0, (size_t)blocks * 64 - 8 - len - 1);
  uint64_t bits = len * 8;
  memcpy(p + (size_t)blocks * 64 - 8, &bits, 8); /* little-endian x86-64 */
  static const uint32_t iv[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  for (int w = 0; w < 4; w++) *lane_word(lanes, l, w) = iv[w];
  ((uint32_t *)(lanes + 512))[l] = LANE_AT + (uint32_t)l * LANE_STRIDE;
  return blocks;
}

static void lane_digest(uint8_t *lanes, int l, char *hex) {
  for (int w = 0; w < 4; w++) {
    uint32_t v = *lane_word(lanes, l, w);
    for (int b = 0; b < 4; b++, v >>= 8) {
      hex[8 * w + 2 * b] = HEXD[(v >> 4) & 15];
      hex[8 * w + 2 * b + 1] = HEXD[v & 15];
    }
  }
}

/* job i's file is read whole into a lane and gets its MD5 there */
#define IN_LANE(i) ((take[i] & MD5) && lanes && pre[i].kind == FILE_ && pre[i].st.stx_size <= LANE_READ)

static __thread const struct pre *sort_pre; /* per thread: both workers sort at once */
static int by_size_desc(const void *a, const void *b) {
  uint64_t x = sort_pre[*(const uint32_t *)a].st.stx_size, y = sort_pre[*(const uint32_t *)b].st.stx_size;
  return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Scan the jobs with TAKE set in take[]. reals/ends: the paths to read, one after another (job i's
 * from ends[i-1], or 0, to ends[i]); dirfds[i] >= 0: a folder the walk holds open, the entry is
 * then its last name there. open_flags: what openForRead opens with (without O_CLOEXEC). stop: the
 * pool's stop flag. buf: the read buffer. num (6 a job), big (3), ino, tstart, tend, status,
 * xstate: the packed results' fixed part (pool-protocol.ts resultViews); text: compare texts, job
 * i's from textstart[i] to textend[i] where it is done. stats: files found uncached, files read
 * with a clock, their bytes, their milliseconds (the worker's cache heuristic). Regular files and
 * directories only.
 *
 * A job with MD5 set and a regular file of up to LANE_READ bytes is read whole into a lane of
 * `lanes` (LANES_MEM bytes, where the caller's CPU may run md5x16.c: the caller checks) and gets
 * its MD5 there too, 32 files side by side as md5-lanes.ts's hashInLanes does: its hex in
 * md5hex[32 i], and HAS_MD5 in take[i]. Returns the number of jobs done.
 */
EXPORT int integ_scan(const uint8_t *reals, const uint32_t *ends, const int32_t *dirfds, uint8_t *take, uint32_t n,
                      uint32_t opts, int32_t open_flags, const volatile int32_t *stop, uint8_t *buf, uint32_t buflen,
                      double *num, int64_t *big, uint64_t *ino, int32_t *tstart, int32_t *tend, uint8_t *status,
                      uint8_t *xstate, char *text, uint32_t textcap, uint32_t *textstart, uint32_t *textend,
                      double *stats, uint8_t *lanes, char *md5hex) {
  struct pre *pre = malloc(sizeof(struct pre) * (n ? n : 1));
  uint32_t *inlane = malloc(sizeof(uint32_t) * (n ? n : 1));
  if (!pre || !inlane) {
    free(pre);
    free(inlane);
    return 0;
  }
  struct out out = {num, big, ino, tstart, tend, status, xstate, text, textcap, 0, textstart, textend};
  char name[4096];
  int done = 0;
  uint32_t nlane = 0;
  /* first every entry's lstat and every file's open (and the advice), then the reads: as scanBatch */
  for (uint32_t i = 0; i < n; i++) {
    pre[i].kind = NONE;
    pre[i].fd = -1;
    textstart[i] = textend[i] = 0;
    if (!(take[i] & TAKE) || *stop) continue;
    uint32_t s = i ? ends[i - 1] : 0, e = ends[i];
    int dirfd = AT_FDCWD;
    const uint8_t *p = reals + s;
    uint32_t len = e - s;
    if (dirfds[i] >= 0) {
      uint32_t slash = len;
      while (slash > 0 && p[slash - 1] != '/') slash--;
      p += slash;
      len -= slash;
      dirfd = dirfds[i];
    }
    if (len == 0 || len >= sizeof name || memchr(p, 0, len)) continue;
    memcpy(name, p, len);
    name[len] = 0;
    if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &pre[i].st) != 0) continue;
    int fd = -1;
    if (S_ISREG(pre[i].st.stx_mode)) {
      do fd = openat(dirfd, name, open_flags | O_CLOEXEC);
      while (fd < 0 && errno == EINTR);
      if (fd < 0) continue;
      if (opts & ADVISE) {
        uint64_t a = pre[i].st.stx_size < ADVISE_MAX ? pre[i].st.stx_size : ADVISE_MAX;
        if (a > 0) posix_fadvise(fd, 0, (off_t)a, POSIX_FADV_WILLNEED);
      }
      pre[i].kind = FILE_;
      if (IN_LANE(i)) inlane[nlane++] = i;
    } else if (S_ISDIR(pre[i].st.stx_mode)) {
      if (take[i] & (FLAGS | XATTRS)) {
        do fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_DIRECTORY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd < 0) continue;
      }
      pre[i].kind = DIR_;
    } else
      continue;
    pre[i].fd = fd;
  }
  /* the files and folders that take no lane, in order */
  for (uint32_t i = 0; i < n; i++) {
    if (pre[i].kind == NONE || IN_LANE(i)) continue;
    const struct statx *st = &pre[i].st;
    int fd = pre[i].fd, file = pre[i].kind == FILE_;
    uint8_t digest[BLAKE3_OUT_LEN];
    if (!*stop && (file ? read_hash(fd, st, buf, buflen, 0, stop, stats, digest) : fd < 0 || same_dir(fd, st)) &&
        finish(&out, i, take[i], fd, st, file, digest)) {
      take[i] |= DONE;
      done++;
    }
    if (fd >= 0) close(fd);
  }
  /*
   * The lanes' files, largest first: a lane takes the next file when its own MD5 ends, so the lanes
   * idle only over the last few small files; when two lanes or fewer are left busy, each ends alone
   * in plain C (two in lockstep would cost 2/16 of a step for 2 lanes' work).
   */
  if (nlane > 0) {
    sort_pre = pre;
    qsort(inlane, nlane, sizeof inlane[0], by_size_desc);
    int32_t left[NLANES];
    uint32_t job[NLANES];
    for (int l = 0; l < NLANES; l++) left[l] = 0;
    uint32_t next = 0;
    for (;;) {
      int busy = 0;
      for (int l = 0; l < NLANES; l++) {
        while (left[l] == 0 && next < nlane && !*stop) {
          uint32_t i = inlane[next++];
          const struct statx *st = &pre[i].st;
          uint8_t *at = lanes + LANE_AT + (size_t)l * LANE_STRIDE;
          uint8_t digest[BLAKE3_OUT_LEN];
          /* the whole file, unchanged while read, is in the lane: its MD5 can be trusted as its BLAKE3 is */
          if (read_hash(pre[i].fd, st, at, LANE_READ + 1, 1, stop, stats, digest) &&
              finish(&out, i, take[i], pre[i].fd, st, 1, digest)) {
            take[i] |= DONE;
            done++;
            left[l] = lane_start(lanes, l, st->stx_size);
            job[l] = i;
          }
          close(pre[i].fd);
          pre[i].fd = -1;
        }
        if (left[l] > 0) busy++;
      }
      if (busy == 0 || *stop) break; /* stopped: the worker sends nothing of this batch */
      int32_t steps = 0;
      if (busy <= 2 && next == nlane) {
        for (int l = 0; l < NLANES; l++)
          if (left[l] > 0) {
            integ_md5x1(lanes, 256 * (l >> 4), l & 15, ((uint32_t *)(lanes + 512))[l], left[l]);
            left[l] = -left[l]; /* done below */
          }
      } else {
        steps = INT32_MAX;
        for (int l = 0; l < NLANES; l++) {
          if (left[l] > 0 && left[l] < steps) steps = left[l];
          /* an idle lane hashes its own memory, its state unused */
          if (left[l] == 0) ((uint32_t *)(lanes + 512))[l] = LANE_AT + (uint32_t)l * LANE_STRIDE;
        }
        integ_md5x32(lanes, 0, 512, steps);
      }
      for (int l = 0; l < NLANES; l++) {
        if (left[l] == 0) continue;
        if (left[l] > 0) {
          left[l] -= steps;
          ((uint32_t *)(lanes + 512))[l] += (uint32_t)steps * 64;
        } else
          left[l] = 0;
        if (left[l] == 0) {
          lane_digest(lanes, l, md5hex + 32 * (size_t)job[l]);
          take[job[l]] |= HAS_MD5;
        }
      }
    }
    for (uint32_t k = next; k < nlane; k++) close(pre[inlane[k]].fd); /* stopped before these */
  }
  free(inlane);
  free(pre);
  return done;
}

/* BLAKE3 of one buffer in hex (64 characters and a NUL): the known-answer test at load, and tests. */
EXPORT void integ_blake3_hex(const uint8_t *in, uint64_t len, char *out) {
  blake3_hasher h;
  blake3_hasher_init(&h);
  blake3_hasher_update(&h, in, (size_t)len);
  uint8_t d[BLAKE3_OUT_LEN];
  blake3_hasher_finalize(&h, d, BLAKE3_OUT_LEN);
  for (int b = 0; b < BLAKE3_OUT_LEN; b++) {
    out[2 * b] = HEXD[d[b] >> 4];
    out[2 * b + 1] = HEXD[d[b] & 15];
  }
  out[64] = 0;
}

/* The lanes' layout, for the caller: the bytes `lanes` must have, and the largest file a lane takes. */
EXPORT void integ_scan_lanes(uint32_t *out) {
  out[0] = LANES_MEM;
  out[1] = LANE_READ;
}
