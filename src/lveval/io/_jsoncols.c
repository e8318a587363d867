/* Columns straight from a JSON array (or JSON Lines) of box detections, without Python objects.
 *
 * Parses the records between an array's brackets, or the lines of a JSON
 * Lines file (blank lines skipped, each record's line number kept), when every record is an
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

/* Whitespace within one line of a JSON Lines file. */
static inline ptr skip_inline_ws(ptr p, ptr end) {
    while (p < end && (*p == ' ' || *p == '\r' || *p == '\t')) p++;
    return p;
}

#define SKIP(p, end, lines) ((lines) ? skip_inline_ws((p), (end)) : skip_ws((p), (end)))

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
    int64_t *img, *cat, *line;
    double *score, *bbox;
    Py_ssize_t cap;
} columns;

/* One record at p (its '{'), written to row i; NULL when it is not a plain box record. */
static ptr parse_record(ptr p, ptr end, columns *c, Py_ssize_t i, int lines) {
    int seen = 0;
    if (p >= end || *p != '{') return NULL;
    p = SKIP(p + 1, end, lines);
    for (;;) {
        ptr q;
        int k;
        if (p >= end || *p != '"') return NULL;
        k = key_at(p + 1, end, &q);
        if (k < 0 || (seen & (1 << k))) return NULL;
        seen |= 1 << k;
        p = SKIP(q, end, lines);
        if (p >= end || *p != ':') return NULL;
        p = SKIP(p + 1, end, lines);
        switch (k) {
        case 0: p = parse_int64(p, end, &c->img[i]); break;
        case 1: p = parse_int64(p, end, &c->cat[i]); break;
        case 3: p = parse_double(p, end, &c->score[i]); break;
        case 2:
            if (p >= end || *p != '[') return NULL;
            for (int j = 0; j < 4; j++) {
                p = SKIP(p + 1, end, lines);
                p = parse_double(p, end, &c->bbox[4 * i + j]);
                if (p == NULL) return NULL;
                p = SKIP(p, end, lines);
                if (p >= end || *p != (j < 3 ? ',' : ']')) return NULL;
            }
            p++;
            break;
        }
        if (p == NULL) return NULL;
        p = SKIP(p, end, lines);
        if (p >= end) return NULL;
        if (*p == '}') break;
        if (*p != ',') return NULL;
        p = SKIP(p + 1, end, lines);
    }
    return seen == 15 ? p + 1 : NULL;
}

