/* Per-class precision-recall curves in one compiled pass (see accumulate.py's per_class).
 *
 * For every class with ground truth, every area range with ground truth and
 * every IoU threshold, the routine walks the class's detections in rank order
 * once: cumulative TP and FP counts (optionally weighted), precision
 * tp / (fp + tp + eps) in float64 with the references' order of operations,
 * the precision envelope from the right, and the precision at each recall
 * step (the smallest TP count reaching each recall threshold, computed by
 * accumulate.recall_steps) by a forward walk, which is what a 'left'
 * searchsorted on the non-decreasing TP counts gives. The numpy code in
 * accumulate.py computes the same values with the same floating-point steps;
 * this version avoids a dozen temporary arrays and a Python iteration per
 * class. The GIL is released while it runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Py_buffer view;
    int held;
} buf_t;

static int get_buf(PyObject *o, buf_t *b, int writable, Py_ssize_t count, Py_ssize_t itemsize, const char *name) {
    b->held = 0;
    if (PyObject_GetBuffer(o, &b->view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS) < 0) return -1;
    b->held = 1;
    if (count >= 0 && b->view.len != count * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of %zd bytes, got %zd bytes", name, count, itemsize,
                     b->view.len);
        return -1;
    }
    return 0;
}

static void release(buf_t *b, int n) {
    for (int i = 0; i < n; i++)
        if (b[i].held) PyBuffer_Release(&b[i].view);
}

static inline uint64_t bits_at(const void *p, Py_ssize_t itemsize, int64_t i) {
    switch (itemsize) {
    case 1: return ((const uint8_t *)p)[i];
    case 2: return ((const uint16_t *)p)[i];
    case 4: return ((const uint32_t *)p)[i];
    default: return ((const uint64_t *)p)[i];
    }
}

/* per_class(order, lo, hi, matched, ignored, itemsize, A, N, num_gt, steps, weight, T, R, precision, recall,
 *           k_start, k_stop)
 *
 * order (n,) int64: rows of matched/ignored in per-class rank order; class k's
 * rows are order[lo[k]:hi[k]] (lo, hi: (K,) int64). matched, ignored: (A, N)
 * unsigned integers of ``itemsize`` bytes, bit t set when matched / ignored at
 * threshold t. num_gt (K, A) int64; steps (K, A, R) int64; weight (N,) int64
 * or None. For the classes k_start <= k < k_stop, every entry of precision
 * (T, R, K, A) and recall (T, K, A) (float64, e.g. uninitialised) is written:
 * the curve where num_gt[k, a] > 0, else -1. Disjoint class ranges may be
 * computed on different threads into the same arrays.
 */
