/* Fused reduction of one block of vocabulary logits: top-k, bottom-k and softmax statistics.
 *
 * Why by hand: neuron decoding (interp/methods/neuron_decoding.py) is one GEMM per layer
 * followed by, per neuron, a top-k and bottom-k over the vocabulary and the softmax
 * statistics of both signs. No library fuses a top-k with reductions over a GEMM's output
 * (torch.compile falls back to ATen's top-k, whose per-row cost alone exceeds the budget the
 * GEMM leaves), and unfused torch ops read each block ten times. This kernel reads a block
 * twice while it is still in cache: pass 1 finds the row's max/min and the top/bottom-k
 * candidates (a vector compare against the running k-th value; few elements pass it), pass 2
 * sums exp(l - max) for both signs.
 *
 * reduce_block(L, c, w, ld, offset, k, top, top_id, bot, bot_id, stats) updates, for each of
 * the c rows of the (c, w) block L (row stride ld, token ids offset..offset+w-1):
 *   top/top_id   (c, k) min-heap of the k largest logits seen so far (root = the k-th);
 *   bot/bot_id   (c, k) min-heap of the k largest *negated* logits (the bottom end);
 *   stats        (c, 6) running (M, Z, S) of softmax(l) and of softmax(-l):
 *                M the max of l (of -l), Z = sum exp(l - M), S = sum exp(l - M) (l - M).
 * Initial state: heaps filled with -inf (ids -1), stats rows (-inf, 0, 0, -inf, 0, 0).
 * The entropy of softmax(l) is then log Z - S / Z and its max probability 1 / Z.
 *
 * Compiled with -march=native; the AVX-512 path is used where the compiler targets it, a
 * plain C path (same results up to float rounding) everywhere else.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) && !defined(INTERP_GENERIC)
#include <immintrin.h>
#define VOCAB_REDUCE_AVX512 1
#else
#define VOCAB_REDUCE_AVX512 0
#endif

/* Rows whose logits span less than this use one exp for both signs, exp(-d) = 1 / exp(d): with
 * |d| < 80 every term and every sum of a block (<= 2^16 terms) stays a normal float. */
#define RECIPROCAL_RANGE 60.0f

int vocab_reduce_simd(void) { return VOCAB_REDUCE_AVX512; }

/* Replace the root of a min-heap of size k with x (x > root) and restore the heap. The heap
 * orders by value, then by token id (among equal values the higher id is the worse, nearer the
 * root): at an exact tie the lower id is the one kept, whatever order the tokens came in. */
static inline int worse(float a, int64_t ia, float b, int64_t ib) { return a < b || (a == b && ia > ib); }

static void heap_replace(float *v, int64_t *id, int k, float x, int64_t t) {
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        float vm = x;
        int64_t im = t;
        if (l < k && worse(v[l], id[l], vm, im)) { m = l; vm = v[l]; im = id[l]; }
        if (r < k && worse(v[r], id[r], vm, im)) { m = r; vm = v[r]; im = id[r]; }
        if (m == i) break;
        v[i] = v[m]; id[i] = id[m];
        i = m;
    }
    v[i] = x; id[i] = t;
}

/* Fold a block's (m, z, s), relative to m, into the running (M, Z, S), relative to M. */
static void merge(float *st, float m, float z, float s) {
    if (st[1] == 0.0f) { st[0] = m; st[1] = z; st[2] = s; return; }
    float M = st[0], Z = st[1], S = st[2];
    if (m > M) {  /* re-base the running sums on the new max: every term gets exp(M - m) */
        float sh = M - m, f = expf(sh);
        st[0] = m; st[1] = f * Z + z; st[2] = f * (S + sh * Z) + s;
    } else {
        float sh = m - M, f = expf(sh);
        st[1] = Z + f * z; st[2] = S + f * (s + sh * z);
    }
}


/* Insert the elements of x[0..n) that beat the heaps' roots (the scalar, rare part of pass 1). */
static void candidates(const float *x, int n, int64_t first, int k, float *tv, int64_t *ti,
                       float *bv, int64_t *bi) {
    for (int a = 0; a < n; a++) {
        if (x[a] > tv[0]) heap_replace(tv, ti, k, x[a], first + a);
        if (-x[a] > bv[0]) heap_replace(bv, bi, k, -x[a], first + a);
    }
}

/* Sums of pass 2 for one row: z = sum e, s = sum e d, zn = sum en, sn = sum en dn with
 * d = x - mx, e = exp(d), dn = mn - x, en = exp(dn). */
typedef struct { float z, s, zn, sn; } Sums;