/* Records of a JSON array between start and end (inside the brackets). */
static int parse_array(ptr base, Py_ssize_t start, Py_ssize_t end_off, columns *c, Py_ssize_t *rows,
                       Py_ssize_t *stop) {
    ptr end = base + end_off;
    ptr p = skip_ws(base + start, end);
    Py_ssize_t n = 0;
    int status = ST_OK;
    if (p < end) {
        for (;;) {
            ptr q;
            if (n >= c->cap) { status = ST_FULL; break; }
            q = parse_record(p, end, c, n, 0);
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

/* Records of JSON Lines between start and end, one per line; blank lines are skipped. Line
 * numbers are counted from 1 at start; *newlines is the number of line breaks consumed. */
static int parse_lines(ptr base, Py_ssize_t start, Py_ssize_t end_off, columns *c, Py_ssize_t *rows,
                       Py_ssize_t *stop, Py_ssize_t *newlines) {
    ptr end = base + end_off;
    ptr p = base + start;
    Py_ssize_t n = 0, line = 1;
    int status = ST_OK;
    for (;;) {
        ptr q;
        p = skip_inline_ws(p, end);
        if (p >= end) break;
        if (*p == '\n') { line++; p++; continue; }
        if (n >= c->cap) { status = ST_FULL; break; }
        q = parse_record(p, end, c, n, 1);
        if (q == NULL) { status = ST_BAIL; break; }
        c->line[n] = line;
        n++;
        p = skip_inline_ws(q, end);
        if (p >= end) break;
        if (*p != '\n') { status = ST_BAIL; break; }
        line++;
        p++;
    }
    *rows = n;
    *stop = (Py_ssize_t)(p - base);
    *newlines = line - 1;
    return status;
}

PyDoc_STRVAR(parse_boxes_doc,
"parse_boxes(buf, start, end, image_id, category_id, score, bbox, line=None)\n"
"    -> (rows, status, stop, newlines)\n\n"
"Parse the box records in buf[start:end] into the writable int64/int64/float64/\n"
"float64 columns (bbox holds 4 values per row): the inside of a JSON array, or,\n"
"when an int64 column ``line`` is given, JSON Lines (each row's line number,\n"
"counted from 1 at start, goes to ``line``; newlines counts the line breaks read).\n"
"status 0: all records parsed; 1: a record this parser does not take (use the\n"
"general decoder); 2: the columns are full. stop is where parsing stopped.");

static PyObject *parse_boxes(PyObject *self, PyObject *args) {
    PyObject *buf_o, *img_o, *cat_o, *score_o, *bbox_o, *line_o = Py_None;
    Py_ssize_t start, end, rows = 0, stop = 0, newlines = 0;
    Py_buffer buf, cols[5];
    static const char *names[5] = {"image_id", "category_id", "score", "bbox", "line"};
    PyObject *objs[5];
    int ncols, status, i;
    columns c;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnOOOO|O", &buf_o, &start, &end, &img_o, &cat_o, &score_o, &bbox_o, &line_o))
        return NULL;
    objs[0] = img_o; objs[1] = cat_o; objs[2] = score_o; objs[3] = bbox_o; objs[4] = line_o;
    ncols = line_o == Py_None ? 4 : 5;
    if (PyObject_GetBuffer(buf_o, &buf, PyBUF_SIMPLE) < 0) return NULL;
    if (start < 0 || end > buf.len || start > end) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "start/end outside the buffer");
        return NULL;
    }
    for (i = 0; i < ncols; i++) {
        if (PyObject_GetBuffer(objs[i], &cols[i], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0 ||
            cols[i].len % 8 != 0) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "%s: expected a column of 8-byte items", names[i]);
            else
                i--;   /* this one was not acquired */
            for (; i >= 0; i--) PyBuffer_Release(&cols[i]);
            PyBuffer_Release(&buf);
            return NULL;
        }
    }
    c.img = (int64_t *)cols[0].buf;
    c.cat = (int64_t *)cols[1].buf;
    c.score = (double *)cols[2].buf;
    c.bbox = (double *)cols[3].buf;
    c.line = ncols == 5 ? (int64_t *)cols[4].buf : NULL;
    c.cap = cols[0].len / 8;
    if (cols[1].len / 8 < c.cap) c.cap = cols[1].len / 8;
    if (cols[2].len / 8 < c.cap) c.cap = cols[2].len / 8;
    if (cols[3].len / 32 < c.cap) c.cap = cols[3].len / 32;
    if (ncols == 5 && cols[4].len / 8 < c.cap) c.cap = cols[4].len / 8;
    Py_BEGIN_ALLOW_THREADS
    if (ncols == 5)
        status = parse_lines((ptr)buf.buf, start, end, &c, &rows, &stop, &newlines);
    else
        status = parse_array((ptr)buf.buf, start, end, &c, &rows, &stop);
    Py_END_ALLOW_THREADS
    for (i = ncols - 1; i >= 0; i--) PyBuffer_Release(&cols[i]);
    PyBuffer_Release(&buf);
    return Py_BuildValue("ninn", rows, status, stop, newlines);
}

static PyMethodDef methods[] = {
    {"parse_boxes", parse_boxes, METH_VARARGS, parse_boxes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsoncols", "Columns from JSON arrays of box detections (see fastjson.py).", -1,
    methods, NULL, NULL, NULL, NULL,
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
