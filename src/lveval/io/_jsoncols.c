/* Columns straight from a JSON array of box detections, without Python objects.
 *
 * Parses the records between an array's brackets when every record is an
 * object with exactly the keys image_id, category_id, bbox (4 numbers) and
 * score, in any order, and writes them into caller-owned columns.  Anything
 * else (another key, a mask, a null, invalid JSON, an id that does not fit
 * in 64 bits, a number out of range) stops the parse with BAIL, and the
 * caller decodes the file with the general decoder instead, which accepts
 * what it accepts and names what is wrong.  So this file never decides
 * whether an input is valid: it only takes the common case faster.
 *
 * Numbers are correctly rounded, like Python's float(): a significand of at
 * most 2^53 with a power of ten up to 1e22 is exact in one IEEE division or
 * multiplication (Clinger's fast path); everything else goes to the C
 * library's strtod in the "C" locale (correctly rounded on glibc and
 * macOS).  An integer token in a float field is converted like float(int),
 * so "-0" gives +0.0 as the general decoder does.  The GIL is released
 * while parsing, so pieces of one file can be parsed on several threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GLIBC__) || defined(__APPLE__)
#include <locale.h>
#if defined(__APPLE__)
#include <xlocale.h>
#endif
#define HAVE_STRTOD_L 1
static locale_t c_locale = (locale_t)0;
#endif

enum { ST_OK = 0, ST_BAIL = 1, ST_FULL = 2 };

static const double P10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

typedef const unsigned char *ptr;

static inline ptr skip_ws(ptr p, ptr end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* A JSON number at p as a double; NULL when p does not start one or its value is not finite. */
static ptr parse_double(ptr p, ptr end, double *out) {
    ptr start = p;
    int neg = 0, nd = 0, dropped = 0, integral = 1;
    uint64_t m = 0;
    int64_t e10 = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        for (; p < end && is_digit(*p); p++) {
            if (nd < 19) { m = m * 10 + (uint64_t)(*p - '0'); nd++; }
            else { dropped = 1; e10++; }
        }
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        integral = 0;
        p++;
        if (p >= end || !is_digit(*p)) return NULL;
        for (; p < end && is_digit(*p); p++) {
            if (nd == 0 && *p == '0') { e10--; }
            else if (nd < 19) { m = m * 10 + (uint64_t)(*p - '0'); nd++; e10--; }
            else if (*p != '0') { dropped = 1; }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        int64_t ex = 0;
        integral = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) { eneg = (*p == '-'); p++; }
        if (p >= end || !is_digit(*p)) return NULL;
        for (; p < end && is_digit(*p); p++)
            if (ex < 100000) ex = ex * 10 + (*p - '0');
        e10 += eneg ? -ex : ex;
    }
    if (m == 0 && !dropped) {   /* an integer token is an int first: -0 -> +0.0 */
        *out = (neg && !integral) ? -0.0 : 0.0;
        return p;
    }
#if FLT_EVAL_METHOD == 0
    if (!dropped && m <= (UINT64_C(1) << 53) && e10 >= -22 && e10 <= 22) {
        double d = (double)m;
        d = e10 < 0 ? d / P10[-e10] : d * P10[e10];
        *out = neg ? -d : d;
        return p;
    }
#endif
#ifdef HAVE_STRTOD_L
    {
        char tmp[72];
        size_t len = (size_t)(p - start);
        char *stop;
        double d;
        if (len >= sizeof(tmp)) return NULL;
        memcpy(tmp, start, len);
        tmp[len] = '\0';
        d = strtod_l(tmp, &stop, c_locale);
        if (stop != tmp + len || !isfinite(d)) return NULL;
        *out = d;
        return p;
    }
#else
    return NULL;
#endif
}

/* A JSON integer (no fraction, no exponent) that fits in int64; NULL otherwise. */
static ptr parse_int64(ptr p, ptr end, int64_t *out) {
    int neg = 0, nd = 0;
    uint64_t m = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        for (; p < end && is_digit(*p); p++) {   /* 19 digits fit in uint64 */
            if (++nd > 19) return NULL;
            m = m * 10 + (uint64_t)(*p - '0');
        }
    } else {
        return NULL;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return NULL;
    if (neg) {
        if (m > (UINT64_C(1) << 63)) return NULL;
        *out = (m == (UINT64_C(1) << 63)) ? INT64_MIN : -(int64_t)m;
    } else {
        if (m > (uint64_t)INT64_MAX) return NULL;
        *out = (int64_t)m;
    }
    return p;
}

/* The key at p (just after its opening quote) and the closing quote: 0..3, or -1. */
static int key_at(ptr p, ptr end, ptr *after) {
    static const char *names[4] = {"image_id", "category_id", "bbox", "score"};
    static const size_t lens[4] = {8, 11, 4, 5};
    for (int k = 0; k < 4; k++) {
        size_t n = lens[k];
        if ((size_t)(end - p) > n && p[n] == '"' && memcmp(p, names[k], n) == 0) {
            *after = p + n + 1;
            return k;
        }
    }
    return -1;
}

typedef struct {
    int64_t *img, *cat;
    double *score, *bbox;
    Py_ssize_t cap;
} columns;

