/*
 * MD5 of 32 inputs side by side in AVX-512 registers: the multi-buffer MD5 behind dpkg's md5sums
 * check and md5 known-bad lists (src/scan/md5-native.ts loads it with koffi; README, Performance,
 * eleventh and thirteenth rounds). One MD5 is a chain of 64 dependent steps a block, so one input
 * cannot go faster than ~0.9 GB/s a core (OpenSSL here); 16 inputs in the 16 32-bit lanes of a zmm
 * register take the same steps at once, with a rotate (vprold) and each round's boolean function
 * (vpternlogd) in one instruction each, and two such sets interleaved keep the core busy while
 * each waits on its chain. Where this library is not built, or the CPU has no AVX-512F, integ uses
 * its 8-lane WebAssembly SIMD version (tools/gen-md5-wasm.mjs), then node:crypto.
 *
 * Built by tools/build-native.mjs with the system's C compiler; the AVX-512 code is confined to
 * the functions marked with target("avx512f"), so the library loads on any x86-64 CPU and
 * integ_md5x16_ok() says whether integ_md5x32 may be called.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

/* 1 when the CPU and the kernel support AVX-512F (libgcc checks XCR0 for the zmm state). */
EXPORT int integ_md5x16_ok(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") ? 1 : 0;
}

#define ADD(x, y) _mm512_add_epi32(x, y)
/* a = b + rotl(a + f(b, c, d) + w[g] + k, s); a + w[g] + k does not wait for b, c, d */
#define STEP1(f, a, b, c, d, w, g, kv, s) a = ADD(b, _mm512_rol_epi32(ADD(_mm512_ternarylogic_epi32(b, c, d, f), ADD(a, ADD(w[g], kv))), s));
/* the same step on both sets of 16 lanes: (a, b, c, d) on w, (a2, b2, c2, d2) on x */
#define STEP(f, a, b, c, d, g, k, s)               \
  {                                                \
    const __m512i kv = _mm512_set1_epi32((int)(k)); \
    STEP1(f, a, b, c, d, w, g, kv, s)              \
    STEP1(f, a##2, b##2, c##2, d##2, x, g, kv, s)  \
  }
/* vpternlogd immediates with (b, c, d) as operands 1, 2, 3: F = b ? c : d, G = d ? b : c,
   H = b ^ c ^ d, I = c ^ (b | ~d) */
#define F 0xCA
#define G 0xE4
#define H 0x96
#define I 0x39

/*
 * A 16 x 16 transpose of 32-bit words: row l (lane l's 64-byte block) in, word g of every lane
 * out in r[g]. Unpacks of 32- and 64-bit pairs, then two rounds of 128-bit lane shuffles: all
 * with immediates, so no register holds a permute index (the loop needs them all for data).
 */
static inline __attribute__((always_inline, target("avx512f"))) void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int h = 0; h < 16; h += 8)
    for (int i = 0; i < 4; i++) {
      t[h + i] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
  }
}

/*
 * n blocks of 64 bytes on each of 32 lanes, as two sets of 16 whose steps interleave: one MD5
 * step waits on the one before it (ternlog, add, rotate, add: four instructions in a chain), and
 * the other set's step fills that wait, so 32 lanes take about the time 16 did alone (10.3-11.3
 * against 5.7-5.9 GB/s here). mem: the lanes' memory; state_off: set s's state at
 * state_off + 256 s, 4 words x 16 lanes, word-major (word w of its lane l at + 64 w + 4 l);
 * ptrs_off: 32 uint32 offsets into mem, lane l's next block. Every lane must have n blocks from
 * its offset.
 */
