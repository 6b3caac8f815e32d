"""The C source of the native truncated Newton for wide logistic probes (:mod:`.newton_cg`).

:data:`SOURCE` is built into the one kernel library of :mod:`.native` (with the pair kernels)
and called through :func:`.native.newton_logistic`. It is :func:`.newton_cg._newton` with
:func:`.newton_cg._pcg` and :func:`.newton_cg._line_search`, binary (``K' = 1``) and
multinomial (``K' = K`` rows per probe: the classes' coupling in the Hessian-vector product
and the projection onto the classes-sum-zero subspace, as ``_Logistic.hvp`` and ``project``),
step for step: the same start, forcing terms, stopping rules and Armijo backtracking, all
``G`` penalties of a grid in one call. What differs is the cost: each CG iteration is two
passes over the basis ``AT [r+1, n]`` for all live rows at once (register-blocked: 8 rows of
``AT`` at a time for ``A v``, 4 rows of ``AT`` and 2 of ``U`` for ``A^T U``; float32
products, sums of ``n`` terms in float64 blocks of 1,024) and a few vector updates, without
the ~18 torch operations (each a few microseconds) of the torch loop; the line search
evaluates ``A (T + t d)`` as ``A T + t (A d)`` (one product per step, not one per trial).
Iterates agree with the torch loop to float32 rounding, not bit for bit: the same Newton
steps and CG iterations (to one or two), objectives within the tolerance; coefficients
within 1e-4 relative of the largest on well-posed binary problems, up to ~5e-3 where the
objective is flat (``n < k``, weak penalties, three classes at large C), the native ones as
close to the optimum. :func:`.newton_cg._native_loop` decides where it runs (on the CPU,
whatever the size, where the kernels are built).

``-ffast-math`` assumes finite values, so finiteness is tested on the bits (``pk_finite``,
``pk_finite_d``): a step that is not finite is refused, as the torch loop's line search
refuses one (its objective is NaN there), and so is a trial point whose objective is not
finite; such a penalty stops without being marked converged (the torch loop could mark one
converged when its slope was infinite; neither takes a step).
"""

SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define NBLK 1024
#define CHUNK 256
static inline int pk_finite(float x) {
    union { float f; uint32_t u; } v; v.f = x;
    return (v.u & 0x7f800000u) != 0x7f800000u;
}
static inline int pk_finite_d(double x) {
    union { double f; uint64_t u; } v; v.f = x;
    return (v.u & 0x7ff0000000000000ull) != 0x7ff0000000000000ull;
}
/* U_l = A V_l for the probes in live[0..m) (V [., r1], U [., n]): chunks of examples, 8 rows
   of AT at a time */
static void pk_Av(const float *AT, int64_t r1, int64_t n, int64_t m, const int64_t *live,
                  const float *V, float *U, int nt) {
    const int64_t nch = (n + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t c = 0; c < nch; c++) {
        const int64_t i0 = c * CHUNK, i1 = i0 + CHUNK < n ? i0 + CHUNK : n;
        for (int64_t q = 0; q < m; q++) memset(U + live[q] * n + i0, 0, sizeof(float) * (i1 - i0));
        int64_t j = 0;
        for (; j + 8 <= r1; j += 8) {
            const float *a0 = AT + j * n, *a1 = a0 + n, *a2 = a1 + n, *a3 = a2 + n;
            const float *a4 = a3 + n, *a5 = a4 + n, *a6 = a5 + n, *a7 = a6 + n;
            for (int64_t q = 0; q < m; q++) {
                const float *v = V + live[q] * r1 + j;
                const float v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3];
                const float v4 = v[4], v5 = v[5], v6 = v[6], v7 = v[7];
                float *u = U + live[q] * n;
                for (int64_t i = i0; i < i1; i++)
                    u[i] += ((v0 * a0[i] + v1 * a1[i]) + (v2 * a2[i] + v3 * a3[i]))
                          + ((v4 * a4[i] + v5 * a5[i]) + (v6 * a6[i] + v7 * a7[i]));
            }
        }
        for (; j < r1; j++) {
            const float *a = AT + j * n;
            for (int64_t q = 0; q < m; q++) {
                const float vj = V[live[q] * r1 + j];
                float *u = U + live[q] * n;
                for (int64_t i = i0; i < i1; i++) u[i] += vj * a[i];
            }
        }
    }
}
/* H_l = A^T U_l for the probes in live (H [., r1], U [., n]; square: A's squares instead):
   4 rows of AT (and 2 of U) at a time; sums in float32 blocks of NBLK accumulated in
   float64 */