static PyObject *per_class(PyObject *self, PyObject *args) {
    PyObject *o[11];
    buf_t b[11];
    Py_ssize_t itemsize, A, N, T, R, n, K, k0, k1;
    int bad = 0;
    (void)self;
    memset(b, 0, sizeof b);
    if (!PyArg_ParseTuple(args, "OOOOOnnnOOOnnOOnn", &o[0], &o[1], &o[2], &o[3], &o[4], &itemsize, &A, &N, &o[5],
                          &o[6], &o[7], &T, &R, &o[8], &o[9], &k0, &k1))
        return NULL;
    if (!(itemsize == 1 || itemsize == 2 || itemsize == 4 || itemsize == 8) || A < 0 || N < 0 || R < 0 ||
        T < 0 || T > 8 * itemsize) {
        PyErr_SetString(PyExc_ValueError, "per_class: bad itemsize, shape or threshold count");
        return NULL;
    }
    if (get_buf(o[0], &b[0], 0, -1, 8, "order") || get_buf(o[1], &b[1], 0, -1, 8, "lo")) {
        release(b, 11);
        return NULL;
    }
    n = b[0].view.len / 8;
    K = b[1].view.len / 8;
    if (get_buf(o[2], &b[2], 0, K, 8, "hi") || get_buf(o[3], &b[3], 0, A * N, itemsize, "matched") ||
        get_buf(o[4], &b[4], 0, A * N, itemsize, "ignored") || get_buf(o[5], &b[5], 0, K * A, 8, "num_gt") ||
        get_buf(o[6], &b[6], 0, K * A * R, 8, "steps") ||
        (o[7] != Py_None && get_buf(o[7], &b[7], 0, N, 8, "weight")) ||
        get_buf(o[8], &b[8], 1, T * R * K * A, 8, "precision") || get_buf(o[9], &b[9], 1, T * K * A, 8, "recall")) {
        release(b, 11);
        return NULL;
    }
    {
        const int64_t *order = (const int64_t *)b[0].view.buf, *lo = (const int64_t *)b[1].view.buf,
                      *hi = (const int64_t *)b[2].view.buf, *ngt = (const int64_t *)b[5].view.buf,
                      *steps = (const int64_t *)b[6].view.buf,
                      *weight = b[7].held ? (const int64_t *)b[7].view.buf : NULL;
        const void *mat = b[3].view.buf, *ign = b[4].view.buf;
        double *prec = (double *)b[8].view.buf, *rec = (double *)b[9].view.buf;
        Py_ssize_t maxn = 0, k, j;
        if (k0 < 0 || k1 > K || k0 > k1) bad = 1;
        for (k = 0; k < K && !bad; k++) {
            if (lo[k] < 0 || hi[k] < lo[k] || hi[k] > n) bad = 1;
            else if (k >= k0 && k < k1 && hi[k] - lo[k] > maxn) maxn = hi[k] - lo[k];
        }
        for (j = 0; j < n && !bad; j++)
            if (order[j] < 0 || order[j] >= N) bad = 1;
        if (bad) {
            release(b, 11);
            PyErr_SetString(PyExc_ValueError, "per_class: row index or class segment out of range");
            return NULL;
        }
        uint64_t *mb = malloc((size_t)(maxn + 1) * sizeof(uint64_t));
        uint64_t *gb = malloc((size_t)(maxn + 1) * sizeof(uint64_t));
        int64_t *wb = malloc((size_t)(maxn + 1) * sizeof(int64_t));
        int64_t *tpi = malloc((size_t)(maxn + 1) * sizeof(int64_t));
        double *pr = malloc((size_t)(maxn + 1) * sizeof(double));
        if (!mb || !gb || !wb || !tpi || !pr) {
            free(mb); free(gb); free(wb); free(tpi); free(pr);
            release(b, 11);
            return PyErr_NoMemory();
        }
        Py_BEGIN_ALLOW_THREADS
        for (k = k0; k < k1; k++) {
            const int64_t *rows = order + lo[k];
            Py_ssize_t m = hi[k] - lo[k], a, t, r;
            for (a = 0; a < A; a++) {
                int64_t g = ngt[k * A + a];
                if (g <= 0) {   /* no ground truth: -1, as the references mark it */
                    for (t = 0; t < T; t++) {
                        rec[(t * K + k) * A + a] = -1.0;
                        for (r = 0; r < R; r++) prec[((t * R + r) * K + k) * A + a] = -1.0;
                    }
                    continue;
                }
                for (j = 0; j < m; j++) {
                    mb[j] = bits_at(mat, itemsize, a * N + rows[j]);
                    gb[j] = bits_at(ign, itemsize, a * N + rows[j]);
                    wb[j] = weight ? weight[rows[j]] : 1;
                }
                const int64_t *st = steps + (k * A + a) * R;
                for (t = 0; t < T; t++) {
                    int64_t tp = 0, fp = 0;
                    for (j = 0; j < m; j++) {
                        if (!((gb[j] >> t) & 1)) {
                            if ((mb[j] >> t) & 1) tp += wb[j];
                            else fp += wb[j];
                        }
                        tpi[j] = tp;
                        pr[j] = (double)tp / ((double)fp + (double)tp + DBL_EPSILON);
                    }
                    rec[(t * K + k) * A + a] = (double)tp / (double)g;
                    for (j = m - 2; j >= 0; j--)
                        if (pr[j + 1] > pr[j]) pr[j] = pr[j + 1];
                    j = 0;
                    for (r = 0; r < R; r++) {
                        if (r && st[r] < st[r - 1]) j = 0;   /* thresholds not increasing: search again */
                        while (j < m && tpi[j] < st[r]) j++;
                        prec[((t * R + r) * K + k) * A + a] = j < m ? pr[j] : 0.0;
                    }
                }
            }
        }
        Py_END_ALLOW_THREADS
        free(mb); free(gb); free(wb); free(tpi); free(pr);
    }
    release(b, 11);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"per_class", per_class, METH_VARARGS, "Per-class precision-recall curves (see accumulate.per_class)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_curves", "Per-class precision-recall curves in one compiled pass.", -1, methods,
};

PyMODINIT_FUNC PyInit__curves(void) { return PyModule_Create(&module); }