EXPORT __attribute__((target("avx512f"))) void integ_md5x32(uint8_t *mem, uint32_t state_off, uint32_t ptrs_off, int32_t n) {
  uint32_t *st = (uint32_t *)(mem + state_off);
  const uint32_t *ptrs = (const uint32_t *)(mem + ptrs_off);
  const uint8_t *in[32];
  for (int l = 0; l < 32; l++) in[l] = mem + ptrs[l];
  __m512i a = _mm512_loadu_si512(st), b = _mm512_loadu_si512(st + 16), c = _mm512_loadu_si512(st + 32),
          d = _mm512_loadu_si512(st + 48);
  __m512i a2 = _mm512_loadu_si512(st + 64), b2 = _mm512_loadu_si512(st + 80), c2 = _mm512_loadu_si512(st + 96),
          d2 = _mm512_loadu_si512(st + 112);
  for (int32_t blk = 0; blk < n; blk++) {
    __m512i w[16], x[16];
    for (int l = 0; l < 16; l++) w[l] = _mm512_loadu_si512(in[l] + 64 * (size_t)blk);
    transpose16(w);
    for (int l = 0; l < 16; l++) x[l] = _mm512_loadu_si512(in[16 + l] + 64 * (size_t)blk);
    transpose16(x);
    const __m512i a0 = a, b0 = b, c0 = c, d0 = d, a20 = a2, b20 = b2, c20 = c2, d20 = d2;
    STEP(F, a, b, c, d, 0, 0xd76aa478, 7) STEP(F, d, a, b, c, 1, 0xe8c7b756, 12)
    STEP(F, c, d, a, b, 2, 0x242070db, 17) STEP(F, b, c, d, a, 3, 0xc1bdceee, 22)
    STEP(F, a, b, c, d, 4, 0xf57c0faf, 7) STEP(F, d, a, b, c, 5, 0x4787c62a, 12)
    STEP(F, c, d, a, b, 6, 0xa8304613, 17) STEP(F, b, c, d, a, 7, 0xfd469501, 22)
    STEP(F, a, b, c, d, 8, 0x698098d8, 7) STEP(F, d, a, b, c, 9, 0x8b44f7af, 12)
    STEP(F, c, d, a, b, 10, 0xffff5bb1, 17) STEP(F, b, c, d, a, 11, 0x895cd7be, 22)
    STEP(F, a, b, c, d, 12, 0x6b901122, 7) STEP(F, d, a, b, c, 13, 0xfd987193, 12)
    STEP(F, c, d, a, b, 14, 0xa679438e, 17) STEP(F, b, c, d, a, 15, 0x49b40821, 22)
    STEP(G, a, b, c, d, 1, 0xf61e2562, 5) STEP(G, d, a, b, c, 6, 0xc040b340, 9)
    STEP(G, c, d, a, b, 11, 0x265e5a51, 14) STEP(G, b, c, d, a, 0, 0xe9b6c7aa, 20)
    STEP(G, a, b, c, d, 5, 0xd62f105d, 5) STEP(G, d, a, b, c, 10, 0x02441453, 9)
    STEP(G, c, d, a, b, 15, 0xd8a1e681, 14) STEP(G, b, c, d, a, 4, 0xe7d3fbc8, 20)
    STEP(G, a, b, c, d, 9, 0x21e1cde6, 5) STEP(G, d, a, b, c, 14, 0xc33707d6, 9)
    STEP(G, c, d, a, b, 3, 0xf4d50d87, 14) STEP(G, b, c, d, a, 8, 0x455a14ed, 20)
    STEP(G, a, b, c, d, 13, 0xa9e3e905, 5) STEP(G, d, a, b, c, 2, 0xfcefa3f8, 9)
    STEP(G, c, d, a, b, 7, 0x676f02d9, 14) STEP(G, b, c, d, a, 12, 0x8d2a4c8a, 20)
    STEP(H, a, b, c, d, 5, 0xfffa3942, 4) STEP(H, d, a, b, c, 8, 0x8771f681, 11)
    STEP(H, c, d, a, b, 11, 0x6d9d6122, 16) STEP(H, b, c, d, a, 14, 0xfde5380c, 23)
    STEP(H, a, b, c, d, 1, 0xa4beea44, 4) STEP(H, d, a, b, c, 4, 0x4bdecfa9, 11)
    STEP(H, c, d, a, b, 7, 0xf6bb4b60, 16) STEP(H, b, c, d, a, 10, 0xbebfbc70, 23)
    STEP(H, a, b, c, d, 13, 0x289b7ec6, 4) STEP(H, d, a, b, c, 0, 0xeaa127fa, 11)
    STEP(H, c, d, a, b, 3, 0xd4ef3085, 16) STEP(H, b, c, d, a, 6, 0x04881d05, 23)
    STEP(H, a, b, c, d, 9, 0xd9d4d039, 4) STEP(H, d, a, b, c, 12, 0xe6db99e5, 11)
    STEP(H, c, d, a, b, 15, 0x1fa27cf8, 16) STEP(H, b, c, d, a, 2, 0xc4ac5665, 23)
    STEP(I, a, b, c, d, 0, 0xf4292244, 6) STEP(I, d, a, b, c, 7, 0x432aff97, 10)
    STEP(I, c, d, a, b, 14, 0xab9423a7, 15) STEP(I, b, c, d, a, 5, 0xfc93a039, 21)
    STEP(I, a, b, c, d, 12, 0x655b59c3, 6) STEP(I, d, a, b, c, 3, 0x8f0ccc92, 10)
    STEP(I, c, d, a, b, 10, 0xffeff47d, 15) STEP(I, b, c, d, a, 1, 0x85845dd1, 21)
    STEP(I, a, b, c, d, 8, 0x6fa87e4f, 6) STEP(I, d, a, b, c, 15, 0xfe2ce6e0, 10)
    STEP(I, c, d, a, b, 6, 0xa3014314, 15) STEP(I, b, c, d, a, 13, 0x4e0811a1, 21)
    STEP(I, a, b, c, d, 4, 0xf7537e82, 6) STEP(I, d, a, b, c, 11, 0xbd3af235, 10)
    STEP(I, c, d, a, b, 2, 0x2ad7d2bb, 15) STEP(I, b, c, d, a, 9, 0xeb86d391, 21)
    a = ADD(a, a0);
    b = ADD(b, b0);
    c = ADD(c, c0);
    d = ADD(d, d0);
    a2 = ADD(a2, a20);
    b2 = ADD(b2, b20);
    c2 = ADD(c2, c20);
    d2 = ADD(d2, d20);
  }
  _mm512_storeu_si512(st, a);
  _mm512_storeu_si512(st + 16, b);
  _mm512_storeu_si512(st + 32, c);
  _mm512_storeu_si512(st + 48, d);
  _mm512_storeu_si512(st + 64, a2);
  _mm512_storeu_si512(st + 80, b2);
  _mm512_storeu_si512(st + 96, c2);
  _mm512_storeu_si512(st + 112, d2);
}