static Sums sums_generic(const float *x, int64_t w, float mx, float mn) {
    Sums r = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t q = 0; q < w; q++) {
        float d = x[q] - mx, e = expf(d), dn = mn - x[q], en = expf(dn);
        r.z += e; r.s += e * d; r.zn += en; r.sn += en * dn;
    }
    return r;
}

#if VOCAB_REDUCE_AVX512
/* Move running (M, Z, S) to the reference m >= M (the sums then stay finite). */
static void rebase(float *st, float m) {
    if (m <= st[0]) return;
    float sh = st[0] - m, f = expf(sh);
    st[2] = f * (st[2] + sh * st[1]); st[1] = f * st[1]; st[0] = m;
}

/* exp(d) = 2^t, t = d log2(e) = n + f with n an integer and |f| <= 1/2: 2^f by a degree-5
 * polynomial (least squares in relative error on [-1/2, 1/2]: max error 1.8e-7), times 2^n by
 * scalef, which also takes large negative d to 0. Rounding t costs a relative error of about
 * 6e-8 |d|: negligible where the terms matter (d near 0; a term at d = -20 weighs 2e-9). */
static inline __m512 exp_avx512(__m512 d) {
    __m512 t = _mm512_mul_ps(d, _mm512_set1_ps(1.44269504088896341f));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(1.3218672482e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6716979384e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5508929525e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022238003e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314685594e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

static Sums sums_avx512(const float *x, int64_t w, float mx, float mn) {
    __m512 vz = _mm512_setzero_ps(), vs = vz, vzn = vz, vsn = vz;
    const __m512 vmx = _mm512_set1_ps(mx), vmn = _mm512_set1_ps(mn);
    int64_t q = 0;
    if (mx - mn < RECIPROCAL_RANGE) {
        /* One exp for both signs: exp(mn - x) = exp(mn - mx) / exp(x - mx), all finite here. */
        const __m512 two = _mm512_set1_ps(2.0f), span = _mm512_set1_ps(mn - mx);
        for (; q + 16 <= w; q += 16) {
            __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + q), vmx);
            __m512 e = exp_avx512(d);
            __m512 inv = _mm512_rcp14_ps(e);
            inv = _mm512_mul_ps(inv, _mm512_fnmadd_ps(e, inv, two));  /* one Newton step: ~23 bits */
            vz = _mm512_add_ps(vz, e); vs = _mm512_fmadd_ps(e, d, vs);
            /* dn = mn - x = (mn - mx) - d, summed per term: no cancellation between sums */
            vzn = _mm512_add_ps(vzn, inv); vsn = _mm512_fmadd_ps(inv, _mm512_sub_ps(span, d), vsn);
        }
        float sc = expf(mn - mx);
        Sums r = {hsum(vz), hsum(vs), sc * hsum(vzn), sc * hsum(vsn)};
        Sums t = sums_generic(x + q, w - q, mx, mn);
        r.z += t.z; r.s += t.s; r.zn += t.zn; r.sn += t.sn;
        return r;
    }
    for (; q + 16 <= w; q += 16) {
        __m512 y = _mm512_loadu_ps(x + q);
        __m512 d = _mm512_sub_ps(y, vmx), dn = _mm512_sub_ps(vmn, y);
        __m512 e = exp_avx512(d), en = exp_avx512(dn);
        vz = _mm512_add_ps(vz, e); vs = _mm512_fmadd_ps(e, d, vs);
        vzn = _mm512_add_ps(vzn, en); vsn = _mm512_fmadd_ps(en, dn, vsn);
    }
    Sums r = {hsum(vz), hsum(vs), hsum(vzn), hsum(vsn)};
    Sums t = sums_generic(x + q, w - q, mx, mn);
    r.z += t.z; r.s += t.s; r.zn += t.zn; r.sn += t.sn;
    return r;
}

/* Lower bounds for a row's k-th largest and (negated) k-th smallest value, from the J = k/16
 * largest and smallest of each of the 16 lanes: those are 16 J distinct elements of the row,
 * so their k-th largest is at most the row's. Seeding the candidate filter with it spares the
 * first block of a row most of its heap insertions (an empty heap admits everything). */