static void pk_ATu(const float *AT, int64_t r1, int64_t n, int64_t m, const int64_t *live,
                   const float *U, int square, float *H, int nt) {
    const int64_t nj4 = (r1 + 3) / 4;
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t jb = 0; jb < nj4; jb++) {
        const int64_t j0 = 4 * jb, nr = r1 - j0 < 4 ? r1 - j0 : 4;
        const float *a0 = AT + j0 * n;
        const float *a1 = nr > 1 ? a0 + n : a0, *a2 = nr > 2 ? a0 + 2 * n : a0;
        const float *a3 = nr > 3 ? a0 + 3 * n : a0;
        int64_t q = 0;
        for (; !square && q + 2 <= m; q += 2) {  /* two rows of U at a time: 8 sums */
            const float *u = U + live[q] * n, *v = U + live[q + 1] * n;
            double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (int64_t b0 = 0; b0 < n; b0 += NBLK) {
                const int64_t b1 = b0 + NBLK < n ? b0 + NBLK : n;
                float t0 = 0, t1 = 0, t2 = 0, t3 = 0, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (int64_t i = b0; i < b1; i++) {
                    const float ui = u[i], vi = v[i];
                    const float x0 = a0[i], x1 = a1[i], x2 = a2[i], x3 = a3[i];
                    t0 += ui * x0; t1 += ui * x1; t2 += ui * x2; t3 += ui * x3;
                    s0 += vi * x0; s1 += vi * x1; s2 += vi * x2; s3 += vi * x3;
                }
                acc[0] += t0; acc[1] += t1; acc[2] += t2; acc[3] += t3;
                acc[4] += s0; acc[5] += s1; acc[6] += s2; acc[7] += s3;
            }
            for (int64_t k = 0; k < nr; k++) {
                H[live[q] * r1 + j0 + k] = (float)acc[k];
                H[live[q + 1] * r1 + j0 + k] = (float)acc[4 + k];
            }
        }
        for (; q < m; q++) {
            const float *u = U + live[q] * n;
            double acc[4] = {0, 0, 0, 0};
            for (int64_t b0 = 0; b0 < n; b0 += NBLK) {
                const int64_t b1 = b0 + NBLK < n ? b0 + NBLK : n;
                float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
                if (square) {  /* the diagonal: sum_i u_i a_ji^2 */
                    for (int64_t i = b0; i < b1; i++) {
                        const float ui = u[i];
                        t0 += ui * a0[i] * a0[i]; t1 += ui * a1[i] * a1[i];
                        t2 += ui * a2[i] * a2[i]; t3 += ui * a3[i] * a3[i];
                    }
                } else {
                    for (int64_t i = b0; i < b1; i++) {
                        const float ui = u[i];
                        t0 += ui * a0[i]; t1 += ui * a1[i]; t2 += ui * a2[i]; t3 += ui * a3[i];
                    }
                }
                acc[0] += t0; acc[1] += t1; acc[2] += t2; acc[3] += t3;
            }
            for (int64_t k = 0; k < nr; k++) H[live[q] * r1 + j0 + k] = (float)acc[k];
        }
    }
}
/* rows[q K + c] = live[q] K + c: the K rows (classes) of the probes in live[0..m) */
static int64_t pk_rows(const int64_t *live, int64_t m, int64_t K, int64_t *rows) {
    for (int64_t q = 0; q < m; q++)
        for (int64_t c = 0; c < K; c++) rows[q * K + c] = live[q] * K + c;
    return m * K;
}
/* v [K, r1] without its mean over the classes, column by column (K = 1: as it is): the
   multinomial's blind direction (newton_cg._Logistic.project) */
static void pk_project(float *v, int64_t K, int64_t r1) {
    if (K == 1) return;
    for (int64_t j = 0; j < r1; j++) {
        float s = 0;
        for (int64_t c = 0; c < K; c++) s += v[c * r1 + j];
        s /= (float)K;
        for (int64_t c = 0; c < K; c++) v[c * r1 + j] -= s;
    }
}
/* The CG of newton_cg._pcg for the probes in act[0..m), K rows each (K = 1: binary, W the
   weights P (1 - P); else multinomial over K classes, W the probabilities P): H_l d_l = -g_l
   with H_l the Hessian of probe l (data part A^T diag(W) A, or its multinomial coupling) +
   pen_l, preconditioned by its diagonal + ridge; probe l stops once its squared residual is
   at most target[l] or its curvature is not positive. Vectors [G, K r1] (the K rows of a
   probe one after the other); work: res, p, Hp, Minv [G, K r1], U [G K, n], z [K r1];
   live [G]; rows [G K]; rz [G]. Returns the iterations run. */
