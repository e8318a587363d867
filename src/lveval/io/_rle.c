/* Compressed RLE masks (COCO's run-length strings) in bulk, without a Python object per mask.
 *
 * Masks are held as one byte buffer of concatenated RLE strings plus an int64
 * offsets array (n + 1 entries), as io/masks.py keeps them. The routines:
 *
 *   stats   validates every string as io/results.py's batch_counts_valid does
 *           (alphabet '0'..'o', no run cut off, at most 12 characters per
 *           run, no negative run, runs summing to height * width) and gives
 *           each valid mask its area and bounding box with pycocotools'
 *           integer arithmetic (rleArea, rleToBbox);
 *   iou     mask IoU of (detection, ground truth) pairs: intersection over
 *           union, or over the detection's area for crowd regions, as
 *           pycocotools' rleIou (0 when the masks do not meet);
 *   pack    the strings of a list of {size, counts} dicts into one buffer;
 *   gather  the strings of chosen rows into a new buffer.
 *
 * Run lengths follow pycocotools' rleFrString: 5-bit groups, little end first,
 * bit 0x20 continues a run, bit 0x10 of the last group is the sign, and runs
 * from the fourth on are deltas on the run two before. The GIL is released in
 * stats, iou and gather, so callers may split the rows over threads. Without a
 * compiler lveval computes the same numbers with numpy and pycocotools.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Py_buffer view;
    int held;
} buf_t;

static int get_buf(PyObject *o, buf_t *b, int writable, Py_ssize_t itemsize, const char *name) {
    b->held = 0;
    if (PyObject_GetBuffer(o, &b->view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS) < 0) return -1;
    b->held = 1;
    if (b->view.len % itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "%s: expected items of %zd bytes", name, itemsize);
        return -1;
    }
    return 0;
}

static void release(buf_t *b, int n) {
    for (int i = 0; i < n; i++)
        if (b[i].held) PyBuffer_Release(&b[i].view);
}

/* Column and row of pixel ``pos`` (column-major, columns of h pixels), for positions that never
 * decrease: the column found for the previous position is the start of the search. */
static inline void locate(uint32_t pos, uint32_t h, uint32_t *base, uint32_t *col, uint32_t *x, uint32_t *y) {
    uint32_t d = pos - *base;
    if (d >= h) {
        uint32_t q = d < 2 * h ? 1 : d / h;
        *base += q * h;
        *col += q;
        d -= q * h;
    }
    *x = *col;
    *y = d;
}

/* Validate one string for a mask of h x w pixels; on success write its area and, unless box is
 * NULL, its box. Returns 0 when valid, 1 otherwise. One pass: the box is pycocotools' rleToBbox
 * (the columns and rows its foreground runs reach, unsigned 32-bit), found without a division
 * per run. */
static int stat_one(const uint8_t *s, Py_ssize_t len, int64_t h, int64_t w, double *area, double *box) {
    int64_t total = h * w, prev2 = 0, prev1 = 0, sum = 0;
    uint32_t a = 0, cc = 0, xs = (uint32_t)w, ys = (uint32_t)h, xe = 0, ye = 0, uh = (uint32_t)h;
    uint32_t base = 0, col = 0;
    Py_ssize_t p = 0, m = 0;
    if (box) box[0] = box[1] = box[2] = box[3] = 0;
    *area = 0;
    if (len == 0) return total == 0 ? 0 : 1;
    if (s[len - 1] < 48 || s[len - 1] > 111 || ((s[len - 1] - 48) & 0x20)) return 1;
    while (p < len) {
        int64_t x = 0;
        int k = 0, c;
        do {
            c = s[p++] - 48;
            if ((unsigned)c > 63) return 1;   /* outside '0'..'o' */
            x |= (int64_t)(c & 0x1f) << (5 * k);
            k++;
        } while ((c & 0x20) && k < 12);
        if (c & 0x20) return 1;   /* a run of more than 12 characters */
        /* sign and delta without branches: both are data-dependent coin flips */
        x -= (int64_t)((c >> 4) & 1) << (5 * k);
        x += prev2 & -(int64_t)(m > 2);
        if ((uint64_t)x > (uint64_t)total) return 1;   /* negative, or longer than the mask */
        sum += x;   /* at most len * total: no overflow */
        prev2 = prev1;
        prev1 = x;
        if (m % 2 == 1) {
            a += (uint32_t)x;
            if (box && x != 0 && uh > 0) {   /* a foreground run [cc, cc + x) */
                uint32_t xs0, ys0, xe0, ye0;
                locate(cc, uh, &base, &col, &xs0, &ys0);
                locate(cc + (uint32_t)x - 1, uh, &base, &col, &xe0, &ye0);
                if (xs0 < xs) xs = xs0;
                if (xe0 > xe) xe = xe0;
                if (xs0 < xe0) { ys = 0; ye = uh - 1; }
                else {
                    if (ys0 < ys) ys = ys0;
                    if (ye0 > ye) ye = ye0;
                }
            }
        }
        cc += (uint32_t)x;
        m++;
    }
    if (sum != total) return 1;
    /* pycocotools looks at runs 0 .. 2 * (m / 2) - 1 only: an odd last run is background anyway */
    *area = (double)a;
    if (box && m >= 2 && uh > 0 && w > 0) {   /* unsigned like pycocotools, also for masks with no pixel */
        box[0] = xs; box[2] = (double)(uint32_t)(xe - xs + 1);
        box[1] = ys; box[3] = (double)(uint32_t)(ye - ys + 1);
    }
    return 0;
}