#define FLOOR_LEVELS 4
static int floors_avx512(const float *x, int64_t w, int k, float *ftop, float *fbot) {
    int J = (k + 15) / 16;
    if (J > FLOOR_LEVELS || (w & 15) || w / 16 < J) return 0;
    __m512 hi[FLOOR_LEVELS], lo[FLOOR_LEVELS];
    for (int l = 0; l < J; l++) { hi[l] = _mm512_set1_ps(-INFINITY); lo[l] = _mm512_set1_ps(INFINITY); }
    for (int64_t q = 0; q < w; q += 16) {
        __m512 a = _mm512_loadu_ps(x + q), b = a;
        for (int l = 0; l < J; l++) {  /* insert into each lane's sorted top-J / bottom-J */
            __m512 h = _mm512_max_ps(hi[l], a); a = _mm512_min_ps(hi[l], a); hi[l] = h;
            __m512 m = _mm512_min_ps(lo[l], b); b = _mm512_max_ps(lo[l], b); lo[l] = m;
        }
    }
    float v[16 * FLOOR_LEVELS], u[16 * FLOOR_LEVELS];
    for (int l = 0; l < J; l++) { _mm512_storeu_ps(v + 16 * l, hi[l]); _mm512_storeu_ps(u + 16 * l, lo[l]); }
    int n = 16 * J;
    for (int a = 1; a < n; a++)  /* insertion sort, descending (v) and ascending (u) */
        for (int b = a; b > 0; b--) {
            if (v[b] > v[b - 1]) { float t = v[b]; v[b] = v[b - 1]; v[b - 1] = t; }
            if (u[b] < u[b - 1]) { float t = u[b]; u[b] = u[b - 1]; u[b - 1] = t; }
        }
    /* admit x >= v[k-1] (strict compare against the next float down), likewise -x >= -u[k-1] */
    *ftop = nextafterf(v[k - 1], -INFINITY);
    *fbot = nextafterf(-u[k - 1], -INFINITY);
    return 1;
}

/* One vector y = x[q..q+16) of pass 1: insert the lanes that beat a heap's root (or its floor
 * while the heap fills: ftop, fbot; -inf for none) and refresh the broadcast thresholds. */
static inline void scan_step(const float *x, int64_t q, __m512 y, int64_t offset, int k, float *tv, int64_t *ti,
                             float *bv, int64_t *bi, float ftop, float fbot, __m512 *ttop, __m512 *tbot) {
    unsigned hit = _mm512_cmp_ps_mask(y, *ttop, _CMP_GT_OQ);
    if (hit) {
        for (; hit; hit &= hit - 1) {
            int a = __builtin_ctz(hit);
            if (x[q + a] > tv[0]) heap_replace(tv, ti, k, x[q + a], offset + q + a);
        }
        *ttop = _mm512_set1_ps(tv[0] > ftop ? tv[0] : ftop);
    }
    hit = _mm512_cmp_ps_mask(y, *tbot, _CMP_LT_OQ);
    if (hit) {
        for (; hit; hit &= hit - 1) {
            int a = __builtin_ctz(hit);
            if (-x[q + a] > bv[0]) heap_replace(bv, bi, k, -x[q + a], offset + q + a);
        }
        *tbot = _mm512_set1_ps(-(bv[0] > fbot ? bv[0] : fbot));
    }
}

/* Pass 1: row max / min and heap candidates, 16 logits per compare; only the lanes that beat
 * a heap's root (or the filter floor, while the heap fills) are visited: the root only rises,
 * so a lane may no longer beat it. */
static void scan_avx512(const float *x, int64_t w, int64_t offset, int k, float *tv, int64_t *ti,
                        float *bv, int64_t *bi, float *mx, float *mn, float ftop, float fbot) {
    __m512 vmax = _mm512_set1_ps(-INFINITY), vmin = _mm512_set1_ps(INFINITY);
    __m512 ttop = _mm512_set1_ps(tv[0] > ftop ? tv[0] : ftop), tbot = _mm512_set1_ps(-(bv[0] > fbot ? bv[0] : fbot));
    int64_t q = 0;
    for (; q + 16 <= w; q += 16) {
        __m512 y = _mm512_loadu_ps(x + q);
        vmax = _mm512_max_ps(vmax, y); vmin = _mm512_min_ps(vmin, y);
        scan_step(x, q, y, offset, k, tv, ti, bv, bi, ftop, fbot, &ttop, &tbot);
    }
    float hi = _mm512_reduce_max_ps(vmax), lo = _mm512_reduce_min_ps(vmin);
    for (int64_t a = q; a < w; a++) { hi = x[a] > hi ? x[a] : hi; lo = x[a] < lo ? x[a] : lo; }
    candidates(x + q, (int)(w - q), offset + q, k, tv, ti, bv, bi);
    *mx = hi; *mn = lo;
}

/* Passes 1 and 2 in one read, for a row whose running stats exist: the sums are taken
 * relative to the running max r (and -min rn) instead of the block's own, which is exact
 * arithmetic as long as exp stays in range. Returns 1 when done; 0 when it did nothing (the
 * caller takes the two-pass route); 2 when the heaps are updated but the block moved the range
 * too far for the shared reference: the caller then sums again relative to the block's own
 * max and min (*mx, *mn). */