/* One MD5 in plain C: the lanes' tail, where one or two inputs are left and 32 lanes would run
   almost empty (a lane alone runs at 1/32 of their throughput, ~340 MB/s here; this ~650-890 MB/s). */
#define ROTL(x, s) (((x) << (s)) | ((x) >> (32 - (s))))
#define S1(f, a, b, c, d, g, k, s) a = b + ROTL(a + (f) + m[g] + (uint32_t)(k), s);
#define FF(b, c, d) (d ^ (b & (c ^ d)))
#define GG(b, c, d) (c ^ (d & (b ^ c)))
#define HH(b, c, d) (b ^ c ^ d)
#define II(b, c, d) (c ^ (b | ~d))

/* n blocks of lane `lane` (0-15) of a set alone: its state in the lanes' layout (word w at state_off + 64 w + 4 lane, state_off
   its set's), input at mem + ptr. */
EXPORT void integ_md5x1(uint8_t *mem, uint32_t state_off, uint32_t lane, uint32_t ptr, int32_t n) {
  uint32_t *st = (uint32_t *)(mem + state_off);
  uint32_t a = st[lane], b = st[16 + lane], c = st[32 + lane], d = st[48 + lane];
  const uint8_t *p = mem + ptr;
  for (int32_t blk = 0; blk < n; blk++, p += 64) {
    uint32_t m[16];
    __builtin_memcpy(m, p, 64); /* little-endian x86-64 */
    const uint32_t a0 = a, b0 = b, c0 = c, d0 = d;
    S1(FF(b, c, d), a, b, c, d, 0, 0xd76aa478, 7) S1(FF(a, b, c), d, a, b, c, 1, 0xe8c7b756, 12)
    S1(FF(d, a, b), c, d, a, b, 2, 0x242070db, 17) S1(FF(c, d, a), b, c, d, a, 3, 0xc1bdceee, 22)
    S1(FF(b, c, d), a, b, c, d, 4, 0xf57c0faf, 7) S1(FF(a, b, c), d, a, b, c, 5, 0x4787c62a, 12)
    S1(FF(d, a, b), c, d, a, b, 6, 0xa8304613, 17) S1(FF(c, d, a), b, c, d, a, 7, 0xfd469501, 22)
    S1(FF(b, c, d), a, b, c, d, 8, 0x698098d8, 7) S1(FF(a, b, c), d, a, b, c, 9, 0x8b44f7af, 12)
    S1(FF(d, a, b), c, d, a, b, 10, 0xffff5bb1, 17) S1(FF(c, d, a), b, c, d, a, 11, 0x895cd7be, 22)
    S1(FF(b, c, d), a, b, c, d, 12, 0x6b901122, 7) S1(FF(a, b, c), d, a, b, c, 13, 0xfd987193, 12)
    S1(FF(d, a, b), c, d, a, b, 14, 0xa679438e, 17) S1(FF(c, d, a), b, c, d, a, 15, 0x49b40821, 22)
    S1(GG(b, c, d), a, b, c, d, 1, 0xf61e2562, 5) S1(GG(a, b, c), d, a, b, c, 6, 0xc040b340, 9)
    S1(GG(d, a, b), c, d, a, b, 11, 0x265e5a51, 14) S1(GG(c, d, a), b, c, d, a, 0, 0xe9b6c7aa, 20)
    S1(GG(b, c, d), a, b, c, d, 5, 0xd62f105d, 5) S1(GG(a, b, c), d, a, b, c, 10, 0x02441453, 9)
    S1(GG(d, a, b), c, d, a, b, 15, 0xd8a1e681, 14) S1(GG(c, d, a), b, c, d, a, 4, 0xe7d3fbc8, 20)
    S1(GG(b, c, d), a, b, c, d, 9, 0x21e1cde6, 5) S1(GG(a, b, c), d, a, b, c, 14, 0xc33707d6, 9)
    S1(GG(d, a, b), c, d, a, b, 3, 0xf4d50d87, 14) S1(GG(c, d, a), b, c, d, a, 8, 0x455a14ed, 20)
    S1(GG(b, c, d), a, b, c, d, 13, 0xa9e3e905, 5) S1(GG(a, b, c), d, a, b, c, 2, 0xfcefa3f8, 9)
    S1(GG(d, a, b), c, d, a, b, 7, 0x676f02d9, 14) S1(GG(c, d, a), b, c, d, a, 12, 0x8d2a4c8a, 20)
    S1(HH(b, c, d), a, b, c, d, 5, 0xfffa3942, 4) S1(HH(a, b, c), d, a, b, c, 8, 0x8771f681, 11)
    S1(HH(d, a, b), c, d, a, b, 11, 0x6d9d6122, 16) S1(HH(c, d, a), b, c, d, a, 14, 0xfde5380c, 23)
    S1(HH(b, c, d), a, b, c, d, 1, 0xa4beea44, 4) S1(HH(a, b, c), d, a, b, c, 4, 0x4bdecfa9, 11)
    S1(HH(d, a, b), c, d, a, b, 7, 0xf6bb4b60, 16) S1(HH(c, d, a), b, c, d, a, 10, 0xbebfbc70, 23)
    S1(HH(b, c, d), a, b, c, d, 13, 0x289b7ec6, 4) S1(HH(a, b, c), d, a, b, c, 0, 0xeaa127fa, 11)
    S1(HH(d, a, b), c, d, a, b, 3, 0xd4ef3085, 16) S1(HH(c, d, a), b, c, d, a, 6, 0x04881d05, 23)
    S1(HH(b, c, d), a, b, c, d, 9, 0xd9d4d039, 4) S1(HH(a, b, c), d, a, b, c, 12, 0xe6db99e5, 11)
    S1(HH(d, a, b), c, d, a, b, 15, 0x1fa27cf8, 16) S1(HH(c, d, a), b, c, d, a, 2, 0xc4ac5665, 23)
    S1(II(b, c, d), a, b, c, d, 0, 0xf4292244, 6) S1(II(a, b, c), d, a, b, c, 7, 0x432aff97, 10)
    S1(II(d, a, b), c, d, a, b, 14, 0xab9423a7, 15) S1(II(c, d, a), b, c, d, a, 5, 0xfc93a039, 21)
    S1(II(b, c, d), a, b, c, d, 12, 0x655b59c3, 6) S1(II(a, b, c), d, a, b, c, 3, 0x8f0ccc92, 10)
    S1(II(d, a, b), c, d, a, b, 10, 0xffeff47d, 15) S1(II(c, d, a), b, c, d, a, 1, 0x85845dd1, 21)
    S1(II(b, c, d), a, b, c, d, 8, 0x6fa87e4f, 6) S1(II(a, b, c), d, a, b, c, 15, 0xfe2ce6e0, 10)
    S1(II(d, a, b), c, d, a, b, 6, 0xa3014314, 15) S1(II(c, d, a), b, c, d, a, 13, 0x4e0811a1, 21)
    S1(II(b, c, d), a, b, c, d, 4, 0xf7537e82, 6) S1(II(a, b, c), d, a, b, c, 11, 0xbd3af235, 10)
    S1(II(d, a, b), c, d, a, b, 2, 0x2ad7d2bb, 15) S1(II(c, d, a), b, c, d, a, 9, 0xeb86d391, 21)
    a += a0;
    b += b0;
    c += c0;
    d += d0;
  }
  st[lane] = a;
  st[16 + lane] = b;
  st[32 + lane] = c;
  st[48 + lane] = d;
}