static int pk_pcg(const float *AT, int64_t r1, int64_t n, int64_t K, int64_t m,
                  const int64_t *act, const float *W, const float *lam, const float *g,
                  const double *target, float ridge, int max_cg, float *d, float *res,
                  float *p, float *Hp, float *Minv, float *U, float *z, int64_t *live,
                  int64_t *rows, double *rz, int nt) {
    const int64_t S = K * r1;
    int64_t mr = pk_rows(act, m, K, rows);
    if (K == 1) {
        pk_ATu(AT, r1, n, mr, rows, W, 1, Minv, nt);
    } else {  /* the diagonal's weights P (1 - P) */
        for (int64_t q = 0; q < mr; q++) {
            const float *wq = W + rows[q] * n;
            float *uq = U + rows[q] * n;
            for (int64_t i = 0; i < n; i++) uq[i] = wq[i] * (1.0f - wq[i]);
        }
        pk_ATu(AT, r1, n, mr, rows, U, 1, Minv, nt);
    }
    for (int64_t q = 0; q < m; q++) {
        const int64_t l = act[q];
        live[q] = l;
        float *ml = Minv + l * S, *rl = res + l * S, *pl = p + l * S, *dl = d + l * S;
        for (int64_t k = 0; k < S; k++) {
            ml[k] = 1.0f / (ml[k] + (k % r1 < r1 - 1 ? lam[l] : 0.0f) + ridge);
            rl[k] = -g[l * S + k];
            dl[k] = 0.0f;
        }
        pk_project(rl, K, r1);  /* (the gradient's common shift: float32 noise; see _pcg) */
        for (int64_t k = 0; k < S; k++) pl[k] = ml[k] * rl[k];
        pk_project(pl, K, r1);
        double t = 0;
        for (int64_t k = 0; k < S; k++) t += (double)rl[k] * pl[k];
        rz[l] = t;
    }
    int it = 0;
    while (m > 0 && it < max_cg) {
        it++;
        mr = pk_rows(live, m, K, rows);
        pk_Av(AT, r1, n, mr, rows, p, U, nt);
        for (int64_t q = 0; q < m; q++) {
            const int64_t l = live[q];
            float *u = U + l * K * n;
            const float *wl = W + l * K * n;
            if (K == 1) {
                for (int64_t i = 0; i < n; i++) u[i] *= wl[i];
            } else {  /* PU - P sum_c PU_c (newton_cg._Logistic.hvp) */
                for (int64_t i = 0; i < n; i++) {
                    float sc = 0;
                    for (int64_t c = 0; c < K; c++) sc += (u[c * n + i] *= wl[c * n + i]);
                    for (int64_t c = 0; c < K; c++) u[c * n + i] -= wl[c * n + i] * sc;
                }
            }
        }
        pk_ATu(AT, r1, n, mr, rows, U, 0, Hp, nt);
        int64_t m2 = 0;
        for (int64_t q = 0; q < m; q++) {
            const int64_t l = live[q];
            float *pl = p + l * S, *hl = Hp + l * S, *rl = res + l * S, *dl = d + l * S;
            const float *ml = Minv + l * S;
            double curv = 0, rr = 0, rzn = 0;
            for (int64_t k = 0; k < S; k++) {
                if (k % r1 < r1 - 1) hl[k] += lam[l] * pl[k];
                curv += (double)pl[k] * hl[k];
            }
            const int pos = pk_finite_d(curv) && curv > 0;
            const float alpha = pos ? (float)(rz[l] / curv) : 0.0f;
            for (int64_t k = 0; k < S; k++) {
                dl[k] += alpha * pl[k];
                rl[k] -= alpha * hl[k];
            }
            pk_project(rl, K, r1);  /* (rounding in Hp leaves the subspace: see _pcg) */
            for (int64_t k = 0; k < S; k++) rr += (double)rl[k] * rl[k];
            if (!(rr > target[l] && pos)) continue;
            for (int64_t k = 0; k < S; k++) z[k] = ml[k] * rl[k];
            pk_project(z, K, r1);
            for (int64_t k = 0; k < S; k++) rzn += (double)rl[k] * z[k];
            if (!(rzn > 0)) continue;  /* (rounding at the floor: that CG ends, as in _pcg) */
            const float beta = (float)(rzn / (rz[l] > 1e-30 ? rz[l] : 1e-30));
            for (int64_t k = 0; k < S; k++) pl[k] = z[k] + beta * pl[k];
            rz[l] = rzn;
            live[m2++] = l;
        }
        m = m2;
    }
    return it;
}
/* Binary: sum_i softplus(z_i) - z_i y_i, z = L + t D (D NULL: z = L); with R, w (NULL: not
   wanted) also the residuals P - y and the weights P (1 - P) at z, P = sigmoid(z) */