static int fused_avx512(const float *x, int64_t w, int64_t offset, int k, float *tv, int64_t *ti,
                        float *bv, int64_t *bi, float *st, float *mx, float *mn) {
    const float r = st[0], rn = st[3];  /* max so far, and -(min so far) */
    if (r + rn > RECIPROCAL_RANGE || (w & 15)) return 0;  /* wide rows: the reciprocal below would lose range */
    __m512 vmax = _mm512_set1_ps(-INFINITY), vmin = _mm512_set1_ps(INFINITY);
    __m512 ttop = _mm512_set1_ps(tv[0]), tbot = _mm512_set1_ps(-bv[0]);
    __m512 vz = _mm512_setzero_ps(), vs = vz, vzn = vz, vsn = vz;
    const __m512 vr = _mm512_set1_ps(r), two = _mm512_set1_ps(2.0f), span = _mm512_set1_ps(-(r + rn));
    for (int64_t q = 0; q < w; q += 16) {
        __m512 y = _mm512_loadu_ps(x + q);
        vmax = _mm512_max_ps(vmax, y); vmin = _mm512_min_ps(vmin, y);
        scan_step(x, q, y, offset, k, tv, ti, bv, bi, -INFINITY, -INFINITY, &ttop, &tbot);
        __m512 d = _mm512_sub_ps(y, vr);
        __m512 e = exp_avx512(d);
        __m512 inv = _mm512_rcp14_ps(e);
        inv = _mm512_mul_ps(inv, _mm512_fnmadd_ps(e, inv, two));
        vz = _mm512_add_ps(vz, e); vs = _mm512_fmadd_ps(e, d, vs);
        vzn = _mm512_add_ps(vzn, inv); vsn = _mm512_fmadd_ps(inv, _mm512_sub_ps(span, d), vsn);
    }
    float hi = _mm512_reduce_max_ps(vmax), lo = _mm512_reduce_min_ps(vmin);
    *mx = hi; *mn = lo;
    if (hi - r > 20.0f || r - lo > 80.0f) return 2;  /* exp(d) or 1/exp(d) left the safe range */
    /* exp(-x - rn) = exp(-(r + rn)) / exp(x - r), and -x - rn = -(r + rn) - d */
    float c = expf(-(r + rn));
    st[1] += hsum(vz); st[2] += hsum(vs);
    st[4] += c * hsum(vzn); st[5] += c * hsum(vsn);
    rebase(st, hi);
    rebase(st + 3, -lo);
    return 1;
}
#endif

#if !VOCAB_REDUCE_AVX512
static void scan_generic(const float *x, int64_t w, int64_t offset, int k, float *tv, int64_t *ti,
                         float *bv, int64_t *bi, float *mx, float *mn) {
    float hi = -INFINITY, lo = INFINITY;
    for (int64_t a = 0; a < w; a++) { hi = x[a] > hi ? x[a] : hi; lo = x[a] < lo ? x[a] : lo; }
    candidates(x, (int)w, offset, k, tv, ti, bv, bi);
    *mx = hi; *mn = lo;
}
#endif

void reduce_block(const float *L, int64_t c, int64_t w, int64_t ld, int64_t offset, int k,
                  float *top, int64_t *top_id, float *bot, int64_t *bot_id, float *stats) {
    for (int64_t row = 0; row < c; row++) {
        const float *x = L + row * ld;
        float *tv = top + row * k, *bv = bot + row * k, *st = stats + row * 6;
        int64_t *ti = top_id + row * k, *bi = bot_id + row * k;
        float mx, mn;
        Sums r;
#if VOCAB_REDUCE_AVX512
        int done = st[1] > 0.0f ? fused_avx512(x, w, offset, k, tv, ti, bv, bi, st, &mx, &mn) : 0;
        if (done == 1) continue;
        if (done == 0) {
            float ftop = -INFINITY, fbot = -INFINITY;
            if (tv[0] == -INFINITY) floors_avx512(x, w, k, &ftop, &fbot);  /* the row's first block */
            scan_avx512(x, w, offset, k, tv, ti, bv, bi, &mx, &mn, ftop, fbot);
        }
        r = sums_avx512(x, w, mx, mn);
#else
        scan_generic(x, w, offset, k, tv, ti, bv, bi, &mx, &mn);
        r = sums_generic(x, w, mx, mn);
#endif
        merge(st, mx, r.z, r.s);
        merge(st + 3, -mn, r.zn, r.sn);  /* softmax(-l): its max is -mn */
    }
}