/* One record at p (its '{'), written to row i; NULL when it is not a plain box record. */
static ptr parse_record(ptr p, ptr end, columns *c, Py_ssize_t i) {
    int seen = 0;
    if (p >= end || *p != '{') return NULL;
    p = skip_ws(p + 1, end);
    for (;;) {
        ptr q;
        int k;
        if (p >= end || *p != '"') return NULL;
        k = key_at(p + 1, end, &q);
        if (k < 0 || (seen & (1 << k))) return NULL;
        seen |= 1 << k;
        p = skip_ws(q, end);
        if (p >= end || *p != ':') return NULL;
        p = skip_ws(p + 1, end);
        switch (k) {
        case 0: p = parse_int64(p, end, &c->img[i]); break;
        case 1: p = parse_int64(p, end, &c->cat[i]); break;
        case 3: p = parse_double(p, end, &c->score[i]); break;
        case 2:
            if (p >= end || *p != '[') return NULL;
            for (int j = 0; j < 4; j++) {
                p = skip_ws(p + 1, end);
                p = parse_double(p, end, &c->bbox[4 * i + j]);
                if (p == NULL) return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != (j < 3 ? ',' : ']')) return NULL;
            }
            p++;
            break;
        }
        if (p == NULL) return NULL;
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        if (*p == '}') break;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
    return seen == 15 ? p + 1 : NULL;
}

/* Records between start and end (inside the brackets): rows written, status, where it stopped. */
static int parse_records(ptr base, Py_ssize_t start, Py_ssize_t end_off, columns *c, Py_ssize_t *rows,
                         Py_ssize_t *stop) {
    ptr end = base + end_off;
    ptr p = skip_ws(base + start, end);
    Py_ssize_t n = 0;
    int status = ST_OK;
    if (p < end) {
        for (;;) {
            ptr q;
            if (n >= c->cap) { status = ST_FULL; break; }
            q = parse_record(p, end, c, n);
            if (q == NULL) { status = ST_BAIL; break; }
            n++;
            p = skip_ws(q, end);
            if (p >= end) break;
            if (*p != ',') { status = ST_BAIL; break; }
            p = skip_ws(p + 1, end);
            if (p >= end) { status = ST_BAIL; break; }   /* trailing comma */
        }
    }
    *rows = n;
    *stop = (Py_ssize_t)(p - base);
    return status;
}

static int get_column(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->itemsize != itemsize && !(view->itemsize == 1 && view->len % itemsize == 0)) {
        PyErr_Format(PyExc_ValueError, "%s: expected items of %zd bytes", name, itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(parse_boxes_doc,
"parse_boxes(buf, start, end, image_id, category_id, score, bbox) -> (rows, status, stop)\n\n"
"Parse the box records in buf[start:end] (the inside of a JSON array) into the\n"
"writable int64/int64/float64/float64 columns (bbox holds 4 values per row).\n"
"status 0: all records parsed; 1: a record this parser does not take (use the\n"
"general decoder); 2: the columns are full. stop is where parsing stopped.");

static PyObject *parse_boxes(PyObject *self, PyObject *args) {
    PyObject *buf_o, *img_o, *cat_o, *score_o, *bbox_o;
    Py_ssize_t start, end, rows = 0, stop = 0;
    Py_buffer buf, img, cat, score, bbox;
    columns c;
    int status;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnOOOO", &buf_o, &start, &end, &img_o, &cat_o, &score_o, &bbox_o))
        return NULL;
    if (PyObject_GetBuffer(buf_o, &buf, PyBUF_SIMPLE) < 0) return NULL;
    if (start < 0 || end > buf.len || start > end) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "start/end outside the buffer");
        return NULL;
    }
    if (get_column(img_o, &img, 8, "image_id") < 0) { PyBuffer_Release(&buf); return NULL; }
    if (get_column(cat_o, &cat, 8, "category_id") < 0) {
        PyBuffer_Release(&img); PyBuffer_Release(&buf); return NULL;
    }
    if (get_column(score_o, &score, 8, "score") < 0) {
        PyBuffer_Release(&cat); PyBuffer_Release(&img); PyBuffer_Release(&buf); return NULL;
    }
    if (get_column(bbox_o, &bbox, 8, "bbox") < 0) {
        PyBuffer_Release(&score); PyBuffer_Release(&cat); PyBuffer_Release(&img); PyBuffer_Release(&buf);
        return NULL;
    }
    c.img = (int64_t *)img.buf;
    c.cat = (int64_t *)cat.buf;
    c.score = (double *)score.buf;
    c.bbox = (double *)bbox.buf;
    c.cap = img.len / 8;
    if (cat.len / 8 < c.cap) c.cap = cat.len / 8;
    if (score.len / 8 < c.cap) c.cap = score.len / 8;
    if (bbox.len / 32 < c.cap) c.cap = bbox.len / 32;
    Py_BEGIN_ALLOW_THREADS
    status = parse_records((ptr)buf.buf, start, end, &c, &rows, &stop);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bbox);
    PyBuffer_Release(&score);
    PyBuffer_Release(&cat);
    PyBuffer_Release(&img);
    PyBuffer_Release(&buf);
    return Py_BuildValue("nin", rows, status, stop);
}

static PyMethodDef methods[] = {
    {"parse_boxes", parse_boxes, METH_VARARGS, parse_boxes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsoncols", "Columns from JSON arrays of box detections (see fastjson.py).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__jsoncols(void) {
#ifdef HAVE_STRTOD_L
    if (c_locale == (locale_t)0) {
        c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (c_locale == (locale_t)0) {
            PyErr_SetString(PyExc_OSError, "cannot create the C locale for number parsing");
            return NULL;
        }
    }
#endif
    return PyModule_Create(&module);
}