static double pk_loss_bin(const float *L, const float *D, float t, const float *y,
                          int64_t n, float *R, float *w) {
    double s = 0;
    for (int64_t b0 = 0; b0 < n; b0 += NBLK) {
        const int64_t b1 = b0 + NBLK < n ? b0 + NBLK : n;
        double acc = 0;  /* (float32 terms, summed in float64 as the torch loop sums them) */
        for (int64_t i = b0; i < b1; i++) {
            const float z = D ? L[i] + t * D[i] : L[i];
            const float e = expf(-fabsf(z));
            acc += fmaxf(z, 0.0f) - z * y[i] + log1pf(e);
            if (R) {
                const float P = z >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
                R[i] = P - y[i];
                w[i] = P * (1.0f - P);
            }
        }
        s += acc;
    }
    return s;
}
/* Multinomial over K classes (rows c n of L, D, Y [K, n] one-hot): sum_i logsumexp_c z_ci -
   sum_c z_ci Y_ci, z = L + t D; with R, P (NULL: not wanted) also the residuals P - Y and the
   probabilities P = softmax(z) */
static double pk_loss_multi(const float *L, const float *D, float t, const float *Y,
                            int64_t K, int64_t n, float *R, float *P) {
    double s = 0;
    float mx[NBLK], se[NBLK];
    for (int64_t b0 = 0; b0 < n; b0 += NBLK) {
        const int64_t nb = b0 + NBLK < n ? NBLK : n - b0;
        #define PK_Z(c, i) (D ? L[(c) * n + b0 + (i)] + t * D[(c) * n + b0 + (i)] \
                              : L[(c) * n + b0 + (i)])
        for (int64_t i = 0; i < nb; i++) { mx[i] = PK_Z(0, i); se[i] = 0.0f; }
        for (int64_t c = 1; c < K; c++)
            for (int64_t i = 0; i < nb; i++) mx[i] = fmaxf(mx[i], PK_Z(c, i));
        for (int64_t c = 0; c < K; c++)
            for (int64_t i = 0; i < nb; i++) se[i] += expf(PK_Z(c, i) - mx[i]);
        double acc = 0;  /* (float32 terms, summed in float64 as the torch loop sums them) */
        for (int64_t i = 0; i < nb; i++) { mx[i] += logf(se[i]); acc += mx[i]; }
        for (int64_t c = 0; c < K; c++) {
            const float *yc = Y + c * n + b0;
            for (int64_t i = 0; i < nb; i++) acc -= PK_Z(c, i) * yc[i];
            if (R) {
                for (int64_t i = 0; i < nb; i++) {
                    const float pc = expf(PK_Z(c, i) - mx[i]);
                    R[c * n + b0 + i] = pc - yc[i];
                    P[c * n + b0 + i] = pc;
                }
            }
        }
        #undef PK_Z
        s += acc;
    }
    return s;
}
/* 0.5 lam ||W + t d_W||^2 over the K rows of r1 - 1 weights (intercepts unpenalised) */
static double pk_pen(const float *T, const float *d, float t, float lam, int64_t K,
                     int64_t r1) {
    double s = 0;
    for (int64_t c = 0; c < K; c++)
        for (int64_t j = 0; j < r1 - 1; j++) {
            const int64_t k = c * r1 + j;
            const float v = d ? T[k] + t * d[k] : T[k];
            s += (double)v * v;
        }
    return 0.5 * lam * s;
}
static double pk_loss(const float *L, const float *D, float t, const float *Y, int64_t K,
                      int64_t n, float *R, float *W) {
    return K == 1 ? pk_loss_bin(L, D, t, Y, n, R, W) : pk_loss_multi(L, D, t, Y, K, n, R, W);
}
/* newton_cg._newton for G logistic probes of K free rows (K = 1: binary, Y [1, n] the labels
   0/1; else multinomial, Y [K, n] one-hot) on the basis AT [r1, n], penalties lam [G], from
   T [G, K, r1] (updated); forcing terms relative to g0 [G] (NULL: the gradient norms at the
   start). Writes n_newton [G], converged [G]; returns the CG iterations in all, -1 when out
   of memory. */