PyDoc_STRVAR(stats_doc,
"stats(data, offsets, h, w, status, area, bbox, start, stop) -> number of invalid masks\n\n"
"For rows start..stop: status[i] = 0 (valid) or 1, area[i] and bbox[i] (x, y, w, h) of valid masks.\n"
"offsets int64 (n + 1), h and w int64 (n), status uint8, area float64, bbox float64 (4 n) or None\n"
"(no boxes: a cheaper pass).");

static PyObject *stats(PyObject *self, PyObject *args) {
    PyObject *o[7];
    buf_t b[7];
    Py_ssize_t start, stop, bad = 0, n;
    (void)self;
    memset(b, 0, sizeof b);
    if (!PyArg_ParseTuple(args, "OOOOOOOnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &start, &stop))
        return NULL;
    if (get_buf(o[0], &b[0], 0, 1, "data") || get_buf(o[1], &b[1], 0, 8, "offsets") ||
        get_buf(o[2], &b[2], 0, 8, "h") || get_buf(o[3], &b[3], 0, 8, "w") ||
        get_buf(o[4], &b[4], 1, 1, "status") || get_buf(o[5], &b[5], 1, 8, "area") ||
        (o[6] != Py_None && get_buf(o[6], &b[6], 1, 32, "bbox"))) {
        release(b, 7);
        return NULL;
    }
    n = b[2].view.len / 8;
    if (b[1].view.len / 8 != n + 1 || b[3].view.len / 8 != n || b[4].view.len != n || b[5].view.len / 8 != n ||
        (b[6].held && b[6].view.len / 32 != n) || start < 0 || stop > n || start > stop) {
        release(b, 7);
        PyErr_SetString(PyExc_ValueError, "stats: inconsistent column lengths or row range");
        return NULL;
    }
    {
        const uint8_t *data = (const uint8_t *)b[0].view.buf;
        const int64_t *off = (const int64_t *)b[1].view.buf, *hh = (const int64_t *)b[2].view.buf,
                      *ww = (const int64_t *)b[3].view.buf;
        uint8_t *st = (uint8_t *)b[4].view.buf;
        double *ar = (double *)b[5].view.buf, *bb = b[6].held ? (double *)b[6].view.buf : NULL;
        Py_ssize_t dlen = b[0].view.len, i;
        Py_BEGIN_ALLOW_THREADS
        for (i = start; i < stop; i++) {
            if (off[i] < 0 || off[i + 1] < off[i] || off[i + 1] > dlen || hh[i] < 0 || ww[i] < 0) {
                st[i] = 1;
            } else {
                st[i] = (uint8_t)stat_one(data + off[i], off[i + 1] - off[i], hh[i], ww[i], ar + i,
                                          bb ? bb + 4 * i : NULL);
            }
            bad += st[i];
        }
        Py_END_ALLOW_THREADS
    }
    release(b, 7);
    return PyLong_FromSsize_t(bad);
}

/* Foreground intervals [start, end) of a valid string, in column-major pixel order; returns their count. */
static Py_ssize_t intervals(const uint8_t *s, Py_ssize_t len, uint32_t **iv, Py_ssize_t *cap) {
    Py_ssize_t p = 0, m = 0, n = 0;
    int64_t q2 = 0, q1 = 0;
    uint32_t pos = 0;
    if (*cap < len + 2) {
        uint32_t *nb = (uint32_t *)realloc(*iv, sizeof(uint32_t) * (size_t)(len + 2));
        if (!nb) return -1;
        *iv = nb;
        *cap = len + 2;
    }
    while (p < len) {
        int64_t x = 0;
        int k = 0, c;
        do {
            c = s[p++] - 48;
            x |= (int64_t)(c & 0x1f) << (5 * k);
            k++;
        } while (c & 0x20 && p < len);
        x -= (int64_t)((c >> 4) & 1) << (5 * k);
        x += q2 & -(int64_t)(m > 2);
        q2 = q1;
        q1 = x;
        if (m % 2 == 1 && x > 0) {   /* a foreground run; one interval per run */
            (*iv)[2 * n] = pos;
            (*iv)[2 * n + 1] = pos + (uint32_t)x;
            n++;
        }
        pos += (uint32_t)x;
        m++;
    }
    return n;
}

PyDoc_STRVAR(iou_doc,
"iou(d_data, d_offsets, g_data, g_offsets, pd, pg, crowd, out, start, stop)\n\n"
"For pairs start..stop: out[k] = mask IoU of detection row pd[k] and ground-truth row pg[k]\n"
"(intersection over the detection's area when crowd[k]), 0 when they do not meet. Rows index\n"
"valid strings of masks of one size; pairs with the same detection should be consecutive.");

static PyObject *iou(PyObject *self, PyObject *args) {
    PyObject *o[8];
    buf_t b[8];
    Py_ssize_t start, stop, np_;
    int fail = 0;
    (void)self;
    memset(b, 0, sizeof b);
    if (!PyArg_ParseTuple(args, "OOOOOOOOnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &start, &stop))
        return NULL;
    if (get_buf(o[0], &b[0], 0, 1, "d_data") || get_buf(o[1], &b[1], 0, 8, "d_offsets") ||
        get_buf(o[2], &b[2], 0, 1, "g_data") || get_buf(o[3], &b[3], 0, 8, "g_offsets") ||
        get_buf(o[4], &b[4], 0, 8, "pd") || get_buf(o[5], &b[5], 0, 8, "pg") ||
        get_buf(o[6], &b[6], 0, 1, "crowd") || get_buf(o[7], &b[7], 1, 8, "out")) {
        release(b, 8);
        return NULL;
    }
    np_ = b[4].view.len / 8;
    if (b[5].view.len / 8 != np_ || b[6].view.len != np_ || b[7].view.len / 8 != np_ || start < 0 ||
        stop > np_ || start > stop) {
        release(b, 8);
        PyErr_SetString(PyExc_ValueError, "iou: inconsistent pair arrays or range");
        return NULL;
    }
    {
        const uint8_t *dd = (const uint8_t *)b[0].view.buf, *gd = (const uint8_t *)b[2].view.buf;
        const int64_t *doff = (const int64_t *)b[1].view.buf, *goff = (const int64_t *)b[3].view.buf;
        const int64_t *pd = (const int64_t *)b[4].view.buf, *pg = (const int64_t *)b[5].view.buf;
        const uint8_t *crowd = (const uint8_t *)b[6].view.buf;
        double *out = (double *)b[7].view.buf;
        Py_ssize_t nd = b[1].view.len / 8 - 1, ng = b[3].view.len / 8 - 1, k;
        Py_ssize_t dlen = b[0].view.len, glen = b[2].view.len;
        uint32_t *div = NULL, *scratch = NULL;
        uint32_t **gcache = NULL;   /* each ground truth decoded once per call: it meets many detections */
        Py_ssize_t *gcount = NULL;
        uint64_t *gareas = NULL;
        Py_ssize_t dcap = 0, scap = 0, dn = 0, last = -1;
        uint64_t darea = 0;
        Py_BEGIN_ALLOW_THREADS
        gcache = (uint32_t **)calloc((size_t)(ng > 0 ? ng : 1), sizeof(uint32_t *));
        gcount = (Py_ssize_t *)malloc(sizeof(Py_ssize_t) * (size_t)(ng > 0 ? ng : 1));
        gareas = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)(ng > 0 ? ng : 1));
        if (!gcache || !gcount || !gareas) fail = 2;
        for (k = start; k < stop && !fail; k++) {
            Py_ssize_t d = (Py_ssize_t)pd[k], g = (Py_ssize_t)pg[k], gn, i = 0, j = 0;
            const uint32_t *giv;
            uint64_t inter = 0, uni;
            if (d < 0 || d >= nd || g < 0 || g >= ng || doff[d + 1] > dlen || goff[g + 1] > glen ||
                doff[d] > doff[d + 1] || goff[g] > goff[g + 1]) { fail = 1; break; }
            if (d != last) {
                dn = intervals(dd + doff[d], doff[d + 1] - doff[d], &div, &dcap);
                if (dn < 0) { fail = 2; break; }
                darea = 0;
                for (i = 0; i < dn; i++) darea += div[2 * i + 1] - div[2 * i];
                last = d;
            }
            if (gcache[g] == NULL) {
                uint64_t ga = 0;
                gn = intervals(gd + goff[g], goff[g + 1] - goff[g], &scratch, &scap);
                if (gn < 0) { fail = 2; break; }
                gcache[g] = (uint32_t *)malloc(sizeof(uint32_t) * (size_t)(2 * gn + 1));
                if (!gcache[g]) { fail = 2; break; }
                memcpy(gcache[g], scratch, sizeof(uint32_t) * (size_t)(2 * gn));
                for (j = 0; j < gn; j++) ga += scratch[2 * j + 1] - scratch[2 * j];
                gcount[g] = gn;
                gareas[g] = ga;
            }
            giv = gcache[g];
            gn = gcount[g];
            if (dn == 0 || gn == 0 || div[2 * dn - 1] <= giv[0] || giv[2 * gn - 1] <= div[0]) {
                out[k] = 0;
                continue;
            }
            i = 0;
            j = 0;
            while (i < dn && j < gn) {   /* two sorted interval lists: advance the one ending first */
                uint32_t de = div[2 * i + 1], ge = giv[2 * j + 1];
                uint32_t lo = div[2 * i] > giv[2 * j] ? div[2 * i] : giv[2 * j];
                uint32_t hi = de < ge ? de : ge;
                int adv = de < ge;
                inter += hi > lo ? hi - lo : 0;
                i += adv;
                j += !adv;
            }
            if (inter == 0) { out[k] = 0; continue; }
            uni = crowd[k] ? darea : darea + gareas[g] - inter;
            out[k] = (double)(uint32_t)inter / (double)(uint32_t)uni;
        }
        if (gcache)
            for (k = 0; k < ng; k++) free(gcache[k]);
        free(gcache);
        free(gcount);
        free(gareas);
        free(div);
        free(scratch);
        Py_END_ALLOW_THREADS
    }
    release(b, 8);
    if (fail == 1) { PyErr_SetString(PyExc_IndexError, "iou: row outside the masks"); return NULL; }
    if (fail == 2) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(pack_doc,
"pack(masks, h, w, offsets, ok) -> bytes\n\n"
"Concatenated counts of the masks that are dicts with a str or bytes 'counts' and a 'size'\n"
"list or tuple of two ints equal to (h[i], w[i]); ok[i] = 1 for those, 0 for the others (they\n"
"take no bytes). offsets int64 (n + 1), ok uint8 (n).");

static int plain_rle(PyObject *m, int64_t h, int64_t w, const char **s, Py_ssize_t *len) {
    PyObject *c, *size, *a, *bo;
    long long va, vb;
    int overflow;
    if (!PyDict_Check(m)) return 0;
    c = PyDict_GetItemString(m, "counts");
    size = PyDict_GetItemString(m, "size");
    if (!c || !size) return 0;
    if (!(PyList_Check(size) || PyTuple_Check(size)) || PySequence_Fast_GET_SIZE(size) != 2) return 0;
    a = PySequence_Fast_GET_ITEM(size, 0);
    bo = PySequence_Fast_GET_ITEM(size, 1);
    if (!PyLong_CheckExact(a) || !PyLong_CheckExact(bo)) return 0;
    va = PyLong_AsLongLongAndOverflow(a, &overflow);
    if (overflow || va != h) return 0;
    vb = PyLong_AsLongLongAndOverflow(bo, &overflow);
    if (overflow || vb != w) return 0;
    if (PyBytes_CheckExact(c)) {
        *s = PyBytes_AS_STRING(c);
        *len = PyBytes_GET_SIZE(c);
        return 1;
    }
    if (PyUnicode_CheckExact(c)) {
        *s = PyUnicode_AsUTF8AndSize(c, len);
        if (!*s) { PyErr_Clear(); return 0; }
        return 1;
    }
    return 0;
}

static PyObject *pack(PyObject *self, PyObject *args) {
    PyObject *seq_o, *seq, *out;
    buf_t b[4];
    PyObject *o[4];
    Py_ssize_t n, i, total = 0;
    (void)self;
    memset(b, 0, sizeof b);
    if (!PyArg_ParseTuple(args, "OOOOO", &seq_o, &o[0], &o[1], &o[2], &o[3])) return NULL;
    seq = PySequence_Fast(seq_o, "pack: expected a sequence of masks");
    if (!seq) return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    if (get_buf(o[0], &b[0], 0, 8, "h") || get_buf(o[1], &b[1], 0, 8, "w") ||
        get_buf(o[2], &b[2], 1, 8, "offsets") || get_buf(o[3], &b[3], 1, 1, "ok")) {
        release(b, 4);
        Py_DECREF(seq);
        return NULL;
    }
    if (b[0].view.len / 8 != n || b[1].view.len / 8 != n || b[2].view.len / 8 != n + 1 || b[3].view.len != n) {
        release(b, 4);
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "pack: inconsistent lengths");
        return NULL;
    }
    {
        const int64_t *h = (const int64_t *)b[0].view.buf, *w = (const int64_t *)b[1].view.buf;
        int64_t *off = (int64_t *)b[2].view.buf;
        uint8_t *ok = (uint8_t *)b[3].view.buf;
        PyObject **items = PySequence_Fast_ITEMS(seq);
        char *dst;
        off[0] = 0;
        for (i = 0; i < n; i++) {
            const char *s;
            Py_ssize_t len;
            ok[i] = (uint8_t)plain_rle(items[i], h[i], w[i], &s, &len);
            if (!ok[i]) len = 0;
            total += len;
            off[i + 1] = total;
        }
        out = PyBytes_FromStringAndSize(NULL, total);
        if (out) {
            dst = PyBytes_AS_STRING(out);
            for (i = 0; i < n; i++) {
                const char *s;
                Py_ssize_t len;
                if (ok[i] && plain_rle(items[i], h[i], w[i], &s, &len)) memcpy(dst + off[i], s, (size_t)len);
            }
        }
    }
    release(b, 4);
    Py_DECREF(seq);
    return out;
}

PyDoc_STRVAR(gather_doc,
"gather(data, offsets, idx, new_offsets, out)\n\n"
"Copies the strings of rows idx into out, at new_offsets (int64, len(idx) + 1, computed by the caller).");

static PyObject *gather(PyObject *self, PyObject *args) {
    PyObject *o[5];
    buf_t b[5];
    int fail = 0;
    (void)self;
    memset(b, 0, sizeof b);
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4])) return NULL;
    if (get_buf(o[0], &b[0], 0, 1, "data") || get_buf(o[1], &b[1], 0, 8, "offsets") ||
        get_buf(o[2], &b[2], 0, 8, "idx") || get_buf(o[3], &b[3], 0, 8, "new_offsets") ||
        get_buf(o[4], &b[4], 1, 1, "out")) {
        release(b, 5);
        return NULL;
    }
    {
        const uint8_t *data = (const uint8_t *)b[0].view.buf;
        const int64_t *off = (const int64_t *)b[1].view.buf, *idx = (const int64_t *)b[2].view.buf,
                      *noff = (const int64_t *)b[3].view.buf;
        uint8_t *out = (uint8_t *)b[4].view.buf;
        Py_ssize_t n = b[2].view.len / 8, rows = b[1].view.len / 8 - 1, i;
        Py_ssize_t dlen = b[0].view.len, olen = b[4].view.len;
        if (b[3].view.len / 8 != n + 1) fail = 1;
        Py_BEGIN_ALLOW_THREADS
        for (i = 0; i < n && !fail; i++) {
            int64_t r = idx[i], len;
            if (r < 0 || r >= rows || off[r + 1] > dlen || off[r] > off[r + 1]) { fail = 1; break; }
            len = off[r + 1] - off[r];
            if (noff[i] < 0 || noff[i] + len > olen || noff[i + 1] - noff[i] != len) { fail = 1; break; }
            memcpy(out + noff[i], data + off[r], (size_t)len);
        }
        Py_END_ALLOW_THREADS
    }
    release(b, 5);
    if (fail) { PyErr_SetString(PyExc_ValueError, "gather: rows or offsets out of range"); return NULL; }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"stats", stats, METH_VARARGS, stats_doc},
    {"iou", iou, METH_VARARGS, iou_doc},
    {"pack", pack, METH_VARARGS, pack_doc},
    {"gather", gather, METH_VARARGS, gather_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_rle", "Compressed RLE masks in bulk (see masks.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__rle(void) { return PyModule_Create(&module); }