int64_t pk_newton(const float *AT, int64_t r1, int64_t n, int64_t G, int64_t K,
                  const float *Y, const float *lam, float *T, double tol, int max_newton,
                  int max_cg, const float *g0_in, int64_t *n_newton, uint8_t *converged,
                  int nt) {
    if (G <= 0) return 0;
    const int64_t S = K * r1;
    const size_t Gr = (size_t)G * S, Gn = (size_t)G * K * n;
    float *fb = malloc(sizeof(float) * (6 * Gr + 4 * Gn + (size_t)S));
    double *db = malloc(sizeof(double) * 4 * (size_t)G);
    int64_t *ib = malloc(sizeof(int64_t) * (2 * (size_t)G + (size_t)G * K));
    uint8_t *done = calloc((size_t)G, 1);
    if (!fb || !db || !ib || !done) { free(fb); free(db); free(ib); free(done); return -1; }
    float *g = fb, *d = g + Gr, *res = d + Gr, *p = res + Gr, *Hp = p + Gr, *Minv = Hp + Gr;
    float *L = Minv + Gr, *R = L + Gn, *W = R + Gn, *U = W + Gn, *z = U + Gn;
    double *f = db, *target = f + G, *rz = target + G, *g0 = rz + G;
    int64_t *act = ib, *live = ib + G, *rows = ib + 2 * G;
    int64_t n_cg = 0;
    const float ridge = 1e-6f * (float)n;
    for (int64_t l = 0; l < G; l++) { n_newton[l] = 0; converged[l] = 0; }
    for (int step = 0; step < max_newton; step++) {
        int64_t m = 0;
        for (int64_t l = 0; l < G; l++) if (!done[l]) act[m++] = l;
        if (m == 0) break;
        const int64_t mr = pk_rows(act, m, K, rows);
        pk_Av(AT, r1, n, mr, rows, T, L, nt);
        for (int64_t q = 0; q < m; q++) {
            const int64_t l = act[q];
            f[l] = pk_loss(L + l * K * n, NULL, 0.0f, Y, K, n, R + l * K * n, W + l * K * n)
                 + pk_pen(T + l * S, NULL, 0.0f, lam[l], K, r1);
        }
        pk_ATu(AT, r1, n, mr, rows, R, 0, g, nt);
        for (int64_t q = 0; q < m; q++) {
            const int64_t l = act[q];
            double s = 0;
            for (int64_t k = 0; k < S; k++) {
                if (k % r1 < r1 - 1) g[l * S + k] += lam[l] * T[l * S + k];
                s += (double)g[l * S + k] * g[l * S + k];
            }
            const double gn = sqrt(s);
            if (step == 0) g0[l] = g0_in ? g0_in[l] : (gn > 1e-30 ? gn : 1e-30);
            double fc = sqrt(gn / g0[l]);
            fc = fc < 1e-3 ? 1e-3 : (fc > 0.5 ? 0.5 : fc);
            target[l] = fc * fc * s;
        }
        n_cg += pk_pcg(AT, r1, n, K, m, act, W, lam, g, target, ridge, max_cg, d, res, p, Hp,
                       Minv, U, z, live, rows, rz, nt);
        pk_rows(act, m, K, rows);
        pk_Av(AT, r1, n, mr, rows, d, U, nt);  /* A d, for the line search */
        for (int64_t q = 0; q < m; q++) {
            const int64_t l = act[q];
            float *Tl = T + l * S, *dl = d + l * S;
            n_newton[l]++;
            int ok_d = 1;
            double sl = 0;
            for (int64_t k = 0; k < S; k++) {
                ok_d &= pk_finite(dl[k]);
                sl += (double)g[l * S + k] * dl[k];
            }
            float t = 0.0f;
            if (ok_d) {
                float tt = 1.0f;
                for (int h = 0; h < 20; h++, tt *= 0.5f) {
                    const double ft = pk_loss(L + l * K * n, U + l * K * n, tt, Y, K, n, NULL,
                                              NULL)
                                    + pk_pen(Tl, dl, tt, lam[l], K, r1);
                    if (pk_finite_d(ft) && ft <= f[l] + 1e-4 * tt * sl + 1e-6 * fabs(f[l])) {
                        t = tt;
                        break;
                    }
                }
            }
            if (t > 0) for (int64_t k = 0; k < S; k++) Tl[k] += t * dl[k];
            const double lim = 1e-6 * fabs(f[l]) > tol * n ? 1e-6 * fabs(f[l]) : tol * n;
            const int small = ok_d && -sl / 2 <= lim;
            if (small) converged[l] = 1;
            if (small || t == 0) done[l] = 1;
        }
    }
    free(fb); free(db); free(ib); free(done);
    return n_cg;
}
"""
